/* The lookahead ("search") ADPCM encoder: OKI, and IMA in WAV files (adpcm_k.pxd holds the
 * rest of the ADPCM kernels and explains why the encoder searches).
 *
 * The code of a sample is chosen among the 8 magnitudes (sign: that of the error) by
 *
 *   J(d) = 8 * (own(d) + tail(child_d)) + d          (smallest wins; ties: smaller d)
 *
 * own(d): the squared errors (t - p_mul)^2 + (t - p_shift)^2 of both decoder predictors
 * after magnitude d; tail(state): the cheaper of two short paths over the next two
 * targets, "nearest magnitude at t2, then nearest at t3" (G) and "nearest + 1 at t2, then
 * nearest at t3" (A).  "Nearest" is nearest to the mean of both predictors.
 *
 * This file computes exactly that choice (tests/adpcm_ref.py spells it out as a full scan),
 * but in an order that is cheap on a CPU:
 *
 * - The greedy trajectory Q0 (the coder's state) -> Q1 -> Q2 -> Q3 (nearest magnitude at
 *   each of the next three targets) is carried from sample to sample: when the nearest
 *   magnitude is chosen (about 94 % of the samples) Q1..Q3 become the next Q0..Q2 and only
 *   Q3 is new.  Its costs e1 + e2 + e3 are the G path of the nearest magnitude d0.
 * - All 8 own costs at once (SSE2, 8 x int16 lanes): if no other magnitude's own cost is
 *   below d0's G path, costs only add up, so d0 wins (about 3 samples in 4): one greedy
 *   step and one vector compare per sample.
 * - Otherwise d0's A path is scored, then the challengers' tails (both paths of one tail
 *   in one vector), in order, each skipped once its own cost reaches the best total so
 *   far.  When another magnitude wins, its tail's G path is the new greedy trajectory.
 *   Where the CPU has AVX2 (OKI), all 8 magnitudes' G and A paths are scored at once
 *   instead, without branches: 16 paths in 16-bit lanes, the steps after the second code
 *   fetched by byte shuffles from per-index rows, the third code's decision levels
 *   computed from those steps (cr_oki_scores_avx2; same totals, so the same codes).
 *
 * Many streams at once (cr_search_rows: rows of a 2-D array, e.g. one 20 ms frame of each
 * call): where the CPU has AVX2, 16 rows run side by side, one per 16-bit lane, with the
 * same trajectory and the same choice, only the candidates scored differently (see "many
 * channels at once" below); rows left over (fewer than 8) go one at a time.
 *
 * (Measured alternatives, and why this stays well below a greedy coder's speed:
 * bench/RESULTS.md, ADPCM.)
 *
 * The SSE2 primitives are for the OKI tables (12-bit values, so 16-bit lanes and 32-bit
 * costs are exact); IMA in WAV (16-bit predictors) and OKI on other CPUs run the same steps
 * with the portable scalar primitives (64-bit costs), IMA on AVX2 with its 8 own costs in
 * one vector (cr_own_avx2, 64-bit products) and all 8 magnitudes' tails scored at once in
 * 32-bit lanes with double costs (cr_ima_scores_avx2).  All give the same codes
 * (tests/test_adpcm.py, test_adpcm_wav.py and test_recorder_coding.py check it through
 * recorder.set_simd_level; levels: cpu_isa.h).
 */
#ifndef CALLRECORDER_ADPCM_SEARCH_H
#define CALLRECORDER_ADPCM_SEARCH_H

#include <stddef.h>
#include <stdint.h>
#include "adpcm_tables.h"
#include "cpu_isa.h"

#if defined(__x86_64__) || defined(_M_X64)
#define CR_AS_SSE2 1
#include <emmintrin.h>
#else
#define CR_AS_SSE2 0
#endif

/* The AVX2 challenger scorer (chosen at run time) needs GCC / clang target attributes. */
#if CR_AS_SSE2 && (defined(__GNUC__) || defined(__clang__))
#define CR_AS_AVX2 1
#include <immintrin.h>
#else
#define CR_AS_AVX2 0
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#define CR_AS_INLINE static __forceinline
static __forceinline int cr_as_bsr(uint32_t v) { unsigned long i; _BitScanReverse(&i, v); return (int)i; }
static __forceinline int cr_as_bsf(uint32_t v) { unsigned long i; _BitScanForward(&i, v); return (int)i; }
#else
#define CR_AS_INLINE static inline __attribute__((always_inline))
static inline int cr_as_bsr(uint32_t v) { return 31 - __builtin_clz(v); }
static inline int cr_as_bsf(uint32_t v) { return __builtin_ctz(v); }
#endif

/* A coder's state as the callers keep it. */
typedef struct {
    int32_t pm;        /* predictor of a multiply-rounding decoder */
    int32_t ps;        /* predictor of a shift-sum decoder */
    int32_t idx;       /* step index (the same in both) */
} cr_search_state;

typedef int64_t cr_cost;

/* A state inside the search: b = 8 * step index, so b + d addresses the tables. */
typedef struct { int32_t pm, ps, b; } cr_sq;

/* OKI tables in 16-bit lanes for the SSE2 primitives (filled by cr_search_init):
 * th: decision levels minus one (entry 0: never crossed), rm / rs: the two roundings'
 * magnitudes, rms: both in one 32-bit word (rm low). */
static int16_t cr_oki_th16[CR_OKI_STEPS * 8];
static int16_t cr_oki_rm16[CR_OKI_STEPS * 8];
static int16_t cr_oki_rs16[CR_OKI_STEPS * 8];
static int32_t cr_oki_rms[CR_OKI_STEPS * 8];

/* For the AVX2 challenger scorer, per step index i and first magnitude d (child index
 * c = the index after (i, d)): s1[8i + d] the child's step, th1[56i + 8(k-1) + d] its
 * decision levels minus one (k = 1..7), s2[64i + 8d + c2] the step after the child codes
 * magnitude c2. */
static int16_t cr_oki_s1[CR_OKI_STEPS * 8];
static int16_t cr_oki_th1[CR_OKI_STEPS * 56];
static int16_t cr_oki_s2[CR_OKI_STEPS * 64];

/* For the lane coder (many channels, one per 16-bit lane): the 49 steps in 7 rows of 8
 * (the last row padded), each row one 16-byte table for a byte shuffle. */
static int16_t cr_oki_step8[7 * 8];

static void cr_search_init(void) {
    int i, d, k, c;
    for (i = 0; i < CR_OKI_STEPS * 8; i++) {
        cr_oki_th16[i] = (int16_t)((i & 7) ? cr_oki_search.athr[i] - 1 : 32767);
        cr_oki_rm16[i] = (int16_t)cr_oki_search.rm[i];
        cr_oki_rs16[i] = (int16_t)cr_oki_search.rs[i];
        cr_oki_rms[i] = (int32_t)((uint32_t)(uint16_t)cr_oki_search.rm[i]
                                  | ((uint32_t)(uint16_t)cr_oki_search.rs[i] << 16));
    }
    for (i = 0; i < 7 * 8; i++)
        cr_oki_step8[i] = (int16_t)cr_ima_step[8 + (i < CR_OKI_STEPS ? i : CR_OKI_STEPS - 1)];
    for (i = 0; i < CR_OKI_STEPS; i++) {
        for (d = 0; d < 8; d++) {
            int32_t cb = cr_oki_search.nbase[8 * i + d];          /* 8 * child index */
            cr_oki_s1[8 * i + d] = (int16_t)cr_ima_step[8 + (cb >> 3)];
            for (k = 1; k < 8; k++)
                cr_oki_th1[56 * i + 8 * (k - 1) + d] = (int16_t)(cr_oki_search.athr[cb + k] - 1);
            for (c = 0; c < 8; c++)
                cr_oki_s2[64 * i + 8 * d + c] = (int16_t)cr_ima_step[8 + (cr_oki_search.nbase[cb + c] >> 3)];
        }
    }
}

static inline int32_t cr_as_clamp(int32_t v, int32_t lo, int32_t hi) {
    v = v > lo ? v : lo;
    return v < hi ? v : hi;
}

/* --- portable primitives (any tables) ------------------------------------------------ */

/* Entry (b + d) of the magnitude nearest to t for both predictors; *m the sign mask. */
CR_AS_INLINE int32_t cr_near(const cr_search_tables* Q, const cr_sq* P, int32_t t, int32_t* m) {
    int32_t u = 2 * t - P->pm - P->ps;
    int32_t mm = u >> 31;
    int32_t au = (u ^ mm) - mm;
    const int32_t* T = Q->athr + P->b;
    *m = mm;
    return P->b + (au >= T[1]) + (au >= T[2]) + (au >= T[3]) + (au >= T[4]) + (au >= T[5])
           + (au >= T[6]) + (au >= T[7]);
}

/* Move P by entry k with sign mask m; returns the squared errors at t. */
CR_AS_INLINE cr_cost cr_move(const cr_search_tables* Q, cr_sq* P, int32_t t, int32_t k, int32_t m) {
    int32_t a = cr_as_clamp(P->pm + ((Q->rm[k] ^ m) - m), Q->lo, Q->hi);
    int32_t b = cr_as_clamp(P->ps + ((Q->rs[k] ^ m) - m), Q->lo, Q->hi);
    P->pm = a;
    P->ps = b;
    P->b = Q->nbase[k];
    return (cr_cost)(t - a) * (t - a) + (cr_cost)(t - b) * (t - b);
}

/* tail(P) over t2, t3; also the G path's first step: its state, cost, entry and sign. */
CR_AS_INLINE cr_cost cr_tail(const cr_search_tables* Q, const cr_sq* P, int32_t t2, int32_t t3,
                             cr_sq* g2, cr_cost* g2c, int32_t* k2, int32_t* m2) {
    int32_t m, m3, k, ka;
    cr_sq G = *P, A = *P;
    cr_cost g, a;
    k = cr_near(Q, P, t2, &m);
    ka = k + ((k & 7) != 7);
    g = cr_move(Q, &G, t2, k, m);
    *g2 = G; *g2c = g; *k2 = k; *m2 = m;
    k = cr_near(Q, &G, t3, &m3);
    g += cr_move(Q, &G, t3, k, m3);
    if (ka == *k2)
        return g;
    a = cr_move(Q, &A, t2, ka, m);
    k = cr_near(Q, &A, t3, &m3);
    a += cr_move(Q, &A, t3, k, m3);
    return a < g ? a : g;
}

/* 8 * own(d) + d of the 8 magnitudes (entries base..base+7, sign m) into o8; returns the
 * bit mask of those below J. */
CR_AS_INLINE unsigned cr_own(const cr_search_tables* Q, const cr_sq* P, int32_t t, int32_t base,
                             int32_t m, cr_cost J, cr_cost* o8) {
    unsigned mask = 0;
    int d;
    for (d = 0; d < 8; d++) {
        cr_sq R = *P;
        o8[d] = cr_move(Q, &R, t, base + d, m) * 8 + d;
        mask |= (unsigned)(o8[d] < J) << d;
    }
    return mask;
}

