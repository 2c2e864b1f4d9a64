# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The recorder engine's compiled core: per-slot media rings and the record-job state
machine (termination decisions at the exact sample, hold-back for barge-in), and the
coding of every recording format at every rate into per-slot output buffers: the
committed 8 kHz media is resampled (streaming polyphase filter, resample_k) when the
file's rate differs, then coded as G.711, linear PCM, IMA ADPCM WAV blocks or OKI ADPCM.

One slot per call channel.  A tick gathers 20 ms of media from every ready slot into a
2-D block (``take``), the detectors run over that block, and ``feed`` applies the
detector results to every recording slot in one call, with the GIL released.  Python
only handles the few slots that report an event (output buffer to write, header to
sync, job finished).

A recording whose file is a plain OS file is written by the core itself (``write_to``):
the coded bytes go to the file with pwrite at the data's end, and the header's size
fields (described by the file's writer) are refreshed about once a second of media, from
the feed, with the GIL released; Python then hears only of the job's end.  The file
descriptor is used only between ``write_to`` and ``end_output`` (or the job's slot being
restarted or closed), all of them called under the engine's lock, as ``feed`` is.
"""
from libc.errno cimport errno, EINTR, EIO
from libc.stdint cimport int16_t, uint8_t, int64_t, int32_t
from libc.stdlib cimport malloc, realloc, free, calloc, qsort
from libc.string cimport memcpy, memset, memmove
from posix.time cimport clock_gettime, timespec, CLOCK_THREAD_CPUTIME_ID
from posix.unistd cimport pwrite
cdef extern from "chunk_mem.h":
    size_t CR_CHUNK
    void* cr_chunk_alloc(int huge) noexcept nogil
    void cr_chunk_free(void* p) noexcept nogil

from cpu_isa cimport cr_isa_set, cr_prefetch
from g711_k cimport (
    init_g711_tables, alaw_encode_k, ulaw_encode_k, alaw_decode_k, ulaw_decode_k,
    cr_alaw_decode_simd, cr_ulaw_decode_simd, cr_alaw_encode_simd, cr_ulaw_encode_simd,
)
from pcm_k cimport u8_encode_k, s16_encode_k
from resample_k cimport (
    rs_filter, rs_state, rs_reset, rs_process, rs_ready, rs_append, rs_emit, rs_advance,
    rs_window, rs_compact, cr_rs_select, cr_rs_run4, cr_rs_to_int16,
)
from adpcm_k cimport (
    init_adpcm_tables, cr_search_state, cr_search, cr_oki_search,
    search_rows_k, ima_wav_encode_block_k,
)


cdef inline void _g711_decode(const uint8_t* src, int16_t* dst, int64_t n,
                              bint ulaw) noexcept nogil:
    if ulaw:
        if not cr_ulaw_decode_simd(src, dst, n):
            ulaw_decode_k(src, dst, n)
    elif not cr_alaw_decode_simd(src, dst, n):
        alaw_decode_k(src, dst, n)

import operator

import numpy as np

from recorder._buffers import MAX_CHANNELS, aligned_copy

init_g711_tables()
init_adpcm_tables()
cr_rs_select()


def set_isa(int level):
    """Use at most SIMD ``level`` for the coding here (cpu_isa.h: G.711, the resampler's
    loops, the OKI search); returns the level in use.  Called by
    recorder.simd.set_simd_level with every kernel module."""
    level = cr_isa_set(level)
    cr_rs_select()
    return level


DEF RING = 8192
# held-back samples a slot keeps in its own record (the 200 ms of barge-in hold-back the
# channels use); a job that holds back more gets a buffer of its own
DEF HELD_IN = 1600

# samples per second of all media in the engine (recorder.engine.MEDIA_RATE)
cdef enum:
    MEDIA_RATE = 8000

# output formats (every one is coded here, at any rate the job asks for)
cdef enum:
    FMT_ALAW = 0
    FMT_ULAW = 1
    FMT_S16 = 2
    FMT_U8 = 3
    FMT_IMA = 4       # IMA ADPCM WAV blocks (mono below 12000 Hz: 256 bytes, 505 frames)
    FMT_OKI = 5       # OKI ADPCM, high nibble first

# IMA ADPCM WAV blocks of a mono file below 12000 Hz (recorder._wav_adpcm.ImaWav)
cdef enum:
    IMA_BLOCK = 256
    IMA_FRAMES = 505
    IMA_MAX_RATE = 11999

# input samples the resampler takes per call (bounds the Bank's scratch buffers), and
# history beyond the filter window each slot keeps (floats): room for the samples one
# feed commits (a 20 or 40 ms frame), which wait there for the feed's grouped resampling
cdef enum:
    RS_PIECE = 1024
    RS_ROOM = 512
    MAX_FILTERS = 8
    OKI_START = 512   # OKI samples a slot's buffer holds at first (it grows when needed)

# termination causes
cdef enum:
    CAUSE_NONE = 0
    CAUSE_TIMEOUT = 1
    CAUSE_SIZE = 2
    CAUSE_SILENCE = 3
    CAUSE_BARGEIN = 4
    CAUSE_ABORTED = 5
    CAUSE_HANGUP = 6
    CAUSE_ERROR = 7

# event bits reported by feed()
cdef enum:
    EV_FLUSH = 1      # output buffer holds at least the flush threshold
    EV_SYNC = 2       # a second of media committed since the last header sync
    EV_DONE = 4       # the job finished (cause set, everything up to the cut coded)

# header fields the core refreshes in a file it writes itself (write_to): what they count
cdef enum:
    FIELD_BYTES = 0   # coded bytes in the file's data (+ a constant)
    FIELD_FRAMES = 1  # frames in the file's data (+ a constant)
    MAX_FIELDS = 4
    MAX_HEADER = 4096

#: the constants above, for Python (recorder.engine types them as IntEnums)
CONSTANTS = dict(
    MEDIA_RATE=MEDIA_RATE,
    FMT_ALAW=FMT_ALAW, FMT_ULAW=FMT_ULAW, FMT_S16=FMT_S16, FMT_U8=FMT_U8, FMT_IMA=FMT_IMA,
    FMT_OKI=FMT_OKI,
    CAUSE_NONE=CAUSE_NONE, CAUSE_TIMEOUT=CAUSE_TIMEOUT, CAUSE_SIZE=CAUSE_SIZE,
    CAUSE_SILENCE=CAUSE_SILENCE, CAUSE_BARGEIN=CAUSE_BARGEIN, CAUSE_ABORTED=CAUSE_ABORTED,
    CAUSE_HANGUP=CAUSE_HANGUP, CAUSE_ERROR=CAUSE_ERROR,
    EV_FLUSH=EV_FLUSH, EV_SYNC=EV_SYNC, EV_DONE=EV_DONE, RING_SIZE=RING,
    FIELD_BYTES=FIELD_BYTES, FIELD_FRAMES=FIELD_FRAMES, MAX_FIELDS=MAX_FIELDS,
    MAX_HEADER=MAX_HEADER,
)


ctypedef struct field_t:
    int at                   # offset in the header
    int width                # bytes, little-endian; the value saturates at the width's max
    int kind                 # FIELD_*
    int64_t plus             # added to the count


ctypedef struct output_t:
    # a plain file the core appends a job's coded bytes to itself (write_to)
    int fd
    int err                  # errno of the write that failed (0: none); no writes after it
    int64_t pos              # file offset of the next coded byte
    int64_t written          # coded bytes written since write_to
    int64_t frames           # the job's frames when the last bytes were written
    int64_t block_align      # the data's bytes per block, and frames per block (frames
    int64_t per_block        # in the file: min(frames, whole blocks * per_block))
    uint8_t* header          # the header's image, refreshed from the counts
    int header_len
    int64_t header_at        # its offset in the file
    field_t fields[MAX_FIELDS]
    int nfields


ctypedef struct slot_t:
    # the media path (push, ready, take) reads only these: one cache line
    int64_t head             # the ring's oldest sample (0 again whenever it empties)
    int64_t fill
    int64_t media            # samples processed since the slot was (re)started
    int quiet                # idle() calls since media last arrived
    int accept               # batch pushes reach the slot (its call is ANSWERED)
    int watched              # fill_gaps() fills the slot's gaps (watch_gaps)
    # the gap clock (watch_gaps): media is due up to (max(floor, now - slack) - origin) s
    double gap_origin, gap_floor, gap_slack
    # record job
    int active
    int fmt
    int bps                  # output bytes per sample (fmt 0..3)
    int64_t n                # job samples seen
    int64_t committed        # job samples committed to the output
    int64_t timeout_at       # job sample of the timeout, -1 none
    int64_t size_at          # job sample where max_bytes is reached, -1 none
    int64_t max_sil          # samples, 0 = off
    int64_t init_sil         # samples, 0 = off
    int barge
    int audio_seen
    int hold                 # samples held back while barge-in is on
    int16_t* held
    int held_n
    uint8_t* out
    int64_t out_len
    int64_t out_cap
    int64_t next_sync
    int cause
    int64_t digit_start
    int digit
    int64_t first_audio      # job sample where audio was first heard, -1 none
    int held_head            # held is a ring of `hold` samples: its oldest sample
    # output coding: committed media -> (resampler) -> coder -> out
    int rate                 # the file's sample rate
    const rs_filter* flt     # MEDIA_RATE -> rate (NULL at MEDIA_RATE)
    rs_state rs              # its stream; rs.buf holds flt.cap floats
    int rs_pend              # rs.buf holds this feed's samples, not resampled yet (2: listed)
    int64_t frames           # frames coded at the file's rate
    int64_t max_frames       # most frames the file takes (-1: no limit)
    int16_t* blk             # IMA: the block being filled (IMA_FRAMES samples)
    int blk_n
    int32_t ima_index        # IMA: step index carried from block to block
    cr_search_state oki      # OKI: the search encoder's state
    # OKI: samples not coded yet (coded at the end of a feed, many slots at once, but for
    # the last two or three, which wait for their lookahead)
    int16_t* okibuf
    int64_t oki_n
    int64_t oki_cap
    int oki_mark             # OKI: listed for this feed's coding
    int64_t flush_at         # EV_FLUSH from this many bytes (flush_bytes per 8000 bytes/s)
    output_t* file           # the core writes the job's file itself (NULL: Python does)
    # a frame's fields and the ring's first samples share cache lines
    int16_t ring[RING]
    int16_t held_in[HELD_IN]  # `held` when the job holds back at most HELD_IN samples


# bytes of a slot before its ring
cdef Py_ssize_t _SLOT_FIELDS = <Py_ssize_t>(<size_t>&(<slot_t*>NULL).ring)


# Largest output-buffer threshold (bytes or samples) and barge-in hold-back (samples) a
# job takes: the buffers are allocated from them.
DEF MAX_BUFFER = 1 << 26
# Largest file offset or count a written file's description takes (write_to)
DEF MAX_FILE = 1 << 62
# Largest media count fill_gaps computes as due (far beyond any call)
DEF DUE_MAX = 4.0e18


cdef int64_t _i64(object v, str name) except? -1:
    """An integer argument as int64: TypeError for non-integers, ValueError (not
    OverflowError) beyond int64; the callers check the range."""
    if type(v) is not int:
        if not hasattr(type(v), "__index__"):
            raise TypeError(f"{name} must be an int, not {type(v).__name__}")
        v = operator.index(v)
    try:
        return v
    except OverflowError:
        raise ValueError(f"{name} out of range, got {v}") from None


cdef int64_t _max64(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b


cdef int64_t _min64(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef double _maxd(double a, double b) noexcept nogil:
    return a if a > b else b


cdef void _drop_output(slot_t* s) noexcept nogil:
    """The core stops writing the slot's file (the descriptor is its owner's to close)."""
    if s.file != NULL:
        free(s.file.header)
        free(s.file)
        s.file = NULL


cdef inline void _prefetch_job(const slot_t* s, int64_t m) noexcept nogil:
    """Ask for what feeding m samples to the slot's job touches first: the oldest held
    samples (committed, then overwritten) and the output buffer's end."""
    if not s.active or m > RING:
        return
    if s.hold:
        cr_prefetch(s.held + s.held_head, 2 * _min64(m, s.hold - s.held_head))
    cr_prefetch(s.out + s.out_len, _min64(s.bps * m, s.out_cap - s.out_len))


