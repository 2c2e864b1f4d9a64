/* Inner loops of the polyphase resampler (resample_k.pxd holds the rest).
 *
 * Every output sample is one dot product of T filter taps (T a multiple of 8) with T
 * consecutive history samples, in float32.  The order of the arithmetic is fixed, so an
 * output depends only on the input samples and its own index -- never on how the input
 * was chunked, on which code path ran, or on which CPU:
 *
 *   lane j (0..7) accumulates taps j, j+8, j+16, ... : acc_j = (..((0 + c_j x_j) + c_j+8 x_j+8) ..)
 *   result = ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7))
 *
 * with a separate rounding after each multiply and each add (no fused multiply-add: the
 * AVX2 variant is compiled without FMA and setup.py passes -ffp-contract=off, so the
 * compiler cannot fuse them either).  The SSE2 (x86-64 baseline), AVX2 (chosen at run
 * time) and portable C variants below therefore give bit-identical results.
 *
 * Speed comes from computing four outputs at once (four independent accumulator chains
 * hide most of the add latency; eight where one stream's windows overlap, see run8) and,
 * on x86, from 8-lane vectors.  Cython cannot express vector
 * intrinsics or per-function target attributes, which is why this part is C.
 */
#ifndef CALLRECORDER_RESAMPLE_SIMD_H
#define CALLRECORDER_RESAMPLE_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>

#include "cpu_isa.h"

#if defined(__x86_64__) || defined(_M_X64)
#define CR_RS_X86 1
#include <immintrin.h>
#else
#define CR_RS_X86 0
#endif

#if CR_RS_X86 && (defined(__GNUC__) || defined(__clang__))
#define CR_RS_HAVE_AVX2_VARIANT 1
#else
#define CR_RS_HAVE_AVX2_VARIANT 0
#endif

typedef void (*cr_rs_run_fn)(const float *coef, int T, const int32_t *next_phase,
                             const int32_t *advance, int phase, const float *x,
                             ptrdiff_t nout, float *y);
typedef void (*cr_rs_run4_fn)(const float *coef, int T, const int32_t *next_phase,
                              const int32_t *advance, int phase, const float *const *x,
                              ptrdiff_t nout, float *const *y);
typedef void (*cr_rs_run8_fn)(const float *coef, int T, const int32_t *next_phase,
                              const int32_t *advance, int phase, const float *x, int p,
                              float *y);

/* Two loops per instruction set, stamped out from one template:
 *
 *   run:  nout consecutive outputs of one stream, four at a time (each with its own
 *         filter phase and window);
 *   run4: four streams in lockstep (the same phase sequence, windows x[0..3] moving
 *         alike), so every tap vector is loaded once for four outputs.  Used for
 *         channels of a bank at the same phase, and for one stream when p is small
 *         (outputs k, k+p, k+2p, k+3p share a phase and sit q input samples apart).
 *
 * V is an 8-lane accumulator; VZERO() gives 0, VSTEP(a, c, x) does
 * a_l = a_l + c[l] * x[l] for l < 8, VHSUM(a) the fixed-order sum described above. */
#define CR_RS_KERNELS(SFX, ATTR, V, VZERO, VSTEP, VHSUM)                                 \
ATTR static void cr_rs_run_##SFX(const float *coef, int T, const int32_t *next_phase,      \
                                 const int32_t *advance, int phase, const float *x,        \
                                 ptrdiff_t nout, float *y)                                 \
{                                                                                         \
    ptrdiff_t k = 0;                                                                      \
    int j;                                                                                \
    for (; k + 4 <= nout; k += 4) {                                                       \
        const float *c0 = coef + (size_t)phase * T, *x0 = x;                              \
        x += advance[phase]; phase = next_phase[phase];                                   \
        const float *c1 = coef + (size_t)phase * T, *x1 = x;                              \
        x += advance[phase]; phase = next_phase[phase];                                   \
        const float *c2 = coef + (size_t)phase * T, *x2 = x;                              \
        x += advance[phase]; phase = next_phase[phase];                                   \
        const float *c3 = coef + (size_t)phase * T, *x3 = x;                              \
        x += advance[phase]; phase = next_phase[phase];                                   \
        V a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();                         \
        for (j = 0; j < T; j += 8) {                                                      \
            VSTEP(a0, c0 + j, x0 + j);                                                    \
            VSTEP(a1, c1 + j, x1 + j);                                                    \
            VSTEP(a2, c2 + j, x2 + j);                                                    \
            VSTEP(a3, c3 + j, x3 + j);                                                    \
        }                                                                                 \
        y[k] = VHSUM(a0);                                                                 \
        y[k + 1] = VHSUM(a1);                                                             \
        y[k + 2] = VHSUM(a2);                                                             \
        y[k + 3] = VHSUM(a3);                                                             \
    }                                                                                     \
    for (; k < nout; k++) {                                                               \
        const float *c0 = coef + (size_t)phase * T;                                       \
        V a0 = VZERO();                                                                   \
        for (j = 0; j < T; j += 8)                                                        \
            VSTEP(a0, c0 + j, x + j);                                                     \
        y[k] = VHSUM(a0);                                                                 \
        x += advance[phase];                                                              \
        phase = next_phase[phase];                                                        \
    }                                                                                     \
}                                                                                         \
                                                                                          \