/* --- SSE2 primitives for the OKI tables ---------------------------------------------- */
#if CR_AS_SSE2

/* Entry of the nearest magnitude: au (|2t - pm - ps|) in every lane, against row b. */
CR_AS_INLINE int32_t cr_oki_count(__m128i au, int32_t b) {
    __m128i th = _mm_loadu_si128((const __m128i*)(cr_oki_th16 + b));
    int msk = _mm_movemask_epi8(_mm_cmpgt_epi16(au, th)) | 2;
    return b + (cr_as_bsr((uint32_t)msk) >> 1);
}

/* cr_tail for OKI: G (lanes 0-1: pm, ps) and A (lanes 2-3) side by side.  OKI costs fit
 * 32 bits: 8 * 3 samples * 2 * 4095^2 + 7 < 2^31. */
CR_AS_INLINE cr_cost cr_oki_tail(const cr_sq* P, int32_t t2, int32_t t3,
                                 cr_sq* g2, cr_cost* g2c, int32_t* k2, int32_t* m2) {
    const __m128i lo = _mm_set1_epi16(-2048), hi = _mm_set1_epi16(2047);
    int32_t u = 2 * t2 - P->pm - P->ps;
    int32_t m = u >> 31;
    int32_t au = (u ^ m) - m;
    int32_t k = cr_oki_count(_mm_set1_epi16((short)au), P->b);
    int32_t ka = k + ((k & 7) != 7);
    int32_t g, a, kg, kb;
    __m128i p = _mm_set1_epi32((int32_t)((uint32_t)(uint16_t)P->pm | ((uint32_t)(uint16_t)P->ps << 16)));
    __m128i r = _mm_unpacklo_epi32(_mm_cvtsi32_si128(cr_oki_rms[k]), _mm_cvtsi32_si128(cr_oki_rms[ka]));
    __m128i vm = _mm_set1_epi32(m);
    __m128i e, c2, v, vm3, av, r3, p3, tot;
    r = _mm_sub_epi16(_mm_xor_si128(r, vm), vm);
    p = _mm_min_epi16(_mm_max_epi16(_mm_add_epi16(p, r), lo), hi);
    e = _mm_sub_epi16(_mm_set1_epi16((short)t2), p);
    c2 = _mm_madd_epi16(e, e);                                   /* 32-bit lanes: G, A */
    v = _mm_sub_epi32(_mm_set1_epi32(2 * t3), _mm_madd_epi16(p, _mm_set1_epi16(1)));
    vm3 = _mm_srai_epi32(v, 31);
    av = _mm_sub_epi32(_mm_xor_si128(v, vm3), vm3);
    kg = cr_oki_count(_mm_shuffle_epi32(_mm_shufflelo_epi16(av, 0x00), 0x00), cr_oki_search.nbase[k]);
    kb = cr_oki_count(_mm_shuffle_epi32(_mm_shufflelo_epi16(av, 0xAA), 0x00), cr_oki_search.nbase[ka]);
    r3 = _mm_unpacklo_epi32(_mm_cvtsi32_si128(cr_oki_rms[kg]), _mm_cvtsi32_si128(cr_oki_rms[kb]));
    r3 = _mm_sub_epi16(_mm_xor_si128(r3, vm3), vm3);
    p3 = _mm_min_epi16(_mm_max_epi16(_mm_add_epi16(p, r3), lo), hi);
    e = _mm_sub_epi16(_mm_set1_epi16((short)t3), p3);
    tot = _mm_add_epi32(c2, _mm_madd_epi16(e, e));
    g = _mm_cvtsi128_si32(tot);
    a = _mm_cvtsi128_si32(_mm_shuffle_epi32(tot, 0x55));
    kg = _mm_cvtsi128_si32(p);
    g2->pm = (int16_t)kg;
    g2->ps = (int16_t)(kg >> 16);
    g2->b = cr_oki_search.nbase[k];
    *g2c = _mm_cvtsi128_si32(c2);
    *k2 = k;
    *m2 = m;
    if (ka == k)
        a = g;
    return a < g ? a : g;
}

CR_AS_INLINE unsigned cr_oki_own(const cr_sq* P, int32_t t, int32_t base, int32_t m, cr_cost J,
                                 int32_t* o8) {
    const __m128i lo = _mm_set1_epi16(-2048), hi = _mm_set1_epi16(2047);
    __m128i vm = _mm_set1_epi16((short)m);
    __m128i rm = _mm_loadu_si128((const __m128i*)(cr_oki_rm16 + base));
    __m128i rs = _mm_loadu_si128((const __m128i*)(cr_oki_rs16 + base));
    __m128i vt = _mm_set1_epi16((short)t), a, b, lo4, hi4, vJ;
    rm = _mm_sub_epi16(_mm_xor_si128(rm, vm), vm);
    rs = _mm_sub_epi16(_mm_xor_si128(rs, vm), vm);
    a = _mm_sub_epi16(vt, _mm_min_epi16(_mm_max_epi16(_mm_add_epi16(_mm_set1_epi16((short)P->pm), rm), lo), hi));
    b = _mm_sub_epi16(vt, _mm_min_epi16(_mm_max_epi16(_mm_add_epi16(_mm_set1_epi16((short)P->ps), rs), lo), hi));
    lo4 = _mm_unpacklo_epi16(a, b);
    hi4 = _mm_unpackhi_epi16(a, b);
    lo4 = _mm_add_epi32(_mm_slli_epi32(_mm_madd_epi16(lo4, lo4), 3), _mm_setr_epi32(0, 1, 2, 3));
    hi4 = _mm_add_epi32(_mm_slli_epi32(_mm_madd_epi16(hi4, hi4), 3), _mm_setr_epi32(4, 5, 6, 7));
    _mm_storeu_si128((__m128i*)o8, lo4);
    _mm_storeu_si128((__m128i*)(o8 + 4), hi4);
    vJ = _mm_set1_epi32((int32_t)J);
    return (unsigned)(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmplt_epi32(lo4, vJ)))
                      | (_mm_movemask_ps(_mm_castsi128_ps(_mm_cmplt_epi32(hi4, vJ))) << 4));
}
#endif


static ptrdiff_t cr_search(const cr_search_tables* Q, cr_search_state* S, const int16_t* x,
                           ptrdiff_t n, ptrdiff_t nfin, int shift, int* held, uint8_t* dst);

/* --- AVX2: all 8 first magnitudes' tails at once (OKI) ---------------------------------- */
#if CR_AS_AVX2

/* A winning challenger: its child R, the G step of its tail G (cost g2c, entry k2, sign
 * mask m2). */
typedef struct { cr_sq R, G; int32_t g2c, k2, m2; } cr_win;

#define CR_AVX2 __attribute__((target("avx2")))

CR_AVX2 static inline __m256i cr_b128(const int16_t* p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)p));
}

CR_AVX2 static inline __m256i cr_neg_if(__m256i v, __m256i m) {
    return _mm256_sub_epi16(_mm256_xor_si256(v, m), m);
}

CR_AVX2 static inline __m256i cr_clamp12(__m256i v) {
    return _mm256_min_epi16(_mm256_max_epi16(v, _mm256_set1_epi16(-2048)), _mm256_set1_epi16(2047));
}

/* Both roundings' predictor changes of magnitudes c (0..7) at steps s (16-bit lanes):
 * ((2c+1) s) >> 3, and s>>3 + (c&4 ? s) + (c&2 ? s>>1) + (c&1 ? s>>2). */
CR_AVX2 static inline void cr_r16(__m256i s, __m256i c, __m256i* rm, __m256i* rs) {
    __m256i c21 = _mm256_add_epi16(_mm256_add_epi16(c, c), _mm256_set1_epi16(1));
    __m256i b2 = _mm256_srai_epi16(_mm256_slli_epi16(c, 13), 15);
    __m256i b1 = _mm256_srai_epi16(_mm256_slli_epi16(c, 14), 15);
    __m256i b0 = _mm256_srai_epi16(_mm256_slli_epi16(c, 15), 15);
    *rm = _mm256_srli_epi16(_mm256_mullo_epi16(s, c21), 3);
    *rs = _mm256_add_epi16(_mm256_add_epi16(_mm256_srli_epi16(s, 3), _mm256_and_si256(b2, s)),
                           _mm256_add_epi16(_mm256_and_si256(b1, _mm256_srli_epi16(s, 1)),
                                            _mm256_and_si256(b0, _mm256_srli_epi16(s, 2))));
}

/* The number of true masks among g[1..7] (a tree, not a chain). */
CR_AVX2 static inline __m256i cr_count7(const __m256i* g) {
    __m256i a = _mm256_add_epi16(_mm256_add_epi16(g[1], g[2]), _mm256_add_epi16(g[3], g[4]));
    __m256i b = _mm256_add_epi16(_mm256_add_epi16(g[5], g[6]), g[7]);
    return _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_add_epi16(a, b));
}

/* Magnitude nearest to |u| at steps s: the count of k = 1..7 with |u| > (sum(k-1) + sum(k))
 * >> 1, sum(d) = rm(d) + rs(d) (the decision levels of the tables, from the steps). */
CR_AVX2 static inline __m256i cr_near16(__m256i au, __m256i s) {
    __m256i a = _mm256_srli_epi16(s, 3), q = _mm256_srli_epi16(s, 2), h = _mm256_srli_epi16(s, 1);
    __m256i rs4 = _mm256_add_epi16(a, s), rs6 = _mm256_add_epi16(rs4, h), s2x = _mm256_add_epi16(s, s);
    __m256i au2 = _mm256_add_epi16(au, au), mul = s;
    __m256i rs[8], sum[8], g[8];
    int d;
    rs[0] = a; rs[1] = _mm256_add_epi16(a, q); rs[2] = _mm256_add_epi16(a, h);
    rs[3] = _mm256_add_epi16(rs[2], q); rs[4] = rs4; rs[5] = _mm256_add_epi16(rs4, q);
    rs[6] = rs6; rs[7] = _mm256_add_epi16(rs6, q);
    for (d = 0; d < 8; d++) {
        sum[d] = _mm256_add_epi16(rs[d], _mm256_srli_epi16(mul, 3));       /* mul = (2d+1) s */
        mul = _mm256_add_epi16(mul, s2x);
    }
    /* |u| > (sum(k-1) + sum(k)) >> 1  <=>  2|u| > sum(k-1) + sum(k) */
    for (d = 1; d < 8; d++)
        g[d] = _mm256_cmpgt_epi16(au2, _mm256_add_epi16(sum[d - 1], sum[d]));
    return cr_count7(g);
}