cdef inline void _prefetch_media(const slot_t* s, int64_t nbytes) noexcept nogil:
    """Ask for the slot's media fields and the ring's first nbytes (where a slot fed a
    frame per tick keeps its media: the ring starts over whenever it empties)."""
    cr_prefetch(s, 64)
    cr_prefetch(&s.ring[0], _min64(nbytes, 2 * RING))


cdef int _pwrite_all(int fd, const uint8_t* buf, int64_t n, int64_t at,
                     int64_t* done) noexcept nogil:
    """Write n bytes at file offset ``at`` (in the pieces the kernel takes, again after
    a signal); ``done`` counts the bytes written.  Returns 0 or the failure's errno."""
    cdef ssize_t k
    done[0] = 0
    while done[0] < n:
        k = pwrite(fd, buf + done[0], <size_t>(n - done[0]), at + done[0])
        if k < 0:
            if errno == EINTR:
                continue
            return errno if errno else EIO
        if k == 0:
            return EIO
        done[0] += k
    return 0


cdef inline int64_t _file_frames(const output_t* o) noexcept nogil:
    """Frames in the file's data: its whole blocks' frames, at most the frames coded
    (a block padded at the end holds fewer)."""
    cdef int64_t whole = o.written // o.block_align
    if o.per_block == 1:
        return whole
    return _min64(o.frames, whole * o.per_block)


cdef void _patch_header(output_t* o) noexcept nogil:
    """Write the counts into the header's image (little-endian, saturated)."""
    cdef int i, j
    cdef int64_t v
    cdef const field_t* f
    for i in range(o.nfields):
        f = &o.fields[i]
        v = (o.written if f.kind == FIELD_BYTES else _file_frames(o)) + f.plus
        if f.width < 8:
            v = _min64(v, (<int64_t>1 << (8 * f.width)) - 1)
        for j in range(f.width):
            o.header[f.at + j] = <uint8_t>((v >> (8 * j)) & 0xFF)


cdef int _write_output(slot_t* s, bint header) noexcept nogil:
    """Append the slot's coded bytes to its file and, with ``header``, refresh the
    header.  A failed write ends the job with CAUSE_ERROR (the errno is kept for
    ``end_output``) and nothing more is written to the file.  Returns the errno (0: ok)."""
    cdef output_t* o = s.file
    cdef int64_t done = 0
    cdef int err = o.err
    if not err and s.out_len:
        err = _pwrite_all(o.fd, s.out, s.out_len, o.pos, &done)
        o.pos += done
        o.written += done
        if not err:
            o.frames = s.frames
    s.out_len = 0
    if not err and header:
        _patch_header(o)
        err = _pwrite_all(o.fd, o.header, o.header_len, o.header_at, &done)
    if err and not o.err:
        o.err = err
        if s.active:
            s.held_n = 0
            s.cause = CAUSE_ERROR
            s.active = 0
    return err


cdef inline int64_t _oki_row_len(const slot_t* s) noexcept nogil:
    """Samples of an OKI slot's next row: an even count of samples to code (all but the
    last two or three) and the two after them."""
    return ((s.oki_n - 2) & ~(<int64_t>1)) + 2


ctypedef struct rs_item:
    const rs_filter* flt     # a slot waiting for this feed's resampling: its filter,
    int32_t phase            # its next output's phase,
    slot_t* s                # the slot


cdef inline void _rs_prefetch(const slot_t* s) noexcept nogil:
    """Start bringing a waiting slot's resampler history into the cache."""
    cr_prefetch(s.rs.buf, s.rs.len * <Py_ssize_t>sizeof(float))


cdef int _rs_item_cmp(const void* a, const void* b) noexcept nogil:
    """qsort order of rs_items: by filter, then phase (so slots that can share a
    cr_rs_run4 call sit together)."""
    cdef const rs_item* x = <const rs_item*>a
    cdef const rs_item* y = <const rs_item*>b
    if x.flt != y.flt:
        return -1 if <size_t>x.flt < <size_t>y.flt else 1
    return (x.phase > y.phase) - (x.phase < y.phase)


cdef class JobState:
    """A snapshot of one slot's record job (``Bank.job``); counts in samples at MEDIA_RATE
    from the start of the job."""

    cdef readonly bint active           # still taking media
    cdef readonly int64_t n             # media samples the job has seen
    cdef readonly int64_t committed     # samples committed to the file
    cdef readonly bint audio_seen       # the detectors heard audio
    cdef readonly int cause             # CAUSE_* (recorder.engine.EndCause)
    cdef readonly int64_t digit_start   # start of the barge-in digit (-1: none)
    cdef readonly object digit          # the barge-in digit, or None
    cdef readonly int64_t first_audio   # first audio onset (-1: none)
    cdef readonly int64_t frames        # frames coded at the file's rate

    def __repr__(self):
        return (f"JobState(active={self.active}, n={self.n}, committed={self.committed}, "
                f"audio_seen={self.audio_seen}, cause={self.cause}, "
                f"digit_start={self.digit_start}, digit={self.digit!r}, "
                f"first_audio={self.first_audio}, frames={self.frames})")


