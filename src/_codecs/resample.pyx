# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled side of the polyphase resampler (public API: recorder.resampling).

``Filter`` holds one polyphase filter (p x T float32 taps and the phase tables);
``Stream`` is one streaming state; ``Bank`` is many independent states sharing a filter,
processed by one call with the GIL released.  Arguments are validated by
recorder.resampling; here only what keeps memory safe is checked.
"""
from cpython.buffer cimport (
    PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE,
)
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t
from libc.string cimport memset

from resample_k cimport (
    rs_filter, rs_state, rs_sample_t, rs_reset, rs_total, rs_count, rs_process, rs_append,
    rs_window, rs_advance, rs_emit, rs_compact, cr_rs_run4, cr_rs_run8_ok, cr_rs_to_int16,
    cr_rs_select,
)
from cpu_isa cimport cr_isa, cr_isa_set

import numpy as np

from recorder._buffers import (
    MAX_CHANNELS, MAX_SAMPLES, aligned_copy, as_int16, integer, slot_array,
)

cdef object _I16 = np.dtype(np.int16)
cdef object _F32 = np.dtype(np.float32)
cdef object _np_empty = np.empty


cdef inline int _kind(const Py_buffer* v) noexcept:
    """1: native int16, 2: native float32, 0: anything else (numpy's formats)."""
    cdef const char* fmt = v.format
    if fmt == NULL:
        return 0
    if fmt[0] == b'=' or fmt[0] == b'@':
        fmt += 1
    if fmt[0] == 0 or fmt[1] != 0:
        return 0
    if fmt[0] == b'h' and v.itemsize == 2:
        return 1
    if fmt[0] == b'f' and v.itemsize == 4:
        return 2
    return 0

# History beyond the filter window: input is taken in blocks of this many samples.
DEF_BLOCK = 1024


def isa():
    """The SIMD level in use here (cpu_isa.h); public switch: recorder.simd."""
    return cr_isa()


def set_isa(int level):
    """Use at most ``level`` (< 0: the CPU's best) for the inner loops (portable C, SSE2
    or AVX2; all give bit-identical results); returns the level in use.  Called by
    recorder.simd.set_simd_level for every kernel module at once."""
    cr_isa_set(level)
    cr_rs_select()
    return cr_isa()


cr_rs_select()


def as_samples(obj, str name="x"):
    """obj as a C-contiguous int16 or float32 numpy array (other buffers: int16)."""
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f":
        if obj.dtype.itemsize != 4:
            raise TypeError(f"{name} must hold int16 or float32 samples, got dtype {obj.dtype}")
        return np.ascontiguousarray(obj, dtype=np.float32)
    try:
        return as_int16(obj, name)
    except TypeError as e:
        raise TypeError(str(e).replace("int16 samples", "int16 or float32 samples")) from None


cdef class Filter:
    """One polyphase filter: ``coef`` (p, T) float32 with T a multiple of 8; output k
    uses row (k*q) % p against input samples floor(k*q/p) - T/2 + 1 ... + T/2."""

    cdef rs_filter f
    cdef readonly object coef
    cdef readonly int p, q, taps
    cdef object _next, _adv

    def __cinit__(self, coef, p, q, block=DEF_BLOCK):
        p = integer(p, "p", 1, 1000)
        q = integer(q, "q", 1, 1000)
        block = integer(block, "block", 8, 1 << 20)
        c = aligned_copy(coef, np.float32)    # rows of T taps start on cache lines
        if c.ndim != 2 or c.shape[0] != p or c.shape[1] % 8 or c.shape[1] < 8:
            raise ValueError(f"coef must have shape (p, T) with T a multiple of 8, got {c.shape}")
        c.setflags(write=False)
        self.coef = c
        self.p = p
        self.q = q
        self.taps = c.shape[1]
        ph = np.arange(p, dtype=np.int64) + q
        self._next = np.ascontiguousarray(ph % p, dtype=np.int32)
        self._adv = np.ascontiguousarray(ph // p, dtype=np.int32)
        cdef const float[:, ::1] cv = c
        cdef const int32_t[::1] nv = self._next
        cdef const int32_t[::1] av = self._adv
        self.f.coef = &cv[0, 0]
        self.f.next_phase = &nv[0]
        self.f.advance = &av[0]
        self.f.T = self.taps
        self.f.half = self.taps // 2
        self.f.p = p
        self.f.q = q
        # a stream takes input in blocks of `block` samples (at least 8q, so that whole
        # periods of 4p outputs fit in one block: see cr_rs_run)
        self.f.cap = self.taps + max(block, 8 * q)

    @property
    def delay(self):
        """Input samples a stream holds back before its output catches up (T/2)."""
        return self.f.half

    cdef Py_ssize_t scratch_size(self):
        return (self.f.cap * self.f.p) // self.f.q + 16


cdef inline object _empty(Py_ssize_t n, bint is_float):
    return np.empty(n, dtype=np.float32 if is_float else np.int16)


cdef class Stream:
    """One streaming state over a Filter."""

    cdef readonly Filter filter
    cdef rs_state s
    cdef float* scratch
    cdef bint busy

    def __cinit__(self, Filter filter not None):
        """Attach the filter and allocate the state."""
        self.s.buf = NULL
        self.scratch = NULL
        self.s.buf = <float*>PyMem_Malloc(filter.f.cap * sizeof(float))
        self.scratch = <float*>PyMem_Malloc(filter.scratch_size() * sizeof(float))
        if self.s.buf == NULL or self.scratch == NULL:
            raise MemoryError()
        self.filter = filter
        self.s.clipped = 0
        rs_reset(&self.s, &filter.f)

    def __dealloc__(self):
        PyMem_Free(self.s.buf)
        PyMem_Free(self.scratch)

    def process(self, chunk, bint last=False):
        """Feed the next samples; return the output samples that are now complete.

        chunk: int16 or float32 samples (1-D; any C-contiguous buffer, other buffers
        read as int16), any length including 0.  Returns a numpy array of the same
        dtype.  last=True ends the stream: the rest of the output comes back and the
        object is ready for a new stream."""
        cdef Py_buffer xv, ov
        cdef Py_ssize_t n, cnt
        cdef int kind
        cdef const rs_filter* f
        f = &self.filter.f
        kind = 0
        if type(chunk) is np.ndarray:       # the fast path: C-contiguous 1-D int16/float32
            try:
                PyObject_GetBuffer(chunk, &xv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
            except (BufferError, ValueError):   # not C-contiguous
                pass
            else:
                kind = _kind(&xv)
                if kind == 0 or xv.ndim != 1:
                    PyBuffer_Release(&xv)
                    kind = 0
        if kind == 0:
            chunk = as_samples(chunk, "chunk")
            if chunk.ndim != 1:
                raise ValueError(f"chunk must be 1-D, got shape {chunk.shape}")
            PyObject_GetBuffer(chunk, &xv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
            kind = _kind(&xv)
        try:
            if self.busy:
                raise RuntimeError("this resampler is in use by another thread")
            n = xv.shape[0]
            cnt = rs_count(&self.s, f, n, last)
            out = _np_empty(cnt, _F32 if kind == 2 else _I16)
            PyObject_GetBuffer(out, &ov, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
            self.busy = True
            with nogil:
                if kind == 2:
                    rs_process(&self.s, f, <const float*>xv.buf, n, last,
                               <float*>ov.buf, self.scratch)
                else:
                    rs_process(&self.s, f, <const int16_t*>xv.buf, n, last,
                               <int16_t*>ov.buf, self.scratch)
            self.busy = False
            PyBuffer_Release(&ov)
        finally:
            PyBuffer_Release(&xv)
        return out

    def count(self, n, bint last=False):
        """How many samples process() returns for n (0..2**48) more input samples."""
        return rs_count(&self.s, &self.filter.f, integer(n, "n", 0, MAX_SAMPLES), last)

    def reset(self):
        if self.busy:
            raise RuntimeError("this resampler is in use by another thread")
        rs_reset(&self.s, &self.filter.f)
        self.s.clipped = 0

    @property
    def n_in(self):
        return self.s.n_in

    @property
    def n_out(self):
        return self.s.n_out

    @property
    def clipped(self):
        return self.s.clipped

    @property
    def pending(self):
        return rs_total(&self.filter.f, self.s.n_in) - self.s.n_out


# Rows of a Bank call with at most this many samples (and not last) are appended whole,
# then computed four slots at a time when the slots share a phase (cr_rs_run4).
cdef enum:
    BANK_BLOCK = 512


cdef void _bank_run(rs_state* st, const rs_filter* f, const Py_ssize_t* rv, Py_ssize_t k,
                    const rs_sample_t* x, Py_ssize_t n, bint last, rs_sample_t* out,
                    Py_ssize_t maxc, const int64_t* cv, float* scratch, Py_ssize_t srow,
                    Py_ssize_t* order, Py_ssize_t* pos) noexcept nogil:
    """Bank.process for k rows (row i: slot rv[i], input x + i*n, output out + i*maxc)."""
    cdef Py_ssize_t i, g, s, b, b0, b1, cmin, m
    cdef rs_state* ss[4]
    cdef Py_ssize_t ri[4]
    cdef const float* xs[4]
    cdef float* ys[4]
    cdef rs_sample_t* o
    # one row at a time: at the end of streams, for long or empty blocks, and when each
    # row fills whole periods of 8p outputs that run8 computes from one history
    if last or n == 0 or n > BANK_BLOCK or k < 4 or (n >= 8 * f.q and cr_rs_run8_ok(f.q)):
        for i in range(k):
            o = out + i * maxc
            m = rs_process(&st[rv[i]], f, x + i * n, n, last, o, scratch)
            for g in range(m, maxc):
                o[g] = 0
        return
    # rows ordered by phase (counting sort); rows with one phase form a bucket
    memset(pos, 0, (f.p + 1) * sizeof(Py_ssize_t))
    for i in range(k):
        pos[st[rv[i]].phase + 1] += 1
    for b in range(f.p):
        pos[b + 1] += pos[b]
    for i in range(k):
        b = st[rv[i]].phase
        order[pos[b]] = i
        pos[b] += 1
    # now bucket b is order[pos[b-1] (0 for b = 0) : pos[b]]
    b0 = 0
    for b in range(f.p):
        b1 = pos[b]
        g = b0
        while g + 4 <= b1:
            cmin = maxc
            for s in range(4):
                ri[s] = order[g + s]
                ss[s] = &st[rv[ri[s]]]
                rs_append(ss[s], x + ri[s] * n, n)
                xs[s] = rs_window(ss[s], f)
                if rs_sample_t is float:
                    ys[s] = out + ri[s] * maxc
                else:
                    ys[s] = scratch + s * srow
                if cv[ri[s]] < cmin:
                    cmin = cv[ri[s]]
            if cmin > 0:
                cr_rs_run4(f.coef, f.T, f.next_phase, f.advance, b, xs, cmin, ys)
            for s in range(4):
                rs_advance(ss[s], f, cmin)
                rs_emit(ss[s], f, cv[ri[s]] - cmin, ys[s] + cmin)
                o = out + ri[s] * maxc
                if rs_sample_t is not float:
                    ss[s].clipped += cr_rs_to_int16(ys[s], o, cv[ri[s]])
                for m in range(cv[ri[s]], maxc):
                    o[m] = 0
                rs_compact(ss[s], f)
            g += 4
        while g < b1:
            i = order[g]
            o = out + i * maxc
            m = rs_process(&st[rv[i]], f, x + i * n, n, last, o, scratch)
            for s in range(m, maxc):
                o[s] = 0
            g += 1
        b0 = b1


cdef class Bank:
    """``channels`` independent streaming states over one Filter."""

    cdef readonly Filter filter
    cdef readonly Py_ssize_t channels
    cdef rs_filter f            # the filter's, with a smaller history per slot
    cdef rs_state* st
    cdef float* bufs
    cdef float* scratch
    cdef Py_ssize_t srow        # scratch floats per row of a group of four
    cdef Py_ssize_t* order
    cdef Py_ssize_t* pos
    cdef uint8_t* mark
    cdef bint busy

    def __cinit__(self, Filter filter not None, Py_ssize_t channels):
        """Attach the filter and allocate the states of ``channels`` streams."""
        cdef Py_ssize_t i
        self.st = NULL
        self.bufs = NULL
        self.scratch = NULL
        self.order = NULL
        self.pos = NULL
        self.mark = NULL
        if not 1 <= channels <= MAX_CHANNELS:
            raise ValueError(f"channels must be from 1 to {MAX_CHANNELS:,}, got {channels}")
        self.filter = filter
        self.channels = channels
        self.f = filter.f
        self.f.cap = self.f.T + BANK_BLOCK
        self.srow = (self.f.cap * self.f.p) // self.f.q + 16
        self.st = <rs_state*>PyMem_Malloc(channels * sizeof(rs_state))
        self.bufs = <float*>PyMem_Malloc(channels * self.f.cap * sizeof(float))
        self.scratch = <float*>PyMem_Malloc(4 * self.srow * sizeof(float))
        self.order = <Py_ssize_t*>PyMem_Malloc(channels * sizeof(Py_ssize_t))
        self.pos = <Py_ssize_t*>PyMem_Malloc((self.f.p + 1) * sizeof(Py_ssize_t))
        self.mark = <uint8_t*>PyMem_Malloc(channels)
        if (self.st == NULL or self.bufs == NULL or self.scratch == NULL or self.order == NULL
                or self.pos == NULL or self.mark == NULL):
            raise MemoryError()
        memset(self.mark, 0, channels)
        for i in range(channels):
            self.st[i].buf = self.bufs + i * self.f.cap
            self.st[i].clipped = 0
            rs_reset(&self.st[i], &self.f)

    def __dealloc__(self):
        PyMem_Free(self.st)
        PyMem_Free(self.bufs)
        PyMem_Free(self.scratch)
        PyMem_Free(self.order)
        PyMem_Free(self.pos)
        PyMem_Free(self.mark)

    cdef int _check(self) except -1:
        if self.st == NULL:
            raise RuntimeError("resampler bank not set up")
        return 0

    cdef object _rows(self, rows, Py_ssize_t k):
        """rows as an intp array of k distinct slot indices (None: all slots)."""
        cdef const Py_ssize_t[::1] rv
        cdef Py_ssize_t i
        cdef bint dup = False
        if rows is None:
            if k != self.channels:
                raise ValueError(f"block has {k} rows; without rows= it must have one per "
                                 f"channel ({self.channels})")
            return np.arange(k, dtype=np.intp)
        r_arr = np.ascontiguousarray(slot_array(rows, self.channels, "rows"), dtype=np.intp)
        if r_arr.shape[0] != k:
            raise ValueError(f"rows has {r_arr.shape[0]} entries for a block of {k} rows")
        rv = r_arr
        for i in range(k):
            if self.mark[rv[i]]:
                dup = True
            self.mark[rv[i]] = 1
        for i in range(k):
            self.mark[rv[i]] = 0
        if dup:
            raise ValueError("rows must not repeat a slot")
        return r_arr

    cdef object _rows_any(self, rows):
        if rows is None:
            return np.arange(self.channels, dtype=np.intp)
        return self._rows(rows, np.asarray(rows).reshape(-1).shape[0])

    def counts(self, n, rows=None, bint last=False):
        """Samples process() would give each row for n (0..2**48) more input samples per row."""
        cdef Py_ssize_t i
        self._check()
        cdef Py_ssize_t nn = integer(n, "n", 0, MAX_SAMPLES)
        cdef const Py_ssize_t[::1] rv = self._rows_any(rows)
        res = np.empty(rv.shape[0], dtype=np.int64)
        cdef int64_t[::1] cv = res
        for i in range(rv.shape[0]):
            cv[i] = rs_count(&self.st[rv[i]], &self.f, nn, last)
        return res

    def process(self, block, rows=None, bint last=False):
        """Feed row i of block (k, n) to slot rows[i] (rows=None: row i to slot i, k must
        equal channels); returns (out, counts): out (k, max(counts)) of block's dtype,
        row i holding counts[i] samples then zeros.  last=True ends those streams."""
        cdef Py_ssize_t k, n, i, maxc = 0
        cdef const Py_ssize_t[::1] rv
        cdef const int16_t[:, ::1] x16
        cdef const float[:, ::1] xf
        cdef int16_t[:, ::1] o16
        cdef float[:, ::1] of
        cdef int64_t[::1] cv
        cdef bint is_float
        self._check()
        block = as_samples(block, "block")
        if block.ndim != 2:
            raise ValueError(f"block must be 2-D (rows, samples), got shape {block.shape}")
        k = block.shape[0]
        n = block.shape[1]
        r_arr = self._rows(rows, k)
        rv = r_arr
        if self.busy:
            raise RuntimeError("this resampler bank is in use by another thread")
        counts = np.empty(k, dtype=np.int64)
        cv = counts
        for i in range(k):
            cv[i] = rs_count(&self.st[rv[i]], &self.f, n, last)
            if cv[i] > maxc:
                maxc = cv[i]
        is_float = block.dtype is _F32
        out = np.empty((k, maxc), dtype=np.float32 if is_float else np.int16)
        if k == 0:
            return out, counts
        self.busy = True
        try:
            if is_float:
                xf = block
                of = out
                with nogil:
                    _bank_run(self.st, &self.f, &rv[0], k, &xf[0, 0] if n else NULL, n, last,
                              &of[0, 0] if maxc else NULL, maxc, &cv[0], self.scratch,
                              self.srow, self.order, self.pos)
            else:
                x16 = block
                o16 = out
                with nogil:
                    _bank_run(self.st, &self.f, &rv[0], k, &x16[0, 0] if n else NULL, n, last,
                              &o16[0, 0] if maxc else NULL, maxc, &cv[0], self.scratch,
                              self.srow, self.order, self.pos)
        finally:
            self.busy = False
        return out, counts

    def reset(self, rows=None):
        """Start the given slots (None: all) afresh; their clip counts restart at 0."""
        cdef Py_ssize_t i
        self._check()
        if self.busy:
            raise RuntimeError("this resampler bank is in use by another thread")
        cdef const Py_ssize_t[::1] rv = self._rows_any(rows)
        for i in range(rv.shape[0]):
            rs_reset(&self.st[rv[i]], &self.f)
            self.st[rv[i]].clipped = 0

    def _field(self, int which):
        self._check()
        res = np.empty(self.channels, dtype=np.int64)
        cdef int64_t[::1] v = res
        cdef Py_ssize_t i
        for i in range(self.channels):
            if which == 0:
                v[i] = self.st[i].n_in
            elif which == 1:
                v[i] = self.st[i].n_out
            elif which == 2:
                v[i] = self.st[i].clipped
            else:
                v[i] = rs_total(&self.f, self.st[i].n_in) - self.st[i].n_out
        return res

    @property
    def n_in(self):
        """Input samples of each slot's current stream (int64 array)."""
        return self._field(0)

    @property
    def n_out(self):
        """Output samples of each slot's current stream (int64 array)."""
        return self._field(1)

    @property
    def clipped(self):
        """int16 outputs saturated per slot since construction / reset (int64 array)."""
        return self._field(2)

    @property
    def pending(self):
        """Samples a flush (last=True) would still give, per slot (int64 array)."""
        return self._field(3)
