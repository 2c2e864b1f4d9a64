/* G.711 decoding and encoding with SIMD arithmetic, chosen at run time.
 *
 * A table decoder is bound by memory operations (load the code, load the table, store the
 * sample).  Here 16 codes are decoded at once from the G.711 expansion rule itself:
 *   A-law:  v = c ^ 0x55, seg = (v >> 4) & 7, mant = v & 15,
 *           |x| = ((mant << 4) + 8 + (seg ? 256 : 0)) << max(seg - 1, 0),  negative if !(c & 0x80)
 *   mu-law: i = ~c, e = (i >> 4) & 7, mant = i & 15,
 *           |x| = ((33 + 2 mant) << (e + 2)) - 132,                        negative if !(c & 0x80)
 * The per-lane power of two comes from a 16-entry byte shuffle (SSSE3/AVX2 pshufb) and
 * is applied with a 16-bit multiply.  The results equal the G.191 tables bit for bit (the
 * tests compare every code).  The level in use (cpu_isa.h) picks the variant: AVX2,
 * SSSE3, or none (the cr_*_simd functions return 0 and the caller runs its table loop).
 * The tails use the tables of g711_tables.h (filled by g711_k.init_g711_tables() at
 * module import).  No -march flags are needed: the variants carry target attributes.
 * Declared for Cython in g711_k.pxd. */
#ifndef CALLRECORDER_G711_SIMD_H
#define CALLRECORDER_G711_SIMD_H

#include <stdint.h>
#include <stddef.h>

#include "cpu_isa.h"
#include "g711_tables.h"

#if CR_ISA_X86
#include <immintrin.h>

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
    for (; i < n; i++) dst[i] = cr_alaw_dec[src[i]];     /* the tail, by table */
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
    for (; i < n; i++) dst[i] = cr_ulaw_dec[src[i]];
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
    for (; i < n; i++) dst[i] = cr_alaw_dec[src[i]];
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
    for (; i < n; i++) dst[i] = cr_ulaw_dec[src[i]];
}


/* Encoding, 16 samples at a time.  The segment is the bit length of a 7-bit value, read
 * from two 16-entry shuffles (low and high nibble); the mantissa is a right shift by a
 * per-lane amount, done as an unsigned multiply-high by a power of two whose two bytes
 * come from two more shuffles. */
#define CR_BITLEN_LO 0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4
#define CR_BITLEN_HI 0, 5, 6, 6, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 8

__attribute__((target("avx2"))) static inline __m256i
cr_bitlen7_avx2(__m256i t) {            /* bit length of 0..127 in 16-bit lanes */
    const __m256i lo = _mm256_setr_epi8(CR_BITLEN_LO, CR_BITLEN_LO);
    const __m256i hi = _mm256_setr_epi8(CR_BITLEN_HI, CR_BITLEN_HI);
    const __m256i m15 = _mm256_set1_epi16(15), top = _mm256_set1_epi16((short)0x8000);
    __m256i a = _mm256_shuffle_epi8(lo, _mm256_or_si256(_mm256_and_si256(t, m15), top));
    __m256i b = _mm256_shuffle_epi8(hi, _mm256_or_si256(_mm256_srli_epi16(t, 4), top));
    return _mm256_max_epi16(a, b);
}

__attribute__((target("avx2"))) static inline __m256i
cr_pow2_avx2(__m256i idx, __m256i lo_tab, __m256i hi_tab) {   /* 16-bit table lookup */
    const __m256i top = _mm256_set1_epi16((short)0x8000);
    __m256i i = _mm256_or_si256(idx, top);
    return _mm256_or_si256(_mm256_shuffle_epi8(lo_tab, i),
                           _mm256_slli_epi16(_mm256_shuffle_epi8(hi_tab, i), 8));
}

__attribute__((target("avx2"))) static void
cr_alaw_encode_avx2(const int16_t* src, uint8_t* dst, ptrdiff_t n) {
    /* 2^(12 - max(seg - 1, 0)) by segment: m >> shift == mulhi(m << 4, that) */
    const __m256i plo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, (char)0x80, 0x40, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, (char)0x80, 0x40, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i phi = _mm256_setr_epi8(0x10, 0x10, 0x08, 0x04, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0x10, 0x10, 0x08, 0x04, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i m15 = _mm256_set1_epi16(15), x80 = _mm256_set1_epi16(0x80);
    const __m256i x55 = _mm256_set1_epi16(0x55), zero = _mm256_setzero_si256();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i x = _mm256_loadu_si256((const __m256i*)(src + i));
        __m256i neg = _mm256_cmpgt_epi16(zero, x);
        __m256i m = _mm256_srli_epi16(_mm256_xor_si256(x, neg), 4);          /* 0..2047 */
        __m256i seg = cr_bitlen7_avx2(_mm256_srli_epi16(m, 4));
        __m256i mant = _mm256_and_si256(
            _mm256_mulhi_epu16(_mm256_slli_epi16(m, 4), cr_pow2_avx2(seg, plo, phi)), m15);
        __m256i code = _mm256_or_si256(_mm256_slli_epi16(seg, 4), mant);
        code = _mm256_xor_si256(_mm256_or_si256(code, _mm256_andnot_si256(neg, x80)), x55);
        __m256i packed = _mm256_packus_epi16(code, code);                    /* per 128-bit lane */
        packed = _mm256_permute4x64_epi64(packed, 0x08);
        _mm_storeu_si128((__m128i*)(dst + i), _mm256_castsi256_si128(packed));
    }
    for (; i < n; i++) dst[i] = cr_alaw_enc[(uint16_t)src[i] >> 4];
}

