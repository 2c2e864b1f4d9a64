# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The one SIMD switch of every kernel module (see cpu_isa.h; public: recorder.simd)."""

cdef extern from "cpu_isa.h":
    int CR_ISA_C, CR_ISA_SSE2, CR_ISA_SSSE3, CR_ISA_AVX, CR_ISA_AVX2
    int cr_cpu_isa() noexcept nogil
    int cr_isa() noexcept nogil
    int cr_isa_set(int level) noexcept nogil
    void cr_prefetch(const void* p, Py_ssize_t nbytes) noexcept nogil
