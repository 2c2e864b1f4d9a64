/* G.711 decoding with SIMD arithmetic, chosen at run time.
 *
 * A table decoder is bound by memory operations (load the code, load the table, store the
 * sample).  Here 16 codes are decoded at once from the G.711 expansion rule itself:
 *   A-law:  v = c ^ 0x55, seg = (v >> 4) & 7, mant = v & 15,
 *           |x| = ((mant << 4) + 8 + (seg ? 256 : 0)) << max(seg - 1, 0),  negative if !(c & 0x80)
 *   mu-law: i = ~c, e = (i >> 4) & 7, mant = i & 15,
 *           |x| = ((33 + 2 mant) << (e + 2)) - 132,                        negative if !(c & 0x80)
 * The per-lane power of two comes from a 16-entry byte shuffle (SSSE3/AVX2 pshufb) and
 * is applied with a 16-bit multiply.  The results equal the G.191 tables bit for bit (the
 * tests compare every code).  cr_g711_simd_level() says which variant runs:
 * 2 = AVX2, 1 = SSSE3, 0 = none (the caller then uses its table loop).
 * No -march flags are needed: the variants carry target attributes. */
#ifndef CALLRECORDER_G711_SIMD_H
#define CALLRECORDER_G711_SIMD_H

#include <stdint.h>
#include <stddef.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CR_G711_X86 1
#include <immintrin.h>
#else
#define CR_G711_X86 0
#endif

#if CR_G711_X86

/* One code by the same rules, for the tails. */
static inline int16_t cr_alaw_dec1(uint8_t c) {
    int v = c ^ 0x55, seg = (v >> 4) & 7, mag = ((v & 15) << 4) + 8;
    if (seg) mag = (mag + 256) << (seg - 1);
    return (int16_t)((c & 0x80) ? mag : -mag);
}

static inline int16_t cr_ulaw_dec1(uint8_t c) {
    int inv = (~c) & 0xFF, e = (inv >> 4) & 7;
    int mag = ((33 + 2 * (inv & 15)) << (e + 2)) - 132;
    return (int16_t)((c & 0x80) ? mag : -mag);
}

/* Shuffle tables: A-law pow2 by segment {1,1,2,4,8,16,32,64}; mu-law 1 << e. */

__attribute__((target("avx2"))) static void
cr_alaw_decode_avx2(const uint8_t* src, int16_t* dst, ptrdiff_t n) {
    const __m256i pow2 = _mm256_setr_epi8(1, 1, 2, 4, 8, 16, 32, 64, 0, 0, 0, 0, 0, 0, 0, 0,
                                          1, 1, 2, 4, 8, 16, 32, 64, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i x55 = _mm256_set1_epi16(0x55), m7 = _mm256_set1_epi16(7);
    const __m256i m15 = _mm256_set1_epi16(15), m80 = _mm256_set1_epi16(0x80);
    const __m256i c8 = _mm256_set1_epi16(8), c256 = _mm256_set1_epi16(256);
    const __m256i hi = _mm256_set1_epi16((short)0x8000), zero = _mm256_setzero_si256();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i c = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(src + i)));
        __m256i v = _mm256_xor_si256(c, x55);
        __m256i seg = _mm256_and_si256(_mm256_srli_epi16(v, 4), m7);
        __m256i mant = _mm256_and_si256(v, m15);
        __m256i base = _mm256_add_epi16(_mm256_slli_epi16(mant, 4), c8);
        __m256i segnz = _mm256_cmpgt_epi16(seg, zero);
        base = _mm256_add_epi16(base, _mm256_and_si256(segnz, c256));
        __m256i p = _mm256_shuffle_epi8(pow2, _mm256_or_si256(seg, hi));
        __m256i mag = _mm256_mullo_epi16(base, p);
        __m256i neg = _mm256_cmpeq_epi16(_mm256_and_si256(c, m80), zero);
        __m256i x = _mm256_sub_epi16(_mm256_xor_si256(mag, neg), neg);
        _mm256_storeu_si256((__m256i*)(dst + i), x);
    }
    for (; i < n; i++) dst[i] = cr_alaw_dec1(src[i]);     /* the tail, scalar, same rule */
}

__attribute__((target("avx2"))) static void
cr_ulaw_decode_avx2(const uint8_t* src, int16_t* dst, ptrdiff_t n) {
    const __m256i pow2 = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0, 0,
                                          1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i ff = _mm256_set1_epi16(0xFF), m7 = _mm256_set1_epi16(7);
    const __m256i m15 = _mm256_set1_epi16(15), m80 = _mm256_set1_epi16(0x80);
    const __m256i c33 = _mm256_set1_epi16(33), c132 = _mm256_set1_epi16(132);
    const __m256i hi = _mm256_set1_epi16((short)0x8000), zero = _mm256_setzero_si256();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i c = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(src + i)));
        __m256i inv = _mm256_xor_si256(c, ff);
        __m256i e = _mm256_and_si256(_mm256_srli_epi16(inv, 4), m7);
        __m256i mant = _mm256_and_si256(inv, m15);
        __m256i base = _mm256_add_epi16(_mm256_add_epi16(mant, mant), c33);
        __m256i p = _mm256_shuffle_epi8(pow2, _mm256_or_si256(e, hi));
        __m256i mag = _mm256_sub_epi16(_mm256_slli_epi16(_mm256_mullo_epi16(base, p), 2), c132);
        __m256i neg = _mm256_cmpeq_epi16(_mm256_and_si256(c, m80), zero);
        __m256i x = _mm256_sub_epi16(_mm256_xor_si256(mag, neg), neg);
        _mm256_storeu_si256((__m256i*)(dst + i), x);
    }
    for (; i < n; i++) dst[i] = cr_ulaw_dec1(src[i]);
}