__attribute__((target("avx2"))) static void
cr_ulaw_encode_avx2(const int16_t* src, uint8_t* dst, ptrdiff_t n) {
    /* 2^(13 - seg) for seg 1..8: mag >> seg == mulhi(mag << 3, that) */
    const __m256i plo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, (char)0x80, 0x40, 0x20, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, (char)0x80, 0x40, 0x20, 0, 0, 0, 0, 0, 0, 0);
    const __m256i phi = _mm256_setr_epi8(0, 0x10, 0x08, 0x04, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0x10, 0x08, 0x04, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i m15 = _mm256_set1_epi16(15), x80 = _mm256_set1_epi16(0x80);
    const __m256i c33 = _mm256_set1_epi16(33), cmax = _mm256_set1_epi16(0x1FFF);
    const __m256i one = _mm256_set1_epi16(1), eight = _mm256_set1_epi16(8), zero = _mm256_setzero_si256();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i x = _mm256_loadu_si256((const __m256i*)(src + i));
        __m256i neg = _mm256_cmpgt_epi16(zero, x);
        __m256i mag = _mm256_add_epi16(_mm256_srli_epi16(_mm256_xor_si256(x, neg), 2), c33);
        mag = _mm256_min_epi16(mag, cmax);
        __m256i seg = _mm256_add_epi16(cr_bitlen7_avx2(_mm256_srli_epi16(mag, 6)), one);
        __m256i low = _mm256_and_si256(
            _mm256_mulhi_epu16(_mm256_slli_epi16(mag, 3), cr_pow2_avx2(seg, plo, phi)), m15);
        __m256i code = _mm256_or_si256(_mm256_slli_epi16(_mm256_sub_epi16(eight, seg), 4),
                                       _mm256_xor_si256(low, m15));
        code = _mm256_or_si256(code, _mm256_andnot_si256(neg, x80));
        __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(code, code), 0x08);
        _mm_storeu_si128((__m128i*)(dst + i), _mm256_castsi256_si128(packed));
    }
    for (; i < n; i++) dst[i] = cr_ulaw_enc[(uint16_t)src[i] >> 2];
}

__attribute__((target("ssse3"))) static inline __m128i
cr_bitlen7_ssse3(__m128i t) {
    const __m128i lo = _mm_setr_epi8(CR_BITLEN_LO), hi = _mm_setr_epi8(CR_BITLEN_HI);
    const __m128i m15 = _mm_set1_epi16(15), top = _mm_set1_epi16((short)0x8000);
    __m128i a = _mm_shuffle_epi8(lo, _mm_or_si128(_mm_and_si128(t, m15), top));
    __m128i b = _mm_shuffle_epi8(hi, _mm_or_si128(_mm_srli_epi16(t, 4), top));
    return _mm_max_epi16(a, b);
}

__attribute__((target("ssse3"))) static inline __m128i
cr_pow2_ssse3(__m128i idx, __m128i lo_tab, __m128i hi_tab) {
    __m128i i = _mm_or_si128(idx, _mm_set1_epi16((short)0x8000));
    return _mm_or_si128(_mm_shuffle_epi8(lo_tab, i), _mm_slli_epi16(_mm_shuffle_epi8(hi_tab, i), 8));
}

