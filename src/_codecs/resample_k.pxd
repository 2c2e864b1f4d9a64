# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Streaming rational polyphase resampler: state struct and block loop (inline).

Output sample k sits at input time k*q/p (in input samples; p/q = out_rate/in_rate in
lowest terms).  Write k*q = n0*p + phase (0 <= phase < p); then

    y[k] = sum_{j<T} coef[phase, j] * x[n0 - half + 1 + j]          (half = T/2)

with x[n] = 0 before the first sample and after the last one.  ``coef`` (p x T, float32)
is the polyphase split of one symmetric low-pass filter, laid out so that this window
is centred on the output's own time: the group delay is compensated.  The dot product
itself is in resample_simd.h, in a fixed order, so each y[k] is a function of the input
and of k alone: any chunking gives the same samples.

A stream keeps a float32 history ``buf`` holding input samples ``base .. base+len-1``.
Each call appends input (converted to float32) in blocks, computes every output whose
window is complete, and drops the samples no later output needs.  With ``last`` it
appends the zeros the remaining outputs need and stops at round(n*p/q) outputs in all
(halves rounded up), then the state starts afresh.
"""
from libc.stdint cimport int16_t, int32_t, int64_t
from libc.string cimport memmove, memset

cdef extern from "resample_simd.h":
    int cr_rs_select() noexcept nogil
    void cr_rs_run(const float* coef, int T, const int32_t* next_phase, const int32_t* advance,
                   int p, int q, int phase, const float* x, Py_ssize_t nout, float* y) nogil
    void cr_rs_run4(const float* coef, int T, const int32_t* next_phase, const int32_t* advance,
                    int phase, const float* const* x, Py_ssize_t nout, float* const* y) nogil
    Py_ssize_t cr_rs_to_int16(const float* y, int16_t* out, Py_ssize_t n) nogil
    bint cr_rs_run8_ok(int q) noexcept nogil

ctypedef fused rs_sample_t:
    int16_t
    float


ctypedef struct rs_filter:
    const float* coef          # p rows of T taps
    const int32_t* next_phase  # (phase + q) % p
    const int32_t* advance     # (phase + q) // p
    int T                      # taps per phase, a multiple of 8
    int half                   # T // 2
    int p
    int q
    Py_ssize_t cap             # history capacity (floats) of each stream


ctypedef struct rs_state:
    float* buf                 # cap floats (owned by the cdef class)
    Py_ssize_t len             # valid samples in buf
    int64_t base               # input index of buf[0]
    int64_t n_in               # input samples received in this stream
    int64_t n_out              # output samples produced in this stream
    int64_t n0                 # floor(n_out * q / p)
    int32_t phase              # (n_out * q) % p
    int64_t clipped            # int16 outputs saturated (since construction / reset)


cdef inline void rs_reset(rs_state* s, const rs_filter* f) noexcept nogil:
    """A fresh stream: silence before the first sample (half - 1 zeros of history)."""
    s.len = f.half - 1
    memset(s.buf, 0, s.len * sizeof(float))
    s.base = -(f.half - 1)
    s.n_in = 0
    s.n_out = 0
    s.n0 = 0
    s.phase = 0


cdef inline int64_t rs_total(const rs_filter* f, int64_t n_in) noexcept nogil:
    """Outputs of a finished stream of n_in samples: round(n_in*p/q), halves up."""
    return (2 * n_in * f.p + f.q) // (2 * f.q)


cdef inline int64_t rs_ready(const rs_filter* f, int64_t n_avail) noexcept nogil:
    """How many outputs (counted from the start of the stream) have their whole window
    inside input samples 0 .. n_avail-1: k with floor(k*q/p) + half <= n_avail - 1."""
    cdef int64_t m = n_avail - f.half
    if m <= 0:
        return 0
    return (m * f.p + f.q - 1) // f.q


cdef inline Py_ssize_t rs_count(const rs_state* s, const rs_filter* f, Py_ssize_t n,
                                bint last) noexcept nogil:
    """Outputs the next call with n input samples will return."""
    if last:
        return <Py_ssize_t>(rs_total(f, s.n_in + n) - s.n_out)
    return <Py_ssize_t>(rs_ready(f, s.n_in + n) - s.n_out)


cdef inline void rs_compact(rs_state* s, const rs_filter* f) noexcept nogil:
    """Drop the history samples before the next output's window."""
    cdef int64_t drop = s.n0 - f.half + 1 - s.base
    if drop > 0:
        s.len -= <Py_ssize_t>drop
        if s.len > 0:
            memmove(s.buf, s.buf + drop, s.len * sizeof(float))
        s.base += drop


