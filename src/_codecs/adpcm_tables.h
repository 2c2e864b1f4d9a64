/* Storage for the ADPCM tables shared by every kernel module that cimports adpcm_k.pxd.
 *
 * Only the IMA step-size table is literal data (IMA Digital Audio Focus and Technical
 * Working Groups, "Recommended Practices for Enhancing Digital Audio Compatibility in
 * Multimedia Systems", rev. 3.00, 1992: 89 steps, 7 ... 32767).  The OKI / Dialogic table
 * is entries 8 ... 56 of it (16 ... 1552, 49 steps).  Everything else is derived from
 * those numbers by adpcm_k.init_adpcm_tables() at module import.
 *
 * A coder state is (predictor, step index).  The kernels carry the index pre-multiplied
 * by 16 ("base"), so base + code addresses the per-(index, code) tables directly.
 * Each extension module gets its own copy (static), about 260 KiB in all (most of it
 * the byte-decoding tables, of which real audio touches the rows it uses).
 */
#ifndef CALLRECORDER_ADPCM_TABLES_H
#define CALLRECORDER_ADPCM_TABLES_H
#include <stdint.h>

#define CR_IMA_STEPS 89
#define CR_OKI_STEPS 49

static const int32_t cr_ima_step[CR_IMA_STEPS] = {
        7,     8,     9,    10,    11,    12,    13,    14,    16,    17,
       19,    21,    23,    25,    28,    31,    34,    37,    41,    45,
       50,    55,    60,    66,    73,    80,    88,    97,   107,   118,
      130,   143,   157,   173,   190,   209,   230,   253,   279,   307,
      337,   371,   408,   449,   494,   544,   598,   658,   724,   796,
      876,   963,  1060,  1166,  1282,  1411,  1552,  1707,  1878,  2066,
     2272,  2499,  2749,  3024,  3327,  3660,  4026,  4428,  4871,  5358,
     5894,  6484,  7132,  7845,  8630,  9493, 10442, 11487, 12635, 13899,
    15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794, 32767};

/* Step-index change for the 3 magnitude bits of a code (both codecs). */
static const int32_t cr_adpcm_adjust[8] = {-1, -1, -1, -1, 2, 4, 6, 8};

/* The derived tables of one codec. */
typedef struct {
    int32_t nsteps;
    int32_t lo, hi;              /* predictor range (clamp) */
    const int32_t *step;         /* [nsteps] */
    int32_t *delta;              /* [nsteps*16] signed predictor change for (index, code) */
    uint16_t *next;              /* [nsteps*16] base (16*index) after (index, code) */
    uint16_t *thr;               /* [nsteps*8] raw IMA encoder thresholds: code magnitude d
                                    is the number of k in 1..7 with |diff| >= thr[8*index+k]
                                    (NULL for OKI, which has the search encoder) */
    uint16_t *thr_next;          /* [nsteps*16*8] thresholds of the state after (index, code) */
} cr_adpcm_tables;

static int32_t cr_ima_delta[CR_IMA_STEPS * 16];
static uint16_t cr_ima_next[CR_IMA_STEPS * 16];
static uint16_t cr_ima_thr[CR_IMA_STEPS * 8];
static uint16_t cr_ima_thr_next[CR_IMA_STEPS * 16 * 8];

static int32_t cr_oki_delta[CR_OKI_STEPS * 16];
static uint16_t cr_oki_next[CR_OKI_STEPS * 16];

static const cr_adpcm_tables cr_ima = {
    CR_IMA_STEPS, -32768, 32767, cr_ima_step, cr_ima_delta, cr_ima_next,
    cr_ima_thr, cr_ima_thr_next};
static const cr_adpcm_tables cr_oki = {
    CR_OKI_STEPS, -2048, 2047, cr_ima_step + 8, cr_oki_delta, cr_oki_next,
    NULL, NULL};

/* The search encoders' tables (OKI, and IMA in WAV files), per (index, magnitude d): the
 * predictor change under the two roundings decoders use ("multiply" ((2d+1)*step)>>3:
 * FFmpeg, and for OKI sox and libsndfile; "shift-sum" step>>3 + ...: the IMA reference,
 * audioop, sox and libsndfile for IMA, spandsp for OKI), 8 * the next index (the next
 * entries' base), and the decision levels on |2t - p_mul - p_shift| that pick the magnitude
 * nearest to both (k = 1..7).  The encoder itself is in adpcm_search.h. */
typedef struct {
    int32_t lo, hi;              /* predictor range */
    int32_t *rm, *rs, *nbase, *athr;
} cr_search_tables;

static int32_t cr_oki_rm[CR_OKI_STEPS * 8];
static int32_t cr_oki_rs[CR_OKI_STEPS * 8];
static int32_t cr_oki_nbase[CR_OKI_STEPS * 8];
static int32_t cr_oki_athr[CR_OKI_STEPS * 8];
static int32_t cr_ima_rm[CR_IMA_STEPS * 8];
static int32_t cr_ima_rs[CR_IMA_STEPS * 8];
static int32_t cr_ima_nbase[CR_IMA_STEPS * 8];
static int32_t cr_ima_athr[CR_IMA_STEPS * 8];

static const cr_search_tables cr_oki_search = {
    -2048, 2047, cr_oki_rm, cr_oki_rs, cr_oki_nbase, cr_oki_athr};
static const cr_search_tables cr_ima_search = {
    -32768, 32767, cr_ima_rm, cr_ima_rs, cr_ima_nbase, cr_ima_athr};

/* Decoding by whole bytes: one 32-bit entry per (index, byte) holds the magnitudes of
 * both nibbles' predictor changes (first in the low half; the signs are the nibbles'
 * bit 3), and the next-state table is indexed the same way (entries = 256 * next
 * index): two loads per byte from one address.  OKI's changes are stored times 16, for
 * a predictor kept in 16-bit units.  OKI 75 KiB; IMA 136 KiB, of which real audio
 * touches the rows of the step sizes it uses. */
static uint32_t cr_oki_pair[CR_OKI_STEPS * 256];
static uint16_t cr_oki_row2[CR_OKI_STEPS * 256];

static uint32_t cr_ima_pair[CR_IMA_STEPS * 256];
static uint16_t cr_ima_row2[CR_IMA_STEPS * 256];

static int cr_adpcm_ready = 0;
#endif
