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
 * hide the add latency) and, on x86, from 8-lane vectors.  Cython cannot express vector
 * intrinsics or per-function target attributes, which is why this part is C.
 */
#ifndef CALLRECORDER_RESAMPLE_SIMD_H
#define CALLRECORDER_RESAMPLE_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>

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

/* ---- portable C (any CPU) -------------------------------------------------------- */

static inline float cr_rs_hsum8(const float a[8])
{
    float s0 = a[0] + a[4], s1 = a[1] + a[5], s2 = a[2] + a[6], s3 = a[3] + a[7];
    return (s0 + s2) + (s1 + s3);
}

static void cr_rs_run_c(const float *coef, int T, const int32_t *next_phase,
                        const int32_t *advance, int phase, const float *x, ptrdiff_t nout,
                        float *y)
{
    ptrdiff_t k;
    int j, l;
    for (k = 0; k < nout; k++) {
        const float *c = coef + (size_t)phase * (size_t)T;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (j = 0; j < T; j += 8)
            for (l = 0; l < 8; l++)
                acc[l] = acc[l] + c[j + l] * x[j + l];
        y[k] = cr_rs_hsum8(acc);
        x += advance[phase];
        phase = next_phase[phase];
    }
}

#if CR_RS_X86
/* ---- SSE2: the x86-64 baseline ----------------------------------------------------- */

static inline float cr_rs_hsum_sse(__m128 lo, __m128 hi)
{
    __m128 s = _mm_add_ps(lo, hi);                       /* a0+a4 a1+a5 a2+a6 a3+a7 */
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));       /* (s0+s2) (s1+s3) . .     */
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

#define CR_RS_SSE_STEP(C, X, LO, HI)                                                    \
    LO = _mm_add_ps(LO, _mm_mul_ps(_mm_loadu_ps((C) + j), _mm_loadu_ps((X) + j)));     \
    HI = _mm_add_ps(HI, _mm_mul_ps(_mm_loadu_ps((C) + j + 4), _mm_loadu_ps((X) + j + 4)))

static void cr_rs_run_sse2(const float *coef, int T, const int32_t *next_phase,
                           const int32_t *advance, int phase, const float *x, ptrdiff_t nout,
                           float *y)
{
    ptrdiff_t k = 0;
    int j;
    for (; k + 4 <= nout; k += 4) {
        const float *c0 = coef + (size_t)phase * T, *x0 = x;
        x += advance[phase]; phase = next_phase[phase];
        const float *c1 = coef + (size_t)phase * T, *x1 = x;
        x += advance[phase]; phase = next_phase[phase];
        const float *c2 = coef + (size_t)phase * T, *x2 = x;
        x += advance[phase]; phase = next_phase[phase];
        const float *c3 = coef + (size_t)phase * T, *x3 = x;
        x += advance[phase]; phase = next_phase[phase];
        __m128 l0 = _mm_setzero_ps(), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0, h3 = l0;
        for (j = 0; j < T; j += 8) {
            CR_RS_SSE_STEP(c0, x0, l0, h0);
            CR_RS_SSE_STEP(c1, x1, l1, h1);
            CR_RS_SSE_STEP(c2, x2, l2, h2);
            CR_RS_SSE_STEP(c3, x3, l3, h3);
        }
        y[k] = cr_rs_hsum_sse(l0, h0);
        y[k + 1] = cr_rs_hsum_sse(l1, h1);
        y[k + 2] = cr_rs_hsum_sse(l2, h2);
        y[k + 3] = cr_rs_hsum_sse(l3, h3);
    }
    for (; k < nout; k++) {
        const float *c0 = coef + (size_t)phase * T;
        __m128 l0 = _mm_setzero_ps(), h0 = l0;
        for (j = 0; j < T; j += 8) {
            CR_RS_SSE_STEP(c0, x, l0, h0);
        }
        y[k] = cr_rs_hsum_sse(l0, h0);
        x += advance[phase];
        phase = next_phase[phase];
    }
}
#endif /* CR_RS_X86 */

#if CR_RS_HAVE_AVX2_VARIANT
/* ---- AVX2 (no FMA), picked at run time --------------------------------------------- */

__attribute__((target("avx2"))) static inline float cr_rs_hsum_avx(__m256 a)
{
    return cr_rs_hsum_sse(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
}

#define CR_RS_AVX_STEP(C, X, A) \
    A = _mm256_add_ps(A, _mm256_mul_ps(_mm256_loadu_ps((C) + j), _mm256_loadu_ps((X) + j)))

__attribute__((target("avx2"))) static void
cr_rs_run_avx2(const float *coef, int T, const int32_t *next_phase, const int32_t *advance,
               int phase, const float *x, ptrdiff_t nout, float *y)
{
    ptrdiff_t k = 0;
    int j;
    for (; k + 4 <= nout; k += 4) {
        const float *c0 = coef + (size_t)phase * T, *x0 = x;
        x += advance[phase]; phase = next_phase[phase];
        const float *c1 = coef + (size_t)phase * T, *x1 = x;
        x += advance[phase]; phase = next_phase[phase];
        const float *c2 = coef + (size_t)phase * T, *x2 = x;
        x += advance[phase]; phase = next_phase[phase];
        const float *c3 = coef + (size_t)phase * T, *x3 = x;
        x += advance[phase]; phase = next_phase[phase];
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (j = 0; j < T; j += 8) {
            CR_RS_AVX_STEP(c0, x0, a0);
            CR_RS_AVX_STEP(c1, x1, a1);
            CR_RS_AVX_STEP(c2, x2, a2);
            CR_RS_AVX_STEP(c3, x3, a3);
        }
        y[k] = cr_rs_hsum_avx(a0);
        y[k + 1] = cr_rs_hsum_avx(a1);
        y[k + 2] = cr_rs_hsum_avx(a2);
        y[k + 3] = cr_rs_hsum_avx(a3);
    }
    for (; k < nout; k++) {
        const float *c0 = coef + (size_t)phase * T;
        __m256 a0 = _mm256_setzero_ps();
        for (j = 0; j < T; j += 8) {
            CR_RS_AVX_STEP(c0, x, a0);
        }
        y[k] = cr_rs_hsum_avx(a0);
        x += advance[phase];
        phase = next_phase[phase];
    }
}
#endif

/* ---- dispatch ------------------------------------------------------------------------ */

/* 0 = portable C, 1 = SSE2, 2 = AVX2.  Chosen once at module import. */
static int cr_rs_isa = 0;
static cr_rs_run_fn cr_rs_run_ptr = cr_rs_run_c;

static int cr_rs_select(int isa)
{
    /* isa < 0: the best this CPU has; else force a variant (tests compare them). */
    int best = 0;
#if CR_RS_X86
    best = 1;
#if CR_RS_HAVE_AVX2_VARIANT
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        best = 2;
#endif
#endif
    if (isa < 0 || isa > best)
        isa = best;
    cr_rs_isa = isa;
    cr_rs_run_ptr = cr_rs_run_c;
#if CR_RS_X86
    if (isa == 1)
        cr_rs_run_ptr = cr_rs_run_sse2;
#endif
#if CR_RS_HAVE_AVX2_VARIANT
    if (isa == 2)
        cr_rs_run_ptr = cr_rs_run_avx2;
#endif
    return isa;
}

static inline void cr_rs_run(const float *coef, int T, const int32_t *next_phase,
                             const int32_t *advance, int phase, const float *x,
                             ptrdiff_t nout, float *y)
{
    cr_rs_run_ptr(coef, T, next_phase, advance, phase, x, nout, y);
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
        if (m)
            clipped += __builtin_popcount(m);
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
