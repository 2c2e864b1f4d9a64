# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Python-facing G.711 and PCM kernels.  Arguments are validated by recorder.codecs;
here only the lengths are checked, then the loop runs with the GIL released."""
from libc.stdint cimport int16_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

from cpu_isa cimport cr_isa, cr_isa_set
from g711_k cimport (
    init_g711_tables, alaw_encode_k, ulaw_encode_k, alaw_decode_k, ulaw_decode_k,
    map_bytes_k, cr_alaw_to_ulaw, cr_ulaw_to_alaw, cr_alaw_enc, cr_ulaw_enc,
    cr_alaw_dec, cr_ulaw_dec, cr_alaw_decode_simd, cr_ulaw_decode_simd,
    cr_alaw_encode_simd, cr_ulaw_encode_simd,
)
from pcm_k cimport u8_encode_k, u8_decode_k, s16_encode_k, s16_decode_k

init_g711_tables()

# Decoding two codes per lookup: entry (c1 << 8 | c0) holds the samples of c0 then c1 as
# they sit in memory, so one 16-bit index gives 4 bytes of output.  Fewer memory
# operations per sample than the byte table (audioop's method), which is what bounds a
# table decoder.  Built from the byte tables at import; little-endian hosts only
# (elsewhere the byte-table loop runs).
import sys
cdef bint PAIRS = sys.byteorder == "little"
cdef uint32_t alaw_pairs[65536]
cdef uint32_t ulaw_pairs[65536]


cdef void _init_pairs() noexcept nogil:
    cdef uint32_t i
    for i in range(65536):
        alaw_pairs[i] = (<uint16_t>cr_alaw_dec[i & 0xFF]
                         | (<uint32_t><uint16_t>cr_alaw_dec[i >> 8] << 16))
        ulaw_pairs[i] = (<uint16_t>cr_ulaw_dec[i & 0xFF]
                         | (<uint32_t><uint16_t>cr_ulaw_dec[i >> 8] << 16))


_init_pairs()


cdef inline void decode_pairs_k(const uint32_t* pairs, const int16_t* single, const uint8_t* src,
                                int16_t* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef uint64_t w, a, b
    while i + 8 <= n:
        memcpy(&w, src + i, 8)
        a = <uint64_t>pairs[w & 0xFFFF] | (<uint64_t>pairs[(w >> 16) & 0xFFFF] << 32)
        b = <uint64_t>pairs[(w >> 32) & 0xFFFF] | (<uint64_t>pairs[w >> 48] << 32)
        memcpy(dst + i, &a, 8)
        memcpy(dst + i + 4, &b, 8)
        i += 8
    while i < n:
        dst[i] = single[src[i]]
        i += 1


cdef inline void _same_len(Py_ssize_t n_src, Py_ssize_t n_dst, Py_ssize_t ratio) except *:
    if n_dst != n_src * ratio:
        raise ValueError(f"out has {n_dst} elements, expected {n_src * ratio}")


def alaw_encode(const int16_t[::1] src, uint8_t[::1] dst):
    cdef Py_ssize_t n = src.shape[0]
    _same_len(n, dst.shape[0], 1)
    if n:
        with nogil:
            if not cr_alaw_encode_simd(&src[0], &dst[0], n):
                alaw_encode_k(&src[0], &dst[0], n)


def ulaw_encode(const int16_t[::1] src, uint8_t[::1] dst):
    cdef Py_ssize_t n = src.shape[0]
    _same_len(n, dst.shape[0], 1)
    if n:
        with nogil:
            if not cr_ulaw_encode_simd(&src[0], &dst[0], n):
                ulaw_encode_k(&src[0], &dst[0], n)


def alaw_decode(const uint8_t[::1] src, int16_t[::1] dst):
    cdef Py_ssize_t n = src.shape[0]
    _same_len(n, dst.shape[0], 1)
    if n:
        with nogil:
            if cr_alaw_decode_simd(&src[0], &dst[0], n):
                pass
            elif PAIRS:
                decode_pairs_k(alaw_pairs, cr_alaw_dec, &src[0], &dst[0], n)
            else:
                alaw_decode_k(&src[0], &dst[0], n)


def ulaw_decode(const uint8_t[::1] src, int16_t[::1] dst):
    cdef Py_ssize_t n = src.shape[0]
    _same_len(n, dst.shape[0], 1)
    if n:
        with nogil:
            if cr_ulaw_decode_simd(&src[0], &dst[0], n):
                pass
            elif PAIRS:
                decode_pairs_k(ulaw_pairs, cr_ulaw_dec, &src[0], &dst[0], n)
            else:
                ulaw_decode_k(&src[0], &dst[0], n)


def alaw_to_ulaw(const uint8_t[::1] src, uint8_t[::1] dst):
    cdef Py_ssize_t n = src.shape[0]
    _same_len(n, dst.shape[0], 1)
    if n:
        with nogil:
            map_bytes_k(cr_alaw_to_ulaw, &src[0], &dst[0], n)


def ulaw_to_alaw(const uint8_t[::1] src, uint8_t[::1] dst):
    cdef Py_ssize_t n = src.shape[0]
    _same_len(n, dst.shape[0], 1)
    if n:
        with nogil:
            map_bytes_k(cr_ulaw_to_alaw, &src[0], &dst[0], n)


def u8_encode(const int16_t[::1] src, uint8_t[::1] dst):
    cdef Py_ssize_t n = src.shape[0]
    _same_len(n, dst.shape[0], 1)
    if n:
        with nogil:
            u8_encode_k(&src[0], &dst[0], n)


def u8_decode(const uint8_t[::1] src, int16_t[::1] dst):
    cdef Py_ssize_t n = src.shape[0]
    _same_len(n, dst.shape[0], 1)
    if n:
        with nogil:
            u8_decode_k(&src[0], &dst[0], n)


def s16_encode(const int16_t[::1] src, uint8_t[::1] dst):
    cdef Py_ssize_t n = src.shape[0]
    _same_len(n, dst.shape[0], 2)
    if n:
        with nogil:
            s16_encode_k(&src[0], &dst[0], n)


def s16_decode(const uint8_t[::1] src, int16_t[::1] dst):
    cdef Py_ssize_t n = dst.shape[0]
    _same_len(n, src.shape[0], 2)
    if n:
        with nogil:
            s16_decode_k(&src[0], &dst[0], n)


def isa():
    """The SIMD level in use here (cpu_isa.h); public switch: recorder.simd."""
    return cr_isa()


def set_isa(int level):
    """Use at most ``level`` (< 0: the CPU's best); returns the level in use.  Called by
    recorder.simd.set_simd_level for every kernel module at once."""
    return cr_isa_set(level)


def tables():
    """The lookup tables as bytes (for tests and for numpy-based fallbacks)."""
    return {
        "alaw_enc": bytes(<uint8_t[:4096]>cr_alaw_enc),
        "ulaw_enc": bytes(<uint8_t[:16384]>cr_ulaw_enc),
        "alaw_dec": bytes(<char[:512]><char*>cr_alaw_dec),
        "ulaw_dec": bytes(<char[:512]><char*>cr_ulaw_dec),
        "alaw_to_ulaw": bytes(<uint8_t[:256]>cr_alaw_to_ulaw),
        "ulaw_to_alaw": bytes(<uint8_t[:256]>cr_ulaw_to_alaw),
    }