/* The 8 totals 8 * (own(d) + tail(child_d)) + d of the state P (o8: 8 * own(d) + d, as
 * cr_oki_own leaves them), in 16-bit lanes: lane d (d = 0..7) the G path of magnitude d,
 * lane 8 + d its A path.  Returns the smallest total; *W the winner's child and G step. */
CR_AVX2 static int32_t cr_oki_scores_avx2(const cr_sq* P, int32_t t1, int32_t t2, int32_t t3,
                                          int32_t m1, const int32_t* o8, cr_win* W) {
    const int32_t b = P->b;
    const int16_t* th = cr_oki_th1 + 7 * b;
    const int16_t* r2 = cr_oki_s2 + 8 * b;
    __m256i vm1 = _mm256_set1_epi16((short)m1);
    __m256i pm = cr_clamp12(_mm256_add_epi16(_mm256_set1_epi16((short)P->pm), cr_neg_if(cr_b128(cr_oki_rm16 + b), vm1)));
    __m256i ps = cr_clamp12(_mm256_add_epi16(_mm256_set1_epi16((short)P->ps), cr_neg_if(cr_b128(cr_oki_rs16 + b), vm1)));
    __m256i u, m2, au, cnt, c2, rm, rs, pm2, ps2, bi, s2, m3, c3, pm3, ps3, e2m, e2s, e3m, e3s;
    __m256i c2lo, c2hi, lo, hi, tail, tot, mn;
    int32_t best, d, cb;
    int16_t pm2a[16], ps2a[16], c2a[16], m2a[16];
    int32_t c2la[8], c2ha[8];
    (void)t1;
    /* the nearest magnitude at t2 from each child; the A path's lanes take one more */
    u = _mm256_sub_epi16(_mm256_set1_epi16((short)(2 * t2)), _mm256_add_epi16(pm, ps));
    m2 = _mm256_srai_epi16(u, 15);
    au = _mm256_abs_epi16(u);
    {
        __m256i g[8];
        int k;
        for (k = 1; k < 8; k++)
            g[k] = _mm256_cmpgt_epi16(au, cr_b128(th + 8 * (k - 1)));
        cnt = cr_count7(g);
    }
    c2 = _mm256_add_epi16(cnt, _mm256_and_si256(_mm256_cmpgt_epi16(_mm256_set1_epi16(7), cnt),
                                                _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)));
    cr_r16(cr_b128(cr_oki_s1 + b), c2, &rm, &rs);
    pm2 = cr_clamp12(_mm256_add_epi16(pm, cr_neg_if(rm, m2)));
    ps2 = cr_clamp12(_mm256_add_epi16(ps, cr_neg_if(rs, m2)));
    e2m = _mm256_sub_epi16(_mm256_set1_epi16((short)t2), pm2);
    e2s = _mm256_sub_epi16(_mm256_set1_epi16((short)t2), ps2);
    /* the step after (child d, magnitude c2): row d of r2, entry c2, by byte shuffles */
    bi = _mm256_add_epi16(_mm256_mullo_epi16(c2, _mm256_set1_epi16(0x0202)), _mm256_set1_epi16(0x0100));
    {   /* a tree of blends: rows 0-7 into lanes 0-7 (and 8-15) */
        __m256i x0 = _mm256_blend_epi16(_mm256_shuffle_epi8(cr_b128(r2), bi), _mm256_shuffle_epi8(cr_b128(r2 + 8), bi), 0x02);
        __m256i x1 = _mm256_blend_epi16(_mm256_shuffle_epi8(cr_b128(r2 + 16), bi), _mm256_shuffle_epi8(cr_b128(r2 + 24), bi), 0x08);
        __m256i x2 = _mm256_blend_epi16(_mm256_shuffle_epi8(cr_b128(r2 + 32), bi), _mm256_shuffle_epi8(cr_b128(r2 + 40), bi), 0x20);
        __m256i x3 = _mm256_blend_epi16(_mm256_shuffle_epi8(cr_b128(r2 + 48), bi), _mm256_shuffle_epi8(cr_b128(r2 + 56), bi), 0x80);
        s2 = _mm256_blend_epi16(_mm256_blend_epi16(x0, x1, 0x0C), _mm256_blend_epi16(x2, x3, 0xC0), 0xF0);
    }
    /* the nearest magnitude at t3, and its move */
    u = _mm256_sub_epi16(_mm256_set1_epi16((short)(2 * t3)), _mm256_add_epi16(pm2, ps2));
    m3 = _mm256_srai_epi16(u, 15);
    c3 = cr_near16(_mm256_abs_epi16(u), s2);
    cr_r16(s2, c3, &rm, &rs);
    pm3 = cr_clamp12(_mm256_add_epi16(pm2, cr_neg_if(rm, m3)));
    ps3 = cr_clamp12(_mm256_add_epi16(ps2, cr_neg_if(rs, m3)));
    e3m = _mm256_sub_epi16(_mm256_set1_epi16((short)t3), pm3);
    e3s = _mm256_sub_epi16(_mm256_set1_epi16((short)t3), ps3);
    /* path costs in 32-bit lanes: lo = (G d0-3 | A d0-3), hi = (G d4-7 | A d4-7) */
    c2lo = _mm256_madd_epi16(_mm256_unpacklo_epi16(e2m, e2s), _mm256_unpacklo_epi16(e2m, e2s));
    c2hi = _mm256_madd_epi16(_mm256_unpackhi_epi16(e2m, e2s), _mm256_unpackhi_epi16(e2m, e2s));
    lo = _mm256_add_epi32(c2lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(e3m, e3s), _mm256_unpacklo_epi16(e3m, e3s)));
    hi = _mm256_add_epi32(c2hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(e3m, e3s), _mm256_unpackhi_epi16(e3m, e3s)));
    lo = _mm256_min_epi32(lo, _mm256_permute2x128_si256(lo, lo, 0x01));
    hi = _mm256_min_epi32(hi, _mm256_permute2x128_si256(hi, hi, 0x01));
    tail = _mm256_permute2x128_si256(lo, hi, 0x20);                       /* d = 0..7 */
    tot = _mm256_add_epi32(_mm256_loadu_si256((const __m256i*)o8), _mm256_slli_epi32(tail, 3));
    mn = _mm256_min_epi32(tot, _mm256_permute2x128_si256(tot, tot, 0x01));
    mn = _mm256_min_epi32(mn, _mm256_shuffle_epi32(mn, 0x4E));
    mn = _mm256_min_epi32(mn, _mm256_shuffle_epi32(mn, 0xB1));
    best = _mm256_cvtsi256_si32(mn);
    d = best & 7;
    _mm256_storeu_si256((__m256i*)pm2a, pm2);
    _mm256_storeu_si256((__m256i*)ps2a, ps2);
    _mm256_storeu_si256((__m256i*)c2a, c2);
    _mm256_storeu_si256((__m256i*)m2a, m2);
    _mm256_storeu_si256((__m256i*)c2la, c2lo);
    _mm256_storeu_si256((__m256i*)c2ha, c2hi);
    {
        int16_t pma[16], psa[16];
        _mm256_storeu_si256((__m256i*)pma, pm);
        _mm256_storeu_si256((__m256i*)psa, ps);
        cb = cr_oki_search.nbase[b + d];
        W->R.pm = pma[d];
        W->R.ps = psa[d];
        W->R.b = cb;
    }
    W->G.pm = pm2a[d];
    W->G.ps = ps2a[d];
    W->k2 = cb + c2a[d];
    W->G.b = cr_oki_search.nbase[W->k2];
    W->m2 = m2a[d];
    W->g2c = d < 4 ? c2la[d] : c2ha[d - 4];
    return best;
}

/* --- AVX2: many channels at once, one channel per 16-bit lane (OKI) -------------------------
 *
 * Rows are independent streams, so 16 rows run the search side by side, each lane doing
 * what cr_search_body does for its row, with blends for branches.  Per sample, every lane
 * scores its nearest magnitude d0 (G and A paths) and its two neighbours d0 - 1 and
 * d0 + 1 (both paths of each tail), which is where the winner is (the other five lose in
 * more than 99 % of the samples).  Whether that holds is checked exactly: a magnitude can
 * only win if its own cost, 8 * own(d) + d, is below the best of the three totals (the
 * tail costs are >= 0), so all 8 own costs are compared with that best; a lane where one
 * outside the window passes is scored again by the one-channel AVX2 scorer (all 8
 * magnitudes), and takes its result if the winner is outside the window.  So every row
 * gets exactly the codes cr_search gives it (tests/test_adpcm.py compares them).  Table
 * lookups per lane (the step of a step index, 49 entries) are byte shuffles of 7 rows of
 * 8 steps; the decision levels and the predictor changes are computed from the step. */

/* (always inlined: the lane state stays in registers, not in structs in memory) */
#define CR_AVX2_INLINE __attribute__((target("avx2"), always_inline)) static inline

typedef struct { __m256i lo, hi; } cr_c32;      /* 32-bit values of 16 lanes (unpack order) */

/* The step of each lane's step index (0..48). */
CR_AVX2_INLINE __m256i cr_l_step(__m256i idx) {
    __m256i ctrl = _mm256_add_epi16(_mm256_mullo_epi16(idx, _mm256_set1_epi16(0x0202)),
                                    _mm256_set1_epi16(0x0100));       /* bytes 2i, 2i + 1 */
    __m256i r = _mm256_setzero_si256();
    int g;
    for (g = 0; g < 7; g++) {
        /* rows other than g: the control byte gets bit 7 (saturating add), so zero */
        __m256i v = _mm256_adds_epu8(_mm256_sub_epi8(ctrl, _mm256_set1_epi8((char)(16 * g))),
                                     _mm256_set1_epi8(0x70));
        r = _mm256_or_si256(r, _mm256_shuffle_epi8(cr_b128(cr_oki_step8 + 8 * g), v));
    }
    return r;
}

/* The step index after magnitude c: clamp(i + {-1,-1,-1,-1,2,4,6,8}[c], 0, 48). */
CR_AVX2_INLINE __m256i cr_l_next(__m256i i, __m256i c) {
    __m256i up = _mm256_sub_epi16(_mm256_add_epi16(c, c), _mm256_set1_epi16(6));
    __m256i adj = _mm256_blendv_epi8(_mm256_set1_epi16(-1), up, _mm256_cmpgt_epi16(c, _mm256_set1_epi16(3)));
    return _mm256_min_epi16(_mm256_max_epi16(_mm256_add_epi16(i, adj), _mm256_setzero_si256()),
                            _mm256_set1_epi16(CR_OKI_STEPS - 1));
}

/* The magnitude nearest to t for both predictors at step s; *m the sign mask. */
CR_AVX2_INLINE __m256i cr_l_near(__m256i t, __m256i pm, __m256i ps, __m256i s, __m256i* m) {
    __m256i u = _mm256_sub_epi16(_mm256_add_epi16(t, t), _mm256_add_epi16(pm, ps));
    *m = _mm256_srai_epi16(u, 15);
    return cr_near16(_mm256_abs_epi16(u), s);
}