cdef inline const float* rs_window(const rs_state* s, const rs_filter* f) noexcept nogil:
    """Start of the next output's window in buf."""
    return s.buf + (s.n0 - f.half + 1 - s.base)


cdef inline void rs_advance(rs_state* s, const rs_filter* f, Py_ssize_t nout) noexcept nogil:
    """Account for nout outputs computed."""
    s.n_out += nout
    s.n0 = (s.n_out * f.q) // f.p
    s.phase = <int32_t>((s.n_out * f.q) % f.p)


cdef inline Py_ssize_t rs_emit(rs_state* s, const rs_filter* f, Py_ssize_t nout,
                               float* y) noexcept nogil:
    """Compute the next nout outputs (their windows are in buf) into y."""
    if nout <= 0:
        return 0
    cr_rs_run(f.coef, f.T, f.next_phase, f.advance, f.p, f.q, s.phase, rs_window(s, f), nout, y)
    rs_advance(s, f, nout)
    return nout


cdef inline void rs_append(rs_state* s, const rs_sample_t* x, Py_ssize_t m) noexcept nogil:
    """Append m input samples (the caller checked that they fit)."""
    cdef float* dst = s.buf + s.len
    cdef Py_ssize_t i
    for i in range(m):
        dst[i] = <float>x[i]
    s.len += m
    s.n_in += m


cdef inline Py_ssize_t rs_process(rs_state* s, const rs_filter* f, const rs_sample_t* x,
                                  Py_ssize_t n, bint last, rs_sample_t* out,
                                  float* scratch) noexcept nogil:
    """Feed n samples (and end the stream if last); write rs_count(s, f, n, last)
    outputs to out.  int16: through scratch (room for cap*p//q + 16 floats), rounded
    and saturated, clips counted; float32: straight into out.  Returns the count."""
    cdef Py_ssize_t want = rs_count(s, f, n, last)
    cdef Py_ssize_t done = 0, pos = 0, m, k
    cdef int64_t end_in = s.n_in + n
    cdef int64_t need_end          # with last: input index after the last one needed
    if last:
        if want > 0:
            need_end = ((s.n_out + want - 1) * f.q) // f.p + f.half + 1
        else:
            need_end = end_in
    while True:
        # append a block of input (or, past the end of a last call, of zeros)
        m = f.cap - s.len
        if pos < n:
            if m > n - pos:
                m = n - pos
            rs_append(s, x + pos, m)
            pos += m
        elif last and s.base + s.len < need_end:
            if m > need_end - s.base - s.len:
                m = <Py_ssize_t>(need_end - s.base - s.len)
            memset(s.buf + s.len, 0, m * sizeof(float))
            s.len += m
        # every output whose window is now complete (never beyond the stream's end)
        k = <Py_ssize_t>(rs_ready(f, s.base + s.len) - s.n_out)
        if k > want - done:
            k = want - done
        if k > 0:
            if rs_sample_t is float:
                rs_emit(s, f, k, out + done)
            else:
                rs_emit(s, f, k, scratch)
                s.clipped += cr_rs_to_int16(scratch, out + done, k)
            done += k
        rs_compact(s, f)
        if pos >= n and (done >= want or not last):
            break
    if last:
        rs_reset(s, f)
    return done
