# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled RTP receive path (internal; use recorder.rtp).

One :class:`RtpCore` owns ``max_calls`` slots.  Each slot has one UDP socket (created and
bound by recorder.rtp, registered here by file descriptor), a jitter ring of int16 samples
indexed by media position, a sequence-number window for duplicates and per-slot counters.
``poll`` waits on the sockets with epoll and drains each ready one with ``recvmmsg`` in
batches, with the GIL released: parse, filter by source, place by RTP timestamp (G.711
decoded with the project's kernels), RFC 4733 events.  ``take`` releases fixed frames of
many slots at once as one (k, n) block.  The placement and release rules are documented in
recorder.rtp.
"""
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memset, memcpy
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock,
                               PyThread_free_lock, PyThread_acquire_lock,
                               PyThread_release_lock, WAIT_LOCK, NOWAIT_LOCK)

import operator

import numpy as np

from g711_k cimport init_g711_tables, cr_alaw_dec, cr_ulaw_dec

cdef extern from "rtp_sys.h" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int CLOCK_MONOTONIC
    int clock_gettime(int clk, timespec *ts)

cdef extern from "rtp_sys.h" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "rtp_sys.h" nogil:
    ctypedef uint32_t in_addr_t
    struct in_addr:
        in_addr_t s_addr
    struct sockaddr_in:
        unsigned short sin_family
        uint16_t sin_port
        in_addr sin_addr
    int AF_INET

cdef extern from "rtp_sys.h" nogil:
    ctypedef unsigned int socklen_t
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int recvmmsg(int fd, mmsghdr *vec, unsigned int vlen, int flags, void *timeout)
    int MSG_DONTWAIT
    int MSG_TRUNC

cdef extern from "rtp_sys.h" nogil:
    union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *ev)
    int epoll_wait(int epfd, epoll_event *evs, int maxevents, int timeout)
    int EPOLL_CTL_ADD
    int EPOLL_CTL_DEL
    int EPOLLIN
    int EPOLL_CLOEXEC

cdef extern from "rtp_sys.h" nogil:
    int close(int fd)

cdef extern from "rtp_sys.h" nogil:
    int errno
    int CR_RTP_SUPPORTED

#: whether this platform has the receiver (epoll + recvmmsg: Linux)
SUPPORTED = bool(CR_RTP_SUPPORTED)

# One packet's buffer: an RTP datagram bigger than this is garbage (MSG_TRUNC).
cdef enum:
    PKT = 1536
# Datagrams per recvmmsg call.
cdef enum:
    BATCH = 64
# Ready sockets per epoll_wait.
cdef enum:
    MAXEV = 256
# Batches drained from one socket per poll (fairness; level-triggered epoll comes back).
cdef enum:
    MAX_BATCHES = 16
# Sequence numbers remembered for duplicate detection.
cdef enum:
    SEQWIN = 1024

cdef enum:
    C_PACKETS, C_LOST, C_LATE, C_DUPLICATE, C_WRONG_SOURCE, C_GARBAGE, C_OTHER_PT,
    C_OVERRUN, C_EVENTS, C_SSRC_CHANGES, C_REANCHORS, C_NCOUNT

COUNTER_NAMES = ("packets", "lost", "late", "duplicates", "wrong_source", "garbage",
                 "other_pt", "overrun", "events", "ssrc_changes", "reanchors")

ctypedef struct rtp_event:        # same layout as detect's cr_event (EVENT_DTYPE)
    int32_t kind
    int32_t row
    int64_t start
    int64_t end
    float level
    int32_t digit

cdef const char *KEYS = b"0123456789*#ABCD"

ctypedef struct slot_t:
    int active
    int fd
    uint32_t gen
    int codec                     # 0 A-law, 1 mu-law
    int pt                        # audio payload type
    int ev_pt                     # telephone-event payload type or -1
    int old_pt                    # audio payload type before a codec change, or -1
    int old_codec                 # its codec
    uint32_t src_ip               # network order; 0 = latch at the first packet (any address)
    uint16_t src_port             # network order; 0 = latch (from src_ip if it is set)
    int latch
    int started                   # a packet has anchored the stream
    uint32_t ssrc
    uint32_t prev_ssrc            # the source before the last change
    int64_t switched              # ns of the last change
    int64_t ext_ts                # highest extended timestamp seen
    int64_t ts_off                # media position = extended timestamp + ts_off
    int64_t max_seq               # highest extended sequence number
    int64_t seq_base              # first extended sequence number of this source
    int64_t expected_prev         # packets expected from earlier sources
    int64_t unique                # distinct packets received
    uint64_t seqbits[16]             # SEQWIN bits
    int64_t out_pos               # media samples released
    int64_t anchor                # media position of this source's first packet
    int64_t hi                    # end of the furthest media placed
    int64_t last_arrival          # ns, CLOCK_MONOTONIC
    int64_t added                 # ns
    int64_t ev_ts                 # extended timestamp of the current event, or -1
    int64_t ev_start              # its media position
    int ev_digit
    int64_t ev_dur
    int ev_ended
    int64_t counters[C_NCOUNT]
    int16_t *ring


cdef inline int64_t mono_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


def monotonic_ns():
    """The clock the receiver stamps arrivals with (CLOCK_MONOTONIC, ns)."""
    return mono_ns()


def _int(value, str name, lo, hi):
    """``value`` as an int in lo..hi: TypeError for a non-integer, ValueError out of range
    (checked on the Python int: never OverflowError)."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    v = operator.index(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {v}")
    return v


