# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""IMA ADPCM and OKI (Dialogic VOX) ADPCM kernels, shared by every module that needs them.

Both codecs code one 4-bit value per sample: bit 3 the sign, bits 0-2 the magnitude d;
the decoder adds +/- a step-dependent amount to its predictor, clamps, and moves the
step index by {-1,-1,-1,-1,2,4,6,8}[d] within the table.  They differ in:

* IMA (DVI, IMA Recommended Practices 1992; audioop, ffmpeg adpcm_ima_wav, sox and
  libsndfile all decode alike): 16-bit predictor, 89 steps, predictor change
  ``step>>3 + (d&4 ? step) + (d&2 ? step>>1) + (d&1 ? step>>2)`` (the "shift-sum"),
  and the encoder is the reference successive-approximation quantizer (what
  audioop.lin2adpcm does, bit for bit).
* OKI: 12-bit predictor (input ``x >> 4``, output ``p << 4``), 49 steps (16 ... 1552),
  predictor change ``((2d+1) * step) >> 3`` (FFmpeg's adpcm_ima_oki decoder, which we
  match bit for bit), clamp to -2048..2047.  Our encoder picks the code whose
  reconstruction is nearest to the input (ties to the smaller magnitude).

Everything runs from tables indexed by ``base + code`` where ``base = 16 * index``:
``delta`` (signed predictor change), ``next`` (the next base), ``next2_*`` (the base after
a whole byte: one dependent load per two samples on the decoder's critical path) and the
encoder's thresholds (the code magnitude is a count of 7 independent comparisons instead
of a chain of three compare-and-subtract steps).  The clamp is a branch that real audio
never takes, so the predictor chain is one add per sample.

