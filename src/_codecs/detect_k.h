/* DTMF and silence/activity detection kernels (C, header-only, static inline).
 *
 * Written in C rather than as Cython inline functions because the hot loop is a bank of
 * Goertzel filters held in 4-wide float vectors (GCC/Clang vector extensions, SSE2 on
 * x86-64 and NEON on arm64, with a plain-C fallback elsewhere), which Cython cannot
 * express.  detect.pyx owns the state arrays and calls these functions with the GIL
 * released.  Every channel's state is a plain struct, so one call can run any number of
 * channels (one row of a 2-D block each) and a single-channel detector is the same code
 * with one row: both give identical results by construction.  On x86-64, groups of eight
 * rows at the same block position run a structure-of-arrays form of the bank (one filter
 * of eight channels per vector, see dt_run_soa) whose every lane does the same float
 * operations in the same order, so its results are identical too (the tests compare
 * them at every SIMD level).
 *
 * Design (facts from ITU-T Q.24 / ETSI ES 201 235-3 and the Mitel CM7291 test procedure;
 * the algorithm below is our own):
 *
 *   DTMF.  The signal is cut into 10 ms blocks (80 samples at 8 kHz) counted from the
 *   start of the stream.  Per block, twelve Goertzel filters (the 8 DTMF frequencies,
 *   350 and 440 Hz dial tone, 2 unused lanes) give complex DFT values; the sum and sum
 *   of squares give the DC-free block energy.  A *window* is two consecutive blocks
 *   (20 ms).  A window is a hit for digit (r, c) when:
 *     - r and c are the strongest row/column bins of the 20 ms DFT, each at least
 *       `rel_peak` stronger than the other bins of its group (the 20 ms DFT separates
 *       the closely spaced row tones);
 *     - in each of the two blocks: both tones above the level floor, twist within limits,
 *       and the two tones carry at least `frac_hit` of the block energy (dial tone energy
 *       measured by the 350/440 Hz filters is not counted).  The energy fraction also
 *       measures how much of the block the tone fills, so a partial block fails it;
 *     - the phase advance of each tone from one block to the next gives its frequency:
 *       it must be within `freq_tol` (2 %) of nominal (Q.24: accept 1.5 %, reject 3.5 %).
 *   Two consecutive hit windows of the same digit (three blocks, 30 ms) confirm it.  The
 *   start is then refined to the sample from the amplitude of the partial block before
 *   the full ones (a tone filling a fraction f of a block gives f of the full amplitude).
 *   A confirmed digit lasts while its two tones remain the strongest of their groups in
 *   each block with a reduced energy fraction (`frac_present`), so dropouts of 10 ms are
 *   bridged; two consecutive blocks without it end the digit, the end refined likewise.
 *
 *   Silence.  Sums of x and x^2 over 5 ms sub-frames; every 5 ms the DC-free level of
 *   the last 10 ms (two sub-frames) is compared with the threshold.  `min_run` consecutive
 *   active windows confirm audio (a burst shorter than ~20 ms cannot produce them), and
 *   the onset is dated back to the first of them.  The first window below threshold
 *   ends the audio; the silence run starts there.
 */
#ifndef CALLRECORDER_DETECT_K_H
#define CALLRECORDER_DETECT_K_H

#include <stdint.h>
#include <string.h>
#include <math.h>

#include "cpu_isa.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__)
/* Results must not depend on how the compiler fuses multiply-adds in one place and not
 * in another (single-channel and multi-channel paths must agree bit for bit). */
#pragma GCC optimize("fp-contract=off")
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CR_DT_INLINE static inline __attribute__((always_inline))
typedef float cr_v4 __attribute__((vector_size(16), aligned(16)));
#define V4_SET1(x) ((cr_v4){(x), (x), (x), (x)})
#define V4_ADD(a, b) ((a) + (b))
#define V4_SUB(a, b) ((a) - (b))
#define V4_MUL(a, b) ((a) * (b))
#define V4_GET(a, i) ((a)[i])
#define V4_SETLANE(a, i, x) ((a)[i] = (x))
#else
#if defined(_MSC_VER)
#define CR_DT_INLINE static __forceinline
#else
#define CR_DT_INLINE static inline
#endif
typedef struct { float v[4]; } cr_v4;
static inline cr_v4 cr_v4_set1(float x) { cr_v4 r; r.v[0] = r.v[1] = r.v[2] = r.v[3] = x; return r; }
static inline cr_v4 cr_v4_add(cr_v4 a, cr_v4 b) { int i; for (i = 0; i < 4; i++) a.v[i] += b.v[i]; return a; }
static inline cr_v4 cr_v4_sub(cr_v4 a, cr_v4 b) { int i; for (i = 0; i < 4; i++) a.v[i] -= b.v[i]; return a; }
static inline cr_v4 cr_v4_mul(cr_v4 a, cr_v4 b) { int i; for (i = 0; i < 4; i++) a.v[i] *= b.v[i]; return a; }
#define V4_SET1(x) cr_v4_set1(x)
#define V4_ADD(a, b) cr_v4_add((a), (b))
#define V4_SUB(a, b) cr_v4_sub((a), (b))
#define V4_MUL(a, b) cr_v4_mul((a), (b))
#define V4_GET(a, i) ((a).v[i])
#define V4_SETLANE(a, i, x) ((a).v[i] = (x))
#endif

#define DT_NV 3              /* vectors of 4 filters */
#define DT_NF (4 * DT_NV)    /* 12 filter lanes: 8 DTMF, 350, 440, 2 unused */
#define DT_HIST 4            /* blocks of history kept */
#define DT_DIAL0 8

#define CR_EV_DIGIT_START 1
#define CR_EV_DIGIT_END 2
#define CR_EV_AUDIO_START 3
#define CR_EV_SILENCE_START 4

/* The same string as recorder.dsp.DTMF_KEYS, the one definition (tests/test_formats.py
 * checks that the two agree). */
static const char cr_dtmf_keys[17] = "123A456B789C*0#D";
static const double cr_dtmf_freqs[10] = {697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0,
                                          1477.0, 1633.0, 350.0, 440.0};

/* 0 dBm0 = RMS 16139 (A-law digital milliwatt) */
#define CR_DBM0_RMS 16139.0

typedef struct {
    int32_t kind;      /* CR_EV_* */
    int32_t row;       /* row of the block it came from (multi-channel calls), else 0 */
    int64_t start;     /* sample index from the start of the stream */
    int64_t end;       /* digit end (CR_EV_DIGIT_END), else -1 */
    float level;       /* dBm0: total of the two tones for digits */
    int32_t digit;     /* ASCII of the digit, 0 for silence events */
} cr_event;

/* ---------------------------------------------------------------- DTMF -------- */

typedef struct {
    int32_t rate, B;
    cr_v4 coef[DT_NV];              /* 2 cos w */
    float cw[DT_NF], sw[DT_NF];     /* cos w, sin w */
    float rotr[DT_NF], roti[DT_NF]; /* e^{-i w B} */
    float wyr[DT_NF], wyi[DT_NF];   /* y of a unit DC over one block */
    float cos_tol[8];               /* cos of the largest accepted phase error */
    float thr_p;                    /* |y|^2 of a tone at the level floor */
    float ref_p;                    /* |y|^2 of a 0 dBm0 tone */
    float normal_twist, reverse_twist; /* power ratios high/low: lower and upper bound */
    float rel_peak;                 /* power ratio */
    float frac_hit, frac_present, dial_max;
    float cov_min;                  /* partial blocks weaker than this are not counted */
    float ucr[8], uci[8];           /* e^{-i w (B-1)}: Goertzel output y -> block DFT X */
    float ls[16][4][4];             /* per digit: [Re X_r, Im X_r, Re X_c, Im X_c] -> the
                                       two tones' complex amplitudes (least squares) */
} dt_config;