cdef inline int _check_slot(slot, int n) except -1:
    _int(slot, "slot", 0, n - 1)
    return 0


cdef const uint8_t[::1] _bytes_of(item):
    """A datagram's bytes (any contiguous bytes-like object)."""
    if item is None:  # a typed memoryview would take None as empty
        raise TypeError("datagrams must be a sequence of bytes-like packets")
    try:
        return item
    except (TypeError, ValueError):
        pass
    try:
        return memoryview(item).cast("B")
    except TypeError:
        raise TypeError("datagrams must be a sequence of bytes-like packets") from None


cdef class RtpCore:
    cdef slot_t *slots
    cdef int nslots
    cdef int64_t ring_n           # ring samples per slot (power of two)
    cdef int64_t window           # jitter window in samples
    cdef int64_t window_ns
    cdef int64_t hold_ns          # no packets for this long: the clock runs as silence
    cdef int epfd
    cdef PyThread_type_lock lock
    cdef rtp_event *evq
    cdef int64_t nevents, cap_events, evq_lost
    cdef mmsghdr msgs[BATCH]
    cdef iovec iovs[BATCH]
    cdef sockaddr_in addrs[BATCH]
    cdef uint8_t *bufs

    def __cinit__(self, max_calls, ring_samples, window_samples, hold_ns, max_events):
        init_g711_tables()
        self.epfd = -1
        max_calls = _int(max_calls, "max_calls", 1, 1_000_000)
        ring_samples = _int(ring_samples, "ring_samples", 2048, 1 << 24)
        if ring_samples & (ring_samples - 1):
            raise ValueError("ring_samples must be a power of two from 2048 to 2**24")
        window_samples = _int(window_samples, "window_samples", 1, ring_samples // 2)
        hold_ns = _int(hold_ns, "hold_ns", 1, 1 << 62)
        max_events = _int(max_events, "max_events", 1, 1 << 24)
        self.nslots = max_calls
        self.ring_n = ring_samples
        self.window = window_samples
        self.window_ns = <int64_t>window_samples * 125000
        self.hold_ns = hold_ns
        self.cap_events = max_events
        self.slots = <slot_t *>calloc(max_calls, sizeof(slot_t))
        self.evq = <rtp_event *>calloc(max_events, sizeof(rtp_event))
        self.bufs = <uint8_t *>calloc(BATCH, PKT)
        self.lock = PyThread_allocate_lock()
        if not self.slots or not self.evq or not self.bufs or not self.lock:
            raise MemoryError("RTP receiver: out of memory")
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            raise OSError(errno, "epoll_create1 failed")
        cdef int i
        for i in range(BATCH):
            self.iovs[i].iov_base = self.bufs + i * PKT
            self.iovs[i].iov_len = PKT
            memset(&self.msgs[i], 0, sizeof(mmsghdr))
            self.msgs[i].msg_hdr.msg_iov = &self.iovs[i]
            self.msgs[i].msg_hdr.msg_iovlen = 1
            self.msgs[i].msg_hdr.msg_name = &self.addrs[i]
            self.msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in)

    cdef inline void _lock(self):
        """Take ``self.lock`` with the GIL held, never waiting for it with the GIL: the
        thread that holds the lock may need the GIL before it lets go (numpy arrays
        made under the lock), so waiting with the GIL could deadlock."""
        if not PyThread_acquire_lock(self.lock, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)

    def __dealloc__(self):
        cdef int i
        if self.slots:
            for i in range(self.nslots):
                free(self.slots[i].ring)
            free(self.slots)
        free(self.evq)
        free(self.bufs)
        if self.epfd >= 0:
            close(self.epfd)
        if self.lock:
            PyThread_free_lock(self.lock)

    # ------------------------------------------------------------ slots

    def add(self, slot_, fd_, codec_, pt_, ev_pt_, src_ip_, src_port_):
        """Register socket ``fd`` (non-blocking UDP, bound) as slot ``slot``.  ``src_ip``
        and ``src_port`` in network byte order, 0 = latch.  Checked by recorder.rtp."""
        cdef int slot = _int(slot_, "slot", 0, self.nslots - 1)
        cdef int fd = _int(fd_, "fd", 0, 2**31 - 1)
        cdef int codec = _int(codec_, "codec", 0, 1)
        cdef int pt = _int(pt_, "pt", 0, 127)
        cdef int ev_pt = _int(ev_pt_, "ev_pt", -1, 127)
        cdef uint32_t src_ip = _int(src_ip_, "src_ip", 0, 2**32 - 1)
        cdef uint16_t src_port = _int(src_port_, "src_port", 0, 65535)
        cdef slot_t *s = &self.slots[slot]
        cdef epoll_event ev
        cdef int16_t *ring
        cdef uint32_t gen
        if s.active:
            raise ValueError(f"slot {slot} is in use")
        ring = s.ring
        if ring == NULL:
            ring = <int16_t *>calloc(self.ring_n, sizeof(int16_t))
            if ring == NULL:
                raise MemoryError("RTP receiver: out of memory")
        else:
            memset(ring, 0, self.ring_n * sizeof(int16_t))
        self._lock()
        gen = s.gen + 1
        memset(s, 0, sizeof(slot_t))
        s.ring = ring
        s.gen = gen
        s.fd = fd
        s.codec = codec
        s.pt = pt
        s.ev_pt = ev_pt
        s.old_pt = -1
        s.src_ip = src_ip
        s.src_port = src_port
        s.latch = src_ip == 0 or src_port == 0
        s.ev_ts = -1
        s.added = mono_ns()
        s.last_arrival = s.added
        ev.events = EPOLLIN
        ev.data.u64 = (<uint64_t>s.gen << 32) | <uint32_t>slot
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev) < 0:
            err = errno
            s.fd = -1
            PyThread_release_lock(self.lock)
            raise OSError(err, "epoll_ctl(ADD) failed")
        s.active = 1
        PyThread_release_lock(self.lock)

    def set_codec(self, slot_, codec_, pt_, ev_pt_):
        """Change what ``slot`` decodes (a re-INVITE changed the codec): packets of the new
        payload types are placed from now on, by their timestamps as before; packets of
        the previous audio type still on their way are decoded with the previous codec.
        Checked by recorder.rtp."""
        cdef int slot = _int(slot_, "slot", 0, self.nslots - 1)
        cdef int codec = _int(codec_, "codec", 0, 1)
        cdef int pt = _int(pt_, "pt", 0, 127)
        cdef int ev_pt = _int(ev_pt_, "ev_pt", -1, 127)
        cdef slot_t *s = &self.slots[slot]
        if not s.active:
            raise ValueError(f"slot {slot} is not in use")
        self._lock()
        if pt != s.pt:
            s.old_pt = s.pt
            s.old_codec = s.codec
        if s.old_pt == pt or s.old_pt == ev_pt:
            s.old_pt = -1
        s.codec = codec
        s.pt = pt
        s.ev_pt = ev_pt
        PyThread_release_lock(self.lock)

    def remove(self, slot_):
        """Stop receiving on ``slot``: what is still queued on its socket is read first;
        returns what was still buffered (int16, holes as silence) so the recording keeps
        every sample that arrived."""
        cdef int slot = _int(slot_, "slot", 0, self.nslots - 1)
        cdef slot_t *s = &self.slots[slot]
        if not s.active:
            raise ValueError(f"slot {slot} is not in use")
        self._lock()
        with nogil:
            self._drain(s, slot)  # what the caller sent before hanging up still counts
        epoll_ctl(self.epfd, EPOLL_CTL_DEL, s.fd, NULL)
        s.active = 0
        cdef int64_t n = s.hi - s.out_pos if s.hi > s.out_pos else 0
        out = np.zeros(n, dtype=np.int16)
        cdef int16_t[::1] o = out
        if n:
            self._release(s, &o[0], n)
        PyThread_release_lock(self.lock)
        return out

    def feed(self, slot_, const uint8_t[::1] data, const int64_t[::1] lengths, now_):
        """Parse and place datagrams given in memory (concatenated in ``data``, sizes in
        ``lengths``) as if they came from the slot's source: replay and benchmarks.
        """
        cdef int slot = _int(slot_, "slot", 0, self.nslots - 1)
        cdef int64_t now = _int(now_, "now", 0, 1 << 62)
        cdef slot_t *s = &self.slots[slot]
        cdef Py_ssize_t i, off = 0
        cdef Py_ssize_t k = lengths.shape[0]
        if not s.active:
            raise ValueError(f"slot {slot} is not in use")
        for i in range(k):
            if lengths[i] < 0 or lengths[i] > data.shape[0] - off:
                raise ValueError(f"lengths must be >= 0 and add up to len(data) = {data.shape[0]}")
            off += lengths[i]
        if off != data.shape[0]:
            raise ValueError(f"lengths must be >= 0 and add up to len(data) = {data.shape[0]}")
        off = 0
        cdef const uint8_t *base = &data[0] if data.shape[0] else NULL
        cdef uint32_t gen = s.gen
        cdef bint gone = False
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
            if not s.active or s.gen != gen:
                gone = True
            else:
                for i in range(k):
                    self._packet(s, slot, base + off, lengths[i],
                                 MSG_TRUNC if lengths[i] > PKT else 0, now)
                    off += lengths[i]
            PyThread_release_lock(self.lock)
        if gone:
            raise ValueError(f"slot {slot} is not in use")

    def feed_packets(self, slot_, packets, now_):
        """Parse and place ``packets`` (an iterable of bytes-like datagrams) as if they
        came from the slot's source, one after the other: the per-packet form of
        :meth:`feed`.  Every packet is checked before any is placed."""
        cdef int slot = _int(slot_, "slot", 0, self.nslots - 1)
        cdef int64_t now = _int(now_, "now", 0, 1 << 62)
        cdef slot_t *s = &self.slots[slot]
        cdef const uint8_t[::1] one
        cdef Py_ssize_t i, k
        cdef uint32_t gen = s.gen
        if not s.active:
            raise ValueError(f"slot {slot} is not in use")
        try:
            it = iter(packets)
        except TypeError:
            raise TypeError("datagrams must be a sequence of bytes-like packets") from None
        views = [_bytes_of(item) for item in it]  # stops at the first that is not one
        k = len(views)
        cdef const uint8_t **ptrs = <const uint8_t **>malloc(max(k, 1) * sizeof(uint8_t *))
        cdef int64_t *lens = <int64_t *>malloc(max(k, 1) * sizeof(int64_t))
        if ptrs == NULL or lens == NULL:
            free(ptrs)
            free(lens)
            raise MemoryError("RTP receiver: out of memory")
        for i in range(k):
            one = views[i]
            lens[i] = one.shape[0]
            # (an empty datagram is garbage before any byte is read: any pointer will do)
            ptrs[i] = &one[0] if lens[i] else <const uint8_t *>KEYS
        cdef bint gone = False
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)
            if not s.active or s.gen != gen:  # removed while the packets were read
                gone = True
            else:
                for i in range(k):
                    self._packet(s, slot, ptrs[i], lens[i],
                                 MSG_TRUNC if lens[i] > PKT else 0, now)
            PyThread_release_lock(self.lock)
        free(ptrs)
        free(lens)
        if gone:
            raise ValueError(f"slot {slot} is not in use")

    def active(self, slot):
        _check_slot(slot, self.nslots)
        return bool(self.slots[slot].active)

    # ------------------------------------------------------------ receive

    def poll(self, timeout_ms_):
        """Wait up to ``timeout_ms`` (0: don't wait, -1: forever) for packets, then drain
        every ready socket (however many: epoll is asked again while it returns a full
        set).  Returns the number of datagrams read."""
        cdef int timeout_ms = _int(timeout_ms_, "timeout_ms", -1, 3_600_000)
        cdef epoll_event evs[MAXEV]
        cdef int n, i, slot
        cdef int64_t total = 0
        cdef uint32_t gen
        cdef slot_t *s
        with nogil:
            n = epoll_wait(self.epfd, evs, MAXEV, timeout_ms)
            while n > 0:
                PyThread_acquire_lock(self.lock, WAIT_LOCK)
                for i in range(n):
                    slot = <int><uint32_t>evs[i].data.u64
                    gen = <uint32_t>(evs[i].data.u64 >> 32)
                    if slot >= self.nslots:
                        continue
                    s = &self.slots[slot]
                    if not s.active or s.gen != gen:
                        continue
                    total += self._drain(s, slot)
                PyThread_release_lock(self.lock)
                # a full set of events: more sockets may be ready than one call returns
                n = epoll_wait(self.epfd, evs, MAXEV, 0) if n == MAXEV else 0
        return total

    cdef int64_t _drain(self, slot_t *s, int slot) noexcept nogil:
        """Read what is queued on the slot's socket (at most MAX_BATCHES batches; lock
        held).  Returns the number of datagrams read."""
        cdef int _batch_no, j, got
        cdef int64_t total = 0
        for _batch_no in range(MAX_BATCHES):
            for j in range(BATCH):
                self.msgs[j].msg_hdr.msg_namelen = sizeof(sockaddr_in)
            got = recvmmsg(s.fd, self.msgs, BATCH, MSG_DONTWAIT, NULL)
            if got <= 0:
                break
            total += got
            self._batch(s, slot, got, mono_ns())
            if got < BATCH:
                break
        return total

    cdef void _batch(self, slot_t *s, int slot, int got, int64_t now) noexcept nogil:
        cdef int j
        cdef sockaddr_in *a
        for j in range(got):
            a = &self.addrs[j]
            if self.msgs[j].msg_hdr.msg_namelen < sizeof(sockaddr_in) or a.sin_family != AF_INET:
                s.counters[C_WRONG_SOURCE] += 1
                continue
            if s.latch:
                if s.src_ip != 0 and a.sin_addr.s_addr != s.src_ip:  # only its port is learnt
                    s.counters[C_WRONG_SOURCE] += 1
                    continue
                if self._packet(s, slot, self.bufs + j * PKT, self.msgs[j].msg_len,
                                self.msgs[j].msg_hdr.msg_flags, now) == 0:
                    s.src_ip = a.sin_addr.s_addr
                    s.src_port = a.sin_port
                    s.latch = 0
            elif a.sin_addr.s_addr != s.src_ip or a.sin_port != s.src_port:
                s.counters[C_WRONG_SOURCE] += 1
            else:
                self._packet(s, slot, self.bufs + j * PKT, self.msgs[j].msg_len,
                             self.msgs[j].msg_hdr.msg_flags, now)

    cdef int _packet(self, slot_t *s, int slot, const uint8_t *p, int64_t length, int flags,
                     int64_t now) noexcept nogil:
        """Parse and place one datagram.  Returns 0 when it was a valid RTP packet of this
        call (audio or event, placed or counted late/duplicate), 1 when garbage/other PT."""
        cdef int64_t off, end, cc, pad, xlen, n, pos, ext_seq, ext_ts, d, i
        cdef int pt, codec
        cdef uint32_t ts, ssrc
        cdef uint16_t seq
        if (flags & MSG_TRUNC) or length < 12 or (p[0] >> 6) != 2:
            s.counters[C_GARBAGE] += 1
            return 1
        cc = p[0] & 15
        off = 12 + 4 * cc
        end = length
        if p[0] & 0x20:                                   # padding
            pad = p[length - 1]
            if pad == 0 or pad > length - off:
                s.counters[C_GARBAGE] += 1
                return 1
            end = length - pad
        if p[0] & 0x10:                                   # header extension
            if off + 4 > end:
                s.counters[C_GARBAGE] += 1
                return 1
            xlen = 4 + 4 * ((<int64_t>p[off + 2] << 8) | p[off + 3])
            off += xlen
        if off >= end:
            s.counters[C_GARBAGE] += 1
            return 1
        pt = p[1] & 0x7F
        codec = s.codec
        if pt == s.old_pt:                                # sent before a codec change
            pt = s.pt
            codec = s.old_codec
        if pt != s.pt and pt != s.ev_pt:
            s.counters[C_OTHER_PT] += 1
            return 1
        seq = (<uint16_t>p[2] << 8) | p[3]
        ts = (<uint32_t>p[4] << 24) | (<uint32_t>p[5] << 16) | (<uint32_t>p[6] << 8) | p[7]
        ssrc = (<uint32_t>p[8] << 24) | (<uint32_t>p[9] << 16) | (<uint32_t>p[10] << 8) | p[11]
        n = end - off
        if pt == s.pt and n > self.ring_n // 2:
            s.counters[C_GARBAGE] += 1
            return 1
        if pt == s.ev_pt and n < 4:
            s.counters[C_GARBAGE] += 1
            return 1
        s.counters[C_PACKETS] += 1

        cdef int64_t elapsed = now - s.last_arrival
        if s.counters[C_SSRC_CHANGES] and ssrc == s.prev_ssrc and ssrc != s.ssrc \
                and now - s.switched < self.window_ns:
            # a straggler of the previous source, reordered behind the change: too late
            s.counters[C_LATE] += 1
            return 0
        if not s.started or ssrc != s.ssrc:
            # first packet, or a new source: its first sample goes to the current media
            # position (nothing already placed is overwritten, nothing is skipped)
            if s.started:
                s.counters[C_SSRC_CHANGES] += 1
                s.prev_ssrc = s.ssrc
                s.switched = now
                s.expected_prev += s.max_seq - s.seq_base + 1
            s.seq_base = seq
            s.started = 1
            s.ssrc = ssrc
            s.ext_ts = ts
            s.anchor = s.hi if s.hi > s.out_pos else s.out_pos
            s.ts_off = s.anchor - <int64_t>ts
            s.max_seq = seq - 1
            memset(s.seqbits, 0, sizeof(s.seqbits))
            s.ev_ts = -1
        # extend sequence number and timestamp to 64 bits around the highest seen
        ext_seq = s.max_seq + <int16_t>(<uint16_t>(seq - <uint16_t>s.max_seq))
        ext_ts = s.ext_ts + <int32_t>(ts - <uint32_t>s.ext_ts)
        # duplicates: a sequence number seen in the last SEQWIN
        if ext_seq <= s.max_seq - SEQWIN:
            s.unique += 1
            s.counters[C_LATE] += 1
            s.last_arrival = now
            return 0
        if ext_seq <= s.max_seq:
            if s.seqbits[(ext_seq % SEQWIN) >> 6] & (<uint64_t>1 << (ext_seq & 63)):
                s.counters[C_DUPLICATE] += 1
                return 0
        s.unique += 1
        if ext_seq < s.seq_base:
            s.seq_base = ext_seq
        if ext_seq > s.max_seq:
            d = ext_seq - s.max_seq
            if d >= SEQWIN:
                memset(s.seqbits, 0, sizeof(s.seqbits))
            else:
                i = s.max_seq + 1
                while i < ext_seq:
                    s.seqbits[(i % SEQWIN) >> 6] &= ~(<uint64_t>1 << (i & 63))
                    i += 1
            s.max_seq = ext_seq
        s.seqbits[(ext_seq % SEQWIN) >> 6] |= (<uint64_t>1 << (ext_seq & 63))
        pos = ext_ts + s.ts_off
        cdef int64_t cur = s.hi if s.hi > s.out_pos else s.out_pos
        if ext_seq == s.max_seq and pt == s.pt:
            # the newest packet: a timestamp that went backwards past what was released,
            # or jumped further ahead than the time since the last packet explains (plus
            # a second), is a discontinuity: continue at the current media position.
            if pos < s.out_pos or pos > cur + elapsed // 125000 + 8000:
                s.ts_off += cur - pos
                pos = cur
                s.counters[C_REANCHORS] += 1
            if ext_ts > s.ext_ts:
                s.ext_ts = ext_ts
        s.last_arrival = now
        if pt == s.ev_pt:
            self._event(s, slot, p + off, ext_ts, pos)
            # the event occupies media time (silence unless audio comes for it too)
            d = (<int64_t>p[off + 2] << 8) | p[off + 3]
            if pos + d > s.hi and pos >= s.out_pos and pos + d <= cur + elapsed // 125000 + 8000:
                s.hi = pos + d
            return 0
        if pos < s.anchor and s.out_pos <= s.anchor:
            # a packet from before the first one of this source (the first packets came
            # reordered): while nothing of this source was released, move what was
            # placed later so the stream starts with it
            d = s.anchor - pos
            if d <= self.window and s.hi + d - s.out_pos <= self.ring_n:
                self._shift(s, d)
                pos = s.anchor
        if pos < s.out_pos or pos < s.anchor:
            s.counters[C_LATE] += 1
            return 0
        if pos + n > s.out_pos + self.ring_n:
            s.counters[C_OVERRUN] += 1
            return 0
        self._place(s, p + off, pos, n, codec)
        if pos + n > s.hi:
            s.hi = pos + n
        return 0

    cdef void _shift(self, slot_t *s, int64_t d) noexcept nogil:
        cdef int64_t mask = self.ring_n - 1
        cdef int64_t p = s.hi - 1
        while p >= s.anchor:
            s.ring[(p + d) & mask] = s.ring[p & mask]
            p -= 1
        p = s.anchor
        while p < s.anchor + d:
            s.ring[p & mask] = 0
            p += 1
        if s.hi > s.anchor:
            s.hi += d
        s.ts_off += d

    cdef void _place(self, slot_t *s, const uint8_t *src, int64_t pos, int64_t n,
                     int codec) noexcept nogil:
        cdef int64_t mask = self.ring_n - 1
        cdef int64_t i
        cdef int16_t *ring = s.ring
        cdef const int16_t *table = &cr_alaw_dec[0]
        if codec:
            table = &cr_ulaw_dec[0]
        for i in range(n):
            ring[(pos + i) & mask] = table[src[i]]

    cdef void _event(self, slot_t *s, int slot, const uint8_t *q, int64_t ext_ts,
                     int64_t pos) noexcept nogil:
        """RFC 4733: one digit per event timestamp; start at its first packet, end at the
        first packet with the E bit (redundant end packets ignored)."""
        cdef int code = q[0]
        cdef int e_bit = q[1] >> 7
        cdef int volume = q[1] & 0x3F
        cdef int64_t duration = (<int64_t>q[2] << 8) | q[3]
        if code > 15:
            return
        if ext_ts == s.ev_ts and duration > s.ev_dur:
            s.ev_dur = duration
        if ext_ts != s.ev_ts:
            if ext_ts < s.ev_ts:
                return                                    # a late packet of an old event
            if s.ev_ts >= 0 and not s.ev_ended:           # previous end packets all lost
                self._emit(slot, 2, s.ev_start, s.ev_start + s.ev_dur, s.ev_digit, 0.0)
            s.ev_ts = ext_ts
            s.ev_start = pos
            s.ev_digit = KEYS[code]
            s.ev_ended = 0
            s.ev_dur = duration
            s.counters[C_EVENTS] += 1
            self._emit(slot, 1, pos, -1, s.ev_digit, -volume)
        if e_bit and not s.ev_ended:
            s.ev_ended = 1
            self._emit(slot, 2, s.ev_start, s.ev_start + duration, s.ev_digit, -volume)

    cdef void _emit(self, int slot, int kind, int64_t start, int64_t end, int digit,
                    float level) noexcept nogil:
        cdef rtp_event *e
        if self.nevents >= self.cap_events:
            self.evq_lost += 1
            return
        e = &self.evq[self.nevents]
        self.nevents += 1
        e.kind = kind
        e.row = slot
        e.start = start
        e.end = end
        e.level = level
        e.digit = digit

    # ------------------------------------------------------------ release

    cdef inline int64_t _target(self, slot_t *s, int64_t now) noexcept nogil:
        """Media position up to which ``s`` may be released at ``now``."""
        cdef int64_t t, since
        if not s.started:
            since = now - s.added
            if since >= self.hold_ns:
                return since // 125000
            return 0
        t = s.hi - self.window
        since = now - s.last_arrival
        if since >= self.window_ns and s.hi > t:
            t = s.hi
        if since >= self.hold_ns:
            t = s.hi + since // 125000
        return t

    cdef void _release(self, slot_t *s, int16_t *dst, int64_t n) noexcept nogil:
        """Copy media [out_pos, out_pos + n) to dst (silence past what was placed) and
        clear it from the ring."""
        cdef int64_t mask = self.ring_n - 1
        cdef int64_t done = 0, p, run
        cdef int64_t have = s.hi - s.out_pos
        if have > n:
            have = n
        while done < have:                            # at most two runs (ring wrap)
            p = (s.out_pos + done) & mask
            run = self.ring_n - p
            if run > have - done:
                run = have - done
            memcpy(dst + done, s.ring + p, run * sizeof(int16_t))
            memset(s.ring + p, 0, run * sizeof(int16_t))
            done += run
        if n > done:
            memset(dst + done, 0, (n - done) * sizeof(int16_t))
        s.out_pos += n

    def take(self, n_, now_, max_rows_):
        """The next ``n`` samples of every slot that has them released at ``now``:
        (block int16 (k, n), slots int64 (k,))."""
        cdef int n = _int(n_, "n", 1, self.ring_n // 2)
        cdef int64_t now = _int(now_, "now", 0, 1 << 62)
        cdef int max_rows = _int(max_rows_, "max_rows", 1, self.nslots)
        cdef int i, k = 0
        cdef slot_t *s
        slots = np.empty(max_rows, dtype=np.int64)
        cdef int64_t[::1] sl = slots
        self._lock()
        with nogil:
            for i in range(self.nslots):
                s = &self.slots[i]
                if s.active and self._target(s, now) - s.out_pos >= n:
                    sl[k] = i
                    k += 1
                    if k == max_rows:
                        break
        block = np.empty((k, n), dtype=np.int16)
        cdef int16_t[:, ::1] b = block
        with nogil:
            for i in range(k):
                self._release(&self.slots[sl[i]], &b[i, 0], n)
        PyThread_release_lock(self.lock)
        return block, slots[:k].copy()

    def events(self):
        """Drain the event queue: a structured array (EVENT_DTYPE layout)."""
        self._lock()
        out = np.empty(self.nevents * sizeof(rtp_event), dtype=np.uint8)
        cdef uint8_t[::1] o = out
        if self.nevents:
            memcpy(&o[0], self.evq, self.nevents * sizeof(rtp_event))
        self.nevents = 0
        PyThread_release_lock(self.lock)
        return out

    @property
    def lost_events(self):
        return self.evq_lost

    def counters(self):
        """int64 (max_calls, NCOUNT); ``lost`` is computed here: sequence numbers never
        received up to the highest one, i.e. expected - received (RFC 3550 A.3)."""
        out = np.zeros((self.nslots, C_NCOUNT), dtype=np.int64)
        cdef int64_t[:, ::1] o = out
        cdef int i, j
        cdef slot_t *s
        self._lock()
        for i in range(self.nslots):
            s = &self.slots[i]
            for j in range(C_NCOUNT):
                o[i, j] = s.counters[j]
            if s.started:
                o[i, C_LOST] = s.expected_prev + s.max_seq - s.seq_base + 1 - s.unique
        PyThread_release_lock(self.lock)
        return out

    def state(self, slot_):
        """(released media position, end of placed media, last arrival ns, started)."""
        cdef int slot = _int(slot_, "slot", 0, self.nslots - 1)
        cdef slot_t *s = &self.slots[slot]
        return s.out_pos, s.hi, s.last_arrival, bool(s.started)

    def idle(self, now_, timeout_ns_):
        """Active slots with no packet for ``timeout_ns`` (int64 array)."""
        cdef int64_t now = _int(now_, "now", 0, 1 << 62)
        cdef int64_t timeout_ns = _int(timeout_ns_, "timeout_ns", 1, 1 << 62)
        out = []
        cdef int i
        for i in range(self.nslots):
            if self.slots[i].active and now - self.slots[i].last_arrival >= timeout_ns:
                out.append(i)
        return np.array(out, dtype=np.int64)