Call ``init_adpcm_tables()`` once at module import.
"""
from libc.stdint cimport int16_t, uint8_t, uint16_t, int32_t, uint32_t

cdef extern from "adpcm_tables.h":
    ctypedef struct cr_adpcm_tables:
        int32_t nsteps
        int32_t lo
        int32_t hi
        const int32_t* step
        int32_t* delta
        uint16_t* next
        uint16_t* next2_hl
        uint16_t* next2_lh
        uint16_t* thr
        uint16_t* thr_next
    const int32_t cr_ima_step[89]
    const int32_t cr_adpcm_adjust[8]
    cr_adpcm_tables cr_ima
    cr_adpcm_tables cr_oki
    int cr_adpcm_ready


# The state of one coder as the kernels carry it.
ctypedef struct cr_lane:
    int32_t p                 # predictor (16-bit IMA, 12-bit OKI)
    uint32_t b                # 16 * step index
    const uint16_t* t         # the encoder thresholds of that index


cdef inline int32_t _clampi(int32_t v, int32_t lo, int32_t hi) noexcept nogil:
    return lo if v < lo else (hi if v > hi else v)


cdef inline void _fill(cr_adpcm_tables* T, bint oki) noexcept nogil:
    cdef int32_t i, c, d, s, v, k, r0, r1, a
    cdef int32_t n = T.nsteps
    for i in range(n):
        s = T.step[i]
        for c in range(16):
            d = c & 7
            if oki:
                v = ((2 * d + 1) * s) >> 3
            else:
                v = s >> 3
                if d & 4:
                    v += s
                if d & 2:
                    v += s >> 1
                if d & 1:
                    v += s >> 2
            T.delta[16 * i + c] = -v if c & 8 else v
            T.next[16 * i + c] = <uint16_t>(16 * _clampi(i + cr_adpcm_adjust[d], 0, n - 1))
        T.thr[8 * i] = 0
        for k in range(1, 8):
            if oki:
                # nearest reconstruction: magnitude >= k when |diff| is strictly closer
                # to R(k) than to R(k-1), R(d) = ((2d+1)*s) >> 3
                r0 = ((2 * k - 1) * s) >> 3
                r1 = ((2 * k + 1) * s) >> 3
                T.thr[8 * i + k] = <uint16_t>((r0 + r1) // 2 + 1)
            else:
                # the reference quantizer compares with step, step>>1, (step>>1)>>1 in
                # turn; its decision levels are these sums (strictly increasing)
                v = 0
                if k & 4:
                    v += s
                if k & 2:
                    v += s >> 1
                if k & 1:
                    v += s >> 2
                T.thr[8 * i + k] = <uint16_t>v
    for i in range(n * 16):
        a = T.next[i] // 2          # 8 * next index
        for k in range(8):
            T.thr_next[8 * i + k] = T.thr[a + k]
    for i in range(n):
        for c in range(256):
            a = T.next[16 * i + (c >> 4)]
            T.next2_hl[256 * i + c] = T.next[a + (c & 15)]
            a = T.next[16 * i + (c & 15)]
            T.next2_lh[256 * i + c] = T.next[a + (c >> 4)]


cdef inline void init_adpcm_tables() noexcept nogil:
    global cr_adpcm_ready
    if cr_adpcm_ready:
        return
    _fill(&cr_ima, False)
    _fill(&cr_oki, True)
    cr_adpcm_ready = 1


# --- one lane -------------------------------------------------------------------------------

cdef inline void lane_set(const cr_adpcm_tables* T, cr_lane* L, int32_t p, int32_t index) noexcept nogil:
    L.p = p
    L.b = <uint32_t>(16 * index)
    L.t = T.thr + 8 * index


cdef inline int32_t lane_index(const cr_lane* L) noexcept nogil:
    return <int32_t>(L.b >> 4)


cdef inline uint32_t enc1(const cr_adpcm_tables* T, cr_lane* L, int32_t x,
                          int32_t lo, int32_t hi) noexcept nogil:
    """Code of one sample (already in the predictor's units); updates the lane."""
    cdef int32_t diff = x - L.p
    cdef int32_t m = diff >> 31
    cdef int32_t ad = (diff ^ m) - m
    cdef const uint16_t* t = L.t
    cdef uint32_t c = <uint32_t>((ad >= t[1]) + (ad >= t[2]) + (ad >= t[3]) + (ad >= t[4])
                                 + (ad >= t[5]) + (ad >= t[6]) + (ad >= t[7])) | <uint32_t>(m & 8)
    cdef uint32_t bc = L.b + c
    cdef int32_t v = L.p + T.delta[bc]
    if <uint32_t>(v - lo) > <uint32_t>(hi - lo):
        v = lo if v < lo else hi
    L.p = v
    L.b = T.next[bc]
    L.t = T.thr_next + 8 * bc
    return c


cdef inline int32_t dec1(const cr_adpcm_tables* T, cr_lane* L, uint32_t c,
                         int32_t lo, int32_t hi) noexcept nogil:
    """Decode one code (0..15); returns the new predictor."""
    cdef uint32_t bc = L.b + c
    cdef int32_t v = L.p + T.delta[bc]
    if <uint32_t>(v - lo) > <uint32_t>(hi - lo):
        v = lo if v < lo else hi
    L.p = v
    L.b = T.next[bc]
    return v


cdef inline void dec_byte(const cr_adpcm_tables* T, cr_lane* L, uint32_t byte, bint low_first,
                          int32_t lo, int32_t hi, int shift, int16_t* out,
                          Py_ssize_t stride) noexcept nogil:
    """Decode one byte (two codes) of one stream to out[0] and out[stride]."""
    cdef uint32_t c1, c2
    if low_first:
        c1 = byte & 15
        c2 = byte >> 4
    else:
        c1 = byte >> 4
        c2 = byte & 15
    cdef uint32_t b = L.b
    cdef int32_t d1 = T.delta[b + c1]
    cdef int32_t d2 = T.delta[T.next[b + c1] + c2]
    if low_first:
        L.b = T.next2_lh[16 * b + byte]
    else:
        L.b = T.next2_hl[16 * b + byte]
    cdef int32_t v = L.p + d1
    if <uint32_t>(v - lo) > <uint32_t>(hi - lo):
        v = lo if v < lo else hi
    out[0] = <int16_t>(v << shift)
    v = v + d2
    if <uint32_t>(v - lo) > <uint32_t>(hi - lo):
        v = lo if v < lo else hi
    out[stride] = <int16_t>(v << shift)
    L.p = v


# --- raw streams (high nibble first) ----------------------------------------------------------

cdef inline void encode_pairs_k(const cr_adpcm_tables* T, cr_lane* L, const int16_t* src,
                                Py_ssize_t nbytes, uint8_t* dst, int32_t lo, int32_t hi,
                                int shift) noexcept nogil:
    """2*nbytes samples -> nbytes bytes, first sample of each pair in the high nibble."""
    cdef Py_ssize_t i
    cdef uint32_t c1, c2
    for i in range(nbytes):
        c1 = enc1(T, L, src[2 * i] >> shift, lo, hi)
        c2 = enc1(T, L, src[2 * i + 1] >> shift, lo, hi)
        dst[i] = <uint8_t>((c1 << 4) | c2)


cdef inline void decode_bytes_k(const cr_adpcm_tables* T, cr_lane* L, const uint8_t* src,
                                Py_ssize_t nbytes, int16_t* dst, int32_t lo, int32_t hi,
                                int shift) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(nbytes):
        dec_byte(T, L, src[i], False, lo, hi, shift, dst + 2 * i, 1)


cdef inline void encode_rows_k(const cr_adpcm_tables* T, const int16_t* src, Py_ssize_t rows,
                               Py_ssize_t n, int32_t* state, uint8_t* dst, int32_t lo,
                               int32_t hi, int shift) noexcept nogil:
    """Independent raw streams, one per row of a (rows, n) array (n even), state[2*r] the
    predictor and state[2*r+1] the index of row r (updated).  Four rows run in lockstep:
    four independent dependency chains keep the CPU's units busy."""
    cdef Py_ssize_t r, i, k, nb = n // 2
    cdef cr_lane L[4]
    cdef uint32_t c1, c2
    r = 0
    while r + 4 <= rows:
        for k in range(4):
            lane_set(T, &L[k], state[2 * (r + k)], state[2 * (r + k) + 1])
        for i in range(nb):
            for k in range(4):
                c1 = enc1(T, &L[k], src[(r + k) * n + 2 * i] >> shift, lo, hi)
                c2 = enc1(T, &L[k], src[(r + k) * n + 2 * i + 1] >> shift, lo, hi)
                dst[(r + k) * nb + i] = <uint8_t>((c1 << 4) | c2)
        for k in range(4):
            state[2 * (r + k)] = L[k].p
            state[2 * (r + k) + 1] = lane_index(&L[k])
        r += 4
    while r < rows:
        lane_set(T, &L[0], state[2 * r], state[2 * r + 1])
        encode_pairs_k(T, &L[0], src + r * n, nb, dst + r * nb, lo, hi, shift)
        state[2 * r] = L[0].p
        state[2 * r + 1] = lane_index(&L[0])
        r += 1


cdef inline void decode_rows_k(const cr_adpcm_tables* T, const uint8_t* src, Py_ssize_t rows,
                               Py_ssize_t nb, int32_t* state, int16_t* dst, int32_t lo,
                               int32_t hi, int shift) noexcept nogil:
    cdef Py_ssize_t r, i, k
    cdef cr_lane L[4]
    r = 0
    while r + 4 <= rows:
        for k in range(4):
            lane_set(T, &L[k], state[2 * (r + k)], state[2 * (r + k) + 1])
        for i in range(nb):
            for k in range(4):
                dec_byte(T, &L[k], src[(r + k) * nb + i], False, lo, hi, shift,
                         dst + (r + k) * 2 * nb + 2 * i, 1)
        for k in range(4):
            state[2 * (r + k)] = L[k].p
            state[2 * (r + k) + 1] = lane_index(&L[k])
        r += 4
    while r < rows:
        lane_set(T, &L[0], state[2 * r], state[2 * r + 1])
        decode_bytes_k(T, &L[0], src + r * nb, nb, dst + r * 2 * nb, lo, hi, shift)
        state[2 * r] = L[0].p
        state[2 * r + 1] = lane_index(&L[0])
        r += 1


# --- WAV IMA ADPCM blocks ---------------------------------------------------------------------
# A block of ch channels: ch 4-byte headers (int16 LE first sample, uint8 index, 0), then
# groups of 4 bytes per channel in turn, each byte two samples, low nibble first.

cdef inline void ima_wav_encode_block_k(const int16_t* src, int ch, Py_ssize_t ngroups,
                                        int32_t* index, uint8_t* dst) noexcept nogil:
    """One block: src holds 1 + 8*ngroups interleaved frames; index[c] is carried."""
    cdef int c, j
    cdef Py_ssize_t g
    cdef cr_lane L
    cdef int16_t first
    cdef uint32_t c1, c2
    cdef const int16_t* x
    cdef uint8_t* o
    for c in range(ch):
        first = src[c]
        dst[4 * c] = <uint8_t>(<uint16_t>first & 0xFF)
        dst[4 * c + 1] = <uint8_t>(<uint16_t>first >> 8)
        dst[4 * c + 2] = <uint8_t>index[c]
        dst[4 * c + 3] = 0
        lane_set(&cr_ima, &L, first, index[c])
        x = src + ch + c
        o = dst + 4 * ch + 4 * c
        for g in range(ngroups):
            for j in range(4):
                c1 = enc1(&cr_ima, &L, x[(8 * g + 2 * j) * ch], -32768, 32767)
                c2 = enc1(&cr_ima, &L, x[(8 * g + 2 * j + 1) * ch], -32768, 32767)
                o[4 * ch * g + j] = <uint8_t>(c1 | (c2 << 4))
        index[c] = lane_index(&L)


cdef inline void ima_wav_decode_k(const uint8_t* src, Py_ssize_t nstreams, int ch,
                                  Py_ssize_t block_align, Py_ssize_t ngroups,
                                  int16_t* dst) noexcept nogil:
    """Decode ``nstreams`` (block, channel) streams of consecutive blocks of one size
    (stream s = channel s % ch of block s // ch) to interleaved samples, four streams
    in lockstep.  Headers must have been checked (index <= 88)."""
    cdef Py_ssize_t spb = 8 * ngroups + 1
    cdef Py_ssize_t s, g, k, blk
    cdef int j, c, m
    cdef cr_lane L[4]
    cdef const uint8_t* data[4]
    cdef int16_t* out[4]
    cdef const uint8_t* h
    s = 0
    while s < nstreams:
        m = 4 if nstreams - s >= 4 else <int>(nstreams - s)
        for k in range(m):
            blk = (s + k) // ch
            c = <int>((s + k) % ch)
            h = src + blk * block_align + 4 * c
            lane_set(&cr_ima, &L[k], <int16_t>(h[0] | (h[1] << 8)), h[2])
            data[k] = src + blk * block_align + 4 * ch + 4 * c
            out[k] = dst + blk * spb * ch + c
            out[k][0] = <int16_t>L[k].p
        if m == 4:
            for g in range(ngroups):
                for j in range(4):
                    for k in range(4):
                        dec_byte(&cr_ima, &L[k], data[k][4 * ch * g + j], True, -32768, 32767,
                                 0, out[k] + (8 * g + 2 * j + 1) * ch, ch)
        else:
            for k in range(m):
                for g in range(ngroups):
                    for j in range(4):
                        dec_byte(&cr_ima, &L[k], data[k][4 * ch * g + j], True, -32768, 32767,
                                 0, out[k] + (8 * g + 2 * j + 1) * ch, ch)
        s += m


# --- interleaved nibble streams (OKI in WAV: channel k of frame i is nibble i*ch + k) --------

cdef inline void oki_encode_stereo_k(const int16_t* src, Py_ssize_t frames, cr_lane* L,
                                     uint8_t* dst) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint32_t c1, c2
    for i in range(frames):
        c1 = enc1(&cr_oki, &L[0], src[2 * i] >> 4, -2048, 2047)
        c2 = enc1(&cr_oki, &L[1], src[2 * i + 1] >> 4, -2048, 2047)
        dst[i] = <uint8_t>((c1 << 4) | c2)


cdef inline void oki_decode_stereo_k(const uint8_t* src, Py_ssize_t frames, cr_lane* L,
                                     int16_t* dst) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint32_t byte
    for i in range(frames):
        byte = src[i]
        dst[2 * i] = <int16_t>(dec1(&cr_oki, &L[0], byte >> 4, -2048, 2047) << 4)
        dst[2 * i + 1] = <int16_t>(dec1(&cr_oki, &L[1], byte & 15, -2048, 2047) << 4)