/* Move both predictors by magnitude c (sign mask m) at step s. */
CR_AVX2_INLINE void cr_l_move(__m256i s, __m256i c, __m256i m, __m256i* pm, __m256i* ps) {
    __m256i rm, rs;
    cr_r16(s, c, &rm, &rs);
    *pm = cr_clamp12(_mm256_add_epi16(*pm, cr_neg_if(rm, m)));
    *ps = cr_clamp12(_mm256_add_epi16(*ps, cr_neg_if(rs, m)));
}

/* Squared errors (t - pm)^2 + (t - ps)^2 in 32 bits. */
CR_AVX2_INLINE cr_c32 cr_l_cost(__m256i t, __m256i pm, __m256i ps) {
    __m256i em = _mm256_sub_epi16(t, pm), es = _mm256_sub_epi16(t, ps);
    __m256i a = _mm256_unpacklo_epi16(em, es), b = _mm256_unpackhi_epi16(em, es);
    cr_c32 c;
    c.lo = _mm256_madd_epi16(a, a);
    c.hi = _mm256_madd_epi16(b, b);
    return c;
}

CR_AVX2_INLINE cr_c32 cr_c_add(cr_c32 a, cr_c32 b) {
    cr_c32 c;
    c.lo = _mm256_add_epi32(a.lo, b.lo);
    c.hi = _mm256_add_epi32(a.hi, b.hi);
    return c;
}

CR_AVX2_INLINE cr_c32 cr_c_min(cr_c32 a, cr_c32 b) {
    cr_c32 c;
    c.lo = _mm256_min_epi32(a.lo, b.lo);
    c.hi = _mm256_min_epi32(a.hi, b.hi);
    return c;
}

/* 8 * c + d (d: 16-bit lanes 0..7). */
CR_AVX2_INLINE cr_c32 cr_c_total(cr_c32 c, __m256i d) {
    cr_c32 t;
    t.lo = _mm256_add_epi32(_mm256_slli_epi32(c.lo, 3), _mm256_unpacklo_epi16(d, _mm256_setzero_si256()));
    t.hi = _mm256_add_epi32(_mm256_slli_epi32(c.hi, 3), _mm256_unpackhi_epi16(d, _mm256_setzero_si256()));
    return t;
}

/* a where the 16-bit mask k is set, else b. */
CR_AVX2_INLINE cr_c32 cr_c_blend(cr_c32 b, cr_c32 a, __m256i k) {
    cr_c32 c;
    c.lo = _mm256_blendv_epi8(b.lo, a.lo, _mm256_unpacklo_epi16(k, k));
    c.hi = _mm256_blendv_epi8(b.hi, a.hi, _mm256_unpackhi_epi16(k, k));
    return c;
}

/* 16-bit mask of a == b. */
CR_AVX2_INLINE __m256i cr_c_eq(cr_c32 a, cr_c32 b) {
    return _mm256_packs_epi32(_mm256_cmpeq_epi32(a.lo, b.lo), _mm256_cmpeq_epi32(a.hi, b.hi));
}

/* 16-bit mask of a < b. */
CR_AVX2_INLINE __m256i cr_c_lt(cr_c32 a, cr_c32 b) {
    return _mm256_packs_epi32(_mm256_cmpgt_epi32(b.lo, a.lo), _mm256_cmpgt_epi32(b.hi, a.hi));
}

/* A coder state in lanes: both predictors, step index and step. */
typedef struct { __m256i pm, ps, i, s; } cr_lq;

/* 16-bit mask of the lanes where a magnitude k with |k - d0| > w could have a total below
 * B: 8 * (own(k) + z_k^2) + k < B (own(k): the squared errors at t after magnitude k, sign
 * mask m, from P).  z_k^2 is a lower bound of k's tail where no predictor can reach the
 * clamp within the three moves (|p| + 15 * step <= 2047: the moves add at most
 * 15 * step - 5 over the table): each move changes pm - ps by 0..2 (the two roundings of
 * one magnitude differ by that), and (t - a)^2 + (t - b)^2 >= (a - b)^2 / 2, so the two
 * tail samples cost at least (D - 2)^2 / 2 + (D - 4)^2 / 2 >= z^2, z = max(D - 4, 0),
 * D = |pm - ps| after k.  (When the predictors drift apart, every path pays for it; without
 * the bound every magnitude would look cheap next to the three-sample totals.)  The
 * errors are computed as sigma * (t - p) = clamp(sigma * (t - p0) - r_k, lo, hi), sigma the
 * sign and lo, hi the predictor's clamp seen from t, so the sign is applied once. */
CR_AVX2_INLINE __m256i cr_l_own_below(const cr_lq* P, __m256i m, __m256i t, cr_c32 B, __m256i d0, int w) {
    __m256i L12 = _mm256_sub_epi16(t, _mm256_set1_epi16(2047)), H12 = _mm256_add_epi16(t, _mm256_set1_epi16(2048));
    __m256i lo = _mm256_blendv_epi8(L12, _mm256_sub_epi16(_mm256_setzero_si256(), H12), m);
    __m256i hi = _mm256_blendv_epi8(H12, _mm256_sub_epi16(_mm256_setzero_si256(), L12), m);
    __m256i a = cr_neg_if(_mm256_sub_epi16(t, P->pm), m), b = cr_neg_if(_mm256_sub_epi16(t, P->ps), m);
    __m256i s = P->s, s2x = _mm256_add_epi16(s, s), q8 = _mm256_srli_epi16(s, 3);
    __m256i q4 = _mm256_srli_epi16(s, 2), q2 = _mm256_srli_epi16(s, 1), mul = s, out = _mm256_setzero_si256();
    __m256i s15 = _mm256_mullo_epi16(s, _mm256_set1_epi16(15)), lim = _mm256_set1_epi16(2048);
    __m256i free = _mm256_and_si256(_mm256_cmpgt_epi16(lim, _mm256_add_epi16(_mm256_abs_epi16(P->pm), s15)),
                                    _mm256_cmpgt_epi16(lim, _mm256_add_epi16(_mm256_abs_epi16(P->ps), s15)));
    __m256i rs[8];
    int k;
    rs[0] = q8; rs[1] = _mm256_add_epi16(q8, q4); rs[2] = _mm256_add_epi16(q8, q2);
    rs[3] = _mm256_add_epi16(rs[2], q4); rs[4] = _mm256_add_epi16(q8, s);
    rs[5] = _mm256_add_epi16(rs[4], q4); rs[6] = _mm256_add_epi16(rs[4], q2);
    rs[7] = _mm256_add_epi16(rs[6], q4);
    for (k = 0; k < 8; k++) {
        __m256i em = _mm256_min_epi16(_mm256_max_epi16(_mm256_sub_epi16(a, _mm256_srli_epi16(mul, 3)), lo), hi);
        __m256i es = _mm256_min_epi16(_mm256_max_epi16(_mm256_sub_epi16(b, rs[k]), lo), hi);
        __m256i z = _mm256_and_si256(free, _mm256_max_epi16(_mm256_sub_epi16(_mm256_abs_epi16(_mm256_sub_epi16(em, es)),
                                                                             _mm256_set1_epi16(4)),
                                                            _mm256_setzero_si256()));
        __m256i x = _mm256_unpacklo_epi16(em, es), y = _mm256_unpackhi_epi16(em, es);
        __m256i zx = _mm256_unpacklo_epi16(z, _mm256_setzero_si256()), zy = _mm256_unpackhi_epi16(z, _mm256_setzero_si256());
        __m256i vk = _mm256_set1_epi32(k);
        __m256i ox = _mm256_add_epi32(_mm256_madd_epi16(x, x), _mm256_madd_epi16(zx, zx));
        __m256i oy = _mm256_add_epi32(_mm256_madd_epi16(y, y), _mm256_madd_epi16(zy, zy));
        __m256i lt = _mm256_packs_epi32(_mm256_cmpgt_epi32(B.lo, _mm256_add_epi32(_mm256_slli_epi32(ox, 3), vk)),
                                        _mm256_cmpgt_epi32(B.hi, _mm256_add_epi32(_mm256_slli_epi32(oy, 3), vk)));
        __m256i far = _mm256_cmpgt_epi16(_mm256_abs_epi16(_mm256_sub_epi16(_mm256_set1_epi16((short)k), d0)),
                                         _mm256_set1_epi16((short)w));
        out = _mm256_or_si256(out, _mm256_and_si256(far, lt));
        mul = _mm256_add_epi16(mul, s2x);               /* (2k + 1) * s */
    }
    return out;
}


/* The lanes' search state between samples: the trajectory Q0 -> Q1 -> Q2 (nearest
 * magnitude at each target), its magnitudes d0 (at t1), d1 (at t2) and sign masks, and
 * the squared errors e1, e2 of Q1 and Q2. */
typedef struct {
    cr_lq q0, q1, q2;
    __m256i d0, m1, d1, m2;
    cr_c32 e1, e2;
} cr_lanes;

/* One state in lanes moved by its nearest magnitude at t: returns the magnitude (*m its
 * sign), *e the squared errors; the result's step is not looked up. */
CR_AVX2_INLINE __m256i cr_l_greedy(const cr_lq* P, __m256i t, cr_lq* R, __m256i* m, cr_c32* e) {
    __m256i c = cr_l_near(t, P->pm, P->ps, P->s, m);
    R->pm = P->pm;
    R->ps = P->ps;
    cr_l_move(P->s, c, *m, &R->pm, &R->ps);
    R->i = cr_l_next(P->i, c);
    *e = cr_l_cost(t, R->pm, R->ps);
    return c;
}

/* A neighbour's candidate: first magnitude c from Q0 (sign m1), then its tail.  Fills the
 * child R, the tail's G path (G2, G3, their magnitudes and signs, costs g2, g3) and
 * returns the total 8 * (own + min(G, A)) + c. */
typedef struct { cr_lq r, g2, g3; __m256i c2, m2, c3, m3; cr_c32 e2, e3; } cr_cand;