typedef struct {
    cr_v4 s1[DT_NV], s2[DT_NV];     /* Goertzel state of the block in progress */
    int64_t sum, sumsq;             /* sums of x and x^2 of the block in progress */
    int32_t pos;                    /* samples into the block in progress */
    int32_t cur;                    /* digit in progress (index 0..15) or -1 */
    int64_t nblk;                   /* completed blocks */
    float yr[DT_HIST][8], yi[DT_HIST][8], pw[DT_HIST][8];
    float eeff[DT_HIST];            /* block energy less dial tone, times B/2 (|y|^2 units) */
    int32_t whit;                   /* digit of the previous window hit, or -1 */
    int32_t run;                    /* consecutive window hits of whit */
    int32_t absent;                 /* consecutive blocks without the current digit */
    int64_t last_present;           /* block index of the last block with the digit */
    int64_t dstart;                 /* start sample of the current digit */
    float dlevel;                   /* its level (dBm0) */
    float ref_r, ref_c;             /* its full-block amplitudes (sqrt |y|^2) */
    float ref_e;                    /* its full-block energy (eeff units) */
} dt_chan;

/* K(t) = sum_{n<B} e^{i t n} */
static void dt_kernel(int B, double t, double *re, double *im)
{
    double a = 0, b = 0;
    int n;
    for (n = 0; n < B; n++) {
        a += cos(t * n);
        b += sin(t * n);
    }
    *re = a;
    *im = b;
}

/* Invert a 4x4 matrix (Gauss-Jordan, partial pivoting); returns 0 if singular. */
static int dt_inv4(double m[4][4], double out[4][4])
{
    double a[4][8];
    int i, j, k, p;
    for (i = 0; i < 4; i++)
        for (j = 0; j < 8; j++)
            a[i][j] = j < 4 ? m[i][j] : (j - 4 == i);
    for (k = 0; k < 4; k++) {
        p = k;
        for (i = k + 1; i < 4; i++)
            if (fabs(a[i][k]) > fabs(a[p][k]))
                p = i;
        if (fabs(a[p][k]) < 1e-12)
            return 0;
        for (j = 0; j < 8; j++) {
            double t = a[k][j];
            a[k][j] = a[p][j];
            a[p][j] = t;
        }
        for (j = 7; j >= k; j--)
            a[k][j] /= a[k][k];
        for (i = 0; i < 4; i++)
            if (i != k) {
                double f = a[i][k];
                for (j = k; j < 8; j++)
                    a[i][j] -= f * a[k][j];
            }
    }
    for (i = 0; i < 4; i++)
        for (j = 0; j < 4; j++)
            out[i][j] = a[i][j + 4];
    return 1;
}

/* The block DFT of x[n] = Re(al e^{i wr n}) + Re(be e^{i wc n}) at w in {wr, wc} is linear
 * in (Re al, Im al, Re be, Im be): X(w) = al/2 K(wr-w) + conj(al)/2 K(-wr-w) + (same for
 * be).  Inverting that 4x4 map gives both tones' amplitudes free of their mutual leakage
 * and of their negative-frequency images, which otherwise swing a weak tone's measured
 * level by +-1.5 dB from block to block. */
static void dt_ls_init(dt_config *c)
{
    int d, q, t;
    for (d = 0; d < 16; d++) {
        double w[2], m[4][4], inv[4][4];
        w[0] = 2.0 * M_PI * cr_dtmf_freqs[d >> 2] / c->rate;
        w[1] = 2.0 * M_PI * cr_dtmf_freqs[4 + (d & 3)] / c->rate;
        for (q = 0; q < 2; q++) {          /* equation: X at w[q] */
            for (t = 0; t < 2; t++) {      /* unknown: tone t */
                double k1r, k1i, k2r, k2i;
                dt_kernel(c->B, w[t] - w[q], &k1r, &k1i);
                dt_kernel(c->B, -w[t] - w[q], &k2r, &k2i);
                k1r *= 0.5; k1i *= 0.5; k2r *= 0.5; k2i *= 0.5;
                /* Re X += (k1r + k2r) ar + (k2i - k1i) ai ; Im X += (k1i + k2i) ar + (k1r - k2r) ai */
                m[2 * q][2 * t] = k1r + k2r;
                m[2 * q][2 * t + 1] = k2i - k1i;
                m[2 * q + 1][2 * t] = k1i + k2i;
                m[2 * q + 1][2 * t + 1] = k1r - k2r;
            }
        }
        if (!dt_inv4(m, inv)) {
            memset(inv, 0, sizeof(inv));
        }
        for (q = 0; q < 4; q++)
            for (t = 0; t < 4; t++)
                c->ls[d][q][t] = (float)inv[q][t];
    }
}

static void dt_config_init(dt_config *c, int rate, double min_level_dbm0,
                           double normal_twist_db, double reverse_twist_db,
                           double rel_peak_db, double freq_tol, double frac_hit,
                           double frac_present)
{
    int k;
    double w, B;
    memset(c, 0, sizeof(*c));
    c->rate = rate;
    c->B = rate / 100;
    B = c->B;
    for (k = 0; k < DT_NF; k++) {
        w = k < 10 ? 2.0 * M_PI * cr_dtmf_freqs[k] / rate : 0.0;
        V4_SETLANE(c->coef[k / 4], k % 4, k < 10 ? (float)(2.0 * cos(w)) : 0.0f);
        c->cw[k] = (float)cos(w);
        c->sw[k] = (float)sin(w);
        c->rotr[k] = (float)cos(w * B);
        c->roti[k] = (float)-sin(w * B);
        if (k < 10) {
            /* y = sum_m x[m] e^{i w (B-1-m)}; for x = 1: sum_{m<B} e^{i w m} */
            double re = 0, im = 0;
            int m;
            for (m = 0; m < c->B; m++) {
                re += cos(w * m);
                im += sin(w * m);
            }
            c->wyr[k] = (float)re;
            c->wyi[k] = (float)im;
        }
        if (k < 8) {
            double ph = 2.0 * M_PI * cr_dtmf_freqs[k] * freq_tol * B / rate;
            c->ucr[k] = (float)cos(w * (B - 1));
            c->uci[k] = (float)-sin(w * (B - 1));
            c->cos_tol[k] = (float)(ph >= M_PI ? -1.0 : cos(ph));
        }
    }
    {
        double a0 = CR_DBM0_RMS * sqrt(2.0) * B / 2.0;
        c->ref_p = (float)(a0 * a0);
        c->thr_p = (float)(a0 * a0 * pow(10.0, min_level_dbm0 / 10.0));
    }
    c->normal_twist = (float)pow(10.0, -normal_twist_db / 10.0);
    c->reverse_twist = (float)pow(10.0, reverse_twist_db / 10.0);
    c->rel_peak = (float)pow(10.0, rel_peak_db / 10.0);
    c->frac_hit = (float)frac_hit;
    c->frac_present = (float)frac_present;
    c->dial_max = 0.75f;
    c->cov_min = 0.1f;
    dt_ls_init(c);
}

static void dt_chan_reset(dt_chan *s)
{
    memset(s, 0, sizeof(*s));
    s->cur = -1;
    s->whit = -1;
    s->dstart = -1;
}

/* Goertzel over n samples of nch channels, interleaved so that independent channels
 * fill the pipeline.  n must not cross any channel's block end.  Each channel's lanes
 * see exactly the same IEEE operations in the same order whatever nch is and whichever
 * instruction set runs them (no fused multiply-add), so every path gives the same bits.
 *
 * s[n] = 2cos(w) s[n-1] - s[n-2] + x[n], computed as c*s1 + (x - s2); two samples per
 * turn with the roles of a (s1) and b (s2) swapped in between: no register copies. */