ATTR static void cr_rs_run4_##SFX(const float *coef, int T, const int32_t *next_phase,     \
                                  const int32_t *advance, int phase,                       \
                                  const float *const *x, ptrdiff_t nout, float *const *y)  \
{                                                                                         \
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];                           \
    float *y0 = y[0], *y1 = y[1], *y2 = y[2], *y3 = y[3];                                 \
    ptrdiff_t k;                                                                          \
    int j, a;                                                                             \
    for (k = 0; k < nout; k++) {                                                          \
        const float *c = coef + (size_t)phase * T;                                        \
        V a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();                         \
        for (j = 0; j < T; j += 8) {                                                      \
            VSTEP(a0, c + j, x0 + j);                                                     \
            VSTEP(a1, c + j, x1 + j);                                                     \
            VSTEP(a2, c + j, x2 + j);                                                     \
            VSTEP(a3, c + j, x3 + j);                                                     \
        }                                                                                 \
        y0[k] = VHSUM(a0);                                                                \
        y1[k] = VHSUM(a1);                                                                \
        y2[k] = VHSUM(a2);                                                                \
        y3[k] = VHSUM(a3);                                                                \
        a = advance[phase];                                                               \
        x0 += a; x1 += a; x2 += a; x3 += a;                                               \
        phase = next_phase[phase];                                                        \
    }                                                                                     \
}

/* ---- portable C (any CPU) -------------------------------------------------------- */

typedef struct { float l[8]; } cr_v8c;

static inline cr_v8c cr_v8c_zero(void)
{
    cr_v8c a = {{0, 0, 0, 0, 0, 0, 0, 0}};
    return a;
}

#define CR_V8C_STEP(A, C, X)                                                              \
    do {                                                                                  \
        int l_;                                                                           \
        for (l_ = 0; l_ < 8; l_++)                                                        \
            (A).l[l_] = (A).l[l_] + (C)[l_] * (X)[l_];                                    \
    } while (0)

static inline float cr_v8c_hsum(cr_v8c a)
{
    float s0 = a.l[0] + a.l[4], s1 = a.l[1] + a.l[5], s2 = a.l[2] + a.l[6], s3 = a.l[3] + a.l[7];
    return (s0 + s2) + (s1 + s3);
}

CR_RS_KERNELS(c, , cr_v8c, cr_v8c_zero, CR_V8C_STEP, cr_v8c_hsum)

#if CR_RS_X86
/* ---- SSE2: the x86-64 baseline ----------------------------------------------------- */

typedef struct { __m128 lo, hi; } cr_v8sse;

static inline cr_v8sse cr_v8sse_zero(void)
{
    cr_v8sse a;
    a.lo = _mm_setzero_ps();
    a.hi = a.lo;
    return a;
}

#define CR_V8SSE_STEP(A, C, X)                                                            \
    do {                                                                                  \
        (A).lo = _mm_add_ps((A).lo, _mm_mul_ps(_mm_loadu_ps(C), _mm_loadu_ps(X)));        \
        (A).hi = _mm_add_ps((A).hi, _mm_mul_ps(_mm_loadu_ps((C) + 4), _mm_loadu_ps((X) + 4))); \
    } while (0)

static inline float cr_rs_hsum_sse(__m128 lo, __m128 hi)
{
    __m128 s = _mm_add_ps(lo, hi);                       /* a0+a4 a1+a5 a2+a6 a3+a7 */
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));       /* (s0+s2) (s1+s3) . .     */
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

static inline float cr_v8sse_hsum(cr_v8sse a)
{
    return cr_rs_hsum_sse(a.lo, a.hi);
}