CR_AVX2_INLINE cr_c32 cr_l_candidate(const cr_lq* Q0, __m256i c, __m256i m1, __m256i t1, __m256i t2,
                                            __m256i t3, cr_cand* K) {
    cr_c32 own, a2, a3, tail;
    cr_lq A2, A3;
    __m256i ca, ma3, ca3;
    K->r.pm = Q0->pm;
    K->r.ps = Q0->ps;
    cr_l_move(Q0->s, c, m1, &K->r.pm, &K->r.ps);
    own = cr_l_cost(t1, K->r.pm, K->r.ps);
    K->r.i = cr_l_next(Q0->i, c);
    K->r.s = cr_l_step(K->r.i);
    K->c2 = cr_l_greedy(&K->r, t2, &K->g2, &K->m2, &K->e2);
    K->g2.s = cr_l_step(K->g2.i);
    K->c3 = cr_l_greedy(&K->g2, t3, &K->g3, &K->m3, &K->e3);
    /* the A path: one more than the nearest at t2 (none when that is 7: A = G) */
    ca = _mm256_min_epi16(_mm256_add_epi16(K->c2, _mm256_set1_epi16(1)), _mm256_set1_epi16(7));
    A2.pm = K->r.pm;
    A2.ps = K->r.ps;
    cr_l_move(K->r.s, ca, K->m2, &A2.pm, &A2.ps);
    a2 = cr_l_cost(t2, A2.pm, A2.ps);
    A2.i = cr_l_next(K->r.i, ca);
    A2.s = cr_l_step(A2.i);
    ca3 = cr_l_greedy(&A2, t3, &A3, &ma3, &a3);
    (void)ca3;
    tail = cr_c_min(cr_c_add(K->e2, K->e3), cr_c_add(a2, a3));
    return cr_c_total(cr_c_add(own, tail), c);
}

/* Start the lanes from the coders' states (pm, ps, index) before targets t0, t1. */
CR_AVX2_INLINE void cr_lanes_start(cr_lanes* L, __m256i pm, __m256i ps, __m256i idx, __m256i t0,
                                          __m256i t1) {
    L->q0.pm = pm;
    L->q0.ps = ps;
    L->q0.i = idx;
    L->q0.s = cr_l_step(idx);
    L->d0 = cr_l_greedy(&L->q0, t0, &L->q1, &L->m1, &L->e1);
    L->q1.s = cr_l_step(L->q1.i);
    L->d1 = cr_l_greedy(&L->q1, t1, &L->q2, &L->m2, &L->e2);
    L->q2.s = cr_l_step(L->q2.i);
}

CR_AVX2_INLINE __m256i cr_lq_blend(__m256i b, __m256i a, __m256i k) {
    return _mm256_blendv_epi8(b, a, k);
}

CR_AVX2_INLINE void cr_lq_pick(cr_lq* D, const cr_lq* A, __m256i k) {
    D->pm = cr_lq_blend(D->pm, A->pm, k);
    D->ps = cr_lq_blend(D->ps, A->ps, k);
    D->i = cr_lq_blend(D->i, A->i, k);
    D->s = cr_lq_blend(D->s, A->s, k);
}

/* Lane j of a vector of 16-bit lanes (a store and a load: for the rare rescoring only). */
typedef union { __m256i v; int16_t h[16]; } cr_u16;
typedef union { __m256i v; int32_t w[8]; } cr_u32;

/* One sample of 16 lanes (targets t1, t2, t3): returns the codes, advances L. */
CR_AVX2_INLINE __m256i cr_lanes_step(cr_lanes* L, __m256i t1, __m256i t2, __m256i t3) {
    const __m256i one = _mm256_set1_epi16(1), seven = _mm256_set1_epi16(7);
    cr_lq Q3, A2, A3;
    cr_c32 e3, J, TA, a2, a3, best, Tm, Tp, big;
    __m256i c3, m3, ca, ma3, cm, cp, vm, vp, wm, wp, d, code, out;
    cr_cand Km, Kp;
    /* d0's G path: the trajectory one step further */
    c3 = cr_l_greedy(&L->q2, t3, &Q3, &m3, &e3);
    J = cr_c_total(cr_c_add(cr_c_add(L->e1, L->e2), e3), L->d0);
    /* d0's A path: from Q1, one more than the nearest at t2 (none when that is 7) */
    ca = _mm256_min_epi16(_mm256_add_epi16(L->d1, one), seven);
    A2.pm = L->q1.pm;
    A2.ps = L->q1.ps;
    cr_l_move(L->q1.s, ca, L->m2, &A2.pm, &A2.ps);
    a2 = cr_l_cost(t2, A2.pm, A2.ps);
    A2.i = cr_l_next(L->q1.i, ca);
    A2.s = cr_l_step(A2.i);
    cr_l_greedy(&A2, t3, &A3, &ma3, &a3);
    TA = cr_c_total(cr_c_add(cr_c_add(L->e1, a2), a3), L->d0);
    best = cr_c_min(J, TA);
    /* the neighbours (a missing one: d0 = 0 or 7, total "infinite") */
    big.lo = big.hi = _mm256_set1_epi32(0x7FFFFFFF);
    vm = _mm256_cmpgt_epi16(L->d0, _mm256_setzero_si256());
    vp = _mm256_cmpgt_epi16(seven, L->d0);
    cm = _mm256_max_epi16(_mm256_sub_epi16(L->d0, one), _mm256_setzero_si256());
    cp = _mm256_min_epi16(_mm256_add_epi16(L->d0, one), seven);
    Tm = cr_c_blend(big, cr_l_candidate(&L->q0, cm, L->m1, t1, t2, t3, &Km), vm);
    Tp = cr_c_blend(big, cr_l_candidate(&L->q0, cp, L->m1, t1, t2, t3, &Kp), vp);
    best = cr_c_min(best, cr_c_min(Tm, Tp));
    wm = cr_c_eq(Tm, best);                                  /* totals differ in d: no ties */
    wp = cr_c_eq(Tp, best);
    d = _mm256_add_epi16(_mm256_sub_epi16(L->d0, wp), wm);   /* masks are -1 */
    code = _mm256_or_si256(d, _mm256_and_si256(L->m1, _mm256_set1_epi16(8)));
    /* could a magnitude outside d0 - 1 .. d0 + 1 beat best?  (own cost below it) */
    out = cr_l_own_below(&L->q0, L->m1, t1, best, L->d0, 1);
    /* the next trajectory: d0's G path shifted, or the winning neighbour's child and G path */
    {
        cr_lanes N;
        N.q0 = L->q1; N.d0 = L->d1; N.m1 = L->m2; N.e1 = L->e2;
        N.q1 = L->q2; N.d1 = c3; N.m2 = m3; N.e2 = e3;
        N.q2 = Q3;
        cr_lq_pick(&N.q0, &Km.r, wm);
        cr_lq_pick(&N.q0, &Kp.r, wp);
        cr_lq_pick(&N.q1, &Km.g2, wm);
        cr_lq_pick(&N.q1, &Kp.g2, wp);
        N.q2.pm = cr_lq_blend(cr_lq_blend(N.q2.pm, Km.g3.pm, wm), Kp.g3.pm, wp);
        N.q2.ps = cr_lq_blend(cr_lq_blend(N.q2.ps, Km.g3.ps, wm), Kp.g3.ps, wp);
        N.q2.i = cr_lq_blend(cr_lq_blend(N.q2.i, Km.g3.i, wm), Kp.g3.i, wp);
        N.d0 = cr_lq_blend(cr_lq_blend(N.d0, Km.c2, wm), Kp.c2, wp);
        N.m1 = cr_lq_blend(cr_lq_blend(N.m1, Km.m2, wm), Kp.m2, wp);
        N.d1 = cr_lq_blend(cr_lq_blend(N.d1, Km.c3, wm), Kp.c3, wp);
        N.m2 = cr_lq_blend(cr_lq_blend(N.m2, Km.m3, wm), Kp.m3, wp);
        N.e1 = cr_c_blend(cr_c_blend(N.e1, Km.e2, wm), Kp.e2, wp);
        N.e2 = cr_c_blend(cr_c_blend(N.e2, Km.e3, wm), Kp.e3, wp);
        if (!_mm256_testz_si256(out, out)) {
            /* rescore those lanes with all 8 magnitudes (cr_search_body's AVX2 path); where
             * the winner is outside the window, put its state into that lane */
            cr_u16 pm0, ps0, i0, m1, tt1, tt2, tt3, dd;
            unsigned bits = (unsigned)_mm256_movemask_epi8(out) & 0x55555555u;   /* bit 2j */
            pm0.v = L->q0.pm; ps0.v = L->q0.ps; i0.v = L->q0.i; m1.v = L->m1;
            tt1.v = t1; tt2.v = t2; tt3.v = t3; dd.v = d;
            for (; bits; bits &= bits - 1) {
                int j = cr_as_bsf(bits) >> 1;
                cr_sq P, Q2;
                cr_win W;
                int32_t o8s[8], dj, k2, mk2, e2;
                __m256i lane, lane32lo, lane32hi;
                P.pm = pm0.h[j];
                P.ps = ps0.h[j];
                P.b = 8 * i0.h[j];
                cr_oki_own(&P, tt1.h[j], P.b, m1.h[j], 0, o8s);
                dj = cr_oki_scores_avx2(&P, tt1.h[j], tt2.h[j], tt3.h[j], m1.h[j], o8s, &W) & 7;
                if (dj == dd.h[j])
                    continue;                         /* the window's winner stands */
                Q2 = W.G;
                k2 = cr_near(&cr_oki_search, &Q2, tt3.h[j], &mk2);
                e2 = (int32_t)cr_move(&cr_oki_search, &Q2, tt3.h[j], k2, mk2);
                lane = _mm256_cmpeq_epi16(_mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm256_set1_epi16((short)j));
                lane32lo = _mm256_unpacklo_epi16(lane, lane);
                lane32hi = _mm256_unpackhi_epi16(lane, lane);
#define CR_PUT(v, x) v = _mm256_blendv_epi8(v, _mm256_set1_epi16((short)(x)), lane)
#define CR_PUT32(c, x) c.lo = _mm256_blendv_epi8(c.lo, _mm256_set1_epi32(x), lane32lo); \
                       c.hi = _mm256_blendv_epi8(c.hi, _mm256_set1_epi32(x), lane32hi)
                CR_PUT(code, dj | (m1.h[j] & 8));
                CR_PUT(N.q0.pm, W.R.pm); CR_PUT(N.q0.ps, W.R.ps); CR_PUT(N.q0.i, W.R.b >> 3);
                CR_PUT(N.q0.s, cr_ima_step[8 + (W.R.b >> 3)]);
                CR_PUT(N.q1.pm, W.G.pm); CR_PUT(N.q1.ps, W.G.ps); CR_PUT(N.q1.i, W.G.b >> 3);
                CR_PUT(N.q1.s, cr_ima_step[8 + (W.G.b >> 3)]);
                CR_PUT(N.q2.pm, Q2.pm); CR_PUT(N.q2.ps, Q2.ps); CR_PUT(N.q2.i, Q2.b >> 3);
                CR_PUT(N.d0, W.k2 & 7); CR_PUT(N.m1, W.m2); CR_PUT(N.d1, k2 & 7); CR_PUT(N.m2, mk2);
                CR_PUT32(N.e1, W.g2c);
                CR_PUT32(N.e2, e2);
#undef CR_PUT
#undef CR_PUT32
            }
        }
        N.q2.s = cr_l_step(N.q2.i);
        *L = N;
    }
    return code;
}