#if defined(__GNUC__) || defined(__clang__)
typedef float cr_v8 __attribute__((vector_size(32)));
typedef float cr_v4u __attribute__((vector_size(16), aligned(4)));
typedef float cr_v8u __attribute__((vector_size(32), aligned(4)));

CR_DT_INLINE void dt_goertzel(dt_chan **ch, const int16_t **x, int n, const dt_config *c,
                              const int nch)
{
    /* lanes 0..7 (the DTMF tones) in one 8-wide vector, lanes 8..11 in a 4-wide one:
     * one AVX register each where AVX runs this, two and one SSE registers elsewhere */
    cr_v8 a8[2], b8[2], c8;
    cr_v4 a4[2], b4[2], c4;
    int i, j;
    c8 = *(const cr_v8u *)(const void *)&c->coef[0];
    c4 = c->coef[2];
    for (j = 0; j < nch; j++) {
        a8[j] = *(const cr_v8u *)(const void *)&ch[j]->s1[0];
        b8[j] = *(const cr_v8u *)(const void *)&ch[j]->s2[0];
        a4[j] = ch[j]->s1[2];
        b4[j] = ch[j]->s2[2];
    }
    for (i = 0; i + 1 < n; i += 2) {
        for (j = 0; j < nch; j++) {
            float xf = (float)x[j][i];
            cr_v8 x8 = {xf, xf, xf, xf, xf, xf, xf, xf};
            cr_v4 x4 = {xf, xf, xf, xf};
            b8[j] = c8 * a8[j] + (x8 - b8[j]);
            b4[j] = c4 * a4[j] + (x4 - b4[j]);
        }
        for (j = 0; j < nch; j++) {
            float xf = (float)x[j][i + 1];
            cr_v8 x8 = {xf, xf, xf, xf, xf, xf, xf, xf};
            cr_v4 x4 = {xf, xf, xf, xf};
            a8[j] = c8 * b8[j] + (x8 - a8[j]);
            a4[j] = c4 * b4[j] + (x4 - a4[j]);
        }
    }
    if (i < n) {
        for (j = 0; j < nch; j++) {
            float xf = (float)x[j][i];
            cr_v8 x8 = {xf, xf, xf, xf, xf, xf, xf, xf};
            cr_v4 x4 = {xf, xf, xf, xf};
            cr_v8 t8 = x8 - b8[j];
            cr_v4 t4 = x4 - b4[j];
            b8[j] = a8[j];
            b4[j] = a4[j];
            a8[j] = c8 * a8[j] + t8;
            a4[j] = c4 * a4[j] + t4;
        }
    }
    for (j = 0; j < nch; j++) {
        *(cr_v8u *)(void *)&ch[j]->s1[0] = a8[j];
        *(cr_v8u *)(void *)&ch[j]->s2[0] = b8[j];
        ch[j]->s1[2] = a4[j];
        ch[j]->s2[2] = b4[j];
    }
}
#else
CR_DT_INLINE void dt_goertzel(dt_chan **ch, const int16_t **x, int n, const dt_config *c,
                              const int nch)
{
    cr_v4 a[2][DT_NV], b[2][DT_NV], coef[DT_NV];
    int i, j, k;
    for (k = 0; k < DT_NV; k++)
        coef[k] = c->coef[k];
    for (j = 0; j < nch; j++)
        for (k = 0; k < DT_NV; k++) {
            a[j][k] = ch[j]->s1[k];
            b[j][k] = ch[j]->s2[k];
        }
    for (i = 0; i < n; i++) {
        for (j = 0; j < nch; j++) {
            cr_v4 xv = V4_SET1((float)x[j][i]);
            for (k = 0; k < DT_NV; k++) {
                cr_v4 t = V4_SUB(xv, b[j][k]);
                b[j][k] = a[j][k];
                a[j][k] = V4_ADD(V4_MUL(coef[k], a[j][k]), t);
            }
        }
    }
    for (j = 0; j < nch; j++)
        for (k = 0; k < DT_NV; k++) {
            ch[j]->s1[k] = a[j][k];
            ch[j]->s2[k] = b[j][k];
        }
}
#endif

/* Out-of-line copies for nch = 1 and 2, and on x86-64 with GCC/Clang the same code built
 * for AVX (3-operand forms, 8-wide vectors), run when the SIMD level in use (cpu_isa.h)
 * allows AVX. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CR_DT_DISPATCH 1
__attribute__((noinline, target("avx"))) static void
dt_goertzel_avx1(dt_chan **ch, const int16_t **x, int n, const dt_config *c)
{
    dt_goertzel(ch, x, n, c, 1);
}
__attribute__((noinline, target("avx"))) static void
dt_goertzel_avx2(dt_chan **ch, const int16_t **x, int n, const dt_config *c)
{
    dt_goertzel(ch, x, n, c, 2);
}
#endif
__attribute__((noinline)) static void
dt_goertzel_gen1(dt_chan **ch, const int16_t **x, int n, const dt_config *c)
{
    dt_goertzel(ch, x, n, c, 1);
}
__attribute__((noinline)) static void
dt_goertzel_gen2(dt_chan **ch, const int16_t **x, int n, const dt_config *c)
{
    dt_goertzel(ch, x, n, c, 2);
}

static inline void dt_goertzel_run(dt_chan **ch, const int16_t **x, int n, const dt_config *c,
                                   int nch)
{
#ifdef CR_DT_DISPATCH
    if (cr_isa() >= CR_ISA_AVX) {
        if (nch == 2)
            dt_goertzel_avx2(ch, x, n, c);
        else
            dt_goertzel_avx1(ch, x, n, c);
        return;
    }
#endif
    if (nch == 2)
        dt_goertzel_gen2(ch, x, n, c);
    else
        dt_goertzel_gen1(ch, x, n, c);
}

/* Sums of x and x^2 over n samples, added to *sum and *sumsq (exact integers: any order of
 * the additions gives the same result).  With SSE2, eight samples per step: pmaddwd gives
 * x0^2 + x1^2 <= 2^31 per lane, exact read as unsigned 32-bit, widened to 64 bits; the
 * sums of x stay in 32-bit lanes for at most 2^14 steps (|lane| <= 2^30). */
CR_DT_INLINE void cr_sums(const int16_t *x, int n, int64_t *sum, int64_t *sumsq)
{
    int64_t s = 0, q = 0;
    int i = 0;
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
    while (i + 8 <= n) {
        const __m128i one = _mm_set1_epi16(1), zero = _mm_setzero_si128();
        __m128i vs = zero, vq = zero;
        int end = n - i > (8 << 14) ? i + (8 << 14) : n;
        int64_t t[2];
        for (; i + 8 <= end; i += 8) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(x + i));
            __m128i m = _mm_madd_epi16(v, v);
            vs = _mm_add_epi32(vs, _mm_madd_epi16(v, one));
            vq = _mm_add_epi64(vq, _mm_add_epi64(_mm_unpacklo_epi32(m, zero),
                                                 _mm_unpackhi_epi32(m, zero)));
        }
        vs = _mm_add_epi32(vs, _mm_shuffle_epi32(vs, 0x4e));
        vs = _mm_add_epi32(vs, _mm_shuffle_epi32(vs, 0xb1));
        s += _mm_cvtsi128_si32(vs);
        _mm_storeu_si128((__m128i *)(void *)t, vq);
        q += t[0] + t[1];
    }
#endif
    for (; i < n; i++) {
        int32_t v = x[i];
        s += v;
        q += (int64_t)(v * v);
    }
    *sum += s;
    *sumsq += q;
}

static inline float dt_db(double p, double ref)
{
    return p > 0 ? (float)(10.0 * log10(p / ref)) : -200.0f;
}

/* Powers (|y|^2 units: (a B / 2)^2 for a full-block tone of amplitude a) of the row and
 * column tones of block h, fitted jointly (see dt_ls_init). */
