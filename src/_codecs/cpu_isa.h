/* The one SIMD switch shared by every kernel module (g711, adpcm, resample, detect,
 * engine).  Levels are ceilings, in order: 0 = portable C, 1 = SSE2, 2 = SSSE3, 3 = AVX,
 * 4 = AVX2 (the names are recorder.simd.LEVELS).  Each kernel runs the best variant it
 * has at or below the level in use:
 *   G.711 coder:        AVX2 (4), SSSE3 (2), else the table loops;
 *   ADPCM search coder: SSE2 + the AVX2 scorer (4), SSE2 (1), else portable;
 *   resampler:          AVX2 (4), SSE2 (1), else portable;
 *   DTMF Goertzel bank: AVX (3), else the generic build; its 8-channel form (many
 *                       rows): AVX2 (4), AVX (3), SSE2 (1), else pairs of channels.
 * Every variant gives the same bits (the tests compare them through
 * recorder.set_simd_level).  Each extension module holds its own copy of the level
 * (static); recorder.simd sets all of them at once.  The default is the best the CPU
 * runs.  No -march flags are needed: the variants carry target attributes. */
#ifndef CALLRECORDER_CPU_ISA_H
#define CALLRECORDER_CPU_ISA_H

#include <stddef.h>

#define CR_ISA_C 0
#define CR_ISA_SSE2 1
#define CR_ISA_SSSE3 2
#define CR_ISA_AVX 3
#define CR_ISA_AVX2 4

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CR_ISA_X86 1
#else
#define CR_ISA_X86 0
#endif

/* The highest level this CPU (and OS) runs. */
static int cr_cpu_isa(void) {
#if CR_ISA_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return CR_ISA_AVX2;
    if (__builtin_cpu_supports("avx")) return CR_ISA_AVX;
    if (__builtin_cpu_supports("ssse3")) return CR_ISA_SSSE3;
    if (__builtin_cpu_supports("sse2")) return CR_ISA_SSE2;
#endif
    return CR_ISA_C;
}

static int cr_isa_level_in_use = -1;

/* The level in use in this module. */
static inline int cr_isa(void) {
    if (cr_isa_level_in_use < 0) cr_isa_level_in_use = cr_cpu_isa();
    return cr_isa_level_in_use;
}

/* Use at most `level` (< 0: the best the CPU runs); returns the level now in use. */
static int cr_isa_set(int level) {
    int best = cr_cpu_isa();
    cr_isa_level_in_use = (level < 0 || level > best) ? best : level;
    return cr_isa_level_in_use;
}

/* Ask the CPU to bring the cache lines of the nbytes at p into its caches, ahead of a
 * later use (a hint, with no effect on results; nothing where the compiler has no such
 * hint).  The engine fetches the next slots' state and the resampler histories with it. */
#if (defined(_M_X64) || defined(_M_IX86)) && !defined(__GNUC__)
#include <xmmintrin.h>
#endif
static inline void cr_prefetch(const void *p, ptrdiff_t nbytes) {
    const char *b = (const char *)p;
    ptrdiff_t i;
    for (i = 0; i < nbytes; i += 64) {
#if defined(__GNUC__) || defined(__clang__)
        __builtin_prefetch(b + i);
#elif defined(_M_X64) || defined(_M_IX86)
        _mm_prefetch(b + i, _MM_HINT_T0);
#else
        (void)b;
#endif
    }
}

#endif