/* 16 samples of 16 rows (x[j] + k) >> 4 into T[16 * k + j] (k = 0..15): 8 x 8 transposes
 * in each 128-bit half, then the halves exchanged. */
CR_AVX2_INLINE void cr_l_transpose16(const int16_t* const* x, ptrdiff_t k0, int16_t* T) {
    __m256i r[16], s[8], u[8], t[8], v[8];
    int j, h;
    for (j = 0; j < 16; j++)
        r[j] = _mm256_srai_epi16(_mm256_loadu_si256((const __m256i*)(x[j] + k0)), 4);
    for (h = 0; h < 2; h++) {
        __m256i* x8 = r + 8 * h;
        __m256i* o = h ? v : t;
        for (j = 0; j < 4; j++) {
            s[2 * j] = _mm256_unpacklo_epi16(x8[2 * j], x8[2 * j + 1]);
            s[2 * j + 1] = _mm256_unpackhi_epi16(x8[2 * j], x8[2 * j + 1]);
        }
        u[0] = _mm256_unpacklo_epi32(s[0], s[2]); u[1] = _mm256_unpackhi_epi32(s[0], s[2]);
        u[2] = _mm256_unpacklo_epi32(s[1], s[3]); u[3] = _mm256_unpackhi_epi32(s[1], s[3]);
        u[4] = _mm256_unpacklo_epi32(s[4], s[6]); u[5] = _mm256_unpackhi_epi32(s[4], s[6]);
        u[6] = _mm256_unpacklo_epi32(s[5], s[7]); u[7] = _mm256_unpackhi_epi32(s[5], s[7]);
        for (j = 0; j < 4; j++) {
            o[2 * j] = _mm256_unpacklo_epi64(u[j], u[j + 4]);
            o[2 * j + 1] = _mm256_unpackhi_epi64(u[j], u[j + 4]);
        }
    }
    for (j = 0; j < 8; j++) {
        _mm256_storeu_si256((__m256i*)(T + 16 * j), _mm256_permute2x128_si256(t[j], v[j], 0x20));
        _mm256_storeu_si256((__m256i*)(T + 16 * (8 + j)), _mm256_permute2x128_si256(t[j], v[j], 0x31));
    }
}

#define CR_LANE_CHUNK 128        /* samples per transposed block */
#define CR_LANES_MIN 8           /* fewer rows left: one at a time (8 rows: as fast either way) */

/* search_rows (below) for OKI, 16 rows at a time. */
CR_AVX2 static void cr_search_rows_oki_avx2(const int16_t* src, ptrdiff_t rows, ptrdiff_t n,
                                            ptrdiff_t nfin, int32_t* state, uint8_t* dst) {
    ptrdiff_t r0, a, k, nb = nfin / 2;
    int j;
    for (r0 = 0; r0 < rows; r0 += 16) {
        ptrdiff_t live = rows - r0 < 16 ? rows - r0 : 16;
        const int16_t* x[16];
        int32_t* st[16];
        cr_u16 pm, ps, idx;
        cr_lanes L = {0};
        int16_t T[(CR_LANE_CHUNK + 2) * 16];
        cr_u16 C[CR_LANE_CHUNK];
        if (live < CR_LANES_MIN) {
            for (; r0 < rows; r0++) {
                cr_search_state S;
                int held = -1;
                S.pm = state[3 * r0];
                S.idx = state[3 * r0 + 1];
                S.ps = state[3 * r0 + 2];
                cr_search(&cr_oki_search, &S, src + r0 * n, n, nfin, 4, &held, dst + r0 * nb);
                state[3 * r0] = S.pm;
                state[3 * r0 + 1] = S.idx;
                state[3 * r0 + 2] = S.ps;
            }
            return;
        }
        for (j = 0; j < 16; j++) {            /* spare lanes repeat the last row */
            ptrdiff_t r = r0 + (j < live ? j : live - 1);
            x[j] = src + r * n;
            st[j] = state + 3 * r;
            pm.h[j] = (int16_t)st[j][0];
            idx.h[j] = (int16_t)st[j][1];
            ps.h[j] = (int16_t)st[j][2];
        }
        for (a = 0; a < nfin; a += CR_LANE_CHUNK) {      /* lookahead: within x[0..n) */
            ptrdiff_t len = nfin - a < CR_LANE_CHUNK ? nfin - a : CR_LANE_CHUNK;
            k = 0;
            for (; k + 16 <= len + 2 && a + k + 16 <= n; k += 16)
                cr_l_transpose16(x, a + k, T + 16 * k);
            for (j = 0; j < 16; j++) {
                ptrdiff_t kk;
                for (kk = k; kk < len + 2; kk++)
                    T[16 * kk + j] = (int16_t)(x[j][a + kk < n ? a + kk : n - 1] >> 4);
            }
            if (a == 0)       /* (n > 0: the lanes always start here) */
                cr_lanes_start(&L, pm.v, ps.v, idx.v, _mm256_loadu_si256((const __m256i*)T),
                               _mm256_loadu_si256((const __m256i*)(T + 16)));
            for (k = 0; k < len; k++)
                C[k].v = cr_lanes_step(&L, _mm256_loadu_si256((const __m256i*)(T + 16 * k)),
                                       _mm256_loadu_si256((const __m256i*)(T + 16 * k + 16)),
                                       _mm256_loadu_si256((const __m256i*)(T + 16 * k + 32)));
            for (j = 0; j < live; j++) {
                uint8_t* o = dst + (r0 + j) * nb + a / 2;
                for (k = 0; k + 1 < len; k += 2)
                    o[k / 2] = (uint8_t)((C[k].h[j] << 4) | C[k + 1].h[j]);
            }
        }
        pm.v = L.q0.pm;
        ps.v = L.q0.ps;
        idx.v = L.q0.i;
        for (j = 0; j < live; j++) {
            st[j][0] = pm.h[j];
            st[j][1] = idx.h[j];
            st[j][2] = ps.h[j];
        }
    }
}

/* --- AVX2: all 8 first magnitudes' tails at once (IMA in WAV files) -----------------------
 *
 * cr_oki_scores_avx2's counterpart for IMA, one magnitude per lane, built from the OKI lane
 * coder's steps (cr_l_*, above) in 32-bit lanes: IMA's predictors and predictor changes (up
 * to 15 * 32767 / 8) need 32 bits, and its squared errors more, so costs are doubles (exact:
 * a total is an integer below 8 * 6 * 2^32 + 8 < 2^39, far below 2^53, so compares and
 * minimums are those of the 64-bit costs).  Steps (89 entries) are gathered from
 * cr_ima_step; decision levels and predictor changes are computed from the step.
 *
 * (Measured and dropped, 2026-12-01: 8 IMA streams side by side, one per lane, as the OKI
 * lanes do (branch ima, commit eb20538): about as fast as this one-stream coder on speech
 * and noise, 38-44 ns a sample, and 2-3x slower on full-scale square waves, where most
 * magnitudes clamp to the same predictor and the lanes rescore often.  See bench/RESULTS.md.) */

typedef struct { __m256d lo, hi; } cr_wd;       /* 8 costs: lanes 0-3, lanes 4-7 */
typedef struct { __m256i pm, ps, i, s; } cr_wq; /* both predictors, step index, step */
typedef union { __m256i v; int32_t w[8]; } cr_u32w;
typedef union { __m256d v; double f[4]; } cr_u64d;

CR_AVX2_INLINE __m256i cr_w_step(__m256i idx) {
    return _mm256_i32gather_epi32((const int*)cr_ima_step, idx, 4);
}

CR_AVX2_INLINE __m256i cr_w_neg_if(__m256i v, __m256i m) {
    return _mm256_sub_epi32(_mm256_xor_si256(v, m), m);
}

CR_AVX2_INLINE __m256i cr_w_clamp(__m256i v) {
    return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(-32768)), _mm256_set1_epi32(32767));
}

/* The step index after magnitude c: clamp(i + {-1,-1,-1,-1,2,4,6,8}[c], 0, 88). */
CR_AVX2_INLINE __m256i cr_w_next(__m256i i, __m256i c) {
    __m256i up = _mm256_sub_epi32(_mm256_add_epi32(c, c), _mm256_set1_epi32(6));
    __m256i adj = _mm256_blendv_epi8(_mm256_set1_epi32(-1), up, _mm256_cmpgt_epi32(c, _mm256_set1_epi32(3)));
    return _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(i, adj), _mm256_setzero_si256()),
                            _mm256_set1_epi32(CR_IMA_STEPS - 1));
}

/* The shift-sum changes of magnitudes 0..7 at steps s. */
CR_AVX2_INLINE void cr_w_rs8(__m256i s, __m256i* rs) {
    __m256i a = _mm256_srli_epi32(s, 3), q = _mm256_srli_epi32(s, 2), h = _mm256_srli_epi32(s, 1);
    rs[0] = a; rs[1] = _mm256_add_epi32(a, q); rs[2] = _mm256_add_epi32(a, h);
    rs[3] = _mm256_add_epi32(rs[2], q); rs[4] = _mm256_add_epi32(a, s);
    rs[5] = _mm256_add_epi32(rs[4], q); rs[6] = _mm256_add_epi32(rs[4], h);
    rs[7] = _mm256_add_epi32(rs[6], q);
}

/* Both roundings' predictor changes of magnitudes c at steps s. */
CR_AVX2_INLINE void cr_w_r(__m256i s, __m256i c, __m256i* rm, __m256i* rs) {
    __m256i c21 = _mm256_add_epi32(_mm256_add_epi32(c, c), _mm256_set1_epi32(1));
    __m256i b2 = _mm256_srai_epi32(_mm256_slli_epi32(c, 29), 31);
    __m256i b1 = _mm256_srai_epi32(_mm256_slli_epi32(c, 30), 31);
    __m256i b0 = _mm256_srai_epi32(_mm256_slli_epi32(c, 31), 31);
    *rm = _mm256_srli_epi32(_mm256_mullo_epi32(s, c21), 3);
    *rs = _mm256_add_epi32(_mm256_add_epi32(_mm256_srli_epi32(s, 3), _mm256_and_si256(b2, s)),
                           _mm256_add_epi32(_mm256_and_si256(b1, _mm256_srli_epi32(s, 1)),
                                            _mm256_and_si256(b0, _mm256_srli_epi32(s, 2))));
}

/* The magnitude nearest to t for both predictors at step s (the count of k = 1..7 with
 * 2|u| > sum(k-1) + sum(k), sum = rm + rs, u = 2t - pm - ps); *m the sign mask. */