static inline void dt_ls(const dt_config *c, const dt_chan *s, int h, int r, int col,
                         float a[4])
{
    const float (*m)[4] = c->ls[r * 4 + (col - 4)];
    float v[4];
    int i;
    v[0] = s->yr[h][r] * c->ucr[r] - s->yi[h][r] * c->uci[r];
    v[1] = s->yr[h][r] * c->uci[r] + s->yi[h][r] * c->ucr[r];
    v[2] = s->yr[h][col] * c->ucr[col] - s->yi[h][col] * c->uci[col];
    v[3] = s->yr[h][col] * c->uci[col] + s->yi[h][col] * c->ucr[col];
    for (i = 0; i < 4; i++)
        a[i] = m[i][0] * v[0] + m[i][1] * v[1] + m[i][2] * v[2] + m[i][3] * v[3];
}

static inline void dt_ls_pow(const dt_config *c, const dt_chan *s, int h, int r, int col,
                             float *pr, float *pc)
{
    float a[4], hb = 0.5f * c->B;
    dt_ls(c, s, h, r, col, a);
    *pr = (a[0] * a[0] + a[1] * a[1]) * hb * hb;
    *pc = (a[2] * a[2] + a[3] * a[3]) * hb * hb;
}

/* amplitude of a tone in block h relative to a full-block reference, clipped to 0..1 */
static inline float dt_cov(const dt_config *c, const dt_chan *s, int h, int r, int col)
{
    float pr, pc;
    dt_ls_pow(c, s, h, r, col, &pr, &pc);
    float fr = s->ref_r > 0 ? sqrtf(pr) / s->ref_r : 0.0f;
    float fc = s->ref_c > 0 ? sqrtf(pc) / s->ref_c : 0.0f;
    float f = 0.5f * (fr + fc);
    if (f < 0.5f) {
        /* a short piece of tone: its fitted amplitude is rough, its energy is not (but
         * the energy also counts whatever else is there: never more than the amplitude
         * allows) */
        float fe = s->ref_e > 0 ? s->eeff[h] / s->ref_e : 0.0f;
        f = fe < f + 0.15f ? fe : f + 0.15f;
    }
    if (f > 1.0f)
        f = 1.0f;
    if (f < c->cov_min)
        f = 0.0f;
    return f;
}

/* Per-block tests shared by the hit and presence checks. */
static inline int dt_block_ok(const dt_config *c, const dt_chan *s, int h, int r, int col,
                              float frac)
{
    float pr, pc;
    dt_ls_pow(c, s, h, r, col, &pr, &pc);
    if (pr < c->thr_p || pc < c->thr_p)
        return 0;
    if (pc < pr * c->normal_twist || pc > pr * c->reverse_twist)
        return 0;
    if (pr + pc < frac * s->eeff[h])
        return 0;
    return 1;
}

static inline void dt_emit(cr_event *ev, int *nev, int kind, int32_t row, int64_t start,
                           int64_t end, float level, int digit)
{
    cr_event *e = &ev[(*nev)++];
    e->kind = kind;
    e->row = row;
    e->start = start;
    e->end = end;
    e->level = level;
    e->digit = digit >= 0 ? cr_dtmf_keys[digit] : 0;
}

static inline void dt_end_digit(const dt_config *c, dt_chan *s, int32_t row, cr_event *ev,
                                int *nev)
{
    /* the digit fills blocks up to last_present (maybe partly) and maybe part of the
     * next one */
    int r = s->cur >> 2, col = 4 + (s->cur & 3);
    int64_t lp = s->last_present;
    int h = (int)(lp % DT_HIST);
    float f = dt_cov(c, s, h, r, col);
    double end = (double)lp * c->B + (double)f * c->B;
    if (lp + 1 < s->nblk) {
        int h2 = (int)((lp + 1) % DT_HIST);
        end += (double)dt_cov(c, s, h2, r, col) * c->B;
    }
    int64_t e = (int64_t)(end + 0.5);
    if (e < s->dstart)
        e = s->dstart;
    dt_emit(ev, nev, CR_EV_DIGIT_END, row, s->dstart, e, s->dlevel, s->cur);
    s->cur = -1;
    s->absent = 0;
}

/* The DC-free energy of the completed block in |y|^2 units (dt_block_end_y's energy) */
static inline double dt_energy(const dt_config *c, const dt_chan *s)
{
    double energy = (double)s->sumsq - (double)s->sum * (double)s->sum / c->B;
    /* |y|^2 of a full-block tone is (a B / 2)^2 and its energy a^2 B / 2: energy in
     * |y|^2 units is energy * B / 2 */
    return energy * (0.5 * c->B);
}

/* Analyse the block that just completed, given the filters' outputs: yr[k * ys], yi[k * ys]
 * (y of filter k, the block's mean removed) and pw[k * ys] = |y|^2 for k < 10 (ys = 1:
 * arrays of this channel; 8: a column of the 8-channel bank's arrays), and its energy
 * (dt_energy). */

