# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Python-facing IMA / OKI ADPCM kernels.  Arguments are validated by recorder.adpcm;
here only sizes and states are checked, then the loops run with the GIL released."""
from libc.stdint cimport int16_t, uint8_t, int32_t, uint32_t

import operator

from recorder._buffers import MAX_SAMPLES, integer

from cpu_isa cimport cr_isa, cr_isa_set
from adpcm_k cimport (
    cr_adpcm_tables, cr_lane, cr_ima, cr_oki, init_adpcm_tables, lane_set, lane_index,
    enc1, dec1, encode_pairs_k, pair_decode_k, encode_rows_k, decode_rows_k,
    cr_search_state, cr_oki_search, cr_search, search_rows_k, cr_as_clamp,
    ima_wav_encode_block_k, ima_wav_decode_k, oki_decode_stereo_k,
)

init_adpcm_tables()


def isa():
    """The SIMD level in use here (cpu_isa.h); public switch: recorder.simd."""
    return cr_isa()


def set_isa(int level):
    """Use at most ``level`` (< 0: the CPU's best) for the search encoder's primitives
    (OKI; IMA in WAV files always runs the portable ones); returns the level in use.
    Called by recorder.simd.set_simd_level for every kernel module at once."""
    return cr_isa_set(level)


IMA_STEPS = 89
OKI_STEPS = 49


cdef inline bint _state_ok(bint oki, long p, long index) noexcept nogil:
    if oki:
        return -2048 <= p <= 2047 and 0 <= index <= 48
    return -32768 <= p <= 32767 and 0 <= index <= 88


cdef void _check_state(bint oki, object p, object index, str where) except *:
    """TypeError unless both are ints, ValueError unless in range (Python ints of any
    size: never OverflowError)."""
    cdef str name = "OKI" if oki else "IMA"
    for v, what in ((p, "predictor"), (index, "step index")):
        if isinstance(v, bool) or not hasattr(type(v), "__index__"):
            raise TypeError(f"{where}{name} {what} must be an int, not {type(v).__name__}")
    if oki:
        if not -2048 <= p <= 2047:
            raise ValueError(f"{where}OKI predictor must be in -2048..2047 (12-bit units), got {p}")
        if not 0 <= index <= 48:
            raise ValueError(f"{where}OKI step index must be in 0..48, got {index}")
    else:
        if not -32768 <= p <= 32767:
            raise ValueError(f"{where}IMA predictor must be in -32768..32767, got {p}")
        if not 0 <= index <= 88:
            raise ValueError(f"{where}IMA step index must be in 0..88, got {index}")


cdef inline void _need(Py_ssize_t have, Py_ssize_t want, str what) except *:
    if have != want:
        raise ValueError(f"{what} has {have} elements, expected {want}")


cdef class Coder:
    """One IMA or OKI stream: predictor, step index, a code held back until its byte is
    complete, and (OKI encoder) the shift-sum shadow predictor and up to two samples
    held back as lookahead."""
    cdef cr_lane lane
    cdef readonly bint oki
    cdef int held
    cdef int32_t shadow
    cdef int npend
    cdef int16_t pend[2]

    def __cinit__(self, *args, **kwargs):
        self.held = -1
        lane_set(&cr_ima, &self.lane, 0, 0)

    cdef inline const cr_adpcm_tables* _tables(self) noexcept:
        return &cr_oki if self.oki else &cr_ima

    @property
    def predictor(self):
        return self.lane.p

    @property
    def index(self):
        return lane_index(&self.lane)

    @property
    def held(self):
        """The code (0..15) of a sample whose byte is not complete yet, or None."""
        return None if self.held < 0 else self.held

    @held.setter
    def held(self, code):
        if code is None:
            self.held = -1
        elif isinstance(code, bool) or not hasattr(type(code), "__index__"):
            raise TypeError(f"held code must be None or an int 0..15, not {type(code).__name__}")
        elif not 0 <= code <= 15:
            raise ValueError(f"held code must be None or 0..15, got {code}")
        else:
            self.held = code

    @property
    def lookahead(self):
        """Samples received but not coded yet (OKI encoder: up to two)."""
        return tuple(self.pend[i] for i in range(self.npend))

    @property
    def shadow(self):
        """OKI encoder: the predictor a shift-sum decoder (spandsp) has reached."""
        return self.shadow

    def set_state(self, p, index):
        """Set (predictor, step index); the OKI shadow predictor follows the predictor."""
        _check_state(self.oki, p, index, "")
        cdef int32_t cp = operator.index(p), ci = operator.index(index)
        lane_set(self._tables(), &self.lane, cp, ci)
        self.shadow = cp

    def reset(self):
        """Back to the state (0, 0), dropping anything held back."""
        self.set_state(0, 0)
        self.held = -1
        self.npend = 0

    def nbytes(self, nsamples):
        """Bytes that encode_into() writes for nsamples more samples (0..2**48)."""
        return self._nbytes(integer(nsamples, "nsamples", 0, MAX_SAMPLES))

    cdef Py_ssize_t _nbytes(self, Py_ssize_t nsamples) noexcept:
        cdef Py_ssize_t coded = nsamples
        if self.oki:
            coded = self.npend + nsamples - 2
            if coded < 0:
                coded = 0
        return (coded + (self.held >= 0)) // 2

    cdef Py_ssize_t _oki_encode(self, const int16_t* src, Py_ssize_t n, uint8_t* dst,
                                bint pack) noexcept nogil:
        """The OKI lookahead encoder over the held-back samples and src."""
        cdef cr_search_state S
        cdef int16_t tmp[4]
        cdef Py_ssize_t o = 0, tn, nf, m, i
        cdef int* held = &self.held if pack else NULL
        S.pm = self.lane.p
        S.ps = self.shadow
        S.idx = lane_index(&self.lane)
        if self.npend == 0:
            nf = n - 2 if n > 2 else 0
            o = cr_search(&cr_oki_search, &S, src, n, nf, 4, held, dst)
            for i in range(n - nf):
                self.pend[i] = src[nf + i]
            self.npend = <int>(n - nf)
        else:
            m = n if n < 2 else 2
            for i in range(self.npend):
                tmp[i] = self.pend[i]
            for i in range(m):
                tmp[self.npend + i] = src[i]
            tn = self.npend + m
            if n >= 2:
                o = cr_search(&cr_oki_search, &S, tmp, tn, self.npend, 4, held, dst)
                o += cr_search(&cr_oki_search, &S, src, n, n - 2, 4, held, dst + o)
                self.pend[0] = src[n - 2]
                self.pend[1] = src[n - 1]
                self.npend = 2
            else:
                nf = tn - 2 if tn > 2 else 0
                o = cr_search(&cr_oki_search, &S, tmp, tn, nf, 4, held, dst)
                for i in range(tn - nf):
                    self.pend[i] = tmp[nf + i]
                self.npend = <int>(tn - nf)
        self.lane.p = S.pm
        self.shadow = S.ps
        lane_set(&cr_oki, &self.lane, S.pm, S.idx)
        return o

    def encode_into(self, const int16_t[::1] src, uint8_t[::1] dst):
        cdef Py_ssize_t n = src.shape[0]
        cdef Py_ssize_t i = 0, o = 0, npairs
        cdef uint32_t c
        _need(dst.shape[0], self._nbytes(n), "out")
        if n == 0:
            return
        with nogil:
            if self.oki:
                self._oki_encode(&src[0], n, &dst[0] if dst.shape[0] else NULL, True)
            else:
                if self.held >= 0:
                    c = enc1(&cr_ima, &self.lane, src[0], -32768, 32767)
                    dst[0] = <uint8_t>((self.held << 4) | c)
                    self.held = -1
                    i = o = 1
                npairs = (n - i) // 2
                if npairs:
                    encode_pairs_k(&cr_ima, &self.lane, &src[i], npairs, &dst[o], -32768, 32767, 0)
                i += 2 * npairs
                if i < n:
                    self.held = <int>enc1(&cr_ima, &self.lane, src[i], -32768, 32767)

    def encode_codes_into(self, const int16_t[::1] src, uint8_t[::1] dst):
        """OKI only: one code per output byte (for nibble-interleaved stereo)."""
        cdef Py_ssize_t n = src.shape[0]
        cdef Py_ssize_t coded = self.npend + n - 2
        if not self.oki:
            raise ValueError("encode_codes_into is for the OKI encoder")
        _need(dst.shape[0], coded if coded > 0 else 0, "out")
        if n:
            with nogil:
                self._oki_encode(&src[0], n, &dst[0] if dst.shape[0] else NULL, False)

    def flush_codes(self):
        """End of stream: code the held-back lookahead samples (OKI), the last one
        repeated as its own lookahead; returns the codes as bytes (one per code)."""
        cdef cr_search_state S
        cdef uint8_t out[2]
        cdef Py_ssize_t n
        if not self.oki or self.npend == 0:
            return b""
        S.pm = self.lane.p
        S.ps = self.shadow
        S.idx = lane_index(&self.lane)
        n = cr_search(&cr_oki_search, &S, self.pend, self.npend, self.npend, 4, NULL, out)
        self.npend = 0
        self.shadow = S.ps
        lane_set(&cr_oki, &self.lane, S.pm, S.idx)
        return bytes(out[:n])

    def flush_bytes(self):
        """End of stream: everything still held back, as bytes; an odd last code is
        completed with a zero low nibble, and the state moves on as a decoder's does
        over that zero code (for OKI the shadow predictor too)."""
        cdef bytearray out = bytearray()
        cdef uint8_t c
        for c in self.flush_codes():
            if self.held >= 0:
                out.append((self.held << 4) | c)
                self.held = -1
            else:
                self.held = c
        if self.held >= 0:
            out.append(self.held << 4)
            self.held = -1
            if self.oki:
                self.shadow = cr_as_clamp(
                    self.shadow + cr_oki_search.rs[8 * lane_index(&self.lane)], -2048, 2047)
                dec1(&cr_oki, &self.lane, 0, -2048, 2047)
            else:
                dec1(&cr_ima, &self.lane, 0, -32768, 32767)
        return bytes(out)

    def decode_into(self, const uint8_t[::1] src, int16_t[::1] dst):
        cdef Py_ssize_t n = src.shape[0]
        _need(dst.shape[0], 2 * n, "out")
        if n == 0:
            return
        with nogil:
            pair_decode_k(self.oki, &self.lane, &src[0], n, &dst[0])


cdef class ImaCoder(Coder):
    def __cinit__(self, *args, **kwargs):
        self.oki = False
        lane_set(&cr_ima, &self.lane, 0, 0)


cdef class OkiCoder(Coder):
    def __cinit__(self, *args, **kwargs):
        self.oki = True
        lane_set(&cr_oki, &self.lane, 0, 0)


cdef void _check_rows(bint oki, const int32_t[:, ::1] state, Py_ssize_t rows) except *:
    cdef Py_ssize_t r
    if state.shape[0] != rows or state.shape[1] != 3:
        raise ValueError(
            f"state must have shape ({rows}, 3), got ({state.shape[0]}, {state.shape[1]})")
    for r in range(rows):
        if not _state_ok(oki, state[r, 0], state[r, 1]):
            _check_state(oki, state[r, 0], state[r, 1], f"state row {r}: ")
        if oki and not _state_ok(oki, state[r, 2], state[r, 1]):
            _check_state(oki, state[r, 2], state[r, 1], f"state row {r} (shadow): ")


def encode_rows(bint oki, const int16_t[:, ::1] src, int32_t[:, ::1] state, uint8_t[:, ::1] dst):
    cdef Py_ssize_t rows = src.shape[0], n = src.shape[1]
    if n % 2:
        raise ValueError(f"rows of {n} samples: an even number is needed (two samples per byte)")
    _check_rows(oki, state, rows)
    if dst.shape[0] != rows or dst.shape[1] != n // 2:
        raise ValueError(f"out must have shape ({rows}, {n // 2})")
    if rows == 0 or n == 0:
        return
    with nogil:
        if oki:
            search_rows_k(&cr_oki_search, &src[0, 0], rows, n, n, &state[0, 0], 4, &dst[0, 0])
        else:
            encode_rows_k(&cr_ima, &src[0, 0], rows, n, &state[0, 0], 3, &dst[0, 0],
                          -32768, 32767, 0)


def decode_rows(bint oki, const uint8_t[:, ::1] src, int32_t[:, ::1] state, int16_t[:, ::1] dst):
    cdef Py_ssize_t rows = src.shape[0], nb = src.shape[1]
    _check_rows(oki, state, rows)
    if dst.shape[0] != rows or dst.shape[1] != 2 * nb:
        raise ValueError(f"out must have shape ({rows}, {2 * nb})")
    if rows == 0 or nb == 0:
        return
    with nogil:
        decode_rows_k(oki, &src[0, 0], rows, nb, &state[0, 0], 3, &dst[0, 0])


# --- WAV IMA ADPCM ----------------------------------------------------------------------------

cdef tuple _layout(channels, block_align):
    """The block layout every ima_wav_* function needs, as Python ints: 1..65535 channels
    (WAV's field), blocks of 4-byte headers and whole 4-byte groups per channel, at most
    2**20 bytes."""
    channels = integer(channels, "IMA ADPCM channels", 1, 65535)
    block_align = integer(block_align, "IMA ADPCM block_align", 4 * channels, 1 << 20)
    if (block_align - 4 * channels) % (4 * channels):
        raise ValueError(f"IMA ADPCM block_align {block_align} is not 4*channels*(1 + whole "
                         f"groups) for {channels} channel(s)")
    return channels, block_align


def ima_wav_samples_per_block(block_align, channels):
    channels, block_align = _layout(channels, block_align)
    return 2 * (block_align - 4 * channels) // channels + 1


def ima_wav_encode(const int16_t[::1] src, channels, block_align, int32_t[::1] index,
                   uint8_t[::1] dst):
    """Whole blocks: src holds nblocks * samples_per_block interleaved frames; index[c]
    (the step index each channel's next block starts with) is updated."""
    cdef int ch
    cdef Py_ssize_t ba
    ch, ba = _layout(channels, block_align)
    cdef Py_ssize_t ngroups = (ba - 4 * ch) // (4 * ch)
    cdef Py_ssize_t spb = 8 * ngroups + 1
    cdef Py_ssize_t nblocks, b
    cdef int c
    if spb > 2048:
        raise ValueError(f"blocks of {spb} frames: at most 2048 are supported for writing")
    if src.shape[0] % (spb * ch):
        raise ValueError(f"{src.shape[0]} samples is not a whole number of {spb}-frame blocks")
    nblocks = src.shape[0] // (spb * ch)
    _need(dst.shape[0], nblocks * ba, "out")
    _need(index.shape[0], ch, "index")
    for c in range(ch):
        _check_state(False, 0, index[c], f"channel {c}: ")
    if nblocks == 0:
        return
    with nogil:
        for b in range(nblocks):
            ima_wav_encode_block_k(&src[b * spb * ch], ch, ngroups, &index[0],
                                   &dst[b * ba])


def ima_wav_frames(nbytes, channels, block_align):
    """Frames in nbytes of IMA WAV data, and the size of a trailing short block (0 when
    there is none); raises ValueError when the data ends inside a block header or group."""
    channels, block_align = _layout(channels, block_align)
    nbytes = integer(nbytes, "nbytes", 0, MAX_SAMPLES)
    cdef Py_ssize_t full = nbytes // block_align, rem = nbytes % block_align
    cdef Py_ssize_t spb = 2 * (block_align - 4 * channels) // channels + 1
    if rem == 0:
        return full * spb, 0
    if rem < 4 * channels or (rem - 4 * channels) % (4 * channels):
        raise ValueError(
            f"IMA ADPCM data ends {rem} bytes into block {full} (block_align {block_align}): "
            f"a truncated block")
    return full * spb + 2 * (rem - 4 * channels) // channels + 1, rem


def ima_wav_check_headers(const uint8_t[::1] src, channels, block_align):
    """Raise ValueError naming the first block header with a step index above 88 or a
    non-zero reserved byte."""
    cdef Py_ssize_t n = src.shape[0], pos, blk = 0
    cdef int c
    cdef const uint8_t* h
    cdef int ch
    cdef Py_ssize_t ba
    ch, ba = _layout(channels, block_align)
    pos = 0
    while pos + 4 * ch <= n:
        for c in range(ch):
            h = &src[pos + 4 * c]
            if h[2] > 88:
                raise ValueError(f"IMA ADPCM block {blk}, channel {c}: step index {h[2]} in the "
                                 f"block header (allowed: 0..88)")
            if h[3] != 0:
                raise ValueError(f"IMA ADPCM block {blk}, channel {c}: reserved header byte is "
                                 f"0x{h[3]:02X}, must be 0")
        pos += ba
        blk += 1


def ima_wav_decode(const uint8_t[::1] src, channels, block_align, int16_t[::1] dst):
    """Decode every block of src (a short last block included) to interleaved samples.
    Call ima_wav_check_headers first."""
    cdef int ch
    cdef Py_ssize_t ba
    ch, ba = _layout(channels, block_align)
    cdef Py_ssize_t frames, rem
    frames, rem = ima_wav_frames(src.shape[0], ch, ba)
    _need(dst.shape[0], frames * ch, "out")
    cdef Py_ssize_t full = src.shape[0] // ba
    cdef Py_ssize_t ngroups = (ba - 4 * ch) // (4 * ch)
    cdef Py_ssize_t spb = 8 * ngroups + 1
    if frames == 0:
        return
    with nogil:
        if full:
            ima_wav_decode_k(&src[0], full * ch, ch, ba, ngroups, &dst[0])
        if rem:
            ima_wav_decode_k(&src[full * ba], ch, ch, rem,
                             (rem - 4 * ch) // (4 * ch), &dst[full * spb * ch])


# --- OKI stereo decoding (nibble-interleaved, as FFmpeg reads it from WAV) ---------------------

def oki_decode_stereo(const uint8_t[::1] src, int32_t[::1] state, int16_t[::1] dst):
    cdef Py_ssize_t frames = src.shape[0]
    cdef cr_lane L[2]
    cdef int k
    _need(dst.shape[0], 2 * frames, "out")
    _need(state.shape[0], 4, "state")
    for k in range(2):
        _check_state(True, state[2 * k], state[2 * k + 1], f"channel {k}: ")
        lane_set(&cr_oki, &L[k], state[2 * k], state[2 * k + 1])
    if frames:
        with nogil:
            oki_decode_stereo_k(&src[0], frames, L, &dst[0])
    for k in range(2):
        state[2 * k] = L[k].p
        state[2 * k + 1] = lane_index(&L[k])


cdef dict _tables_of(const cr_adpcm_tables* T):
    cdef int n = T.nsteps
    return {
        "step": [T.step[i] for i in range(n)],
        "delta": [T.delta[i] for i in range(16 * n)],
        "next_index": [T.next[i] // 16 for i in range(16 * n)],
        "thresholds": [T.thr[i] for i in range(8 * n)] if T.thr != NULL else [],
    }


def tables():
    """The derived tables as lists (for tests): per codec, the step table, the signed
    predictor change and the next index of every (index, code), and the encoder's
    decision thresholds."""
    return {"ima": _tables_of(&cr_ima), "oki": _tables_of(&cr_oki)}
