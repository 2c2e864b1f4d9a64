# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Python-facing DTMF and silence detector states.  Arguments are validated by
recorder.dsp; here the kernels in detect_k.h run with the GIL released.

Events come back as numpy structured arrays of EVENT_DTYPE (one record per digit start,
digit end, audio start or silence start, in stream order per row)."""
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uintptr_t

import numpy as np

from recorder._buffers import MAX_CHANNELS, aligned_copy, integer

from cpu_isa cimport cr_isa, cr_isa_set
from detect_k cimport (
    cr_event, CR_EV_DIGIT_START, CR_EV_DIGIT_END, CR_EV_AUDIO_START, CR_EV_SILENCE_START,
    dt_config, dt_chan, dt_config_init, dt_chan_reset, dt_process1, dt_finish,
    dt_max_events,
    sd_config, sd_chan, sd_frame, sd_config_init, sd_chan_reset, sd_process,
    sd_silence_samples, sd_max_frames, sd_level, cr_run_multi,
)

EVENT_DTYPE = np.dtype([("kind", "i4"), ("row", "i4"), ("start", "i8"), ("end", "i8"),
                        ("level", "f4"), ("digit", "i4")])
FRAME_DTYPE = np.dtype([("start", "i8"), ("level", "f4"), ("active", "i4")])
assert EVENT_DTYPE.itemsize == sizeof(cr_event)
assert FRAME_DTYPE.itemsize == sizeof(sd_frame)

# Per call, rows of at most this many samples (the kernels count samples of a row in int).
MAX_ROW = 1 << 28


cdef int _check_rate(int rate) except -1:
    """The block sizes derive from the rate (rate / 100, rate / 200): keep them sane."""
    if not 8000 <= rate <= 48000 or rate % 200:
        raise ValueError(f"rate must be a multiple of 200 Hz from 8000 to 48000, got {rate}")
    return 0


cdef inline int _check_slot(Py_ssize_t slot, Py_ssize_t channels) except -1:
    if slot < 0 or slot >= channels:
        raise ValueError(f"slot {slot} out of range 0..{channels - 1}")
    return 0


def isa():
    """The SIMD level in use here (cpu_isa.h); public switch: recorder.simd."""
    return cr_isa()


def set_isa(int level):
    """Use at most ``level`` (< 0: the CPU's best); the Goertzel bank runs its AVX build
    from level 3 (AVX) up, else the generic one; many rows run 8 channels per vector from
    level 1 (SSE2) up, AVX from 3, with the AVX2 transpose at 4, else pairs of channels
    (identical results).  Returns the level in use.  Called by
    recorder.simd.set_simd_level for every kernel module at once."""
    return cr_isa_set(level)


DIGIT_START = CR_EV_DIGIT_START
DIGIT_END = CR_EV_DIGIT_END
AUDIO_START = CR_EV_AUDIO_START
SILENCE_START = CR_EV_SILENCE_START


cdef object _aligned(Py_ssize_t nbytes, uintptr_t *addr):
    """Zeroed bytes at a 64-byte aligned address (the vector state needs 16)."""
    buf = aligned_copy(np.zeros(nbytes, np.uint8), np.uint8)
    addr[0] = <uintptr_t>buf.ctypes.data
    return buf


cdef class DtmfConfig:
    cdef dt_config cfg
    cdef public object params

    def __init__(self, rate, double min_level_dbm0, double normal_twist_db,
                 double reverse_twist_db, double rel_peak_db, double freq_tol,
                 double frac_hit, double frac_present):
        rate = integer(rate, "rate", 8000, 48000)
        _check_rate(rate)
        dt_config_init(&self.cfg, rate, min_level_dbm0, normal_twist_db, reverse_twist_db,
                       rel_peak_db, freq_tol, frac_hit, frac_present)
        self.params = dict(rate=rate, min_level_dbm0=min_level_dbm0,
                           normal_twist_db=normal_twist_db, reverse_twist_db=reverse_twist_db,
                           rel_peak_db=rel_peak_db, freq_tol=freq_tol, frac_hit=frac_hit,
                           frac_present=frac_present)

    @property
    def block(self):
        return self.cfg.B


cdef class SilenceConfig:
    cdef sd_config cfg
    cdef public object params

    def __init__(self, rate, double threshold_dbm0, double min_audio_ms):
        rate = integer(rate, "rate", 8000, 48000)
        _check_rate(rate)
        if not 0.0 <= min_audio_ms <= 1000.0:
            raise ValueError(f"min_audio_ms must be between 0 and 1000, got {min_audio_ms}")
        sd_config_init(&self.cfg, rate, threshold_dbm0, min_audio_ms)
        self.params = dict(rate=rate, threshold_dbm0=threshold_dbm0, min_audio_ms=min_audio_ms)

    @property
    def hop(self):
        return self.cfg.H

    @property
    def min_run(self):
        return self.cfg.min_run


cdef class DtmfState:
    """One channel's DTMF receiver."""
    cdef DtmfConfig conf
    cdef dt_chan *st
    cdef object _mem

    def __init__(self, DtmfConfig conf not None):
        cdef uintptr_t addr
        self.conf = conf
        self._mem = _aligned(sizeof(dt_chan), &addr)
        self.st = <dt_chan *>addr
        dt_chan_reset(self.st)

    def reset(self):
        dt_chan_reset(self.st)

    def process(self, const int16_t[::1] x):
        cdef int64_t n = x.shape[0]
        cdef int nev = 0
        ev = np.empty(dt_max_events(&self.conf.cfg, n), EVENT_DTYPE)
        cdef uint8_t[::1] raw = ev.view(np.uint8)
        if n:
            with nogil:
                dt_process1(&self.conf.cfg, self.st, &x[0], n, <cr_event *>&raw[0], &nev)
        return ev[:nev]

    def finish(self):
        cdef int nev = 0
        ev = np.empty(2, EVENT_DTYPE)
        cdef uint8_t[::1] raw = ev.view(np.uint8)
        dt_finish(&self.conf.cfg, self.st, 0, <cr_event *>&raw[0], &nev)
        return ev[:nev]

    @property
    def samples(self):
        return self.st.nblk * self.conf.cfg.B + self.st.pos

    @property
    def current(self):
        """(digit index 0..15, start, level) of the digit in progress, or None."""
        if self.st.cur < 0:
            return None
        return (self.st.cur, self.st.dstart, self.st.dlevel)


cdef class SilenceState:
    """One channel's silence / activity detector."""
    cdef SilenceConfig conf
    cdef sd_chan st

    def __init__(self, SilenceConfig conf not None):
        self.conf = conf
        sd_chan_reset(&self.st)

    def reset(self):
        sd_chan_reset(&self.st)

    def process(self, const int16_t[::1] x, bint frames=True, bint events=True):
        """Returns (frames, events) for the 10 ms windows and audio/silence changes that
        completed in this chunk."""
        cdef int64_t n = x.shape[0]
        cdef int nev = 0, nfr = 0
        cdef int64_t nmax = sd_max_frames(&self.conf.cfg, n)
        ev = np.empty(nmax if events else 1, EVENT_DTYPE)
        fr = np.empty(nmax if frames else 1, FRAME_DTYPE)
        cdef uint8_t[::1] raw = ev.view(np.uint8)
        cdef uint8_t[::1] rawf = fr.view(np.uint8)
        cdef cr_event *pev = <cr_event *>&raw[0] if events else NULL
        cdef sd_frame *pfr = <sd_frame *>&rawf[0] if frames else NULL
        if n:
            with nogil:
                sd_process(&self.conf.cfg, &self.st, &x[0], n, 0, pev, &nev, pfr, &nfr)
        return fr[:nfr], ev[:nev]

    @property
    def samples(self):
        return self.st.nsub * self.conf.cfg.H + self.st.pos

    @property
    def silence_samples(self):
        return sd_silence_samples(&self.st, &self.conf.cfg)

    @property
    def silence_start(self):
        return self.st.silence_start

    @property
    def pending_start(self):
        return self.st.cand_start

    @property
    def audio_start(self):
        return self.st.audio_start

    @property
    def in_audio(self):
        return bool(self.st.in_audio)

    @property
    def audio_seen(self):
        return bool(self.st.audio_seen)

    @property
    def level(self):
        return sd_level(&self.st, &self.conf.cfg)


cdef class MultiState:
    """A bank of independent channels (slots) of DTMF and/or silence detectors."""
    cdef DtmfConfig dconf
    cdef SilenceConfig sconf
    cdef dt_chan *dst
    cdef sd_chan *sst
    cdef int64_t *stamp
    cdef int64_t calls
    cdef readonly Py_ssize_t channels
    cdef object _dmem, _smem, _stamp
    cdef object _evmem               # onsets(): the events of one call (cr_event records)
    cdef cr_event *evbuf
    cdef int64_t evcap

    def __init__(self, channels, DtmfConfig dconf, SilenceConfig sconf):
        cdef uintptr_t addr
        cdef Py_ssize_t i
        cdef Py_ssize_t nch = integer(channels, "channels", 1, MAX_CHANNELS)
        self.channels = nch
        self.dconf = dconf
        self.sconf = sconf
        self.dst = NULL
        self.sst = NULL
        if dconf is not None:
            self._dmem = _aligned(sizeof(dt_chan) * nch, &addr)
            self.dst = <dt_chan *>addr
        if sconf is not None:
            self._smem = _aligned(sizeof(sd_chan) * nch, &addr)
            self.sst = <sd_chan *>addr
        self._stamp = _aligned(sizeof(int64_t) * nch, &addr)
        self.stamp = <int64_t *>addr
        self.calls = 0
        self._evmem = None
        self.evbuf = NULL
        self.evcap = 0
        for i in range(nch):
            if self.dst:
                dt_chan_reset(&self.dst[i])
            if self.sst:
                sd_chan_reset(&self.sst[i])

    def reset(self, const int64_t[::1] rows):
        cdef Py_ssize_t i
        cdef int64_t r
        for i in range(rows.shape[0]):
            r = rows[i]
            _check_slot(r, self.channels)
            if self.dst:
                dt_chan_reset(&self.dst[r])
            if self.sst:
                sd_chan_reset(&self.sst[r])

    cdef int64_t _per_row_events(self, int64_t n):
        """Events a row of n samples can give at most (both detectors)."""
        cdef int64_t per = 0
        if self.dst:
            per += dt_max_events(&self.dconf.cfg, n)
        if self.sst:
            per += sd_max_frames(&self.sconf.cfg, n)
        return per

    def max_events(self, k, n):
        cdef Py_ssize_t nk = integer(k, "k", 0, MAX_CHANNELS), nn = integer(n, "n", 0, MAX_ROW)
        return nk * self._per_row_events(nn)

    def process(self, const int16_t[:, ::1] block, const int64_t[::1] rows, ev,
                int64_t[::1] silence, uint8_t[::1] flags, float[::1] level):
        """Run block[i] on slot rows[i].  Fills silence[i] (samples of silence so far),
        flags[i] (bit 0 in audio, bit 1 audio seen, bit 2 digit in progress) and level[i]
        (dBm0 of the last 10 ms) and writes the events into ev; returns how many."""
        cdef Py_ssize_t k = block.shape[0], n = block.shape[1], i
        cdef int nev = 0
        cdef uint8_t[::1] raw
        cdef cr_event *pev
        cdef int64_t r, stamp
        cdef sd_chan *s
        cdef const dt_config *dc = NULL
        cdef const sd_config *sc = NULL
        if rows.shape[0] != k:
            raise ValueError(f"rows has {rows.shape[0]} entries for {k} rows of block")
        if n > MAX_ROW:
            raise ValueError(f"block rows of {n} samples: at most {MAX_ROW} per call")
        if not isinstance(ev, np.ndarray) or ev.dtype != EVENT_DTYPE or ev.ndim != 1 \
                or not ev.flags.c_contiguous or not ev.flags.writeable:
            raise TypeError("ev must be a writable C-contiguous 1-D array of EVENT_DTYPE")
        if ev.shape[0] < self.max_events(k, n):
            raise ValueError("event buffer too small")
        if silence.shape[0] < k or flags.shape[0] < k or level.shape[0] < k:
            raise ValueError(f"silence, flags and level need {k} entries each")
        raw = ev.view(np.uint8)
        pev = <cr_event *>&raw[0] if raw.shape[0] else NULL
        self.calls += 1
        stamp = self.calls
        for i in range(k):
            r = rows[i]
            _check_slot(r, self.channels)
            if self.stamp[r] == stamp:
                raise ValueError(f"slot {r} appears twice in rows")
            self.stamp[r] = stamp
        if k == 0:
            return 0
        if self.dst:
            dc = &self.dconf.cfg
        if self.sst:
            sc = &self.sconf.cfg
        with nogil:
            if n:
                cr_run_multi(dc, self.dst, sc, self.sst, &block[0, 0], <int>n, &rows[0], k,
                             pev, &nev)
            for i in range(k):
                r = rows[i]
                flags[i] = 0
                if self.sst:
                    s = &self.sst[r]
                    silence[i] = sd_silence_samples(s, &self.sconf.cfg)
                    level[i] = sd_level(s, &self.sconf.cfg)
                    flags[i] = (s.in_audio != 0) | ((s.audio_seen != 0) << 1)
                else:
                    silence[i] = 0
                    level[i] = -200.0
                if self.dst and self.dst[r].cur >= 0:
                    flags[i] |= 4
        return nev

    def finish(self, const int64_t[::1] rows):
        """End the digits in progress on these slots (end of stream); returns events."""
        cdef Py_ssize_t i
        cdef int nev = 0
        ev = np.empty(max(1, rows.shape[0]), EVENT_DTYPE)
        cdef uint8_t[::1] raw = ev.view(np.uint8)
        for i in range(rows.shape[0]):
            _check_slot(rows[i], self.channels)
            if self.dst:
                dt_finish(&self.dconf.cfg, &self.dst[rows[i]], <int32_t>i,
                          <cr_event *>&raw[0], &nev)
        return ev[:nev]

    def current(self, slot):
        """(digit index, start, level) in progress on a slot, or None."""
        cdef Py_ssize_t i = integer(slot, "slot", 0, self.channels - 1)
        if not self.dst or self.dst[i].cur < 0:
            return None
        return (self.dst[i].cur, self.dst[i].dstart, self.dst[i].dlevel)

    def silence_state(self, slot):
        cdef Py_ssize_t i = integer(slot, "slot", 0, self.channels - 1)
        if not self.sst:
            return None
        cdef sd_chan *s = &self.sst[i]
        return dict(silence_samples=sd_silence_samples(s, &self.sconf.cfg),
                    silence_start=s.silence_start, pending_start=s.cand_start,
                    audio_start=s.audio_start, in_audio=bool(s.in_audio),
                    audio_seen=bool(s.audio_seen), level=sd_level(s, &self.sconf.cfg),
                    samples=s.nsub * self.sconf.cfg.H + s.pos)


ctypedef struct bank_ref:         # what the kernels need of a MultiState
    const dt_config *dc
    dt_chan *dst
    const sd_config *sc
    sd_chan *sst


def onsets(list banks, const int16_t[:, ::1] block, const int64_t[::1] slots,
           int64_t[::1] silence, uint8_t[::1] seen, int64_t[::1] digit_start,
           int32_t[::1] digit, int64_t[::1] audio_start):
    """Run the next chunk of many slots kept in several banks (MultiStates), and write
    only the per-row summary: the banks' slots are numbered one after the other (the first
    bank's channels are slots 0 .. channels - 1, the next bank's follow), and row ``i`` of
    ``block`` continues slot ``slots[i]``.  For
    each row: ``silence`` the current run of silence (samples; 0 without a silence
    detector), ``seen`` 1 once audio was heard since the slot's reset, ``digit_start`` the
    start of the earliest digit that started in this chunk (-1: none) and ``digit`` its
    character code (0: none), ``audio_start`` the earliest audio onset (-1: none).  Rows
    of one bank that follow each other run in one call of the kernels (as
    MultiState.process would run them; the results do not depend on the grouping)."""
    cdef Py_ssize_t nb = len(banks), k = block.shape[0], n = block.shape[1], i, b, e
    cdef Py_ssize_t lo, hi
    cdef int64_t starts[63]         # each bank's first slot, then the end
    cdef int64_t r, need = 0, total
    cdef int nev
    cdef MultiState m
    cdef uintptr_t addr
    cdef cr_event *ev
    cdef sd_chan *sd
    cdef bank_ref *refs
    cdef const bank_ref *br
    if nb == 0:
        raise ValueError("banks must hold at least one MultiState")
    if nb > 62:
        raise ValueError(f"at most 62 banks, got {nb}")
    if slots.shape[0] != k:
        raise ValueError(f"rows has {slots.shape[0]} entries for {k} rows of block")
    if n > MAX_ROW:
        raise ValueError(f"block rows of {n} samples: at most {MAX_ROW} per call")
    if (silence.shape[0] < k or seen.shape[0] < k or digit_start.shape[0] < k
            or digit.shape[0] < k or audio_start.shape[0] < k):
        raise ValueError(f"every output needs {k} entries")
    starts[0] = 0
    for b in range(nb):
        if not isinstance(banks[b], MultiState):
            raise TypeError(f"banks[{b}] is a {type(banks[b]).__name__}, not a MultiState")
        m = <MultiState>banks[b]
        starts[b + 1] = starts[b] + m.channels
        need = max(need, m._per_row_events(n))
        m.calls += 1
    total = starts[nb]
    for i in range(k):            # every slot in range, none twice
        r = slots[i]
        if r < 0 or r >= total:
            raise ValueError(f"slot {r} out of range 0..{total - 1}")
        b = 0
        while r >= starts[b + 1]:
            b += 1
        m = <MultiState>banks[b]
        if m.stamp[r - starts[b]] == m.calls:
            raise ValueError(f"slot {r} appears twice in rows")
        m.stamp[r - starts[b]] = m.calls
    if k == 0:
        return
    # the events of the largest run (room for all k rows), in the first bank's scratch
    m = <MultiState>banks[0]
    if m.evcap < need * k:
        m._evmem = _aligned(<Py_ssize_t>(need * k * sizeof(cr_event)), &addr)
        m.evbuf = <cr_event *>addr
        m.evcap = need * k
    ev = m.evbuf
    local = np.empty(k, np.int64)       # each row's channel in its bank
    cdef int64_t[::1] loc = local
    refs_mem = np.empty(nb * sizeof(bank_ref), np.uint8)
    cdef uint8_t[::1] refs_view = refs_mem
    refs = <bank_ref *>&refs_view[0]
    for b in range(nb):
        m = <MultiState>banks[b]
        refs[b].dc = &m.dconf.cfg if m.dst else NULL
        refs[b].dst = m.dst
        refs[b].sc = &m.sconf.cfg if m.sst else NULL
        refs[b].sst = m.sst
    lo = 0
    with nogil:
        while lo < k:
            b = 0
            while slots[lo] >= starts[b + 1]:
                b += 1
            hi = lo
            while hi < k and starts[b] <= slots[hi] < starts[b + 1]:
                loc[hi] = slots[hi] - starts[b]
                hi += 1
            br = &refs[b]
            nev = 0
            if n:
                cr_run_multi(br.dc, br.dst, br.sc, br.sst, &block[lo, 0], <int>n, &loc[lo],
                             hi - lo, ev, &nev)
            for i in range(lo, hi):
                r = loc[i]
                if br.sst:
                    sd = &br.sst[r]
                    silence[i] = sd_silence_samples(sd, br.sc)
                    seen[i] = sd.audio_seen != 0
                else:
                    silence[i] = 0
                    seen[i] = 0
                digit_start[i] = -1
                digit[i] = 0
                audio_start[i] = -1
            for e in range(nev):        # the earliest of each row (the first of equals)
                i = lo + ev[e].row
                if ev[e].kind == CR_EV_DIGIT_START:
                    if digit_start[i] < 0 or ev[e].start < digit_start[i]:
                        digit_start[i] = ev[e].start
                        digit[i] = ev[e].digit
                elif ev[e].kind == CR_EV_AUDIO_START:
                    if audio_start[i] < 0 or ev[e].start < audio_start[i]:
                        audio_start[i] = ev[e].start
            lo = hi