static void dt_block_end_y(const dt_config *c, dt_chan *s, const float *yr, const float *yi,
                           const float *pw, int ys, double energy, int32_t row, cr_event *ev,
                           int *nev)
{
    const float B = (float)c->B;
    int k, h, hp, r, col, d, hit;
    float dial;

    dial = pw[DT_DIAL0 * ys] + pw[(DT_DIAL0 + 1) * ys];
    if (dial > c->dial_max * energy)
        dial = (float)(c->dial_max * energy);
    h = (int)(s->nblk % DT_HIST);
    for (k = 0; k < 8; k++) {
        s->yr[h][k] = yr[k * ys];
        s->yi[h][k] = yi[k * ys];
        s->pw[h][k] = pw[k * ys];
    }
    s->eeff[h] = (float)(energy - dial);
    s->nblk++;
    for (k = 0; k < DT_NV; k++) {
        s->s1[k] = V4_SET1(0.0f);
        s->s2[k] = V4_SET1(0.0f);
    }
    s->sum = 0;
    s->sumsq = 0;
    s->pos = 0;

    /* ---- window test over blocks hp (previous) and h (this one) */
    hit = -1;
    /* cheap necessary conditions first: the strongest row and column tones of this
     * block must carry frac_hit of its energy and pass the level floor */
    {
        float mr = pw[0], mc = pw[4 * ys];
        for (k = 1; k < 4; k++) {
            if (pw[k * ys] > mr)
                mr = pw[k * ys];
            if (pw[(k + 4) * ys] > mc)
                mc = pw[(k + 4) * ys];
        }
        if (mr < 0.5f * c->thr_p || mc < 0.5f * c->thr_p || mr + mc < 0.6f * c->frac_hit * s->eeff[h])
            hit = -2;
    }
    if (hit == -1 && s->nblk >= 2) {
        float py[8], best;
        int ok = 1;
        hp = (int)((s->nblk - 2) % DT_HIST);
        for (k = 0; k < 8; k++) {
            /* 20 ms DFT: y_prev + e^{-i w B} y_this */
            float ar = s->yr[hp][k] + c->rotr[k] * yr[k * ys] - c->roti[k] * yi[k * ys];
            float ai = s->yi[hp][k] + c->rotr[k] * yi[k * ys] + c->roti[k] * yr[k * ys];
            py[k] = ar * ar + ai * ai;
        }
        r = 0;
        for (k = 1; k < 4; k++)
            if (py[k] > py[r])
                r = k;
        col = 4;
        for (k = 5; k < 8; k++)
            if (py[k] > py[col])
                col = k;
        best = py[r];
        for (k = 0; k < 4; k++)
            if (k != r && py[k] * c->rel_peak > best)
                ok = 0;
        best = py[col];
        for (k = 4; k < 8; k++)
            if (k != col && py[k] * c->rel_peak > best)
                ok = 0;
        if (ok && dt_block_ok(c, s, h, r, col, c->frac_hit) &&
            dt_block_ok(c, s, hp, r, col, c->frac_hit)) {
            /* frequency: phase advance of each fitted tone over one block, less the
             * nominal advance */
            int t;
            float a1[4], a0[4];
            dt_ls(c, s, h, r, col, a1);
            dt_ls(c, s, hp, r, col, a0);
            for (t = 0; t < 2 && ok; t++) {
                int q = t ? col : r;
                float pr_ = a1[2 * t] * a0[2 * t] + a1[2 * t + 1] * a0[2 * t + 1];
                float pi_ = a1[2 * t + 1] * a0[2 * t] - a1[2 * t] * a0[2 * t + 1];
                float zr = pr_ * c->rotr[q] - pi_ * c->roti[q];
                float zi = pr_ * c->roti[q] + pi_ * c->rotr[q];
                if (zr < c->cos_tol[q] * sqrtf(zr * zr + zi * zi))
                    ok = 0;
            }
            if (ok)
                hit = r * 4 + (col - 4);
        }
    }
    if (hit < 0)
        hit = -1;
    (void)B;

    /* ---- the digit in progress: is it still there? */
    if (s->cur >= 0) {
        int cr_ = s->cur >> 2, cc = 4 + (s->cur & 3), present;
        if (hit == s->cur) {
            present = 1;
        } else {
            present = hit < 0 && dt_block_ok(c, s, h, cr_, cc, c->frac_present);
            for (k = 0; k < 4 && present; k++)
                if (k != cr_ && pw[k * ys] > pw[cr_ * ys])
                    present = 0;
            for (k = 4; k < 8 && present; k++)
                if (k != cc && pw[k * ys] > pw[cc * ys])
                    present = 0;
        }
        if (present) {
            s->absent = 0;
            s->last_present = s->nblk - 1;
        } else if (++s->absent >= 2) {
            dt_end_digit(c, s, row, ev, nev);
        }
    }

    /* ---- runs of window hits; two in a row start a digit */
    if (hit >= 0 && hit == s->whit)
        s->run++;
    else
        s->run = hit >= 0 ? 1 : 0;
    s->whit = hit;
    if (s->cur < 0 && s->run >= 2) {
        int64_t j = s->nblk - 1;    /* this block; the digit fills j-1 and j, and j-2 */
        int hm2 = (int)((j - 2) % DT_HIST), hm3 = (int)((j - 3 + DT_HIST) % DT_HIST);
        float f, lev;
        double start;
        r = hit >> 2;
        col = 4 + (hit & 3);
        hp = (int)((j - 1) % DT_HIST);
        {
            float pr1, pc1, pr2, pc2;
            dt_ls_pow(c, s, h, r, col, &pr1, &pc1);
            dt_ls_pow(c, s, hp, r, col, &pr2, &pc2);
            s->ref_r = sqrtf(0.5f * (pr1 + pr2));
            s->ref_c = sqrtf(0.5f * (pc1 + pc2));
            s->ref_e = 0.5f * (s->eeff[h] + s->eeff[hp]);
        }
        d = hit;
        s->cur = d;
        f = dt_cov(c, s, hm2, r, col);
        start = (double)(j - 1) * c->B - (double)f * c->B;
        if (j >= 3)
            start -= (double)dt_cov(c, s, hm3, r, col) * c->B;
        if (start < 0)
            start = 0;
        s->dstart = (int64_t)(start + 0.5);
        lev = dt_db((double)s->ref_r * s->ref_r + (double)s->ref_c * s->ref_c, c->ref_p);
        s->dlevel = lev;
        s->absent = 0;
        s->last_present = j;
        dt_emit(ev, nev, CR_EV_DIGIT_START, row, s->dstart, -1, lev, d);
    }
}

/* y of filter k from its Goertzel state (s1 = s[B-1], s2 = s[B-2]) less the block mean's
 * share (one expression: the per-channel and 8-channel paths evaluate it alike). */
#define DT_Y(c, k, s1, s2, mean, yr, yi, pw)                                                \
    do {                                                                                  \
        (yr) = (s1) - (c)->cw[k] * (s2) - (mean) * (c)->wyr[k];                           \
        (yi) = (c)->sw[k] * (s2) - (mean) * (c)->wyi[k];                                  \
        (pw) = (yr) * (yr) + (yi) * (yi);                                                 \
    } while (0)

/* Analyse the block that just completed (its Goertzel state is in s->s1/s2). */
static inline void dt_block_end(const dt_config *c, dt_chan *s, int32_t row, cr_event *ev,
                                int *nev)
{
    float yr[10], yi[10], pw[10];
    float mean = (float)((double)s->sum / c->B);
    int k;
    for (k = 0; k < 10; k++) {
        float s1 = V4_GET(s->s1[k / 4], k % 4), s2 = V4_GET(s->s2[k / 4], k % 4);
        DT_Y(c, k, s1, s2, mean, yr[k], yi[k], pw[k]);
    }
    dt_block_end_y(c, s, yr, yi, pw, 1, dt_energy(c, s), row, ev, nev);
}

/* Worst case number of events one channel can emit for n samples. */
static inline int64_t dt_max_events(const dt_config *c, int64_t n)
{
    return 2 * (n / c->B + 2);
}

/* Run nch (1 or 2) channels over n samples each. */
CR_DT_INLINE void dt_run_group(const dt_config *c, dt_chan **ch, const int16_t **x,
                               const int32_t *rows, int n, cr_event *ev, int *nev,
                               const int nch)
{
    int done = 0, j;
    while (done < n) {
        int seg = n - done;
        const int16_t *xp[2];
        for (j = 0; j < nch; j++) {
            int left = c->B - ch[j]->pos;
            if (left < seg)
                seg = left;
        }
        for (j = 0; j < nch; j++)
            xp[j] = x[j] + done;
        dt_goertzel_run(ch, xp, seg, c, nch);
        for (j = 0; j < nch; j++) {
            cr_sums(xp[j], seg, &ch[j]->sum, &ch[j]->sumsq);
            ch[j]->pos += seg;
        }
        done += seg;
        /* block ends in channel order, so events stay in row order within a segment */
        for (j = 0; j < nch; j++)
            if (ch[j]->pos == c->B)
                dt_block_end(c, ch[j], rows[j], ev, nev);
    }
}

/* ------------------------------------------- many channels: 8 per vector --------
 *
 * The per-channel bank above keeps one channel's filters in a vector; each filter's
 * recurrence is a chain of dependent operations, so it waits on latency.  For a group of
 * eight channels at the same block position (the common case: streams fed in whole
 * 10 ms multiples) the bank below holds one filter of the eight channels in a vector:
 * ten independent chains per sample (the 8 DTMF and 2 dial-tone filters; the two unused
 * lanes of dt_chan are not computed: nothing reads them), which fill the pipeline.  Each
 * lane sees the same IEEE operations in the same order as in dt_goertzel, so the bits
 * are the same.  The int16 rows are first transposed (8x8 tiles: SSE2, or two at a time
 * with AVX2) into floats, one 8-channel vector per sample. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define CR_DT_SOA 1
#define DT_SOA_W 8
#define DT_SOA_NF 10
#define DT_SOA_MAXSEG 480   /* B at 48 kHz: a segment never crosses a block end */

CR_DT_INLINE void dt_soa_put(float (*xt)[8], int i, __m128i t)
{
    __m128i lo = _mm_srai_epi32(_mm_unpacklo_epi16(t, t), 16);
    __m128i hi = _mm_srai_epi32(_mm_unpackhi_epi16(t, t), 16);
    _mm_store_ps(xt[i], _mm_cvtepi32_ps(lo));
    _mm_store_ps(xt[i] + 4, _mm_cvtepi32_ps(hi));
}