__attribute__((target("ssse3"))) static void
cr_alaw_encode_ssse3(const int16_t* src, uint8_t* dst, ptrdiff_t n) {
    const __m128i plo = _mm_setr_epi8(0, 0, 0, 0, 0, 0, (char)0x80, 0x40, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i phi = _mm_setr_epi8(0x10, 0x10, 0x08, 0x04, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i m15 = _mm_set1_epi16(15), x80 = _mm_set1_epi16(0x80);
    const __m128i x55 = _mm_set1_epi16(0x55), zero = _mm_setzero_si128();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i out[2];
        for (int half = 0; half < 2; half++) {
            __m128i x = _mm_loadu_si128((const __m128i*)(src + i + 8 * half));
            __m128i neg = _mm_cmpgt_epi16(zero, x);
            __m128i m = _mm_srli_epi16(_mm_xor_si128(x, neg), 4);
            __m128i seg = cr_bitlen7_ssse3(_mm_srli_epi16(m, 4));
            __m128i mant = _mm_and_si128(
                _mm_mulhi_epu16(_mm_slli_epi16(m, 4), cr_pow2_ssse3(seg, plo, phi)), m15);
            __m128i code = _mm_or_si128(_mm_slli_epi16(seg, 4), mant);
            out[half] = _mm_xor_si128(_mm_or_si128(code, _mm_andnot_si128(neg, x80)), x55);
        }
        _mm_storeu_si128((__m128i*)(dst + i), _mm_packus_epi16(out[0], out[1]));
    }
    for (; i < n; i++) dst[i] = cr_alaw_enc[(uint16_t)src[i] >> 4];
}

__attribute__((target("ssse3"))) static void
cr_ulaw_encode_ssse3(const int16_t* src, uint8_t* dst, ptrdiff_t n) {
    const __m128i plo = _mm_setr_epi8(0, 0, 0, 0, 0, 0, (char)0x80, 0x40, 0x20, 0, 0, 0, 0, 0, 0, 0);
    const __m128i phi = _mm_setr_epi8(0, 0x10, 0x08, 0x04, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m128i m15 = _mm_set1_epi16(15), x80 = _mm_set1_epi16(0x80);
    const __m128i c33 = _mm_set1_epi16(33), cmax = _mm_set1_epi16(0x1FFF);
    const __m128i one = _mm_set1_epi16(1), eight = _mm_set1_epi16(8), zero = _mm_setzero_si128();
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i out[2];
        for (int half = 0; half < 2; half++) {
            __m128i x = _mm_loadu_si128((const __m128i*)(src + i + 8 * half));
            __m128i neg = _mm_cmpgt_epi16(zero, x);
            __m128i mag = _mm_min_epi16(_mm_add_epi16(_mm_srli_epi16(_mm_xor_si128(x, neg), 2), c33), cmax);
            __m128i seg = _mm_add_epi16(cr_bitlen7_ssse3(_mm_srli_epi16(mag, 6)), one);
            __m128i low = _mm_and_si128(
                _mm_mulhi_epu16(_mm_slli_epi16(mag, 3), cr_pow2_ssse3(seg, plo, phi)), m15);
            __m128i code = _mm_or_si128(_mm_slli_epi16(_mm_sub_epi16(eight, seg), 4),
                                        _mm_xor_si128(low, m15));
            out[half] = _mm_or_si128(code, _mm_andnot_si128(neg, x80));
        }
        _mm_storeu_si128((__m128i*)(dst + i), _mm_packus_epi16(out[0], out[1]));
    }
    for (; i < n; i++) dst[i] = cr_ulaw_enc[(uint16_t)src[i] >> 2];
}

/* cr_<law>_<decode|encode>_simd(src, dst, n): 1 when a SIMD variant did the work, 0 when
 * the caller must (no SSSE3). */
#define CR_G711_DISPATCH(name, in_t, out_t)                                   \
    static int name##_simd(const in_t* src, out_t* dst, ptrdiff_t n) {        \
        int level = cr_isa();                                                 \
        if (level >= CR_ISA_AVX2) { name##_avx2(src, dst, n); return 1; }     \
        if (level >= CR_ISA_SSSE3) { name##_ssse3(src, dst, n); return 1; }   \
        return 0;                                                             \
    }
CR_G711_DISPATCH(cr_alaw_decode, uint8_t, int16_t)
CR_G711_DISPATCH(cr_ulaw_decode, uint8_t, int16_t)
CR_G711_DISPATCH(cr_alaw_encode, int16_t, uint8_t)
CR_G711_DISPATCH(cr_ulaw_encode, int16_t, uint8_t)

#else  /* not x86 with GCC/clang: the table loops do the work */

static int cr_alaw_decode_simd(const uint8_t* s, int16_t* d, ptrdiff_t n) { (void)s; (void)d; (void)n; return 0; }
static int cr_ulaw_decode_simd(const uint8_t* s, int16_t* d, ptrdiff_t n) { (void)s; (void)d; (void)n; return 0; }
static int cr_alaw_encode_simd(const int16_t* s, uint8_t* d, ptrdiff_t n) { (void)s; (void)d; (void)n; return 0; }
static int cr_ulaw_encode_simd(const int16_t* s, uint8_t* d, ptrdiff_t n) { (void)s; (void)d; (void)n; return 0; }

#endif
#endif