CR_AVX2_INLINE __m256i cr_w_near(__m256i t, __m256i pm, __m256i ps, __m256i s, __m256i* m) {
    __m256i u = _mm256_sub_epi32(_mm256_add_epi32(t, t), _mm256_add_epi32(pm, ps));
    __m256i au2, mul = s, s2x = _mm256_add_epi32(s, s), rs[8], sum[8], a, b;
    int d;
    *m = _mm256_srai_epi32(u, 31);
    au2 = _mm256_abs_epi32(u);
    au2 = _mm256_add_epi32(au2, au2);
    cr_w_rs8(s, rs);
    for (d = 0; d < 8; d++) {
        sum[d] = _mm256_add_epi32(rs[d], _mm256_srli_epi32(mul, 3));      /* mul = (2d+1) s */
        mul = _mm256_add_epi32(mul, s2x);
    }
    for (d = 1; d < 8; d++)
        sum[d - 1] = _mm256_cmpgt_epi32(au2, _mm256_add_epi32(sum[d - 1], sum[d]));
    a = _mm256_add_epi32(_mm256_add_epi32(sum[0], sum[1]), _mm256_add_epi32(sum[2], sum[3]));
    b = _mm256_add_epi32(_mm256_add_epi32(sum[4], sum[5]), sum[6]);
    return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_add_epi32(a, b));
}

/* Move both predictors by magnitude c (sign mask m) at step s. */
CR_AVX2_INLINE void cr_w_move(__m256i s, __m256i c, __m256i m, __m256i* pm, __m256i* ps) {
    __m256i rm, rs;
    cr_w_r(s, c, &rm, &rs);
    *pm = cr_w_clamp(_mm256_add_epi32(*pm, cr_w_neg_if(rm, m)));
    *ps = cr_w_clamp(_mm256_add_epi32(*ps, cr_w_neg_if(rs, m)));
}

CR_AVX2_INLINE __m256d cr_w_lo(__m256i v) { return _mm256_cvtepi32_pd(_mm256_castsi256_si128(v)); }
CR_AVX2_INLINE __m256d cr_w_hi(__m256i v) { return _mm256_cvtepi32_pd(_mm256_extracti128_si256(v, 1)); }

/* a^2 + b^2 as doubles (exact: integers below 2^33). */
CR_AVX2_INLINE cr_wd cr_w_sq2(__m256i a, __m256i b) {
    __m256d al = cr_w_lo(a), ah = cr_w_hi(a), bl = cr_w_lo(b), bh = cr_w_hi(b);
    cr_wd c;
    c.lo = _mm256_add_pd(_mm256_mul_pd(al, al), _mm256_mul_pd(bl, bl));
    c.hi = _mm256_add_pd(_mm256_mul_pd(ah, ah), _mm256_mul_pd(bh, bh));
    return c;
}

/* Squared errors (t - pm)^2 + (t - ps)^2. */
CR_AVX2_INLINE cr_wd cr_w_cost(__m256i t, __m256i pm, __m256i ps) {
    return cr_w_sq2(_mm256_sub_epi32(t, pm), _mm256_sub_epi32(t, ps));
}

CR_AVX2_INLINE cr_wd cr_wd_add(cr_wd a, cr_wd b) {
    cr_wd c;
    c.lo = _mm256_add_pd(a.lo, b.lo);
    c.hi = _mm256_add_pd(a.hi, b.hi);
    return c;
}

CR_AVX2_INLINE cr_wd cr_wd_min(cr_wd a, cr_wd b) {
    cr_wd c;
    c.lo = _mm256_min_pd(a.lo, b.lo);
    c.hi = _mm256_min_pd(a.hi, b.hi);
    return c;
}

/* 8 * c + d (d: 32-bit lanes 0..7). */
CR_AVX2_INLINE cr_wd cr_wd_total(cr_wd c, __m256i d) {
    const __m256d eight = _mm256_set1_pd(8.0);
    cr_wd t;
    t.lo = _mm256_add_pd(_mm256_mul_pd(c.lo, eight), cr_w_lo(d));
    t.hi = _mm256_add_pd(_mm256_mul_pd(c.hi, eight), cr_w_hi(d));
    return t;
}

/* One state moved by its nearest magnitude at t (as cr_l_greedy; the step not looked up). */
CR_AVX2_INLINE __m256i cr_w_greedy(const cr_wq* P, __m256i t, cr_wq* R, __m256i* m, cr_wd* e) {
    __m256i c = cr_w_near(t, P->pm, P->ps, P->s, m);
    R->pm = P->pm;
    R->ps = P->ps;
    cr_w_move(P->s, c, *m, &R->pm, &R->ps);
    R->i = cr_w_next(P->i, c);
    *e = cr_w_cost(t, R->pm, R->ps);
    return c;
}

typedef struct { cr_wq r, g2, g3; __m256i c2, m2, c3, m3; cr_wd e2, e3; } cr_wcand;

/* Candidate first magnitudes c from Q0 (sign m1), then their tails (as cr_l_candidate). */
CR_AVX2_INLINE cr_wd cr_w_candidate(const cr_wq* Q0, __m256i c, __m256i m1, __m256i t1, __m256i t2,
                                    __m256i t3, cr_wcand* K) {
    cr_wd own, a2, a3, tail;
    cr_wq A2, A3;
    __m256i ca, ma3;
    K->r.pm = Q0->pm;
    K->r.ps = Q0->ps;
    cr_w_move(Q0->s, c, m1, &K->r.pm, &K->r.ps);
    own = cr_w_cost(t1, K->r.pm, K->r.ps);
    K->r.i = cr_w_next(Q0->i, c);
    K->r.s = cr_w_step(K->r.i);
    K->c2 = cr_w_greedy(&K->r, t2, &K->g2, &K->m2, &K->e2);
    K->g2.s = cr_w_step(K->g2.i);
    K->c3 = cr_w_greedy(&K->g2, t3, &K->g3, &K->m3, &K->e3);
    ca = _mm256_min_epi32(_mm256_add_epi32(K->c2, _mm256_set1_epi32(1)), _mm256_set1_epi32(7));
    A2.pm = K->r.pm;
    A2.ps = K->r.ps;
    cr_w_move(K->r.s, ca, K->m2, &A2.pm, &A2.ps);
    a2 = cr_w_cost(t2, A2.pm, A2.ps);
    A2.i = cr_w_next(K->r.i, ca);
    A2.s = cr_w_step(A2.i);
    cr_w_greedy(&A2, t3, &A3, &ma3, &a3);
    tail = cr_wd_min(cr_wd_add(K->e2, K->e3), cr_wd_add(a2, a3));
    return cr_wd_total(cr_wd_add(own, tail), c);
}

/* The 8 totals 8 * (own(d) + tail(child_d)) + d of one IMA state P (sign mask m1), one
 * magnitude per lane (cr_w_candidate with P in every lane): returns the smallest, *W the
 * winner's child and its tail's G step (as cr_oki_scores_avx2 does for OKI). */
CR_AVX2 static cr_cost cr_ima_scores_avx2(const cr_sq* P, int32_t t1, int32_t t2, int32_t t3,
                                          int32_t m1, cr_sq* R, cr_sq* G, cr_cost* g2c, int32_t* k2,
                                          int32_t* m2) {
    cr_wq Q0;
    cr_wcand K;
    cr_wd tot;
    cr_u64d lo, hi, e2l, e2h;
    cr_u32w rpm, rps, ri, gpm, gps, gi, c2, mm2;
    double best;
    int d, win = 0;
    Q0.pm = _mm256_set1_epi32(P->pm);
    Q0.ps = _mm256_set1_epi32(P->ps);
    Q0.i = _mm256_set1_epi32(P->b >> 3);
    Q0.s = _mm256_set1_epi32(cr_ima_step[P->b >> 3]);
    tot = cr_w_candidate(&Q0, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(m1),
                         _mm256_set1_epi32(t1), _mm256_set1_epi32(t2), _mm256_set1_epi32(t3), &K);
    lo.v = tot.lo;
    hi.v = tot.hi;
    best = lo.f[0];
    for (d = 1; d < 8; d++) {
        double v = d < 4 ? lo.f[d] : hi.f[d - 4];
        if (v < best) {
            best = v;
            win = d;
        }
    }
    rpm.v = K.r.pm; rps.v = K.r.ps; ri.v = K.r.i;
    gpm.v = K.g2.pm; gps.v = K.g2.ps; gi.v = K.g2.i;
    c2.v = K.c2; mm2.v = K.m2;
    e2l.v = K.e2.lo; e2h.v = K.e2.hi;
    R->pm = rpm.w[win]; R->ps = rps.w[win]; R->b = 8 * ri.w[win];
    G->pm = gpm.w[win]; G->ps = gps.w[win]; G->b = 8 * gi.w[win];
    *g2c = (cr_cost)(win < 4 ? e2l.f[win] : e2h.f[win - 4]);
    *k2 = 8 * ri.w[win] + c2.w[win];
    *m2 = mm2.w[win];
    return (cr_cost)best;
}

#undef CR_AVX2_INLINE
#undef CR_AVX2
#endif

/* --- the encoder ------------------------------------------------------------------------ */

#if CR_AS_AVX2
/* cr_own in AVX2 (any tables, 32-bit entries): the same 8 costs, 64-bit products of the
 * 32-bit errors (_mm256_mul_epi32 on the even and the odd lanes). */
__attribute__((target("avx2"))) static inline unsigned cr_own_avx2(
        const cr_search_tables* Q, const cr_sq* P, int32_t t, int32_t base, int32_t m, cr_cost J,
        cr_cost* o8) {
    __m256i vm = _mm256_set1_epi32(m), lo = _mm256_set1_epi32(Q->lo), hi = _mm256_set1_epi32(Q->hi);
    __m256i rm = _mm256_loadu_si256((const __m256i*)(Q->rm + base));
    __m256i rs = _mm256_loadu_si256((const __m256i*)(Q->rs + base));
    __m256i vt = _mm256_set1_epi32(t), a, b, ev, od, x, y, vJ = _mm256_set1_epi64x(J);
    rm = _mm256_sub_epi32(_mm256_xor_si256(rm, vm), vm);
    rs = _mm256_sub_epi32(_mm256_xor_si256(rs, vm), vm);
    a = _mm256_sub_epi32(vt, _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(_mm256_set1_epi32(P->pm), rm), lo), hi));
    b = _mm256_sub_epi32(vt, _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(_mm256_set1_epi32(P->ps), rs), lo), hi));
    ev = _mm256_add_epi64(_mm256_mul_epi32(a, a), _mm256_mul_epi32(b, b));            /* d = 0, 2, 4, 6 */
    a = _mm256_srli_epi64(a, 32);
    b = _mm256_srli_epi64(b, 32);
    od = _mm256_add_epi64(_mm256_mul_epi32(a, a), _mm256_mul_epi32(b, b));            /* d = 1, 3, 5, 7 */
    ev = _mm256_add_epi64(_mm256_slli_epi64(ev, 3), _mm256_setr_epi64x(0, 2, 4, 6));
    od = _mm256_add_epi64(_mm256_slli_epi64(od, 3), _mm256_setr_epi64x(1, 3, 5, 7));
    x = _mm256_unpacklo_epi64(ev, od);                   /* d = 0, 1 | 4, 5 */
    y = _mm256_unpackhi_epi64(ev, od);                   /* d = 2, 3 | 6, 7 */
    ev = _mm256_permute2x128_si256(x, y, 0x20);          /* d = 0..3 */
    od = _mm256_permute2x128_si256(x, y, 0x31);          /* d = 4..7 */
    _mm256_storeu_si256((__m256i*)o8, ev);
    _mm256_storeu_si256((__m256i*)(o8 + 4), od);
    return (unsigned)(_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(vJ, ev)))
                      | (_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(vJ, od))) << 4));
}
#endif