/* xt[i][j] = (float)x[j][i] for i < n, j < 8; from sample i0 (a multiple of 8) on */
CR_DT_INLINE void dt_soa_transpose(const int16_t *const *x, int i0, int n, float (*xt)[8])
{
    int i = i0, j;
    for (; i + 8 <= n; i += 8) {
        __m128i r[8], a[8], b[8];
        for (j = 0; j < 8; j++)
            r[j] = _mm_loadu_si128((const __m128i *)(const void *)(x[j] + i));
        for (j = 0; j < 8; j += 2) {  /* a[j]: samples 0..3 of rows j, j+1; a[j+1]: 4..7 */
            a[j] = _mm_unpacklo_epi16(r[j], r[j + 1]);
            a[j + 1] = _mm_unpackhi_epi16(r[j], r[j + 1]);
        }
        for (j = 0; j < 8; j += 4) {  /* b[j + q]: samples 2q, 2q+1 of rows j..j+3 */
            b[j] = _mm_unpacklo_epi32(a[j], a[j + 2]);
            b[j + 1] = _mm_unpackhi_epi32(a[j], a[j + 2]);
            b[j + 2] = _mm_unpacklo_epi32(a[j + 1], a[j + 3]);
            b[j + 3] = _mm_unpackhi_epi32(a[j + 1], a[j + 3]);
        }
        for (j = 0; j < 4; j++) {
            dt_soa_put(xt, i + 2 * j, _mm_unpacklo_epi64(b[j], b[j + 4]));
            dt_soa_put(xt, i + 2 * j + 1, _mm_unpackhi_epi64(b[j], b[j + 4]));
        }
    }
    for (; i < n; i++)
        for (j = 0; j < 8; j++)
            xt[i][j] = (float)x[j][i];
}

/* The same with AVX2 for 16 samples at a time (two 8x8 transposes side by side in the
 * two 128-bit halves); returns how many samples it did. */
__attribute__((target("avx2"))) static inline int
dt_soa_transpose16(const int16_t *const *x, int n, float (*xt)[8])
{
    int i = 0, j;
    for (; i + 16 <= n; i += 16) {
        __m256i r[8], a[8], b[8];
        for (j = 0; j < 8; j++)
            r[j] = _mm256_loadu_si256((const __m256i *)(const void *)(x[j] + i));
        for (j = 0; j < 8; j += 2) {
            a[j] = _mm256_unpacklo_epi16(r[j], r[j + 1]);
            a[j + 1] = _mm256_unpackhi_epi16(r[j], r[j + 1]);
        }
        for (j = 0; j < 8; j += 4) {
            b[j] = _mm256_unpacklo_epi32(a[j], a[j + 2]);
            b[j + 1] = _mm256_unpackhi_epi32(a[j], a[j + 2]);
            b[j + 2] = _mm256_unpacklo_epi32(a[j + 1], a[j + 3]);
            b[j + 3] = _mm256_unpackhi_epi32(a[j + 1], a[j + 3]);
        }
        for (j = 0; j < 4; j++) {
            __m256i t0 = _mm256_unpacklo_epi64(b[j], b[j + 4]);
            __m256i t1 = _mm256_unpackhi_epi64(b[j], b[j + 4]);
            int q = i + 2 * j;
            _mm256_store_ps(xt[q], _mm256_cvtepi32_ps(
                                       _mm256_cvtepi16_epi32(_mm256_castsi256_si128(t0))));
            _mm256_store_ps(xt[q + 1], _mm256_cvtepi32_ps(
                                           _mm256_cvtepi16_epi32(_mm256_castsi256_si128(t1))));
            _mm256_store_ps(xt[q + 8], _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(
                                           _mm256_extracti128_si256(t0, 1))));
            _mm256_store_ps(xt[q + 9], _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(
                                           _mm256_extracti128_si256(t1, 1))));
        }
    }
    return i;
}

/* The filter outputs of a completed block, [filter][channel] (see dt_block_end_y). */
typedef struct {
    float r[DT_SOA_NF][8] __attribute__((aligned(32)));
    float i[DT_SOA_NF][8] __attribute__((aligned(32)));
    float p[DT_SOA_NF][8] __attribute__((aligned(32)));
} dt_soa_y;

/* Goertzel over n samples (xt) of the 8 channels, F filters at a time (as many chains as
 * the registers hold; F divides DT_SOA_NF).  The state starts from the channels' (zero when fresh: at a block
 * start) and ends in the channels', or, when the block is complete (y not NULL; the
 * channels' sums include it), as the filter outputs in y: the channels' state is reset
 * by the analysis. */
CR_DT_INLINE void dt_soa_goertzel(dt_chan *const *ch, const float (*xt)[8], int n,
                                  const dt_config *c, const int F, int fresh, dt_soa_y *y)
{
    int k0, kk, i, j;
    cr_v8 mean = {0, 0, 0, 0, 0, 0, 0, 0};
    if (y) {
        float m[8];
        for (j = 0; j < 8; j++)
            m[j] = (float)((double)ch[j]->sum / c->B);
        memcpy(&mean, m, sizeof(m));
    }
    for (k0 = 0; k0 < DT_SOA_NF; k0 += F) {
        cr_v8 a[DT_SOA_NF], b[DT_SOA_NF], cf[DT_SOA_NF];
        for (kk = 0; kk < F; kk++) {
            int k = k0 + kk;
            float cv = V4_GET(c->coef[k / 4], k % 4), ta[8], tb[8];
            cf[kk] = (cr_v8){cv, cv, cv, cv, cv, cv, cv, cv};
            if (fresh) {
                a[kk] = (cr_v8){0, 0, 0, 0, 0, 0, 0, 0};
                b[kk] = a[kk];
                continue;
            }
            for (j = 0; j < 8; j++) {
                ta[j] = V4_GET(ch[j]->s1[k / 4], k % 4);
                tb[j] = V4_GET(ch[j]->s2[k / 4], k % 4);
            }
            memcpy(&a[kk], ta, sizeof(ta));
            memcpy(&b[kk], tb, sizeof(tb));
        }
        for (i = 0; i + 1 < n; i += 2) {
            cr_v8 x0 = *(const cr_v8 *)(const void *)xt[i];
            cr_v8 x1 = *(const cr_v8 *)(const void *)xt[i + 1];
            for (kk = 0; kk < F; kk++)
                b[kk] = cf[kk] * a[kk] + (x0 - b[kk]);
            for (kk = 0; kk < F; kk++)
                a[kk] = cf[kk] * b[kk] + (x1 - a[kk]);
        }
        if (i < n) {
            cr_v8 x0 = *(const cr_v8 *)(const void *)xt[i];
            for (kk = 0; kk < F; kk++) {
                cr_v8 t = x0 - b[kk];
                b[kk] = a[kk];
                a[kk] = cf[kk] * a[kk] + t;
            }
        }
        for (kk = 0; kk < F; kk++) {
            int k = k0 + kk;
            float ta[8], tb[8];
            if (y) {
                cr_v8 yr, yi, pw;
                DT_Y(c, k, a[kk], b[kk], mean, yr, yi, pw);
                memcpy(y->r[k], &yr, sizeof(yr));
                memcpy(y->i[k], &yi, sizeof(yi));
                memcpy(y->p[k], &pw, sizeof(pw));
                continue;
            }
            memcpy(ta, &a[kk], sizeof(ta));
            memcpy(tb, &b[kk], sizeof(tb));
            for (j = 0; j < 8; j++) {
                V4_SETLANE(ch[j]->s1[k / 4], k % 4, ta[j]);
                V4_SETLANE(ch[j]->s2[k / 4], k % 4, tb[j]);
            }
        }
    }
}

CR_DT_INLINE void dt_soa_segment(dt_chan *const *ch, const int16_t *const *x, int n,
                                 const dt_config *c, const int F, const int avx2, int fresh,
                                 dt_soa_y *y)
{
    float xt[DT_SOA_MAXSEG][8] __attribute__((aligned(32)));
    dt_soa_transpose(x, avx2 ? dt_soa_transpose16(x, n, xt) : 0, n, xt);
    dt_soa_goertzel(ch, (const float (*)[8])xt, n, c, F, fresh, y);
}