cdef class Bank:
    """Media rings and record-job states for ``capacity`` slots (grows on demand)."""

    cdef slot_t** slots
    cdef int64_t* gens       # per slot: bumped by every open(), so a stale slot is seen
    # the slots' records: cells of CR_CHUNK chunks (chunk_mem.h: huge pages where the
    # system gives them), handed out in order from the newest chunk (cell_next on; a
    # cell not handed out yet is never touched), closed ones linked through their first
    # bytes for the next slots
    cdef void** chunks
    cdef Py_ssize_t nchunks
    cdef void* free_cells
    cdef char* cell_next
    cdef char* cell_end
    cdef readonly int capacity
    cdef public int64_t flush_bytes
    cdef public int64_t sync_every
    # resampling filters MEDIA_RATE -> rate (shared by the slots; never moved once made)
    cdef rs_filter filters[MAX_FILTERS]
    cdef int filter_rate[MAX_FILTERS]
    cdef int nfilters
    cdef list _filter_arrays        # keeps the filters' tables alive
    cdef float* rs_scratch          # one resampler call's float outputs (4 lanes of
    cdef int16_t* rs_out            # rs_scratch_n floats) and its int16 outputs
    cdef Py_ssize_t rs_scratch_n, rs_out_n
    # resampling of one feed: slots whose input waits in their history (rs_defer: feed is
    # collecting them), then run grouped by filter and phase, four at a time
    cdef bint rs_defer
    cdef rs_item* rs_list
    cdef Py_ssize_t rs_list_n, rs_cnt
    # OKI rows of one feed: the slots, their samples (then their bytes), their states
    cdef int64_t* ok_list
    cdef Py_ssize_t ok_list_n
    cdef int16_t* ok_src
    cdef int64_t ok_cap
    cdef int32_t* ok_state
    cdef Py_ssize_t ok_rows
    cdef int32_t ok_one[3]
    #: thread CPU time (ns) feed has spent writing files (write_to)
    cdef readonly int64_t write_ns

    def __cinit__(self, capacity=16, flush_bytes=4096, sync_every=MEDIA_RATE):
        self.slots = NULL
        self.gens = NULL
        self.chunks = NULL
        self.nchunks = 0
        self.free_cells = NULL
        self.cell_next = NULL
        self.cell_end = NULL
        self.capacity = 0
        self.nfilters = 0
        self._filter_arrays = []
        self.rs_scratch = NULL
        self.rs_out = NULL
        self.rs_scratch_n = 0
        self.rs_out_n = 0
        self.rs_defer = False
        self.rs_list = NULL
        self.rs_list_n = 0
        self.rs_cnt = 0
        self.ok_list = NULL
        self.ok_list_n = 0
        self.ok_src = NULL
        self.ok_cap = 0
        self.ok_state = NULL
        self.ok_rows = 0
        self.write_ns = 0
        self.flush_bytes = _i64(flush_bytes, "flush_bytes")
        self.sync_every = _i64(sync_every, "sync_every")
        self._check_sizes()
        self._grow(capacity)

    cdef int _check_sizes(self) except -1:
        if not (0 <= self.flush_bytes <= MAX_BUFFER and self.sync_every >= 1):
            raise ValueError(f"flush_bytes must be in 0..{MAX_BUFFER}, sync_every >= 1")
        return 0

    def __dealloc__(self):
        cdef int i
        if self.slots != NULL:
            for i in range(self.capacity):
                if self.slots[i] != NULL:
                    self._free_job(self.slots[i])
            free(self.slots)
        for i in range(self.nchunks):
            cr_chunk_free(self.chunks[i])
        free(self.chunks)
        free(self.gens)
        free(self.rs_scratch)
        free(self.rs_out)
        free(self.rs_list)
        free(self.ok_list)
        free(self.ok_src)
        free(self.ok_state)

    cdef void _free_job(self, slot_t* s) noexcept:
        _drop_output(s)
        if s.held != &s.held_in[0]:
            free(s.held)
        s.held = NULL
        free(s.out)
        s.out = NULL
        free(s.rs.buf)
        s.rs.buf = NULL
        s.flt = NULL
        free(s.blk)
        s.blk = NULL
        free(s.okibuf)
        s.okibuf = NULL
        s.oki_n = 0
        s.oki_cap = 0
        s.active = 0

    cdef const rs_filter* _filter(self, int rate) except NULL:
        """The resampling filter MEDIA_RATE -> rate (designed by recorder.resampling on
        first use, shared by every slot of this bank)."""
        cdef int i
        for i in range(self.nfilters):
            if self.filter_rate[i] == rate:
                return &self.filters[i]
        if self.nfilters == MAX_FILTERS:
            raise ValueError(f"at most {MAX_FILTERS} recording rates per engine")
        from recorder.resampling import design
        d = design(MEDIA_RATE, rate)
        coef = aligned_copy(d.coef, np.float32)    # rows of T taps start on cache lines
        ph = np.arange(d.p, dtype=np.int64) + d.q
        nxt = np.ascontiguousarray(ph % d.p, dtype=np.int32)
        adv = np.ascontiguousarray(ph // d.p, dtype=np.int32)
        cdef const float[:, ::1] cv = coef
        cdef const int32_t[::1] nv = nxt
        cdef const int32_t[::1] av = adv
        cdef rs_filter* f = &self.filters[self.nfilters]
        cdef Py_ssize_t taps = cv.shape[1]
        cdef Py_ssize_t need_scratch, need_out
        cdef void* mem
        if cv.shape[0] != d.p or taps % 8 or taps < 8:
            raise ValueError(f"resampling filter of shape {coef.shape} for p={d.p}")
        f.coef = &cv[0, 0]
        f.next_phase = &nv[0]
        f.advance = &av[0]
        f.T = <int>taps
        f.half = <int>(taps // 2)
        f.p = d.p
        f.q = d.q
        # a slot keeps the filter window and RS_ROOM more samples (resample_k's output
        # does not depend on how the input is cut into blocks)
        f.cap = taps + RS_ROOM
        # one call: outputs of RS_PIECE samples, or the end of a stream (half a window)
        need_scratch = f.cap * f.p // f.q + 16
        need_out = (RS_PIECE + taps) * f.p // f.q + 16
        if need_scratch > self.rs_scratch_n:
            mem = realloc(self.rs_scratch, 4 * need_scratch * sizeof(float))
            if mem == NULL:
                raise MemoryError()
            self.rs_scratch = <float*>mem
            self.rs_scratch_n = need_scratch
        if need_out > self.rs_out_n:
            mem = realloc(self.rs_out, need_out * sizeof(int16_t))
            if mem == NULL:
                raise MemoryError()
            self.rs_out = <int16_t*>mem
            self.rs_out_n = need_out
        self._filter_arrays.append((coef, nxt, adv))
        self.filter_rate[self.nfilters] = rate
        self.nfilters += 1
        return f

    def _grow(self, need):
        cdef int64_t n = _i64(need, "capacity")
        if not 0 <= n <= MAX_CHANNELS:
            raise ValueError(f"slot capacity must be in 0..{MAX_CHANNELS}, got {need}")
        cdef int cap = max(<int>n, 2 * self.capacity, 16)
        cdef slot_t** p = <slot_t**>realloc(self.slots, cap * sizeof(slot_t*))
        if p == NULL:
            raise MemoryError()
        self.slots = p
        cdef int64_t* g = <int64_t*>realloc(self.gens, cap * sizeof(int64_t))
        if g == NULL:
            raise MemoryError()
        self.gens = g
        for i in range(self.capacity, cap):
            self.slots[i] = NULL
            self.gens[i] = 0
        self.capacity = cap

    def open(self, slot):
        """Make ``slot`` usable (allocates its ring) and empty it."""
        cdef int64_t i = _i64(slot, "slot")
        if not 0 <= i < MAX_CHANNELS:
            raise ValueError(f"slot must be in 0..{MAX_CHANNELS - 1}, got {slot}")
        if i >= self.capacity:
            self._grow(i + 1)
        if self.slots[i] == NULL:
            self.slots[i] = self._new_cell()
        cdef slot_t* s = self.slots[i]
        self._free_job(s)
        s.head = 0
        s.fill = 0
        s.media = 0
        s.accept = 0
        s.watched = 0
        self.gens[i] += 1

    def generation(self, slot):
        """How many times ``slot`` has been opened: a batch of slots remembers it, and
        :meth:`push_rows` refuses a slot that was closed (and maybe reopened) since."""
        self._slot(slot)
        return self.gens[_i64(slot, "slot")]

    def set_accept(self, slot, bint on):
        """Whether :meth:`push_rows` queues ``slot``'s row (on) or drops it (off: the
        call is not answered).  Off when the slot is opened."""
        self._slot(slot).accept = on

    def close(self, slot):
        """Release ``slot``'s memory."""
        cdef int64_t i = _i64(slot, "slot")
        if 0 <= i < self.capacity and self.slots[i] != NULL:
            self._free_job(self.slots[i])
            (<void**>self.slots[i])[0] = self.free_cells
            self.free_cells = self.slots[i]
            self.slots[i] = NULL

    cdef slot_t* _new_cell(self) except NULL:
        """A zeroed slot record: a closed slot's cell, else the newest chunk's next
        one, else the first of a new chunk.  The first chunk is in small pages, the next
        ones advised for huge pages (chunk_mem.h).  Chunks go back to the system with the
        bank."""
        cdef size_t cell = (sizeof(slot_t) + 63) & ~(<size_t>63)
        cdef char* c
        cdef void** grown
        cdef slot_t* s
        if self.free_cells != NULL:
            s = <slot_t*>self.free_cells
            self.free_cells = (<void**>s)[0]
        else:
            if self.cell_next == NULL or self.cell_next + cell > self.cell_end:
                grown = <void**>realloc(self.chunks, (self.nchunks + 1) * sizeof(void*))
                if grown == NULL:
                    raise MemoryError()
                self.chunks = grown
                c = <char*>cr_chunk_alloc(self.nchunks > 0)
                if c == NULL:
                    raise MemoryError()
                self.chunks[self.nchunks] = c
                self.nchunks += 1
                self.cell_next, self.cell_end = c, c + CR_CHUNK
            s = <slot_t*>self.cell_next
            self.cell_next += cell
        memset(s, 0, sizeof(slot_t))
        return s

    cdef slot_t* _get(self, int64_t slot) except NULL:
        if slot < 0 or slot >= self.capacity or self.slots[slot] == NULL:
            raise ValueError(f"slot {slot} is not open")
        return self.slots[slot]

    cdef slot_t* _slot(self, object slot) except NULL:
        return self._get(_i64(slot, "slot"))

    # -- media in -------------------------------------------------------------------------

    def pending(self, slot):
        return self._slot(slot).fill

    def media(self, slot):
        return self._slot(slot).media

    def reset_media(self, slot):
        cdef slot_t* s = self._slot(slot)
        s.media = 0
        s.head = 0
        s.fill = 0

    cdef int64_t _push(self, slot_t* s, const int16_t* x, int64_t n) noexcept nogil:
        cdef int64_t room = RING - s.fill
        if n > room:
            n = room
        cdef int64_t tail = (s.head + s.fill) % RING
        cdef int64_t first = _min64(n, RING - tail)
        memcpy(&s.ring[tail], x, first * sizeof(int16_t))
        if first < n:
            memcpy(&s.ring[0], x + first, (n - first) * sizeof(int16_t))
        s.fill += n
        s.quiet = 0
        return n

    def push_s16(self, slot, const int16_t[::1] x):
        """Queue int16 samples; returns how many fitted (the rest: process, then push again)."""
        cdef slot_t* s = self._slot(slot)
        if x.shape[0] == 0:
            return 0
        return self._push(s, &x[0], x.shape[0])

    cdef int64_t _push_codes(self, slot_t* s, const uint8_t* codes, int64_t n,
                             bint ulaw) noexcept nogil:
        n = _min64(n, RING - s.fill)
        if n <= 0:
            return 0
        cdef int64_t tail = (s.head + s.fill) % RING
        cdef int64_t first = _min64(n, RING - tail)
        _g711_decode(codes, &s.ring[tail], first, ulaw)
        if first < n:
            _g711_decode(codes + first, &s.ring[0], n - first, ulaw)
        s.fill += n
        s.quiet = 0
        return n

    def push_g711(self, slot, const uint8_t[::1] codes, bint ulaw):
        """Decode A-law (or mu-law) codes straight into the ring; returns codes taken."""
        cdef slot_t* s = self._slot(slot)
        if codes.shape[0] == 0:
            return 0
        return self._push_codes(s, &codes[0], codes.shape[0], ulaw)

    def push_rows(self, const int64_t[::1] slots, const int64_t[::1] gens, block, codec):
        """Queue one frame for each of many slots in one call: row ``r`` of ``block`` goes
        to slot ``slots[r]``, which must still be the slot opened as generation
        ``gens[r]`` (:meth:`generation`).  ``codec`` 0: ``block`` is int16 samples; 1 / 2:
        uint8 A-law / mu-law codes, decoded straight into the rings.  Everything is
        checked first, then the rows are copied with the GIL released.  Rows of slots
        that do not accept media (:meth:`set_accept`) are dropped.

        Returns the samples queued per row (int64): the row's length, or fewer when the
        slot's ring was full (the caller makes room and pushes the rest); a dropped row
        counts as queued."""
        cdef Py_ssize_t k = slots.shape[0], r, rows
        cdef const int16_t[:, ::1] pcm
        cdef const uint8_t[:, ::1] codes
        cdef int64_t n, i
        cdef int64_t c = _i64(codec, "codec")
        cdef slot_t* s
        if block is None:
            raise TypeError("block must be a 2-D array, not None")
        if c == 0:
            pcm = block
            rows, n = pcm.shape[0], pcm.shape[1]
        elif c == 1 or c == 2:
            codes = block
            rows, n = codes.shape[0], codes.shape[1]
        else:
            raise ValueError(f"codec must be 0 (int16), 1 (A-law) or 2 (mu-law), got {codec}")
        if rows != k:
            raise ValueError(f"block has {rows} rows for {k} slots: one row per slot")
        if gens.shape[0] != k:
            raise ValueError(f"gens has {gens.shape[0]} entries for {k} slots")
        for r in range(k):
            i = slots[r]
            if i < 0 or i >= self.capacity or self.slots[i] == NULL:
                raise ValueError(f"row {r}: slot {i} is not open")
            if self.gens[i] != gens[r]:
                raise ValueError(f"row {r}: slot {i} was closed since (generation {gens[r]}, "
                                 f"now {self.gens[i]})")
        taken = np.empty(k, dtype=np.int64)
        cdef int64_t[::1] t = taken
        with nogil:
            for r in range(k):
                t[r] = n
            if n == 0:
                k = 0
            for r in range(k):
                if r + 4 < k:
                    _prefetch_media(self.slots[slots[r + 4]], 2 * n)
                s = self.slots[slots[r]]
                if not s.accept:
                    continue
                if c == 0:
                    t[r] = self._push(s, &pcm[r, 0], n)
                else:
                    t[r] = self._push_codes(s, &codes[r, 0], n, c == 2)
        return taken

    def push_zeros(self, slot, n):
        cdef slot_t* s = self._slot(slot)
        cdef int64_t m = _i64(n, "n")
        if m < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return self._push_zeros(s, m)

    def fill_gap(self, slot, due, gap):
        """The gap rule, for one slot: when its media (processed and pending) is more
        than ``gap`` samples behind ``due``, queue silence up to ``due``, as much as the
        ring takes (one bounded step: a longer gap is filled over the next calls).
        Returns the samples queued.  (:meth:`fill_gaps` applies it to every watched slot.)"""
        cdef slot_t* s = self._slot(slot)
        cdef int64_t d = _i64(due, "due"), g = _i64(gap, "gap")
        if g < 0:
            raise ValueError(f"gap must be >= 0, got {gap}")
        return self._fill_to(s, d, g)

    cdef int64_t _fill_to(self, slot_t* s, int64_t due, int64_t gap) noexcept nogil:
        cdef int64_t behind = due - (s.media + s.fill)
        return self._push_zeros(s, behind) if behind > gap else 0

    cdef int64_t _push_zeros(self, slot_t* s, int64_t m) noexcept nogil:
        """Queue up to m samples of silence, as many as the ring has room for (not
        media arriving: the slot's quiet count goes on); returns how many."""
        cdef int64_t room = RING - s.fill
        if m > room:
            m = room
        cdef int64_t tail = (s.head + s.fill) % RING
        cdef int64_t first = _min64(m, RING - tail)
        memset(&s.ring[tail], 0, first * sizeof(int16_t))
        if first < m:
            memset(&s.ring[0], 0, (m - first) * sizeof(int16_t))
        s.fill += m
        return m

    def idle(self, ticks=1):
        """Open slots that received no media during the last ``ticks`` calls of this
        method, this one included (the gap watchdog's candidates: one call per tick),
        but for the slots whose gaps :meth:`fill_gaps` fills."""
        cdef int64_t k = _i64(ticks, "ticks")
        if k < 1:
            raise ValueError(f"ticks must be >= 1, got {k}")
        out = []
        cdef int i
        cdef slot_t* s
        for i in range(self.capacity):
            s = self.slots[i]
            if s != NULL:
                if s.quiet < 1_000_000:
                    s.quiet += 1
                if s.quiet >= k and not s.watched:
                    out.append(i)
        return np.array(out, dtype=np.int64)

    def watch_gaps(self, slot, double origin, double floor, double slack):
        """From now on :meth:`fill_gaps` fills the gaps in ``slot``'s media (until the
        slot is opened again): its media is due up to ``(max(floor, now - slack) -
        origin) * MEDIA_RATE`` samples at clock time ``now`` (the clock of the channel's
        gap watchdog: ``origin`` is its answer time, ``floor`` and ``slack`` describe it;
        plain wall time is ``floor=-inf, slack=0``)."""
        cdef slot_t* s = self._slot(slot)
        # (x - x == 0: finite; floor may be -inf, not NaN)
        if not (origin - origin == 0 and floor == floor and slack - slack == 0 and slack >= 0):
            raise ValueError(f"origin must be finite, floor a number and slack finite and "
                             f">= 0; got {origin}, {floor}, {slack}")
        s.gap_origin, s.gap_floor, s.gap_slack = origin, floor, slack
        s.watched = 1

    def fill_gaps(self, double now, ticks, gap):
        """The gap watchdog of every watched slot (:meth:`watch_gaps`) at once: each
        slot whose call is answered (:meth:`set_accept`) and that got no media during the
        last ``ticks`` calls of :meth:`idle` has :meth:`fill_gap` applied with its due
        count.  Call it after :meth:`idle`, once a tick.  Returns the samples queued."""
        cdef int64_t k = _i64(ticks, "ticks"), g = _i64(gap, "gap"), total = 0
        cdef double span
        if k < 1 or g < 0 or not now - now == 0:
            raise ValueError(f"now must be finite, ticks >= 1 and gap >= 0; got {now}, "
                             f"{ticks} and {gap}")
        cdef int i
        cdef slot_t* s
        with nogil:
            for i in range(self.capacity):
                s = self.slots[i]
                if s == NULL or not s.watched or not s.accept or s.quiet < k:
                    continue
                # the Python watchdog's arithmetic: int((clock() - answered_at) * rate)
                span = (_maxd(s.gap_floor, now - s.gap_slack) - s.gap_origin) * MEDIA_RATE
                if not span < DUE_MAX:      # (a NaN `now` too)
                    span = DUE_MAX
                total += self._fill_to(s, <int64_t>span, g)
        return total

    def ready(self, n, const int64_t[::1] among=None):
        """Slots (all open slots, or ``among``) with at least ``n`` samples pending."""
        cdef int64_t nn = _i64(n, "n")
        cdef Py_ssize_t total = self.capacity if among is None else among.shape[0]
        out = np.empty(total, dtype=np.int64)
        cdef int64_t[::1] o = out
        cdef Py_ssize_t j, k = 0
        cdef int64_t i
        cdef slot_t* s
        for j in range(total):
            if j + 8 < total:       # the slot 8 on is fetched meanwhile
                i = j + 8 if among is None else among[j + 8]
                if 0 <= i < self.capacity and self.slots[i] != NULL:
                    cr_prefetch(self.slots[i], 64)
            i = j if among is None else among[j]
            if not 0 <= i < self.capacity:
                continue
            s = self.slots[i]
            if s != NULL and s.fill >= nn and s.fill > 0:
                o[k] = i
                k += 1
        return out[:k]

    def take(self, const int64_t[::1] slots, n):
        """Remove ``n`` samples from each slot's ring into a (k, n) int16 block; the
        slots' media clocks advance by n.  Every slot must have n pending."""
        cdef Py_ssize_t k = slots.shape[0], r
        cdef int64_t nn = _i64(n, "n")
        if not 0 <= nn <= RING:
            raise ValueError(f"n must be in 0..{RING}, got {n}")
        block = np.empty((k, nn), dtype=np.int16)
        cdef int16_t[:, ::1] b = block
        cdef slot_t* s
        cdef int64_t first
        for r in range(k):
            s = self._get(slots[r])
            if s.fill < nn:
                raise ValueError(f"slot {slots[r]} has {s.fill} samples pending, not {n}")
        with nogil:
            for r in range(k):
                if r + 4 < k:
                    _prefetch_media(self.slots[slots[r + 4]], 2 * nn)
                s = self.slots[slots[r]]
                first = _min64(nn, RING - s.head)
                memcpy(&b[r, 0], &s.ring[s.head], first * sizeof(int16_t))
                if first < nn:
                    memcpy(&b[r, first], &s.ring[0], (nn - first) * sizeof(int16_t))
                s.fill -= nn
                s.media += nn
                # an emptied ring starts over at 0: a slot fed and taken a frame per tick
                # reuses the same few cache lines instead of walking its whole ring
                s.head = (s.head + nn) % RING if s.fill else 0
        return block

    # -- record jobs ----------------------------------------------------------------------

    def start_job(self, slot, fmt, timeout_at, size_at, max_sil, init_sil, bint barge, hold,
                  rate=MEDIA_RATE, max_frames=-1):
        """Begin a record job on ``slot`` (see recorder.filerecorder for the semantics;
        times in samples at MEDIA_RATE, -1 / 0 = none).  The file is coded as ``fmt`` at
        ``rate`` Hz (resampled from MEDIA_RATE, the first filter for a rate designed by
        recorder.resampling) and holds at most ``max_frames`` frames at that rate (-1:
        no limit)."""
        cdef slot_t* s = self._slot(slot)
        cdef int64_t f = _i64(fmt, "fmt"), h = _i64(hold, "hold")
        cdef int64_t t_at = _i64(timeout_at, "timeout_at"), z_at = _i64(size_at, "size_at")
        cdef int64_t m_sil = _i64(max_sil, "max_sil"), i_sil = _i64(init_sil, "init_sil")
        cdef int64_t r = _i64(rate, "rate"), mf = _i64(max_frames, "max_frames")
        cdef const rs_filter* flt = NULL
        cdef int64_t byte_rate
        if not FMT_ALAW <= f <= FMT_OKI:
            raise ValueError(f"fmt must be in {FMT_ALAW}..{FMT_OKI}, got {fmt}")
        if not 0 <= h <= MAX_BUFFER:
            raise ValueError(f"hold must be in 0..{MAX_BUFFER} samples, got {hold}")
        if not 1000 <= r <= 48000:
            raise ValueError(f"rate must be in 1000..48000 Hz, got {rate}")
        if f == FMT_IMA and r > IMA_MAX_RATE:
            raise ValueError(f"IMA ADPCM is coded here below 12000 Hz, got rate {rate}")
        if mf < -1:
            raise ValueError(f"max_frames must be >= 0, or -1 for no limit, got {max_frames}")
        self._check_sizes()
        if r != MEDIA_RATE:
            flt = self._filter(<int>r)
        self._free_job(s)
        s.fmt = <int>f
        s.bps = 2 if f == FMT_S16 else 1
        s.n = 0
        s.committed = 0
        s.timeout_at = t_at
        s.size_at = z_at
        s.max_sil = m_sil
        s.init_sil = i_sil
        s.barge = barge
        s.audio_seen = 0
        s.hold = <int>h if barge else 0
        s.held_n = 0
        s.held_head = 0
        s.cause = CAUSE_NONE
        s.digit_start = -1
        s.digit = 0
        s.first_audio = -1
        s.next_sync = self.sync_every
        s.held = (&s.held_in[0] if s.hold <= HELD_IN
                  else <int16_t*>malloc(s.hold * sizeof(int16_t)))
        # a feed commits at most hold + the chunk; leave room for a few ticks unflushed
        s.out_len = 0
        s.rate = <int>r
        # the output buffer is handed to Python about as often whatever the byte rate:
        # flush_bytes for 8000 bytes per second or less, proportionally more above
        byte_rate = (2 * r if f == FMT_S16 else r * IMA_BLOCK // IMA_FRAMES if f == FMT_IMA
                     else r // 2 if f == FMT_OKI else r)
        s.flush_at = _max64(self.flush_bytes, self.flush_bytes * byte_rate // MEDIA_RATE)
        # a feed commits at most hold + the chunk; leave room for a few ticks unflushed
        s.out_cap = s.flush_at + 2 * (RING + s.hold)
        s.out = <uint8_t*>malloc(max(s.out_cap, 1))
        s.frames = 0
        s.max_frames = mf
        s.flt = flt
        s.rs.clipped = 0
        s.rs_pend = 0
        if flt != NULL:
            s.rs.buf = <float*>malloc(flt.cap * sizeof(float))
            if s.rs.buf != NULL:
                rs_reset(&s.rs, flt)
        s.blk_n = 0
        s.ima_index = 0
        if f == FMT_IMA:
            s.blk = <int16_t*>malloc(IMA_FRAMES * sizeof(int16_t))
        s.oki.pm = 0
        s.oki.ps = 0
        s.oki.idx = 0
        s.oki_n = 0
        s.oki_mark = 0
        if f == FMT_OKI:
            s.oki_cap = OKI_START
            s.okibuf = <int16_t*>malloc(s.oki_cap * sizeof(int16_t))
        if (s.held == NULL or s.out == NULL or (flt != NULL and s.rs.buf == NULL)
                or (f == FMT_IMA and s.blk == NULL) or (f == FMT_OKI and s.okibuf == NULL)):
            self._free_job(s)
            raise MemoryError()
        s.active = 1

    cdef int _reserve(self, slot_t* s, int64_t nbytes) noexcept nogil:
        """Make room for nbytes more bytes of output (normally there is: Python drains
        the buffers every tick).  Returns 0 if memory ran out."""
        cdef int64_t need = s.out_len + nbytes
        cdef void* p
        if need > s.out_cap:
            p = realloc(s.out, 2 * need)
            if p == NULL:
                return 0
            s.out = <uint8_t*>p
            s.out_cap = 2 * need
        return 1

    cdef void _code(self, slot_t* s, const int16_t* y, int64_t k) noexcept nogil:
        """Code k samples at the file's rate into the output buffer (never past the
        file's frame limit)."""
        cdef int64_t take
        cdef void* p
        if s.max_frames >= 0 and k > s.max_frames - s.frames:
            k = s.max_frames - s.frames
        # bytes: 2 per sample at most, plus one IMA block or OKI's held-back codes
        if k <= 0 or not self._reserve(s, 2 * k + IMA_BLOCK + 4):
            return
        s.frames += k
        if s.fmt == FMT_ALAW:
            if not cr_alaw_encode_simd(y, &s.out[s.out_len], k):
                alaw_encode_k(y, &s.out[s.out_len], k)
            s.out_len += k
        elif s.fmt == FMT_ULAW:
            if not cr_ulaw_encode_simd(y, &s.out[s.out_len], k):
                ulaw_encode_k(y, &s.out[s.out_len], k)
            s.out_len += k
        elif s.fmt == FMT_S16:
            s16_encode_k(y, &s.out[s.out_len], k)
            s.out_len += 2 * k
        elif s.fmt == FMT_U8:
            u8_encode_k(y, &s.out[s.out_len], k)
            s.out_len += k
        elif s.fmt == FMT_OKI:     # coded by _oki_rows at the end of the feed
            if s.oki_n + k > s.oki_cap:
                p = realloc(s.okibuf, 2 * (s.oki_n + k) * sizeof(int16_t))
                if p == NULL:
                    s.frames -= k
                    return
                s.okibuf = <int16_t*>p
                s.oki_cap = 2 * (s.oki_n + k)
            memcpy(&s.okibuf[s.oki_n], y, k * sizeof(int16_t))
            s.oki_n += k
        else:       # IMA: whole blocks straight from y, a partial one gathered in blk
            while k > 0:
                if s.blk_n == 0 and k >= IMA_FRAMES:
                    ima_wav_encode_block_k(y, 1, (IMA_BLOCK - 4) // 4, &s.ima_index,
                                           &s.out[s.out_len])
                    s.out_len += IMA_BLOCK
                    y += IMA_FRAMES
                    k -= IMA_FRAMES
                    continue
                take = _min64(k, IMA_FRAMES - s.blk_n)
                memcpy(&s.blk[s.blk_n], y, take * sizeof(int16_t))
                s.blk_n += <int>take
                y += take
                k -= take
                if s.blk_n == IMA_FRAMES:
                    ima_wav_encode_block_k(s.blk, 1, (IMA_BLOCK - 4) // 4, &s.ima_index,
                                           &s.out[s.out_len])
                    s.out_len += IMA_BLOCK
                    s.blk_n = 0

    cdef void _commit(self, slot_t* s, const int16_t* x, int64_t m) noexcept nogil:
        """Commit m media samples to the file: resampled (if the file's rate is not
        MEDIA_RATE) and coded."""
        cdef int64_t pos = 0, piece
        cdef Py_ssize_t cnt
        if m <= 0:
            return
        s.committed += m
        if s.flt == NULL:
            self._code(s, x, m)
            return
        if (self.rs_defer and s.rs.len + m <= s.flt.cap
                and (s.rs_pend or self.rs_cnt < self.rs_list_n)):
            # resampled at the end of the feed with the other slots (_rs_run_all)
            if not s.rs_pend:
                s.rs_pend = 1
                self.rs_list[self.rs_cnt].s = s
                self.rs_cnt += 1
            rs_append(&s.rs, x, <Py_ssize_t>m)
            return
        self._rs_run_one(s)
        while pos < m:
            piece = _min64(m - pos, RS_PIECE)
            cnt = rs_process(&s.rs, s.flt, x + pos, <Py_ssize_t>piece, False, self.rs_out,
                             self.rs_scratch)
            self._code(s, self.rs_out, cnt)
            pos += piece

    cdef void _end_coding(self, slot_t* s) noexcept nogil:
        """The job has ended: the resampler's last samples (the file holds
        round(committed * rate / MEDIA_RATE) frames, halves to even, as many as fit),
        then the coder's: IMA's last block padded with its last sample, OKI's lookahead
        and a last odd code."""
        cdef int64_t num, want
        cdef Py_ssize_t cnt
        cdef int i, held
        if s.flt != NULL:
            self._rs_run_one(s)
            num = s.committed * s.flt.p
            want = num // s.flt.q
            if 2 * (num % s.flt.q) > s.flt.q or (2 * (num % s.flt.q) == s.flt.q and want & 1):
                want += 1
            cnt = rs_process(&s.rs, s.flt, <const int16_t*>NULL, 0, True, self.rs_out,
                             self.rs_scratch)
            self._code(s, self.rs_out, _min64(cnt, want - s.frames))
        if not self._reserve(s, IMA_BLOCK + 4):
            return
        if s.fmt == FMT_IMA and s.blk_n > 0:
            for i in range(s.blk_n, IMA_FRAMES):
                s.blk[i] = s.blk[s.blk_n - 1]
            ima_wav_encode_block_k(s.blk, 1, (IMA_BLOCK - 4) // 4, &s.ima_index,
                                   &s.out[s.out_len])
            s.out_len += IMA_BLOCK
            s.blk_n = 0
        elif s.fmt == FMT_OKI and s.oki_n:
            # the stream ends: every sample coded, the last one repeated as lookahead, an
            # odd last code completed with a zero low nibble
            if not self._reserve(s, s.oki_n // 2 + 2):
                return
            held = -1
            s.out_len += cr_search(&cr_oki_search, &s.oki, s.okibuf, s.oki_n, s.oki_n, 4, &held,
                                   &s.out[s.out_len])
            if held >= 0:
                s.out[s.out_len] = <uint8_t>(held << 4)
                s.out_len += 1
            s.oki_n = 0

    cdef void _rs_done(self, slot_t* s, float* y, Py_ssize_t k) noexcept nogil:
        """The slot's k resampled outputs in y: to int16, coded; the history compacted."""
        if k > 0:
            s.rs.clipped += cr_rs_to_int16(y, self.rs_out, k)
            self._code(s, self.rs_out, k)
        rs_compact(&s.rs, s.flt)
        s.rs_pend = 0

    cdef void _rs_run_one(self, slot_t* s) noexcept nogil:
        """Resample and code the samples waiting in the slot's history (if any)."""
        cdef Py_ssize_t k
        if not s.rs_pend:
            return
        k = <Py_ssize_t>(rs_ready(s.flt, s.rs.base + s.rs.len) - s.rs.n_out)
        rs_emit(&s.rs, s.flt, k, self.rs_scratch)
        self._rs_done(s, self.rs_scratch, k)

    cdef void _rs_run_all(self) noexcept nogil:
        """Resample and code what this feed left waiting in the slots' histories: slots
        of one filter and phase four at a time (cr_rs_run4 loads each tap vector once for
        four outputs), the rest one by one.  Every output is the same sample as one slot
        at a time would give (the dot products run in one fixed order)."""
        cdef Py_ssize_t i, j, g, ln, n = 0, nmin
        cdef Py_ssize_t k[4]
        cdef const float* xs[4]
        cdef float* ys[4]
        cdef slot_t* s
        cdef const rs_filter* f
        for i in range(self.rs_cnt):     # each waiting slot once (2: listed below); slots
            s = self.rs_list[i].s        # resampled since (their job ended) drop out
            if s.rs_pend != 1:
                continue
            if rs_ready(s.flt, s.rs.base + s.rs.len) - s.rs.n_out >= 4 * s.flt.p:
                # whole periods of 4p outputs: cr_rs_run already runs one slot four
                # (8000 -> 6000 / 11000 Hz with AVX2: eight) outputs at a time (outputs
                # p apart share a phase), from one history
                if i + 1 < self.rs_cnt:
                    _rs_prefetch(self.rs_list[i + 1].s)
                self._rs_run_one(s)
            else:
                s.rs_pend = 2
                self.rs_list[n].s = s
                self.rs_list[n].flt = s.flt
                self.rs_list[n].phase = s.rs.phase
                n += 1
        self.rs_cnt = 0
        if n > 4:
            qsort(self.rs_list, n, sizeof(rs_item), _rs_item_cmp)
        i = 0
        while i < n:
            f = self.rs_list[i].flt
            g = i + 1
            while (g < n and self.rs_list[g].flt == f
                   and self.rs_list[g].phase == self.rs_list[i].phase):
                g += 1
            while g - i >= 4:
                for j in range(i + 4, min(i + 8, n)):     # the next group's histories
                    _rs_prefetch(self.rs_list[j].s)
                nmin = -1
                for ln in range(4):
                    s = self.rs_list[i + ln].s
                    k[ln] = <Py_ssize_t>(rs_ready(f, s.rs.base + s.rs.len) - s.rs.n_out)
                    if nmin < 0 or k[ln] < nmin:
                        nmin = k[ln]
                    xs[ln] = rs_window(&s.rs, f)
                    ys[ln] = self.rs_scratch + ln * self.rs_scratch_n
                if nmin > 0:
                    cr_rs_run4(f.coef, f.T, f.next_phase, f.advance, self.rs_list[i].phase,
                               xs, nmin, ys)
                for ln in range(4):
                    s = self.rs_list[i + ln].s
                    rs_advance(&s.rs, f, nmin)          # then each lane's last ones
                    rs_emit(&s.rs, f, k[ln] - nmin, ys[ln] + nmin)
                    self._rs_done(s, ys[ln], k[ln])
                i += 4
            for j in range(i, g):
                self._rs_run_one(self.rs_list[j].s)
            i = g

    cdef void _oki_rows(self, const int64_t* slots, Py_ssize_t k) noexcept nogil:
        """Code the OKI samples the slots took in this feed, many slots in one
        search_rows_k call: a slot's row is its samples up to an even count c of them
        and the two after (their lookahead): the row's first c samples are coded, which
        is the stream's next c codes and its state after them; the last two wait for
        the next feed.  Rows of one length go together."""
        cdef Py_ssize_t r, j, g, cnt = 0, done = 0
        cdef int64_t n, c, slot
        cdef slot_t* s
        cdef int32_t* st
        cdef void* p
        cdef bint rows
        for r in range(k):
            s = self.slots[slots[r]]
            if s.fmt == FMT_OKI and s.oki_n >= 4 and not s.oki_mark:
                s.oki_mark = 1
                self.ok_list[cnt] = slots[r]
                cnt += 1
        while done < cnt:
            # the rows of the first slot's length to the front of what is left
            n = _oki_row_len(self.slots[self.ok_list[done]])
            g = 0
            for j in range(done, cnt):
                if _oki_row_len(self.slots[self.ok_list[j]]) == n:
                    slot = self.ok_list[j]
                    self.ok_list[j] = self.ok_list[done + g]
                    self.ok_list[done + g] = slot
                    g += 1
            # scratch: g rows of n samples, then their bytes (n/2 per row); g states
            if g * n > self.ok_cap:
                p = realloc(self.ok_src, g * n * (sizeof(int16_t) + 1))
                if p != NULL:
                    self.ok_src = <int16_t*>p
                    self.ok_cap = g * n
            if g > self.ok_rows:
                p = realloc(self.ok_state, g * 3 * sizeof(int32_t))
                if p != NULL:
                    self.ok_state = <int32_t*>p
                    self.ok_rows = g
            rows = self.ok_cap >= g * n and self.ok_rows >= g   # else a row at a time, in place
            for j in range(g):
                s = self.slots[self.ok_list[done + j]]
                s.oki_mark = 0
                if rows:
                    memcpy(&self.ok_src[j * n], s.okibuf, n * sizeof(int16_t))
                    st = &self.ok_state[3 * j]
                    st[0], st[1], st[2] = s.oki.pm, s.oki.idx, s.oki.ps
            c = n - 2
            if rows:
                search_rows_k(&cr_oki_search, self.ok_src, g, n, c, self.ok_state, 4,
                              <uint8_t*>&self.ok_src[g * n])
            for j in range(g):
                s = self.slots[self.ok_list[done + j]]
                if not self._reserve(s, c // 2):
                    continue
                if rows:
                    memcpy(&s.out[s.out_len], (<uint8_t*>&self.ok_src[g * n]) + j * (c // 2),
                           c // 2)
                    st = &self.ok_state[3 * j]
                else:
                    st = self.ok_one
                    st[0], st[1], st[2] = s.oki.pm, s.oki.idx, s.oki.ps
                    search_rows_k(&cr_oki_search, s.okibuf, 1, n, c, st, 4, &s.out[s.out_len])
                s.oki.pm, s.oki.idx, s.oki.ps = st[0], st[1], st[2]
                s.out_len += c // 2
                s.oki_n -= c
                memmove(s.okibuf, &s.okibuf[c], s.oki_n * sizeof(int16_t))
            done += g

    cdef void _commit_from(self, slot_t* s, const int16_t* x, int64_t m,
                           int64_t upto) noexcept nogil:
        """Commit job samples [committed, upto) from held ++ x."""
        cdef int64_t held_n = s.held_n
        cdef int64_t base = s.n - (held_n + m)            # job index of avail[0]
        cdef int64_t want = upto - base                    # avail samples to commit
        cdef int64_t from_held = _min64(want, held_n)
        if from_held > 0:
            self._commit_held(s, from_held)
        if want > held_n:
            self._commit(s, x, _min64(want - held_n, m))

    cdef void _commit_held(self, slot_t* s, int64_t count) noexcept nogil:
        """Commit the oldest ``count`` held-back samples (the held ring's head on)."""
        cdef int64_t first = _min64(count, s.hold - s.held_head)
        self._commit(s, s.held + s.held_head, first)
        if first < count:
            self._commit(s, s.held, count - first)
        s.held_head = <int>((s.held_head + count) % s.hold)
        s.held_n -= <int>count

    cdef void _hold(self, slot_t* s, const int16_t* x, int64_t count) noexcept nogil:
        """Append ``count`` samples to the held ring (it has room for them)."""
        cdef int64_t tail = (s.held_head + s.held_n) % s.hold
        cdef int64_t first = _min64(count, s.hold - tail)
        memcpy(s.held + tail, x, first * sizeof(int16_t))
        if first < count:
            memcpy(s.held, x + first, (count - first) * sizeof(int16_t))
        s.held_n += <int>count

    cdef int _feed_one(self, slot_t* s, const int16_t* x, int64_t m, int64_t run, int seen,
                       int64_t digit_start, int digit, int64_t audio_start) noexcept nogil:
        cdef int64_t start = s.n, end = s.n + m, cut = -1, limit, at, keep, total
        cdef int cause = CAUSE_NONE, was_seen = s.audio_seen, ev = 0
        s.n = end
        if seen:
            s.audio_seen = 1
        if audio_start >= 0 and s.first_audio < 0:
            s.first_audio = audio_start
        if s.timeout_at >= 0 and end >= s.timeout_at:
            cut, cause = s.timeout_at, CAUSE_TIMEOUT
        if s.size_at >= 0 and end >= s.size_at and (cut < 0 or s.size_at < cut):
            cut, cause = s.size_at, CAUSE_SIZE
        if s.audio_seen and s.max_sil > 0 and run >= s.max_sil:
            at = _max64(end - (run - s.max_sil), start if was_seen else 0)
            if cut < 0 or at < cut:
                cut, cause = at, CAUSE_SILENCE
        # before any audio: the initial-silence limit, or if that is 0 the max-silence one
        limit = s.init_sil if s.init_sil > 0 else s.max_sil
        if not s.audio_seen and limit > 0 and run >= limit:
            at = _max64(end - (run - limit), 0)
            if cut < 0 or at < cut:
                cut, cause = at, CAUSE_SILENCE
        if s.barge and digit_start >= 0:
            at = _max64(digit_start, s.committed)
            if cut < 0 or at < cut:
                cut, cause = at, CAUSE_BARGEIN
                s.digit_start, s.digit = digit_start, digit     # reported: the true start
        if cut >= 0:
            cut = _max64(cut, s.committed)
            self._commit_from(s, x, m, cut)
            s.held_n = 0
            s.cause = cause
            s.active = 0
            self._end_coding(s)
            ev |= EV_DONE
        else:
            total = s.held_n + m
            keep = _min64(s.hold, total)
            self._commit_from(s, x, m, end - keep)
            # the last `keep` samples of held ++ x become the new held: what is left of
            # the held ring, then the end of x appended to it
            if keep > s.held_n:
                self._hold(s, x + (m - (keep - s.held_n)), keep - s.held_n)
        if s.out_len >= s.flush_at:
            ev |= EV_FLUSH
        if s.committed >= s.next_sync:
            s.next_sync = (s.committed // self.sync_every + 1) * self.sync_every
            ev |= EV_SYNC
        return ev

    def feed(self, const int64_t[::1] slots, const int16_t[:, ::1] block,
             const int64_t[::1] silence, const uint8_t[::1] seen,
             const int64_t[::1] digit_start, const int32_t[::1] digit,
             const int64_t[::1] audio_start):
        """Apply one chunk (a row of ``block``) and the detectors' state at its end to
        each slot's job.  ``silence`` is the current run of silence in samples (the
        detectors' count: positions and runs are samples at MEDIA_RATE everywhere across
        this boundary).  ``digit_start`` is the job sample where a digit confirmed in
        this chunk started (-1: none), ``digit`` its character code, ``audio_start`` the
        job sample where audio began in this chunk (-1: none).  Returns the event bits per
        row (int32)."""
        cdef Py_ssize_t k = slots.shape[0], r
        cdef int64_t m = block.shape[1]
        if block.shape[0] != k or silence.shape[0] != k or seen.shape[0] != k \
                or digit_start.shape[0] != k or digit.shape[0] != k or audio_start.shape[0] != k:
            raise ValueError("feed: every argument needs one entry per slot")
        self._check_sizes()
        for r in range(k):
            if not self._get(slots[r]).active:
                raise ValueError(f"slot {slots[r]} has no record job")
        events = np.zeros(k, dtype=np.int32)
        cdef int32_t[::1] ev = events
        cdef void* p
        cdef slot_t* s
        cdef bint timed, oki = False
        cdef timespec t0, t1
        if k == 0:
            return events
        if k > self.ok_list_n:
            p = realloc(self.ok_list, k * sizeof(int64_t))
            if p == NULL:
                raise MemoryError()
            self.ok_list = <int64_t*>p
            self.ok_list_n = k
        if k > self.rs_list_n:
            p = realloc(self.rs_list, k * sizeof(rs_item))
            if p == NULL:
                raise MemoryError()
            self.rs_list = <rs_item*>p
            self.rs_list_n = k
        with nogil:
            self.rs_defer = True
            self.rs_cnt = 0
            for r in range(k):
                # the memory of the slots a few rows on is fetched while this one runs
                # (thousands of slots do not fit the cache: each would wait for it)
                if r + 8 < k:
                    cr_prefetch(self.slots[slots[r + 8]], _SLOT_FIELDS)
                if r + 4 < k:
                    _prefetch_job(self.slots[slots[r + 4]], m)
                s = self.slots[slots[r]]
                oki |= s.fmt == FMT_OKI
                ev[r] = self._feed_one(s, &block[r, 0] if m else NULL, m, silence[r], seen[r],
                                       digit_start[r], digit[r], audio_start[r])
            self.rs_defer = False
            self._rs_run_all()
            if oki:     # (another pass over every slot otherwise)
                self._oki_rows(&slots[0], k)
            timed = False
            for r in range(k):
                s = self.slots[slots[r]]
                if s.file == NULL:
                    if s.out_len >= s.flush_at:
                        ev[r] |= EV_FLUSH
                    continue
                # the core writes this file itself: at the flush threshold, the header
                # with the data once a second of media, everything at the end
                if s.out_len >= s.flush_at or ev[r] & (EV_SYNC | EV_DONE):
                    if not timed:
                        timed = True
                        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0)
                    if _write_output(s, ev[r] & EV_SYNC):
                        ev[r] |= EV_DONE
                ev[r] &= ~(EV_FLUSH | EV_SYNC)
            if timed:
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1)
                self.write_ns += ((<int64_t>t1.tv_sec - t0.tv_sec) * 1000000000
                                  + (t1.tv_nsec - t0.tv_nsec))
        return events

    def end_job(self, slot, cause, bint commit_held):
        """End the job now with ``cause`` (stop, hangup, I/O error), committing the
        held-back samples first if asked."""
        cdef slot_t* s = self._slot(slot)
        cdef int64_t c = _i64(cause, "cause")
        if not CAUSE_NONE <= c <= CAUSE_ERROR:
            raise ValueError(f"cause must be in {CAUSE_NONE}..{CAUSE_ERROR}, got {cause}")
        if not s.active:
            return
        if commit_held and s.held_n:
            self._commit_held(s, s.held_n)
        s.held_n = 0
        s.cause = <int>c
        s.active = 0
        self._end_coding(s)

    def barge(self, slot, digit, start):
        """An out-of-band digit that started at job sample ``start``: cut there."""
        cdef slot_t* s = self._slot(slot)
        cdef int64_t d = _i64(digit, "digit"), st = _i64(start, "start")
        if not 0 <= d < 0x110000:
            raise ValueError(f"digit must be a character code, got {digit}")
        if not s.active or not s.barge:
            return False
        cdef int64_t true_start = _max64(_min64(st, s.n), 0)
        # the cut: no further back than held media
        cdef int64_t at = _max64(true_start, s.committed)
        cdef int64_t base = s.n - s.held_n
        if at - base > 0:
            self._commit_held(s, _min64(at - base, s.held_n))
        s.held_n = 0
        s.digit_start = true_start
        s.digit = <int>d
        s.cause = CAUSE_BARGEIN
        s.active = 0
        self._end_coding(s)
        return True

    # -- output ---------------------------------------------------------------------------

    def take_out(self, slot):
        """The coded bytes waiting in ``slot``'s output buffer (and empties it)."""
        cdef slot_t* s = self._slot(slot)
        if s.file != NULL:
            raise ValueError(f"slot {slot} writes its file itself (see end_output)")
        data = (<char*>s.out)[:s.out_len] if s.out_len else b""
        s.out_len = 0
        return data

    def write_to(self, slot, fd, const uint8_t[::1] header, header_at, data_at, fields,
                 block_align, per_block):
        """From now on the core writes the coded bytes of ``slot``'s job to the open file
        ``fd`` itself (pwrite, from ``feed``, the GIL released), from file offset
        ``data_at`` on, and refreshes the file's header about once a second of media
        (every ``sync_every`` samples committed): ``header`` (its bytes as on disk now, at
        offset ``header_at``) with ``fields`` patched in, each ``(at, width, kind, plus)``:
        at byte ``at`` of the header, ``width`` bytes little-endian (saturated), the count
        ``kind`` says (FIELD_BYTES: coded bytes written; FIELD_FRAMES: frames in them,
        min(frames coded, whole blocks of ``block_align`` bytes * ``per_block``), or the
        whole blocks' frames when ``per_block`` is 1) plus ``plus``.

        Python then hears of the job only at its end (EV_DONE; a failed write ends it
        with CAUSE_ERROR), and :meth:`end_output` hands the file back.  The caller keeps
        ``fd`` open until then."""
        cdef slot_t* s = self._slot(slot)
        cdef int64_t d = _i64(fd, "fd"), h_at = _i64(header_at, "header_at")
        cdef int64_t d_at = _i64(data_at, "data_at"), ba = _i64(block_align, "block_align")
        cdef int64_t pb = _i64(per_block, "per_block")
        cdef Py_ssize_t hl = header.shape[0]
        cdef int64_t at, width, kind, plus
        cdef field_t parsed[MAX_FIELDS]
        cdef int nf = 0
        if not s.active:
            raise ValueError(f"slot {slot} has no record job")
        if s.file != NULL:
            raise ValueError(f"slot {slot} already writes a file")
        if not 0 <= d <= 0x7FFFFFFF:
            raise ValueError(f"fd must be an open file descriptor (0..2**31-1), got {fd}")
        if not 1 <= hl <= MAX_HEADER:
            raise ValueError(f"header must be 1..{MAX_HEADER} bytes, got {hl}")
        if not 0 <= h_at <= MAX_FILE:
            raise ValueError(f"header_at must be in 0..{MAX_FILE}, got {header_at}")
        if not h_at + hl <= d_at <= MAX_FILE:
            raise ValueError(f"data_at must be past the header and at most {MAX_FILE}, "
                             f"got {data_at}")
        if not 1 <= ba <= MAX_BUFFER or not 1 <= pb <= MAX_BUFFER:
            raise ValueError(f"block_align and per_block must be in 1..{MAX_BUFFER}, got "
                             f"{block_align} and {per_block}")
        for item in fields:
            if nf == MAX_FIELDS:
                raise ValueError(f"at most {MAX_FIELDS} header fields")
            a, w, k, p = item
            at, width = _i64(a, "at"), _i64(w, "width")
            kind, plus = _i64(k, "kind"), _i64(p, "plus")
            if not 1 <= width <= 8 or not 0 <= at <= hl - width:
                raise ValueError(f"field {nf}: {width} bytes at {at} is not inside the "
                                 f"{hl}-byte header (width 1..8)")
            if kind != FIELD_BYTES and kind != FIELD_FRAMES:
                raise ValueError(f"field {nf}: kind must be {FIELD_BYTES} (bytes) or "
                                 f"{FIELD_FRAMES} (frames), got {k}")
            if not 0 <= plus <= MAX_FILE:
                raise ValueError(f"field {nf}: plus must be in 0..{MAX_FILE}, got {p}")
            parsed[nf].at, parsed[nf].width = <int>at, <int>width
            parsed[nf].kind, parsed[nf].plus = <int>kind, plus
            nf += 1
        cdef output_t* o = <output_t*>calloc(1, sizeof(output_t))
        if o == NULL:
            raise MemoryError()
        o.header = <uint8_t*>malloc(hl)
        if o.header == NULL:
            free(o)
            raise MemoryError()
        memcpy(o.header, &header[0], hl)
        memcpy(o.fields, parsed, nf * sizeof(field_t))
        o.nfields = nf
        o.header_len = <int>hl
        o.header_at = h_at
        o.fd = <int>d
        o.pos = d_at
        o.block_align = ba
        o.per_block = pb
        s.file = o

    def end_output(self, slot, bint write_rest):
        """Stop writing ``slot``'s file (see :meth:`write_to`); with ``write_rest`` the
        coded bytes still waiting are written first (a job ended from Python: stop,
        hangup).  Returns ``(written, frames, errno)``: the coded bytes written since
        ``write_to``, the job's frames when the last of them were written, and the errno
        of the write that failed (0: none).  The descriptor is not used after this."""
        cdef slot_t* s = self._slot(slot)
        if s.file == NULL:
            raise ValueError(f"slot {slot} does not write a file")
        if write_rest:
            with nogil:
                _write_output(s, False)
        s.out_len = 0
        result = (s.file.written, s.file.frames, s.file.err)
        _drop_output(s)
        return result

    def job(self, slot):
        """A :class:`JobState` snapshot of ``slot``'s current or last record job."""
        cdef slot_t* s = self._slot(slot)
        cdef JobState st = JobState.__new__(JobState)
        st.active = s.active
        st.n = s.n
        st.committed = s.committed
        st.audio_seen = s.audio_seen
        st.cause = s.cause
        st.digit_start = s.digit_start
        st.digit = chr(s.digit) if s.digit else None
        st.first_audio = s.first_audio
        st.frames = s.frames
        return st

    def active(self, slot):
        cdef int64_t i = _i64(slot, "slot")
        return 0 <= i < self.capacity and self.slots[i] != NULL and bool(self.slots[i].active)