/* Code x[0..nfin) (targets x >> shift; nfin <= n) looking ahead within x[0..n), the last
 * sample repeated past it.  Codes pair into bytes (high nibble first) through *held (-1:
 * none), or with held NULL are written one per byte.  Returns the bytes written.  simd: 1
 * the SSE2 primitives (OKI tables only), 2 those and the AVX2 scorer (OKI), 3 the portable
 * ones with the 8 own costs in AVX2 (cr_own_avx2, any tables: IMA). */
CR_AS_INLINE ptrdiff_t cr_search_body(const cr_search_tables* Q, const int simd, cr_search_state* S,
                                      const int16_t* x, ptrdiff_t n, ptrdiff_t nfin, int shift,
                                      int* held, uint8_t* dst) {
#define CR_T(j) (x[(j) < n ? (j) : n - 1] >> shift)
    cr_sq Q0, Q1, Q2, Q3;
    int32_t k1, m1, k2, m2, k3, m3;
    cr_cost e1, e2, e3;
    ptrdiff_t i, o = 0;
    if (nfin <= 0)
        return 0;
    Q0.pm = S->pm;
    Q0.ps = S->ps;
    Q0.b = 8 * S->idx;
    k1 = cr_near(Q, &Q0, CR_T(0), &m1);
    Q1 = Q0;
    e1 = cr_move(Q, &Q1, CR_T(0), k1, m1);
    k2 = cr_near(Q, &Q1, CR_T(1), &m2);
    Q2 = Q1;
    e2 = cr_move(Q, &Q2, CR_T(1), k2, m2);
    for (i = 0; i < nfin; i++) {
        int32_t t1 = CR_T(i), t2 = CR_T(i + 1), t3 = CR_T(i + 2);
        int32_t d0 = k1 & 7, base = k1 & ~7, d = d0;
        cr_cost J, best;
        cr_sq WR = Q0, WG = Q0;                      /* a winning challenger: child, G step */
        cr_cost wg2 = 0;
        int32_t wk2 = 0, wm2 = 0;
        unsigned mask;
        cr_cost o8[8];
#if CR_AS_SSE2
        int32_t o8s[8];
#endif
        uint32_t c;
        k3 = cr_near(Q, &Q2, t3, &m3);
        Q3 = Q2;
        e3 = cr_move(Q, &Q3, t3, k3, m3);
        J = (e1 + e2 + e3) * 8 + d0;                  /* d0's G path */
#if CR_AS_SSE2
        if (simd == 1 || simd == 2)
            mask = cr_oki_own(&Q0, t1, base, m1, J, o8s);
        else
#endif
#if CR_AS_AVX2
        if (simd == 3)
            mask = cr_own_avx2(Q, &Q0, t1, base, m1, J, o8);
        else
#endif
            mask = cr_own(Q, &Q0, t1, base, m1, J, o8);
        mask &= ~(1u << d0);
#if CR_AS_AVX2
        if (mask && simd == 3) {
            /* every magnitude's total at once (the same numbers as below) */
            cr_sq R, G;
            cr_cost g2c;
            int32_t gk, gm;
            best = cr_ima_scores_avx2(&Q0, t1, t2, t3, m1, &R, &G, &g2c, &gk, &gm);
            d = (int32_t)(best & 7);
            if (d != d0) {
                WR = R; WG = G; wg2 = g2c; wk2 = gk; wm2 = gm;
            }
        } else if (mask && simd == 2) {
            /* every magnitude's total at once (the same numbers as below) */
            cr_win W;
            best = cr_oki_scores_avx2(&Q0, t1, t2, t3, m1, o8s, &W);
            d = (int32_t)(best & 7);
            if (d != d0) {
                WR = W.R; WG = W.G; wg2 = W.g2c; wk2 = W.k2; wm2 = W.m2;
            }
        } else
#endif
        if (mask) {
            /* d0's A path (its G path is e2 + e3), then each challenger's tail, skipped once
             * its own cost reaches the best total */
            cr_sq G, R;
            cr_cost g2c, own;
            int32_t gk, gm, dd;
            best = J;
            if ((k2 & 7) != 7) {
                cr_sq A = Q1;
                cr_cost a = cr_move(Q, &A, t2, k2 + 1, m2);
                gk = cr_near(Q, &A, t3, &gm);
                a = (e1 + a + cr_move(Q, &A, t3, gk, gm)) * 8 + d0;
                best = a < best ? a : best;
            }
            for (; mask; mask &= mask - 1) {
                cr_cost tot;
                dd = cr_as_bsf(mask);
#if CR_AS_SSE2
                if (simd == 1 || simd == 2 ? o8s[dd] >= best : o8[dd] >= best)
#else
                if (o8[dd] >= best)
#endif
                    continue;
                R = Q0;
                own = cr_move(Q, &R, t1, base + dd, m1);
#if CR_AS_SSE2
                if (simd == 1 || simd == 2)
                    tot = (own + cr_oki_tail(&R, t2, t3, &G, &g2c, &gk, &gm)) * 8 + dd;
                else
#endif
                    tot = (own + cr_tail(Q, &R, t2, t3, &G, &g2c, &gk, &gm)) * 8 + dd;
                if (tot < best) {
                    best = tot;
                    WR = R; WG = G; wg2 = g2c; wk2 = gk; wm2 = gm;
                }
            }
            d = (int32_t)(best & 7);
        }
        c = (uint32_t)d | ((uint32_t)m1 & 8);
        if (held == NULL) {
            dst[o++] = (uint8_t)c;
        } else if (*held >= 0) {
            dst[o++] = (uint8_t)(((uint32_t)*held << 4) | c);
            *held = -1;
        } else {
            *held = (int)c;
        }
        if (d == d0) {
            Q0 = Q1; Q1 = Q2; Q2 = Q3;
            k1 = k2; m1 = m2; e1 = e2;
            k2 = k3; m2 = m3; e2 = e3;
        } else {
            /* the winner's child, and its tail's G path as the new greedy trajectory */
            Q0 = WR; Q1 = WG;
            e1 = wg2; k1 = wk2; m1 = wm2;
            k2 = cr_near(Q, &Q1, t3, &m2);
            Q2 = Q1;
            e2 = cr_move(Q, &Q2, t3, k2, m2);
        }
    }
    S->pm = Q0.pm;
    S->ps = Q0.ps;
    S->idx = Q0.b >> 3;
    return o;
#undef CR_T
}

static ptrdiff_t cr_search_portable(const cr_search_tables* Q, cr_search_state* S, const int16_t* x,
                                    ptrdiff_t n, ptrdiff_t nfin, int shift, int* held, uint8_t* dst) {
    return cr_search_body(Q, 0, S, x, n, nfin, shift, held, dst);
}

#if CR_AS_SSE2
static ptrdiff_t cr_search_oki_sse2(cr_search_state* S, const int16_t* x, ptrdiff_t n, ptrdiff_t nfin,
                                    int* held, uint8_t* dst) {
    return cr_search_body(&cr_oki_search, 1, S, x, n, nfin, 4, held, dst);
}
#endif
#if CR_AS_AVX2
__attribute__((target("avx2")))
static ptrdiff_t cr_search_ima_avx2(const cr_search_tables* Q, cr_search_state* S, const int16_t* x,
                                    ptrdiff_t n, ptrdiff_t nfin, int shift, int* held, uint8_t* dst) {
    return cr_search_body(Q, 3, S, x, n, nfin, shift, held, dst);
}

__attribute__((target("avx2")))
static ptrdiff_t cr_search_oki_avx2(cr_search_state* S, const int16_t* x, ptrdiff_t n, ptrdiff_t nfin,
                                    int* held, uint8_t* dst) {
    return cr_search_body(&cr_oki_search, 2, S, x, n, nfin, 4, held, dst);
}
#endif

/* The search encoder over the tables Q (cr_oki_search or cr_ima_search). */
static ptrdiff_t cr_search(const cr_search_tables* Q, cr_search_state* S, const int16_t* x,
                           ptrdiff_t n, ptrdiff_t nfin, int shift, int* held, uint8_t* dst) {
#if CR_AS_SSE2
    if (Q == &cr_oki_search && shift == 4) {
        int level = cr_isa();
#if CR_AS_AVX2
        if (level >= CR_ISA_AVX2)
            return cr_search_oki_avx2(S, x, n, nfin, held, dst);
#endif
        if (level >= CR_ISA_SSE2)
            return cr_search_oki_sse2(S, x, n, nfin, held, dst);
    }
#endif
#if CR_AS_AVX2
    if (Q != &cr_oki_search && cr_isa() >= CR_ISA_AVX2)
        return cr_search_ima_avx2(Q, S, x, n, nfin, shift, held, dst);
#endif
    return cr_search_portable(Q, S, x, n, nfin, shift, held, dst);
}

/* Each row of a (rows, n) array (n even) coded as a whole stream from state row r =
 * (pm, index, ps), which is updated; bytes high nibble first, n / 2 per row.  OKI on AVX2
 * runs 16 rows in lanes (the same codes as one row at a time). */
static void cr_search_rows(const cr_search_tables* Q, const int16_t* src, ptrdiff_t rows, ptrdiff_t n,
                           ptrdiff_t nfin, int32_t* state, int shift, uint8_t* dst) {
    ptrdiff_t r;
    if (rows <= 0 || n <= 0 || nfin <= 0 || nfin > n)
        return;
#if CR_AS_AVX2
    if (Q == &cr_oki_search && shift == 4 && cr_isa() >= CR_ISA_AVX2) {
        cr_search_rows_oki_avx2(src, rows, n, nfin, state, dst);
        return;
    }
#endif
    for (r = 0; r < rows; r++) {
        cr_search_state S;
        int held = -1;
        S.pm = state[3 * r];
        S.idx = state[3 * r + 1];
        S.ps = state[3 * r + 2];
        cr_search(Q, &S, src + r * n, n, nfin, shift, &held, dst + r * (nfin / 2));
        state[3 * r] = S.pm;
        state[3 * r + 1] = S.idx;
        state[3 * r + 2] = S.ps;
    }
}

#endif