__attribute__((noinline, target("avx2"))) static void
dt_soa_segment_avx2(dt_chan *const *ch, const int16_t *const *x, int n, const dt_config *c,
                    int fresh, dt_soa_y *y)
{
    dt_soa_segment(ch, x, n, c, 5, 1, fresh, y);
}
__attribute__((noinline, target("avx"))) static void
dt_soa_segment_avx(dt_chan *const *ch, const int16_t *const *x, int n, const dt_config *c,
                   int fresh, dt_soa_y *y)
{
    dt_soa_segment(ch, x, n, c, 5, 0, fresh, y);
}
__attribute__((noinline)) static void
dt_soa_segment_sse2(dt_chan *const *ch, const int16_t *const *x, int n, const dt_config *c,
                    int fresh, dt_soa_y *y)
{
    dt_soa_segment(ch, x, n, c, 5, 0, fresh, y);
}

#endif

static void dt_process1(const dt_config *c, dt_chan *s, const int16_t *x, int64_t n,
                        cr_event *ev, int *nev)
{
    dt_chan *ch[1];
    const int16_t *xp[1];
    int32_t row[1] = {0};
    ch[0] = s;
    while (n > 0) {
        int m = n > (1 << 20) ? (1 << 20) : (int)n;
        xp[0] = x;
        dt_run_group(c, ch, xp, row, m, ev, nev, 1);
        x += m;
        n -= m;
    }
}

/* Finish the stream: the digit in progress ends at the last sample seen. */
static void dt_finish(const dt_config *c, dt_chan *s, int32_t row, cr_event *ev, int *nev)
{
    if (s->cur >= 0) {
        int r = s->cur >> 2, col = 4 + (s->cur & 3);
        if (s->absent == 0 &&
            dt_cov(c, s, (int)(s->last_present % DT_HIST), r, col) >= 0.9f) {
            /* still sounding at the last complete block: it lasts to the last sample */
            int64_t total = s->nblk * c->B + s->pos;
            dt_emit(ev, nev, CR_EV_DIGIT_END, row, s->dstart, total, s->dlevel, s->cur);
            s->cur = -1;
            s->absent = 0;
        } else {
            dt_end_digit(c, s, row, ev, nev);
        }
    }
}

/* ------------------------------------------------------------- silence -------- */

typedef struct {
    int32_t rate, H;        /* sub-frame (hop): 5 ms */
    double thr_e;           /* DC-free energy of 2H samples at the threshold */
    double ref_e;           /* the same at 0 dBm0 */
    int32_t min_run;        /* active windows needed to confirm audio */
} sd_config;

typedef struct {
    int64_t sum, sumsq;     /* sub-frame in progress */
    int64_t psum, psumsq;   /* previous sub-frame */
    int32_t pos;
    int32_t run;            /* consecutive active windows */
    int64_t nsub;           /* completed sub-frames */
    int64_t cand_start;     /* first sample of an unconfirmed active run, or -1 */
    int64_t silence_start;  /* first sample of the current silence run */
    int64_t audio_start;    /* first sample of the current audio run, or -1 */
    int32_t in_audio, audio_seen;
    double last_e;          /* DC-free energy of the last 10 ms window (0: none yet);
                               its level in dBm0 is sd_level(), computed when read */
} sd_chan;

/* one record per 5 ms window, for callers that want the frame-by-frame view */
typedef struct {
    int64_t start;          /* first sample of the 10 ms window */
    float level;            /* dBm0, DC removed */
    int32_t active;         /* level at or above the threshold */
} sd_frame;

static void sd_config_init(sd_config *c, int rate, double threshold_dbm0, double min_audio_ms)
{
    double n2;
    c->rate = rate;
    c->H = rate / 200;
    n2 = 2.0 * c->H;
    c->ref_e = CR_DBM0_RMS * CR_DBM0_RMS * n2;
    c->thr_e = c->ref_e * pow(10.0, threshold_dbm0 / 10.0);
    /* a burst of D samples is seen by at most D/H + 2 windows: min_run = that + 1 */
    c->min_run = (int32_t)floor(min_audio_ms * rate / 1000.0 / c->H + 1e-9) + 3;
    if (c->min_run < 1)
        c->min_run = 1;
}

static void sd_chan_reset(sd_chan *s)
{
    memset(s, 0, sizeof(*s));
    s->cand_start = -1;
    s->audio_start = -1;
}

/* dBm0 of the last 10 ms window (-200 before the first or for a zero signal) */
static inline float sd_level(const sd_chan *s, const sd_config *c)
{
    double e = s->last_e;
    return e > 0 ? (float)(10.0 * log10(e / c->ref_e)) : -200.0f;
}

/* DC-free energy of the last two sub-frames (the one just completed and the one before) */
static inline double sd_energy(const sd_config *c, const sd_chan *s)
{
    double S = (double)(s->sum + s->psum), Q = (double)(s->sumsq + s->psumsq);
    return Q - S * S / (2.0 * c->H);
}

/* The sub-frame in progress is complete; e = sd_energy() (used from the second one on) */
static inline void sd_subframe_end_e(const sd_config *c, sd_chan *s, double e, int32_t row,
                                     cr_event *ev, int *nev, sd_frame *fr, int *nfr)
{
    int64_t i = s->nsub;     /* index of the sub-frame that just completed */
    s->nsub++;
    if (i >= 1) {
        int active = e >= c->thr_e;
        int64_t centre = i * c->H;                      /* window [(i-1)H, (i+1)H) */
        s->last_e = e;
        if (fr) {
            fr[*nfr].start = (i - 1) * c->H;
            fr[*nfr].level = sd_level(s, c);
            fr[*nfr].active = active;
            (*nfr)++;
        }
        if (active) {
            if (s->run++ == 0)
                s->cand_start = centre - c->H / 2;
            if (!s->in_audio && s->run >= c->min_run) {
                s->in_audio = 1;
                s->audio_seen = 1;
                s->audio_start = s->cand_start;
                if (ev)
                    dt_emit(ev, nev, CR_EV_AUDIO_START, row, s->audio_start, -1, sd_level(s, c), -1);
            }
        } else {
            if (s->in_audio) {
                s->in_audio = 0;
                s->silence_start = centre - c->H / 2;
                s->audio_start = -1;
                if (ev)
                    dt_emit(ev, nev, CR_EV_SILENCE_START, row, s->silence_start, -1, sd_level(s, c),
                            -1);
            }
            s->run = 0;
            s->cand_start = -1;
        }
    }
    s->psum = s->sum;
    s->psumsq = s->sumsq;
    s->sum = 0;
    s->sumsq = 0;
    s->pos = 0;
}

static inline void sd_subframe_end(const sd_config *c, sd_chan *s, int32_t row, cr_event *ev,
                                   int *nev, sd_frame *fr, int *nfr)
{
    sd_subframe_end_e(c, s, sd_energy(c, s), row, ev, nev, fr, nfr);
}

static void sd_process(const sd_config *c, sd_chan *s, const int16_t *x, int64_t n, int32_t row,
                       cr_event *ev, int *nev, sd_frame *fr, int *nfr)
{
    int64_t done = 0;
    while (done < n) {
        int64_t seg = c->H - s->pos;
        if (seg > n - done)
            seg = n - done;
        cr_sums(x + done, (int)seg, &s->sum, &s->sumsq);
        s->pos += (int32_t)seg;
        done += seg;
        if (s->pos == c->H)
            sd_subframe_end(c, s, row, ev, nev, fr, nfr);
    }
}