__attribute__((target("ssse3"))) static void
cr_alaw_decode_ssse3(const uint8_t* src, int16_t* dst, ptrdiff_t n) {
    const __m128i pow2 = _mm_setr_epi8(1, 1, 2, 4, 8, 16, 32, 64, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i x55 = _mm_set1_epi16(0x55), m7 = _mm_set1_epi16(7);
    const __m128i m15 = _mm_set1_epi16(15), m80 = _mm_set1_epi16(0x80);
    const __m128i c8 = _mm_set1_epi16(8), c256 = _mm_set1_epi16(256);
    const __m128i hi = _mm_set1_epi16((short)0x8000), zero = _mm_setzero_si128();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i bytes = _mm_loadu_si128((const __m128i*)(src + i));
        for (int half = 0; half < 2; half++) {
            __m128i c = half ? _mm_unpackhi_epi8(bytes, zero) : _mm_unpacklo_epi8(bytes, zero);
            __m128i v = _mm_xor_si128(c, x55);
            __m128i seg = _mm_and_si128(_mm_srli_epi16(v, 4), m7);
            __m128i base = _mm_add_epi16(_mm_slli_epi16(_mm_and_si128(v, m15), 4), c8);
            base = _mm_add_epi16(base, _mm_and_si128(_mm_cmpgt_epi16(seg, zero), c256));
            __m128i mag = _mm_mullo_epi16(base, _mm_shuffle_epi8(pow2, _mm_or_si128(seg, hi)));
            __m128i neg = _mm_cmpeq_epi16(_mm_and_si128(c, m80), zero);
            _mm_storeu_si128((__m128i*)(dst + i + 8 * half),
                             _mm_sub_epi16(_mm_xor_si128(mag, neg), neg));
        }
    }
    for (; i < n; i++) dst[i] = cr_alaw_dec1(src[i]);
}

__attribute__((target("ssse3"))) static void
cr_ulaw_decode_ssse3(const uint8_t* src, int16_t* dst, ptrdiff_t n) {
    const __m128i pow2 = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i ff = _mm_set1_epi16(0xFF), m7 = _mm_set1_epi16(7);
    const __m128i m15 = _mm_set1_epi16(15), m80 = _mm_set1_epi16(0x80);
    const __m128i c33 = _mm_set1_epi16(33), c132 = _mm_set1_epi16(132);
    const __m128i hi = _mm_set1_epi16((short)0x8000), zero = _mm_setzero_si128();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i bytes = _mm_loadu_si128((const __m128i*)(src + i));
        for (int half = 0; half < 2; half++) {
            __m128i c = half ? _mm_unpackhi_epi8(bytes, zero) : _mm_unpacklo_epi8(bytes, zero);
            __m128i inv = _mm_xor_si128(c, ff);
            __m128i e = _mm_and_si128(_mm_srli_epi16(inv, 4), m7);
            __m128i mant = _mm_and_si128(inv, m15);
            __m128i base = _mm_add_epi16(_mm_add_epi16(mant, mant), c33);
            __m128i p = _mm_shuffle_epi8(pow2, _mm_or_si128(e, hi));
            __m128i mag = _mm_sub_epi16(_mm_slli_epi16(_mm_mullo_epi16(base, p), 2), c132);
            __m128i neg = _mm_cmpeq_epi16(_mm_and_si128(c, m80), zero);
            _mm_storeu_si128((__m128i*)(dst + i + 8 * half),
                             _mm_sub_epi16(_mm_xor_si128(mag, neg), neg));
        }
    }
    for (; i < n; i++) dst[i] = cr_ulaw_dec1(src[i]);
}

static int cr_g711_level = -1;

static int cr_g711_simd_level(void) {
    if (cr_g711_level < 0) {
        __builtin_cpu_init();
        cr_g711_level = __builtin_cpu_supports("avx2") ? 2 : __builtin_cpu_supports("ssse3") ? 1 : 0;
    }
    return cr_g711_level;
}

/* Force a level (tests compare every variant); returns the level now in use. */
static int cr_g711_set_level(int level) {
    int best = (cr_g711_level = -1, cr_g711_simd_level());
    cr_g711_level = level < best ? (level < 0 ? 0 : level) : best;
    return cr_g711_level;
}

/* Returns 1 when a SIMD variant decoded the buffer, 0 when the caller must. */
static int cr_alaw_decode_simd(const uint8_t* src, int16_t* dst, ptrdiff_t n) {
    int level = cr_g711_simd_level();
    if (level == 2) { cr_alaw_decode_avx2(src, dst, n); return 1; }
    if (level == 1) { cr_alaw_decode_ssse3(src, dst, n); return 1; }
    return 0;
}

static int cr_ulaw_decode_simd(const uint8_t* src, int16_t* dst, ptrdiff_t n) {
    int level = cr_g711_simd_level();
    if (level == 2) { cr_ulaw_decode_avx2(src, dst, n); return 1; }
    if (level == 1) { cr_ulaw_decode_ssse3(src, dst, n); return 1; }
    return 0;
}

#else  /* not x86 with GCC/clang: the table loops do the work */

static int cr_g711_simd_level(void) { return 0; }
static int cr_g711_set_level(int level) { (void)level; return 0; }
static int cr_alaw_decode_simd(const uint8_t* s, int16_t* d, ptrdiff_t n) { (void)s; (void)d; (void)n; return 0; }
static int cr_ulaw_decode_simd(const uint8_t* s, int16_t* d, ptrdiff_t n) { (void)s; (void)d; (void)n; return 0; }

#endif
#endif