CR_RS_KERNELS(sse2, , cr_v8sse, cr_v8sse_zero, CR_V8SSE_STEP, cr_v8sse_hsum)
#endif /* CR_RS_X86 */

#if CR_RS_HAVE_AVX2_VARIANT
/* ---- AVX2 (no FMA), picked at run time --------------------------------------------- */

#define CR_AVX2 __attribute__((target("avx2")))

CR_AVX2 static inline __m256 cr_v8avx_zero(void)
{
    return _mm256_setzero_ps();
}

#define CR_V8AVX_STEP(A, C, X) \
    (A) = _mm256_add_ps((A), _mm256_mul_ps(_mm256_loadu_ps(C), _mm256_loadu_ps(X)))

CR_AVX2 static inline float cr_v8avx_hsum(__m256 a)
{
    __m128 lo = _mm256_castps256_ps128(a), hi = _mm256_extractf128_ps(a, 1);
    __m128 s = _mm_add_ps(lo, hi);
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

CR_RS_KERNELS(avx2, CR_AVX2, __m256, cr_v8avx_zero, CR_V8AVX_STEP, cr_v8avx_hsum)

/* The sums of eight accumulators at once, [sum(a0) .. sum(a7)], each in exactly the
 * order of cr_v8avx_hsum: s_i = a_i + a_i+4 (i < 4), then (s0 + s2) + (s1 + s3).  The
 * same additions of the same operands, only eight outputs share each instruction. */
CR_AVX2 static inline __m256 cr_v8avx_hsum8(__m256 a0, __m256 a1, __m256 a2, __m256 a3,
                                            __m256 a4, __m256 a5, __m256 a6, __m256 a7)
{
    /* [s(a0) | s(a4)] and so on: s(a) = a.lo + a.hi = [a0+a4, a1+a5, a2+a6, a3+a7] */
    __m256 s04 = _mm256_add_ps(_mm256_permute2f128_ps(a0, a4, 0x20),
                               _mm256_permute2f128_ps(a0, a4, 0x31));
    __m256 s15 = _mm256_add_ps(_mm256_permute2f128_ps(a1, a5, 0x20),
                               _mm256_permute2f128_ps(a1, a5, 0x31));
    __m256 s26 = _mm256_add_ps(_mm256_permute2f128_ps(a2, a6, 0x20),
                               _mm256_permute2f128_ps(a2, a6, 0x31));
    __m256 s37 = _mm256_add_ps(_mm256_permute2f128_ps(a3, a7, 0x20),
                               _mm256_permute2f128_ps(a3, a7, 0x31));
    /* [s0+s2, s1+s3] of outputs 0, 1 | 4, 5 (wa) and 2, 3 | 6, 7 (wb) */
    __m256 wa = _mm256_add_ps(_mm256_shuffle_ps(s04, s15, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm256_shuffle_ps(s04, s15, _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 wb = _mm256_add_ps(_mm256_shuffle_ps(s26, s37, _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm256_shuffle_ps(s26, s37, _MM_SHUFFLE(3, 2, 3, 2)));
    /* (s0+s2) + (s1+s3) of outputs 0..7, in order */
    return _mm256_add_ps(_mm256_shuffle_ps(wa, wb, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm256_shuffle_ps(wa, wb, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* One period of 8p outputs of one stream whose q is the constant Q: outputs k + l*p
 * (k < p, l < 8) share phase (phase of k) and their windows sit l*Q input samples
 * apart, so eight accumulator chains run per tap vector (twice what run4 has in flight:
 * 4 chains wait on the 3-cycle add latency, about 3 cycles per step even with one load).
 * With Q a multiple of 4 the windows overlap on a grid of 4 floats and the compiler loads
 * an x vector once for several lanes and steps (predictive commoning at -O3) instead of
 * once per lane and step: 9 loads a step would be the limit (measured: 8 chains with 9
 * loads a step are no faster than run4).  About 15 % (6000 Hz) and 10 % (11000 Hz) less
 * per output than run4.  Each output is the same sum, in the same order, as in
 * cr_rs_run_avx2. */
#define CR_RS_RUN8Q(Q)                                                                    \
CR_AVX2 static void cr_rs_run8q##Q##_avx2(const float *coef, int T,                       \
                                          const int32_t *next_phase,                      \
                                          const int32_t *advance, int phase,              \
                                          const float *x, int p, float *y)                \
{                                                                                         \
    int k, j;                                                                             \
    float t[8];                                                                           \
    for (k = 0; k < p; k++) {                                                             \
        const float *c = coef + (size_t)phase * T;                                        \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                       \
        __m256 a4 = a0, a5 = a0, a6 = a0, a7 = a0;                                        \
        for (j = 0; j < T; j += 8) {                                                      \
            __m256 cv = _mm256_loadu_ps(c + j);                                           \
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(cv, _mm256_loadu_ps(x + j)));            \
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(cv, _mm256_loadu_ps(x + Q + j)));        \
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(cv, _mm256_loadu_ps(x + 2 * Q + j)));    \
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(cv, _mm256_loadu_ps(x + 3 * Q + j)));    \
            a4 = _mm256_add_ps(a4, _mm256_mul_ps(cv, _mm256_loadu_ps(x + 4 * Q + j)));    \
            a5 = _mm256_add_ps(a5, _mm256_mul_ps(cv, _mm256_loadu_ps(x + 5 * Q + j)));    \
            a6 = _mm256_add_ps(a6, _mm256_mul_ps(cv, _mm256_loadu_ps(x + 6 * Q + j)));    \
            a7 = _mm256_add_ps(a7, _mm256_mul_ps(cv, _mm256_loadu_ps(x + 7 * Q + j)));    \
        }                                                                                 \
        _mm256_storeu_ps(t, cr_v8avx_hsum8(a0, a1, a2, a3, a4, a5, a6, a7));              \
        y[k] = t[0];                                                                      \
        y[k + p] = t[1];                                                                  \
        y[k + 2 * (ptrdiff_t)p] = t[2];                                                   \
        y[k + 3 * (ptrdiff_t)p] = t[3];                                                   \
        y[k + 4 * (ptrdiff_t)p] = t[4];                                                   \
        y[k + 5 * (ptrdiff_t)p] = t[5];                                                   \
        y[k + 6 * (ptrdiff_t)p] = t[6];                                                   \
        y[k + 7 * (ptrdiff_t)p] = t[7];                                                   \
        x += advance[phase];                                                              \
        phase = next_phase[phase];                                                        \
    }                                                                                     \
}

CR_RS_RUN8Q(4)  /* 8000 -> 6000 Hz (p = 3) */
CR_RS_RUN8Q(8)  /* 8000 -> 11000 Hz (p = 11) */
#endif

/* run4 pays off for one stream when periods of 4p outputs come often */
#ifndef CR_RS_RUN4_MAX_P
#define CR_RS_RUN4_MAX_P 1000
#endif

/* ---- dispatch ------------------------------------------------------------------------ */

/* The loops for the SIMD level in use (cpu_isa.h): 0 = portable C, 1 = SSE2, 2 = AVX2.
 * cr_rs_select() picks them again after that level changes (and once at import). */
static cr_rs_run_fn cr_rs_run_ptr = cr_rs_run_c;
static cr_rs_run4_fn cr_rs_run4_ptr = cr_rs_run4_c;
/* one period of 8p outputs when q is 4 or 8 (AVX2 only; NULL: periods of 4p instead) */
static cr_rs_run8_fn cr_rs_run8q4_ptr = NULL, cr_rs_run8q8_ptr = NULL;

static int cr_rs_select(void)
{
    int level = cr_isa(), isa = 0;
#if CR_RS_X86
    if (level >= CR_ISA_SSE2)
        isa = 1;
#endif
#if CR_RS_HAVE_AVX2_VARIANT
    if (level >= CR_ISA_AVX2)
        isa = 2;
#endif
    cr_rs_run_ptr = cr_rs_run_c;
    cr_rs_run4_ptr = cr_rs_run4_c;
    cr_rs_run8q4_ptr = NULL;
    cr_rs_run8q8_ptr = NULL;
#if CR_RS_X86
    if (isa == 1) {
        cr_rs_run_ptr = cr_rs_run_sse2;
        cr_rs_run4_ptr = cr_rs_run4_sse2;
    }
#endif
#if CR_RS_HAVE_AVX2_VARIANT
    if (isa == 2) {
        cr_rs_run_ptr = cr_rs_run_avx2;
        cr_rs_run4_ptr = cr_rs_run4_avx2;
        cr_rs_run8q4_ptr = cr_rs_run8q4_avx2;
        cr_rs_run8q8_ptr = cr_rs_run8q8_avx2;
    }
#endif
    return isa;
}

/* nout consecutive outputs of one stream, starting at `phase` with window x.  When p is
 * small, whole periods of 4p outputs go through run4: outputs i, i+p, i+2p, i+3p of a
 * period share a phase, and their windows sit q input samples apart; with q = 4 or 8
 * (8000 -> 6000 and 11000 Hz) whole periods of 8p outputs go through run8 first. */
static inline void cr_rs_run(const float *coef, int T, const int32_t *next_phase,
                             const int32_t *advance, int p, int q, int phase,
                             const float *x, ptrdiff_t nout, float *y)
{
    cr_rs_run8_fn run8 = q == 4 ? cr_rs_run8q4_ptr : q == 8 ? cr_rs_run8q8_ptr : NULL;
    if (p <= CR_RS_RUN4_MAX_P) {
        if (run8 != NULL) {
            while (nout >= 8 * (ptrdiff_t)p) {
                run8(coef, T, next_phase, advance, phase, x, p, y);
                x += 8 * (ptrdiff_t)q;
                y += 8 * (ptrdiff_t)p;
                nout -= 8 * (ptrdiff_t)p;
            }
        }
        while (nout >= 4 * (ptrdiff_t)p) {
            const float *xs[4] = {x, x + q, x + 2 * (ptrdiff_t)q, x + 3 * (ptrdiff_t)q};
            float *ys[4] = {y, y + p, y + 2 * (ptrdiff_t)p, y + 3 * (ptrdiff_t)p};
            cr_rs_run4_ptr(coef, T, next_phase, advance, phase, xs, p, ys);
            x += 4 * (ptrdiff_t)q;
            y += 4 * (ptrdiff_t)p;
            nout -= 4 * (ptrdiff_t)p;
        }
    }
    cr_rs_run_ptr(coef, T, next_phase, advance, phase, x, nout, y);
}

/* 1 when one stream with this q runs whole periods of 8p outputs through run8 (then a
 * stream alone beats four streams of one phase in run4: its windows share loads) */
static inline int cr_rs_run8_ok(int q)
{
    return (q == 4 && cr_rs_run8q4_ptr != NULL) || (q == 8 && cr_rs_run8q8_ptr != NULL);
}

static inline void cr_rs_run4(const float *coef, int T, const int32_t *next_phase,
                              const int32_t *advance, int phase, const float *const *x,
                              ptrdiff_t nout, float *const *y)
{
    cr_rs_run4_ptr(coef, T, next_phase, advance, phase, x, nout, y);
}

/* ---- float -> int16: round to nearest (ties to even), saturate, count clips -------- */

static inline ptrdiff_t cr_rs_to_int16(const float *y, int16_t *out, ptrdiff_t n)
{
    ptrdiff_t i = 0, clipped = 0;
#if CR_RS_X86
    const __m128 hi = _mm_set1_ps(32767.5f), lo = _mm_set1_ps(-32768.5f);
    for (; i + 8 <= n; i += 8) {
        __m128 a = _mm_loadu_ps(y + i), b = _mm_loadu_ps(y + i + 4);
        /* values at or above 32767.5 round to 32768 or more; below -32768.5 to -32769 or
         * less (-32768.5 itself rounds to even, -32768) */
        int m = _mm_movemask_ps(_mm_or_ps(_mm_cmpge_ps(a, hi), _mm_cmplt_ps(a, lo))) |
                (_mm_movemask_ps(_mm_or_ps(_mm_cmpge_ps(b, hi), _mm_cmplt_ps(b, lo))) << 4);
        /* |y| is far below 2^31 for int16 input, so the conversion never overflows and
         * the saturating pack does the clipping */
        __m128i v = _mm_packs_epi32(_mm_cvtps_epi32(a), _mm_cvtps_epi32(b));
        _mm_storeu_si128((__m128i *)(out + i), v);
        if (m) {                         /* rare: count the bits of the 8-bit mask */
            m = m - ((m >> 1) & 0x55);
            m = (m & 0x33) + ((m >> 2) & 0x33);
            clipped += (m + (m >> 4)) & 0x0F;
        }
    }
#endif
    for (; i < n; i++) {
        float v = y[i];
        long r;
        if (v >= 32767.5f) {
            out[i] = 32767;
            clipped++;
        } else if (v < -32768.5f) {
            out[i] = -32768;
            clipped++;
        } else {
            r = lrintf(v);
            out[i] = (int16_t)r;
        }
    }
    return clipped;
}

#endif