/* silence run (samples) as of `now` samples: frozen at an unconfirmed onset */
static inline int64_t sd_silence_samples(const sd_chan *s, const sd_config *c)
{
    int64_t now = s->nsub * c->H + s->pos, upto, d;
    if (s->in_audio)
        return 0;
    upto = s->cand_start >= 0 ? s->cand_start : now;
    d = upto - s->silence_start;
    return d > 0 ? d : 0;
}

static inline int64_t sd_max_frames(const sd_config *c, int64_t n)
{
    return n / c->H + 2;
}

/* ------------------------------------------------ many channels, both detectors ---- */

#ifdef CR_DT_SOA
/* Eight channels at the same block position over n samples each.  DTMF events come out
 * in the order dt_run_group gives for the pairs (0,1), (2,3), ...: each pair writes into
 * its own part of ev (room for dt_max_events per channel, as the caller provides), and
 * the parts are closed up at the end.  With sch (silence detectors whose sub-frames
 * are the half blocks of these channels' blocks: fused), the sums of each piece of a
 * sub-frame feed both detectors, and each channel's silence events go to its own part
 * of sev (room for sd_max_frames each), closed up at the end likewise. */
static void dt_run_soa(const dt_config *c, dt_chan *const *ch, const int16_t *const *x,
                       const int32_t *rows, int n, cr_event *ev, int *nev,
                       const sd_config *sc, sd_chan *const *sch, cr_event *sev, int *nsev)
{
    int64_t per = 2 * dt_max_events(c, n), sper = sch ? sd_max_frames(sc, n) : 0;
    cr_event *part = ev + *nev;     /* pair p writes from part + p * per */
    cr_event *spart = sch ? sev + *nsev : NULL;     /* channel j from spart + j * sper */
    int pn[DT_SOA_W / 2] = {0}, sn[DT_SOA_W] = {0};
    int done = 0, j, p;
    const int isa = cr_isa();
    dt_soa_y y;
    while (done < n) {
        int seg = c->B - ch[0]->pos, fresh = ch[0]->pos == 0, full;
        const int16_t *xp[DT_SOA_W];
        if (seg > n - done)
            seg = n - done;
        full = ch[0]->pos + seg == c->B;
        for (j = 0; j < DT_SOA_W; j++)
            xp[j] = x[j] + done;
        if (sch) {
            /* pieces of sub-frames, at the same place in every channel */
            int off = 0;
            while (off < seg) {
                int len = sc->H - sch[0]->pos;
                if (len > seg - off)
                    len = seg - off;
                for (j = 0; j < DT_SOA_W; j++) {
                    int64_t su = 0, sq = 0;
                    cr_sums(xp[j] + off, len, &su, &sq);
                    ch[j]->sum += su;
                    ch[j]->sumsq += sq;
                    sch[j]->sum += su;
                    sch[j]->sumsq += sq;
                    sch[j]->pos += len;
                }
                if (sch[0]->pos == sc->H) {
                    double e[DT_SOA_W];    /* the eight divisions overlap */
                    for (j = 0; j < DT_SOA_W; j++)
                        e[j] = sd_energy(sc, sch[j]);
                    for (j = 0; j < DT_SOA_W; j++)
                        sd_subframe_end_e(sc, sch[j], e[j], rows[j], spart + j * sper, &sn[j],
                                          NULL, NULL);
                }
                off += len;
            }
        } else {
            for (j = 0; j < DT_SOA_W; j++)
                cr_sums(xp[j], seg, &ch[j]->sum, &ch[j]->sumsq);
        }
        if (isa >= CR_ISA_AVX2)
            dt_soa_segment_avx2(ch, xp, seg, c, fresh, full ? &y : NULL);
        else if (isa >= CR_ISA_AVX)
            dt_soa_segment_avx(ch, xp, seg, c, fresh, full ? &y : NULL);
        else
            dt_soa_segment_sse2(ch, xp, seg, c, fresh, full ? &y : NULL);
        for (j = 0; j < DT_SOA_W; j++)
            ch[j]->pos += seg;
        done += seg;
        if (full) {
            double energy[DT_SOA_W];    /* the eight divisions overlap */
            for (j = 0; j < DT_SOA_W; j++)
                energy[j] = dt_energy(c, ch[j]);
            for (j = 0; j < DT_SOA_W; j++)
                dt_block_end_y(c, ch[j], &y.r[0][j], &y.i[0][j], &y.p[0][j], 8, energy[j],
                               rows[j], part + (j / 2) * per, &pn[j / 2]);
        }
    }
    for (p = 0; p < DT_SOA_W / 2; p++) {
        if (pn[p] && p)
            memmove(ev + *nev, part + p * per, (size_t)pn[p] * sizeof(cr_event));
        *nev += pn[p];
    }
    for (j = 0; sch && j < DT_SOA_W; j++) {
        if (sn[j] && j)
            memmove(sev + *nsev, spart + j * sper, (size_t)sn[j] * sizeof(cr_event));
        *nsev += sn[j];
    }
}
#endif

/* Both detectors (dc/dst, sc/sst; either may be NULL) over k rows of n samples (block,
 * row stride n); row i continues slot rows[i].  ev needs room for k * (dt_max_events +
 * sd_max_frames) events; they come out as the detectors run one after the other would
 * give them: the DTMF events of every row, then the silence events, each in row order
 * (within a pair of rows in time order, as dt_run_group gives them).  Groups of eight
 * rows at the same block position run the 8-channel bank (SIMD level SSE2 and up), with
 * the silence detectors' sums fused in when their sub-frames are the half blocks; the
 * others pairs of the per-channel bank: the results are the same whichever runs. */
static void cr_run_multi(const dt_config *dc, dt_chan *dst, const sd_config *sc, sd_chan *sst,
                         const int16_t *block, int n, const int64_t *rows, int64_t k,
                         cr_event *ev, int *nev)
{
    int64_t i = 0;
    dt_chan *ch[8];
    sd_chan *sch[8];
    const int16_t *xp[8];
    int32_t rr[8];
    int j, g, nsev = 0;
    /* silence events wait behind the room of the DTMF ones */
    cr_event *sev = dst ? ev + k * dt_max_events(dc, n) : ev + *nev;
    const int fuse = dst && sst && 2 * sc->H == dc->B;
    if (n <= 0)
        return;
    while (i < k) {
        int soa = 0;
        g = k - i >= 8 ? 8 : (int)(k - i);
        for (j = 0; j < g; j++) {
            if (dst)
                ch[j] = &dst[rows[i + j]];
            if (sst)
                sch[j] = &sst[rows[i + j]];
            xp[j] = block + (i + j) * (int64_t)n;
            rr[j] = (int32_t)(i + j);
        }
#ifdef CR_DT_SOA
        if (dst && g == 8 && cr_isa() >= CR_ISA_SSE2) {
            int same = 1, fused = fuse;
            for (j = 1; j < 8; j++)
                same &= ch[j]->pos == ch[0]->pos;
            for (j = 0; j < 8 && fused; j++)
                fused = sch[j]->pos == ch[j]->pos % sc->H;
            if (same) {
                dt_run_soa(dc, ch, xp, rr, n, ev, nev, sc, fused ? sch : NULL, sev, &nsev);
                soa = 1 + fused;
            }
        }
#endif
        if (dst && !soa) {
            for (j = 0; j + 1 < g; j += 2)
                dt_run_group(dc, ch + j, xp + j, rr + j, n, ev, nev, 2);
            if (j < g)
                dt_run_group(dc, ch + j, xp + j, rr + j, n, ev, nev, 1);
        }
        if (sst && soa != 2)
            for (j = 0; j < g; j++)
                sd_process(sc, sch[j], xp[j], n, rr[j], sev, &nsev, NULL, NULL);
        i += g;
    }
    if (dst && nsev)
        memmove(ev + *nev, sev, (size_t)nsev * sizeof(cr_event));
    *nev += nsev;
}

#endif
