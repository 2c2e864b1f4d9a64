# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""IMA ADPCM and OKI (Dialogic VOX) ADPCM kernels, shared by every module that needs them.

Both codecs code one 4-bit value per sample: bit 3 the sign, bits 0-2 the magnitude d;
the decoder adds +/- a step-dependent amount to its predictor, clamps, and moves the
step index by {-1,-1,-1,-1,2,4,6,8}[d] within the table.  They differ in:

* IMA (DVI, IMA Recommended Practices 1992): 16-bit predictor, 89 steps, predictor
  change ``step>>3 + (d&4 ? step) + (d&2 ? step>>1) + (d&1 ? step>>2)`` (the reference
  "shift-sum", as audioop, sox and libsndfile decode; FFmpeg's adpcm_ima_wav multiplies
  instead, see below).  Raw IMA is coded by the reference successive-approximation
  quantizer (what audioop.lin2adpcm does, bit for bit).
* OKI: 12-bit predictor (input ``x >> 4``, output ``p << 4``), 49 steps (16 ... 1552),
  predictor change ``((2d+1) * step) >> 3`` (FFmpeg's adpcm_ima_oki, sox and libsndfile,
  which we match bit for bit; spandsp shift-sums), clamp to -2048..2047.

Decoding runs by whole bytes: per (index, byte), one table holds the magnitudes of both
predictor changes and another the next state, so the decoder's critical path is one
load per two samples.  The reference IMA encoder runs from tables indexed by
``16 * index + code`` (predictor change, next state, the next state's decision levels):
the code magnitude is a count of 7 independent comparisons instead of a chain of three
compare-and-subtract steps.  Clamps are branches that real audio never takes.  The OKI
encoder, and IMA in WAV files, use the search encoder (see the comment on the search encoder below;
the encoder itself is C, in adpcm_search.h, for its SSE2 and AVX2 parts).

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
        uint16_t* thr
        uint16_t* thr_next
    const int32_t cr_ima_step[89]
    const int32_t cr_adpcm_adjust[8]
    const cr_adpcm_tables cr_ima
    const cr_adpcm_tables cr_oki
    ctypedef struct cr_search_tables:
        int32_t lo
        int32_t hi
        int32_t* rm
        int32_t* rs
        int32_t* nbase
        int32_t* athr
    const cr_search_tables cr_oki_search
    uint32_t cr_oki_pair[49 * 256]
    uint16_t cr_oki_row2[49 * 256]
    uint32_t cr_ima_pair[89 * 256]
    uint16_t cr_ima_row2[89 * 256]
    const cr_search_tables cr_ima_search
    int cr_adpcm_ready

cdef extern from "adpcm_search.h":
    ctypedef struct cr_search_state:
        int32_t pm            # predictor of a multiply-rounding decoder
        int32_t ps            # predictor of a shift-sum decoder
        int32_t idx           # step index (the same in both)
    int32_t cr_as_clamp(int32_t v, int32_t lo, int32_t hi) noexcept nogil
    void cr_search_init() noexcept nogil
    Py_ssize_t cr_search(const cr_search_tables* Q, cr_search_state* S, const int16_t* x,
                         Py_ssize_t n, Py_ssize_t nfin, int shift, int* held,
                         uint8_t* dst) noexcept nogil
    void cr_search_rows(const cr_search_tables* Q, const int16_t* src, Py_ssize_t rows,
                        Py_ssize_t n, Py_ssize_t nfin, int32_t* state, int shift,
                        uint8_t* dst) noexcept nogil


# The state of one coder as the kernels carry it.
ctypedef struct cr_lane:
    int32_t p                 # predictor (16-bit IMA, 12-bit OKI)
    uint32_t b                # 16 * step index
    const uint16_t* t         # the IMA encoder's thresholds of that index


cdef inline int32_t shift_sum(int32_t d, int32_t s) noexcept nogil:
    """IMA reference reconstruction of magnitude d: s/8 plus the halvings of s that the
    code bits select (audioop, sox, libsndfile; spandsp for OKI)."""
    cdef int32_t v = s >> 3
    if d & 4:
        v += s
    if d & 2:
        v += s >> 1
    if d & 1:
        v += s >> 2
    return v


cdef inline int32_t multiply(int32_t d, int32_t s) noexcept nogil:
    """((2d+1) * s) / 8 rounded down (FFmpeg; sox and libsndfile for OKI)."""
    return ((2 * d + 1) * s) >> 3


cdef inline void _fill(const cr_adpcm_tables* T, bint oki) noexcept nogil:
    cdef int32_t i, c, d, s, v, k, a
    cdef int32_t n = T.nsteps
    for i in range(n):
        s = T.step[i]
        for c in range(16):
            d = c & 7
            v = multiply(d, s) if oki else shift_sum(d, s)
            T.delta[16 * i + c] = -v if c & 8 else v
            T.next[16 * i + c] = <uint16_t>(16 * cr_as_clamp(i + cr_adpcm_adjust[d], 0, n - 1))
        if T.thr != NULL:
            # the reference quantizer compares with step, step>>1, (step>>1)>>1 in turn;
            # its decision levels are these sums (strictly increasing)
            for k in range(8):
                T.thr[8 * i + k] = <uint16_t>(shift_sum(k, s) - (s >> 3))
    if T.thr != NULL:
        for i in range(n * 16):
            a = T.next[i] // 2          # 8 * next index
            for k in range(8):
                T.thr_next[8 * i + k] = T.thr[a + k]


cdef inline void _fill_search(const cr_adpcm_tables* T, const cr_search_tables* Q) noexcept nogil:
    cdef int32_t i, d, s, v, k
    cdef int32_t n = T.nsteps
    for i in range(n):
        s = T.step[i]
        for d in range(8):
            Q.rm[8 * i + d] = multiply(d, s)
            Q.rs[8 * i + d] = shift_sum(d, s)
            Q.nbase[8 * i + d] = 8 * cr_as_clamp(i + cr_adpcm_adjust[d], 0, n - 1)
        Q.athr[8 * i] = 0
        for k in range(1, 8):
            # |u| >= level: magnitude k is strictly nearer than k-1 to u = 2t - pm - ps,
            # measured against the sum of the two roundings
            v = Q.rm[8 * i + k - 1] + Q.rs[8 * i + k - 1] + Q.rm[8 * i + k] + Q.rs[8 * i + k]
            Q.athr[8 * i + k] = v // 2 + 1


cdef inline void _fill_pairs() noexcept nogil:
    cdef int32_t i, c, a
    for i in range(49):
        for c in range(256):
            a = cr_oki.next[16 * i + (c >> 4)]
            cr_oki_pair[256 * i + c] = (<uint32_t>(16 * cr_oki.delta[16 * i + ((c >> 4) & 7)])
                                        | (<uint32_t>(16 * cr_oki.delta[a + (c & 7)]) << 16))
            cr_oki_row2[256 * i + c] = <uint16_t>(16 * cr_oki.next[a + (c & 15)])
    for i in range(89):
        for c in range(256):
            a = cr_ima.next[16 * i + (c >> 4)]
            cr_ima_pair[256 * i + c] = (
                <uint32_t>cr_as_clamp(cr_ima.delta[16 * i + ((c >> 4) & 7)], 0, 65535)
                | (<uint32_t>cr_as_clamp(cr_ima.delta[a + (c & 7)], 0, 65535) << 16))
            cr_ima_row2[256 * i + c] = <uint16_t>(16 * cr_ima.next[a + (c & 15)])


cdef inline void init_adpcm_tables() noexcept nogil:
    global cr_adpcm_ready
    if cr_adpcm_ready:
        return
    _fill(&cr_ima, False)
    _fill(&cr_oki, True)
    _fill_search(&cr_oki, &cr_oki_search)
    _fill_search(&cr_ima, &cr_ima_search)
    cr_search_init()
    _fill_pairs()
    cr_adpcm_ready = 1


# --- one lane -------------------------------------------------------------------------------

cdef inline void lane_set(const cr_adpcm_tables* T, cr_lane* L, int32_t p,
                          int32_t index) noexcept nogil:
    L.p = p
    L.b = <uint32_t>(16 * index)
    L.t = T.thr + 8 * index if T.thr != NULL else NULL


cdef inline int32_t lane_index(const cr_lane* L) noexcept nogil:
    return <int32_t>(L.b >> 4)


cdef inline uint32_t _apply(const cr_adpcm_tables* T, cr_lane* L, uint32_t c,
                            int32_t lo, int32_t hi) noexcept nogil:
    """Move the lane by code c (0..15); returns base + code."""
    cdef uint32_t bc = L.b + c
    cdef int32_t v = L.p + T.delta[bc]
    if <uint32_t>(v - lo) > <uint32_t>(hi - lo):
        v = lo if v < lo else hi
    L.p = v
    L.b = T.next[bc]
    return bc


cdef inline uint32_t enc1(const cr_adpcm_tables* T, cr_lane* L, int32_t x,
                          int32_t lo, int32_t hi) noexcept nogil:
    """Code of one sample by the reference quantizer (IMA); updates the lane."""
    cdef int32_t diff = x - L.p
    cdef int32_t m = diff >> 31
    cdef int32_t ad = (diff ^ m) - m
    cdef const uint16_t* t = L.t
    cdef uint32_t c = <uint32_t>((ad >= t[1]) + (ad >= t[2]) + (ad >= t[3]) + (ad >= t[4])
                                 + (ad >= t[5]) + (ad >= t[6]) + (ad >= t[7])) | <uint32_t>(m & 8)
    L.t = T.thr_next + 8 * _apply(T, L, c, lo, hi)
    return c


cdef inline int32_t dec1(const cr_adpcm_tables* T, cr_lane* L, uint32_t c,
                         int32_t lo, int32_t hi) noexcept nogil:
    """Decode one code (0..15); returns the new predictor."""
    _apply(T, L, c, lo, hi)
    return L.p


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


cdef inline void _pair_byte(const uint32_t* pairs, const uint16_t* rows, int32_t lo, int32_t hi,
                            uint32_t* row, int32_t* p, uint32_t byte, int16_t* out,
                            Py_ssize_t stride) noexcept nogil:
    """Decode one byte, high nibble first, by (index, byte) tables: pairs holds the two
    magnitudes of the predictor changes (signs: bits 7 and 3 of the byte), rows the
    next 256 * index."""
    cdef uint32_t pair = pairs[row[0] + byte]
    cdef int32_t s1 = -<int32_t>((byte >> 7) & 1)
    cdef int32_t s2 = -<int32_t>((byte >> 3) & 1)
    cdef int32_t v
    row[0] = rows[row[0] + byte]
    v = p[0] + ((<int32_t>(pair & 0xFFFF) ^ s1) - s1)
    if <uint32_t>(v - lo) > <uint32_t>(hi - lo):
        v = lo if v < lo else hi
    out[0] = <int16_t>v
    v = v + ((<int32_t>(pair >> 16) ^ s2) - s2)
    if <uint32_t>(v - lo) > <uint32_t>(hi - lo):
        v = lo if v < lo else hi
    out[stride] = <int16_t>v
    p[0] = v


cdef inline void _ima_pair_byte(uint32_t* row, int32_t* p, uint32_t byte, int16_t* out,
                                Py_ssize_t stride) noexcept nogil:
    _pair_byte(cr_ima_pair, cr_ima_row2, -32768, 32767, row, p, byte, out, stride)


cdef inline void pair_decode_k(bint oki, cr_lane* L, const uint8_t* src, Py_ssize_t nbytes,
                               int16_t* dst) noexcept nogil:
    """Raw decoding (high nibble first) by the (index, byte) tables.  OKI runs the same
    loop on 16 * its 12-bit predictor, clamped to -32768..32752 (which is the 12-bit
    clamp), so no shift is left per sample."""
    cdef Py_ssize_t i
    cdef uint32_t row = L.b * 16
    cdef int32_t v
    if oki:
        v = L.p * 16
        for i in range(nbytes):
            _pair_byte(cr_oki_pair, cr_oki_row2, -32768, 32752, &row, &v, src[i], dst + 2 * i, 1)
        L.p = v >> 4
    else:
        v = L.p
        for i in range(nbytes):
            _pair_byte(cr_ima_pair, cr_ima_row2, -32768, 32767, &row, &v, src[i], dst + 2 * i, 1)
        L.p = v
    L.b = row // 16


cdef inline void encode_rows_k(const cr_adpcm_tables* T, const int16_t* src, Py_ssize_t rows,
                               Py_ssize_t n, int32_t* state, Py_ssize_t sw, uint8_t* dst,
                               int32_t lo, int32_t hi, int shift) noexcept nogil:
    """Independent raw streams, one per row of a (rows, n) array (n even), state[sw*r] the
    predictor and state[sw*r+1] the index of row r (updated).  Four rows run in lockstep:
    four independent dependency chains keep the CPU's units busy."""
    cdef Py_ssize_t r, i, k, nb = n // 2
    cdef cr_lane L[4]
    cdef uint32_t c1, c2
    r = 0
    while r + 4 <= rows:
        for k in range(4):
            lane_set(T, &L[k], state[sw * (r + k)], state[sw * (r + k) + 1])
        for i in range(nb):
            for k in range(4):
                c1 = enc1(T, &L[k], src[(r + k) * n + 2 * i] >> shift, lo, hi)
                c2 = enc1(T, &L[k], src[(r + k) * n + 2 * i + 1] >> shift, lo, hi)
                dst[(r + k) * nb + i] = <uint8_t>((c1 << 4) | c2)
        for k in range(4):
            state[sw * (r + k)] = L[k].p
            state[sw * (r + k) + 1] = lane_index(&L[k])
        r += 4
    while r < rows:
        lane_set(T, &L[0], state[sw * r], state[sw * r + 1])
        encode_pairs_k(T, &L[0], src + r * n, nb, dst + r * nb, lo, hi, shift)
        state[sw * r] = L[0].p
        state[sw * r + 1] = lane_index(&L[0])
        r += 1


cdef inline void _pair_rows4(const uint32_t* pairs, const uint16_t* rows_t, int32_t lo, int32_t hi,
                             int unit, const uint8_t* src, Py_ssize_t nb, int32_t* state,
                             Py_ssize_t sw, int16_t* dst) noexcept nogil:
    """Four rows in lockstep, each chain in its own variables (short rows: overlapping the
    four chains pays, unlike for long streams)."""
    cdef Py_ssize_t i
    cdef uint32_t r0 = <uint32_t>(256 * state[1]), r1 = <uint32_t>(256 * state[sw + 1])
    cdef uint32_t r2 = <uint32_t>(256 * state[2 * sw + 1]), r3 = <uint32_t>(256 * state[3 * sw + 1])
    cdef int32_t p0 = state[0] * unit, p1 = state[sw] * unit
    cdef int32_t p2 = state[2 * sw] * unit, p3 = state[3 * sw] * unit
    for i in range(nb):
        _pair_byte(pairs, rows_t, lo, hi, &r0, &p0, src[i], dst + 2 * i, 1)
        _pair_byte(pairs, rows_t, lo, hi, &r1, &p1, src[nb + i], dst + 2 * nb + 2 * i, 1)
        _pair_byte(pairs, rows_t, lo, hi, &r2, &p2, src[2 * nb + i], dst + 4 * nb + 2 * i, 1)
        _pair_byte(pairs, rows_t, lo, hi, &r3, &p3, src[3 * nb + i], dst + 6 * nb + 2 * i, 1)
    state[0], state[sw] = p0 // unit, p1 // unit
    state[2 * sw], state[3 * sw] = p2 // unit, p3 // unit
    state[1], state[sw + 1] = <int32_t>(r0 // 256), <int32_t>(r1 // 256)
    state[2 * sw + 1], state[3 * sw + 1] = <int32_t>(r2 // 256), <int32_t>(r3 // 256)


cdef inline void decode_rows_k(bint oki, const uint8_t* src, Py_ssize_t rows, Py_ssize_t nb,
                               int32_t* state, Py_ssize_t sw, int16_t* dst) noexcept nogil:
    """Independent raw streams, one per row of a (rows, nb) byte array; state[sw*r] the
    predictor and state[sw*r+1] the index of row r (updated)."""
    cdef Py_ssize_t r = 0
    cdef cr_lane L
    while r + 4 <= rows:
        if oki:
            _pair_rows4(cr_oki_pair, cr_oki_row2, -32768, 32752, 16, src + r * nb, nb,
                        state + sw * r, sw, dst + r * 2 * nb)
        else:
            _pair_rows4(cr_ima_pair, cr_ima_row2, -32768, 32767, 1, src + r * nb, nb,
                        state + sw * r, sw, dst + r * 2 * nb)
        r += 4
    while r < rows:
        L.p = state[sw * r]
        L.b = <uint32_t>(16 * state[sw * r + 1])
        pair_decode_k(oki, &L, src + r * nb, nb, dst + r * 2 * nb)
        state[sw * r] = L.p
        state[sw * r + 1] = lane_index(&L)
        r += 1


# --- search encoder (OKI; IMA in WAV files) --------------------------------------------------
# Decoders of OKI ADPCM disagree on rounding (FFmpeg, sox and libsndfile add
# ((2d+1)*step)>>3, spandsp step>>3 + (d&1 ? step>>2) + ...): the same codes drift apart
# in the two kinds of decoder, since nothing in ADPCM pulls a decoder back.  So the
# encoder follows both predictors (pm: multiply, ps: shift-sum) and scores a choice by
# the squared error of both.  And a greedy choice (the code nearest to this sample)
# lags behind fast changes, costing 1.5 to 2 % of the speech energy: for each of the 8
# magnitudes (with the sign of the error) the encoder looks two samples ahead (the
# nearest magnitude or one more at the next sample, then the nearest), and keeps the
# first code of the cheapest path.  So the code of sample i depends on samples i+1 and
# i+2; past the end of the stream the last sample is repeated.  (Chosen by measuring
# over espeak-ng speech and 60 telephone prompts: this keeps gain and residual errors
# within about 1 % for both kinds of decoder, where a greedy coder, like spandsp's own,
# loses 1.5 to 2 % of the energy, and a coder blind to spandsp's rounding drifts by
# tens of percent there.)  IMA in WAV files has the same split (FFmpeg multiplies, the
# reference, sox and libsndfile shift), only bounded by the block length, and gains the
# same from looking ahead; raw IMA keeps the reference coder, bit-exact with audioop.
# The encoder, cr_search(), is C (adpcm_search.h): SSE2 scores the 8 magnitudes at once.

# --- WAV IMA ADPCM blocks ---------------------------------------------------------------------
# A block of ch channels: ch 4-byte headers (int16 LE first sample, uint8 index, 0), then
# groups of 4 bytes per channel in turn, each byte two samples, low nibble first.

cdef inline void ima_wav_encode_block_k(const int16_t* src, int ch, Py_ssize_t ngroups,
                                        int32_t* index, uint8_t* dst) noexcept nogil:
    """One block: src holds 1 + 8*ngroups <= 2048 interleaved frames; index[c] is carried
    over from block to block.  Coded by the search encoder (cr_search), which looks
    ahead within the block and follows both roundings: the reference's (sox,
    libsndfile, audioop) and FFmpeg's."""
    cdef int c, j
    cdef Py_ssize_t g, i, n = 8 * ngroups
    cdef cr_search_state S
    cdef int16_t first
    cdef int16_t x[2048]
    cdef uint8_t codes[2048]
    cdef uint8_t* o
    for c in range(ch):
        first = src[c]
        dst[4 * c] = <uint8_t>(<uint16_t>first & 0xFF)
        dst[4 * c + 1] = <uint8_t>(<uint16_t>first >> 8)
        dst[4 * c + 2] = <uint8_t>index[c]
        dst[4 * c + 3] = 0
        for i in range(n):
            x[i] = src[(i + 1) * ch + c]
        S.pm = first
        S.ps = first
        S.idx = index[c]
        cr_search(&cr_ima_search, &S, x, n, n, 0, NULL, codes)
        o = dst + 4 * ch + 4 * c
        for g in range(ngroups):
            for j in range(4):
                o[4 * ch * g + j] = <uint8_t>(codes[8 * g + 2 * j]
                                              | (codes[8 * g + 2 * j + 1] << 4))
        index[c] = S.idx


cdef inline void ima_wav_decode_k(const uint8_t* src, Py_ssize_t nstreams, int ch,
                                  Py_ssize_t block_align, Py_ssize_t ngroups,
                                  int16_t* dst) noexcept nogil:
    """Decode ``nstreams`` (block, channel) streams of consecutive blocks of one size
    (stream s = channel s % ch of block s // ch) to interleaved samples.  WAV puts the
    first sample of a byte in the low nibble: swapping the nibbles lets the raw
    decoder's (index, byte) tables serve.  (Four streams in lockstep measured slower
    than one at a time, 820 vs 900 Ms/s: with these tables a stream is nearly as fast as
    the instruction count allows.)  Headers must have been checked (index <= 88)."""
    cdef Py_ssize_t spb = 8 * ngroups + 1
    cdef Py_ssize_t s, g, blk, i
    cdef int j, c
    cdef uint32_t row
    cdef int32_t p
    cdef const uint8_t* data
    cdef int16_t* out
    cdef const uint8_t* h
    cdef uint8_t swap[256]
    for i in range(256):
        swap[i] = <uint8_t>(((i << 4) | (i >> 4)) & 0xFF)
    for s in range(nstreams):
        blk = s // ch
        c = <int>(s % ch)
        h = src + blk * block_align + 4 * c
        p = <int16_t>(h[0] | (h[1] << 8))
        row = 256 * <uint32_t>h[2]
        data = src + blk * block_align + 4 * ch + 4 * c
        out = dst + blk * spb * ch + c
        out[0] = <int16_t>p
        for g in range(ngroups):
            for j in range(4):
                _ima_pair_byte(&row, &p, swap[data[4 * ch * g + j]],
                               out + (8 * g + 2 * j + 1) * ch, ch)


# --- OKI stereo in WAV: one byte per frame, left channel in the high nibble -------------------

cdef inline void oki_decode_stereo_k(const uint8_t* src, Py_ssize_t frames, cr_lane* L,
                                     int16_t* dst) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint32_t byte
    for i in range(frames):
        byte = src[i]
        dst[2 * i] = <int16_t>(dec1(&cr_oki, &L[0], byte >> 4, -2048, 2047) << 4)
        dst[2 * i + 1] = <int16_t>(dec1(&cr_oki, &L[1], byte & 15, -2048, 2047) << 4)


cdef inline void search_rows_k(const cr_search_tables* Q, const int16_t* src, Py_ssize_t rows,
                               Py_ssize_t n, Py_ssize_t nfin, int32_t* state, int shift,
                               uint8_t* dst) noexcept nogil:
    """The first nfin samples (nfin even, 0 < nfin <= n) of each row of a (rows, n) array
    coded as a stream (lookahead within the row, the last sample repeated past it) from
    state row r = (pm, index, ps), which becomes the state after those nfin codes; row
    r's nfin / 2 bytes at dst + r * (nfin / 2).  nfin = n codes whole rows; nfin = n - 2
    codes what the row's last two samples (its lookahead) settle.  OKI on AVX2 codes 16
    rows side by side, one per 16-bit lane (the same codes as one row at a time;
    cr_search_rows in adpcm_search.h)."""
    cr_search_rows(Q, src, rows, n, nfin, state, shift, dst)
