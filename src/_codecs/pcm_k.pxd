# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Linear PCM kernels: unsigned 8-bit (WAV's, 128 = zero) and signed 16-bit LE."""
from libc.stdint cimport int16_t, uint8_t, int32_t


cdef inline void u8_encode_k(const int16_t* src, uint8_t* dst, Py_ssize_t n) noexcept nogil:
    # Round half up to the nearest multiple of 256, saturating at +127.
    cdef Py_ssize_t i
    cdef int32_t v
    for i in range(n):
        v = (<int32_t>src[i] + 128) >> 8
        dst[i] = <uint8_t>((v if v < 127 else 127) + 128)


cdef inline void u8_decode_k(const uint8_t* src, int16_t* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = <int16_t>((<int32_t>src[i] - 128) << 8)


cdef inline void s16_encode_k(const int16_t* src, uint8_t* dst, Py_ssize_t n) noexcept nogil:
    # Little-endian bytes whatever the host byte order; compilers turn this into a copy.
    cdef Py_ssize_t i
    cdef int16_t v
    for i in range(n):
        v = src[i]
        dst[2 * i] = <uint8_t>(v & 0xFF)
        dst[2 * i + 1] = <uint8_t>((v >> 8) & 0xFF)


cdef inline void s16_decode_k(const uint8_t* src, int16_t* dst, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = <int16_t>(src[2 * i] | (src[2 * i + 1] << 8))
