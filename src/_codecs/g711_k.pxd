# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""G.711 A-law / mu-law kernels, shared by every module that needs them (inline).

Encoding and decoding follow ITU-T G.191 (STL ``g711.c``) bit for bit: A-law works on
the one's-complement magnitude of ``x >> 4``, mu-law on ``(x >> 2) + 33`` with the
usual 0x1FFF clamp.  Both encoders only look at the top 12 (A-law) or 14 (mu-law) bits
of the sample, so a 4096- or 16384-entry table indexed by the shifted sample gives the
exact code with one load.  Call ``init_g711_tables()`` once at module import.
"""
from libc.stdint cimport int16_t, uint8_t, uint16_t, int32_t

cdef extern from "g711_tables.h":
    uint8_t cr_alaw_enc[4096]
    uint8_t cr_ulaw_enc[16384]
    int16_t cr_alaw_dec[256]
    int16_t cr_ulaw_dec[256]
    uint8_t cr_alaw_to_ulaw[256]
    uint8_t cr_ulaw_to_alaw[256]
    int cr_g711_ready
    const uint8_t cr_a2u_mag[128]
    const uint8_t cr_u2a_mag[128]

# The SIMD coders (g711_simd.h): each returns 1 when it did the work, 0 when the level in
# use (cpu_isa.h) has no variant and the caller must run its table loop.
cdef extern from "g711_simd.h":
    int cr_alaw_decode_simd(const uint8_t* src, int16_t* dst, Py_ssize_t n) noexcept nogil
    int cr_ulaw_decode_simd(const uint8_t* src, int16_t* dst, Py_ssize_t n) noexcept nogil
    int cr_alaw_encode_simd(const int16_t* src, uint8_t* dst, Py_ssize_t n) noexcept nogil
    int cr_ulaw_encode_simd(const int16_t* src, uint8_t* dst, Py_ssize_t n) noexcept nogil


cdef inline uint8_t alaw_from_linear(int32_t x) noexcept nogil:
    """A-law code of one 16-bit sample, computed (no table)."""
    cdef int32_t mag = (x >> 4) if x >= 0 else ((-x - 1) >> 4)   # 0..2047
    cdef int32_t seg = 0
    cdef int32_t t = mag >> 4
    while t:
        seg += 1
        t >>= 1
    cdef int32_t mant = mag & 15 if seg == 0 else (mag >> (seg - 1)) & 15
    cdef int32_t code = (seg << 4) | mant
    if x >= 0:
        code |= 0x80
    return <uint8_t>(code ^ 0x55)


cdef inline int16_t alaw_to_linear(uint8_t code) noexcept nogil:
    cdef int32_t v = code ^ 0x55
    cdef int32_t seg = (v >> 4) & 7
    cdef int32_t mag = ((v & 15) << 4) + 8
    if seg:
        mag = (mag + 256) << (seg - 1)
    return <int16_t>(mag if code & 0x80 else -mag)


cdef inline uint8_t ulaw_from_linear(int32_t x) noexcept nogil:
    """mu-law code of one 16-bit sample, computed (no table)."""
    cdef int32_t mag = ((x >> 2) if x >= 0 else ((-x - 1) >> 2)) + 33
    if mag > 0x1FFF:
        mag = 0x1FFF
    cdef int32_t seg = 1
    cdef int32_t t = mag >> 6
    while t:
        seg += 1
        t >>= 1
    cdef int32_t code = ((8 - seg) << 4) | (15 - ((mag >> seg) & 15))
    if x >= 0:
        code |= 0x80
    return <uint8_t>code


cdef inline int16_t ulaw_to_linear(uint8_t code) noexcept nogil:
    cdef int32_t inv = (~code) & 0xFF
    cdef int32_t exponent = (inv >> 4) & 7
    cdef int32_t step = 4 << (exponent + 1)
    cdef int32_t mag = (0x80 << exponent) + step * (inv & 15) + step // 2 - 4 * 33
    return <int16_t>(mag if code & 0x80 else -mag)


cdef inline void init_g711_tables() noexcept nogil:
    global cr_g711_ready
    cdef int32_t i, m
    if cr_g711_ready:
        return
    for i in range(4096):
        cr_alaw_enc[i] = alaw_from_linear(<int16_t><uint16_t>(i << 4))
    for i in range(16384):
        cr_ulaw_enc[i] = ulaw_from_linear(<int16_t><uint16_t>(i << 2))
    for i in range(256):
        cr_alaw_dec[i] = alaw_to_linear(<uint8_t>i)
        cr_ulaw_dec[i] = ulaw_to_linear(<uint8_t>i)
        # A-law magnitude number: (code ^ 0x55) & 0x7F; mu-law: (~code) & 0x7F.
        # Bit 7 is the sign (set = positive) in both laws.
        m = cr_a2u_mag[(i ^ 0x55) & 0x7F]
        cr_alaw_to_ulaw[i] = <uint8_t>((i & 0x80) | (0x7F - m))
        m = cr_u2a_mag[(~i) & 0x7F]
        cr_ulaw_to_alaw[i] = <uint8_t>(((i & 0x80) | m) ^ 0x55)
    cr_g711_ready = 1


cdef inline void alaw_encode_k(const int16_t* src, uint8_t* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = cr_alaw_enc[(<uint16_t>src[i]) >> 4]


cdef inline void ulaw_encode_k(const int16_t* src, uint8_t* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = cr_ulaw_enc[(<uint16_t>src[i]) >> 2]


cdef inline void alaw_decode_k(const uint8_t* src, int16_t* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = cr_alaw_dec[src[i]]


cdef inline void ulaw_decode_k(const uint8_t* src, int16_t* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = cr_ulaw_dec[src[i]]


cdef inline void map_bytes_k(const uint8_t* table, const uint8_t* src, uint8_t* dst,
                             Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = table[src[i]]
