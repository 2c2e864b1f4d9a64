/* Storage for the G.711 lookup tables shared by every kernel module that cimports
 * g711_k.pxd.  The tables are filled at module import by g711_k.init_g711_tables(),
 * which computes them from the G.711 companding rules; only the two transcoding tables
 * below are literal data, because G.711 defines them as tables (Tables 3 and 4).
 * Each extension module gets its own copy (static), 21 KiB in all. */
#ifndef CALLRECORDER_G711_TABLES_H
#define CALLRECORDER_G711_TABLES_H
#include <stdint.h>

static uint8_t cr_alaw_enc[4096];    /* index: (uint16_t)x >> 4  */
static uint8_t cr_ulaw_enc[16384];   /* index: (uint16_t)x >> 2  */
static int16_t cr_alaw_dec[256];
static int16_t cr_ulaw_dec[256];
static uint8_t cr_alaw_to_ulaw[256];
static uint8_t cr_ulaw_to_alaw[256];
static int cr_g711_ready = 0;

/* ITU-T G.711 Table 4 (A-law -> mu-law), by magnitude: entry i is the mu-law magnitude
 * number (0..127, rising level) for A-law magnitude number i (0..127, rising level). */
static const uint8_t cr_a2u_mag[128] = {
      1,   3,   5,   7,   9,  11,  13,  15,  16,  17,  18,  19,  20,  21,  22,  23,
     24,  25,  26,  27,  28,  29,  30,  31,  32,  32,  33,  33,  34,  34,  35,  35,
     36,  37,  38,  39,  40,  41,  42,  43,  44,  45,  46,  47,  48,  48,  49,  49,
     50,  51,  52,  53,  54,  55,  56,  57,  58,  59,  60,  61,  62,  63,  64,  64,
     65,  66,  67,  68,  69,  70,  71,  72,  73,  74,  75,  76,  77,  78,  79,  79,
     80,  81,  82,  83,  84,  85,  86,  87,  88,  89,  90,  91,  92,  93,  94,  95,
     96,  97,  98,  99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127};

/* ITU-T G.711 Table 3 (mu-law -> A-law), by magnitude, same numbering. */
static const uint8_t cr_u2a_mag[128] = {
      0,   0,   1,   1,   2,   2,   3,   3,   4,   4,   5,   5,   6,   6,   7,   7,
      8,   9,  10,  11,  12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,  23,
     24,  26,  28,  30,  32,  33,  34,  35,  36,  37,  38,  39,  40,  41,  42,  43,
     45,  47,  48,  49,  50,  51,  52,  53,  54,  55,  56,  57,  58,  59,  60,  61,
     63,  64,  65,  66,  67,  68,  69,  70,  71,  72,  73,  74,  75,  76,  77,  78,
     80,  81,  82,  83,  84,  85,  86,  87,  88,  89,  90,  91,  92,  93,  94,  95,
     96,  97,  98,  99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
    112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127};
#endif
