"""The media engine: one per process (or per ``Engine()`` you create), serving every call
channel attached to it.

Each channel owns a slot; :meth:`Engine.push` (and ``push_g711``, ``fill_gap``) hands
it 8000 Hz int16 media, and a worker thread processes the media of all slots together
every ``tick`` (20 ms): silence and DTMF detection, then the record jobs' decisions and
coding.  A gap in a live channel's media is filled with silence so timers and files stay
true to real time; a fast replay channel is processed by the thread waiting on it, as
fast as the CPU allows.  How the worker, the slot rings and the compiled core fit
together is in the design notes of the documentation.

The protocol with the compiled core is typed here, once: :class:`CoreFormat`,
:class:`EndCause` and :class:`Event` are the core's integer codes, :class:`JobParams` is
what starts a record job and :class:`JobState` what a job reports.  Every count crossing
the boundary is in media samples at :data:`MEDIA_RATE`.

All channel and job state of an engine is guarded by ``engine.lock``.
"""

from __future__ import annotations

import atexit
import enum
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from ._codecs import engine as _core
from ._codecs.engine import JobState
from .dsp import MultiDetector, onsets_across
from .publish import DEFAULT_WORKERS, Publisher

if TYPE_CHECKING:
    from .wav import AppendTarget

__all__ = [
    "FRAME",
    "MEDIA_RATE",
    "PIECE",
    "CoreFormat",
    "Detections",
    "DetectorBank",
    "EndCause",
    "Engine",
    "Event",
    "FileWrites",
    "JobParams",
    "JobState",
    "RecordJob",
    "Source",
]

log = logging.getLogger("recorder.engine")

#: Samples per second of all call media inside the engine (the core's own constant).
MEDIA_RATE: int = _core.CONSTANTS["MEDIA_RATE"]
FRAME = MEDIA_RATE // 50  # 20 ms: the engine's processing unit
BANK = 256  # detector slots allocated at a time
_YIELD = 0.0  # seconds let_others_in() gives up the CPU for
PIECE: int = _core.CONSTANTS["RING_SIZE"]  # samples a large push takes per hold of the lock
#: coded bytes a recording's output buffer collects before they are written (by the core
#: itself, or by Python for an enciphered file), for a format of 8000 bytes per second or
#: less (proportionally more above): about a second of audio, so a recording is written
#: with its once-a-second header refresh
FLUSH_BYTES = 8192
_FIELD_KINDS = {
    "bytes": _core.CONSTANTS["FIELD_BYTES"],
    "frames": _core.CONSTANTS["FIELD_FRAMES"],
}
QUIET_TICKS = 3  # ticks without media before the gap watchdog looks at a channel
GAP_SAMPLES = MEDIA_RATE * 60 // 1000  # 60 ms without media counts as a gap
REPORT_EVERY = 60.0  # seconds between two "engine behind" log lines at most
BEHIND_TICKS = 3  # ticks in a row the worker ran out of time before the engine is "behind"
#: ... with some slot's media waiting at least this long (samples): a tick that only lost
#: its time (the thread descheduled, another thread holding the GIL) is not a backlog
BEHIND_BACKLOG = 10 * FRAME
_PUSH_CODES = {"s16": 0, "alaw": 1, "ulaw": 2}  # codec names -> Bank.push_rows codes


class CoreFormat(enum.IntEnum):
    """Output coding of a record job in the compiled core (``FMT_*`` there): every
    recording format, at any rate (the core resamples)."""

    ALAW = 0
    ULAW = 1
    S16 = 2
    U8 = 3
    IMA = 4  #: IMA ADPCM WAV blocks
    OKI = 5  #: OKI (Dialogic VOX) ADPCM


class EndCause(enum.IntEnum):
    """Why a record job ended, as the compiled core reports it (``CAUSE_*`` there);
    the names are those of :class:`recorder.filerecorder.Cause`."""

    NONE = 0
    TIMEOUT = 1
    SIZE = 2
    SILENCE = 3
    BARGEIN = 4
    ABORTED = 5
    HANGUP = 6
    ERROR = 7


class Event(enum.IntFlag):
    """Event bits ``Bank.feed`` reports for a job (``EV_*`` there)."""

    FLUSH = 1  #: the output buffer holds at least the flush threshold
    SYNC = 2  #: a second of media committed since the last header sync
    DONE = 4  #: the job ended (cause set, everything up to the cut coded)


class JobParams(NamedTuple):
    """What starts a record job in the core.  Every count is in media samples (at
    :data:`MEDIA_RATE`) from the start of the job; -1 or 0 means no limit."""

    fmt: CoreFormat
    timeout_at: int  #: end with TIMEOUT here (-1: never)
    size_at: int  #: end with SIZE here (-1: never)
    max_silence: int  #: this much silence ends the job (0: off)
    initial_silence: int  #: the limit before any audio (0: ``max_silence``)
    barge: bool  #: a DTMF digit ends the job, cut at its start
    hold: int  #: samples held back from the file while ``barge`` is on
    rate: int = MEDIA_RATE  #: the file's sample rate (the core resamples to it)
    max_frames: int = -1  #: most frames (at ``rate``) the file takes (-1: no limit)


class FileWrites(NamedTuple):
    """What the core wrote to a recording's file itself (:meth:`Engine.end_file`)."""

    nbytes: int  #: coded bytes appended to the file's data
    frames: int  #: the job's frames when the last of them were written
    error: OSError | None  #: the write that failed (the job then ended with ERROR)


class Source(Protocol):
    """What the engine needs from a channel attached to it (:meth:`Engine.attach`)."""

    def is_live(self) -> bool: ...
    def watchdog(self) -> int: ...
    def wake_waiters(self) -> None: ...


class RecordJob(Protocol):
    """What the engine needs from a record job registered with :meth:`Engine.start_job`."""

    def on_event(self, events: Event) -> None: ...
    def fail(self, exc: BaseException) -> None: ...
    def abort(self) -> None: ...


class Detections(NamedTuple):
    """The detectors' findings for the rows of one block, in the form ``Bank.feed``
    takes them (one entry per row; positions are media samples since the row's slot
    started its job, see :meth:`DetectorBank.reset`)."""

    silence: np.ndarray  #: int64: the current run of silence, in samples
    audio_seen: np.ndarray  #: uint8: audio heard since the job started
    digit_start: np.ndarray  #: int64: start of the earliest digit confirmed (-1: none)
    digit: np.ndarray  #: int32: its character code
    audio_start: np.ndarray  #: int64: the first audio onset in this block (-1: none)


class DetectorBank:
    """Silence + DTMF detector states for any number of slots, in banks that double in
    size (``BANK``, 2 ``BANK``, 4 ``BANK`` ... slots), so a small engine stays small; a
    round over any slots is one compiled call (:func:`recorder.dsp.onsets_across`)."""

    def __init__(self) -> None:
        self._banks: list[MultiDetector] = []
        self._starts = np.zeros(1, np.int64)  # first slot of each bank, then the end

    def ensure(self, slots: int) -> None:
        """Make room for slots ``0 .. slots - 1``."""
        while self._starts[-1] < slots:
            n = BANK << len(self._banks)
            self._banks.append(MultiDetector(n, rate=MEDIA_RATE))
            self._starts = np.append(self._starts, self._starts[-1] + n)

    def reset(self, slot: int) -> None:
        """Start ``slot``'s detectors afresh.  Detectors count positions from their last
        reset and the core counts job samples from ``start_job``: :meth:`Engine.start_job`
        does both together, so a detector position *is* a job sample."""
        bank = int(np.searchsorted(self._starts, slot, side="right")) - 1
        self._banks[bank].reset([slot - int(self._starts[bank])])

    def process(self, block: np.ndarray, slots: np.ndarray) -> Detections:
        """Run the detectors on ``block`` (k, n) for ``slots`` (k,): one compiled call
        whatever banks the slots are in."""
        return Detections(*onsets_across(self._banks, np.ascontiguousarray(block), slots))


class Engine:
    """Serves call channels: buffers their media and runs detection and recording.

    Parameters
    ----------
    tick : float
        Seconds between the worker's rounds (default 20 ms).
    publishers : int
        Threads that finish recordings' files at once (see :mod:`recorder.publish`).

    Notes
    -----
    A media source (a pushing call, a replay, an RTP stream) uses the slot it got from
    :meth:`attach` with :meth:`push`, :meth:`push_g711`, :meth:`push_rows` (many slots in
    one call, :class:`recorder.ChannelBatch`), :meth:`fill_gap`,
    :meth:`process`, :meth:`pending`, :meth:`media_samples` and :meth:`reset_media`; a
    record job uses :meth:`start_job`, :meth:`job_state`, :meth:`take_coded` (or
    :meth:`write_file` and :meth:`end_file`), :meth:`end_job`, :meth:`barge`, :meth:`job_ended` and
    :meth:`finish_later`.  All of them but :meth:`attach`, :meth:`detach`,
    :meth:`finish_later` and :meth:`drain` expect ``engine.lock`` held.

    Under overload the engine degrades and never spirals: each slot's backlog is bounded
    by its ring (a push that finds it full processes one round of that slot first), the
    worker releases the lock between 20 ms rounds and gives each tick at most a tick of
    time, the gap watchdog queues silence in one step and waits while :attr:`behind`;
    :attr:`behind` and :attr:`load` tell a server when to refuse new calls.

    Examples
    --------
    >>> from recorder import Engine
    >>> engine = Engine()
    >>> engine.stop()
    """

    _default = None
    _default_lock = threading.Lock()

    def __init__(self, tick: float = 0.02, publishers: int = DEFAULT_WORKERS) -> None:
        self.lock = threading.RLock()
        self.tick = tick
        self.bank = _core.Bank(16, flush_bytes=FLUSH_BYTES)
        self.detectors = DetectorBank()
        self._channels: weakref.WeakValueDictionary[int, Source] = weakref.WeakValueDictionary()
        self._waited: weakref.WeakValueDictionary[int, Source] = weakref.WeakValueDictionary()
        self._deadlines: dict[int, int] = {}  # slot -> media sample a waiter wakes at
        self._wake: set[int] = set()  # slots whose job reported an event this tick
        self._jobs: dict[int, RecordJob] = {}  # slot -> running Job
        self._recording = np.zeros(0, bool)  # slot -> has a running job
        self._free: list[int] = []
        self._open: dict[int, weakref.finalize] = {}  # slot -> finaliser of its channel
        self._size = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._behind = False
        self._behind_since = 0.0
        self._late_ticks = 0
        self._load = 0.0
        self._episodes = 0  # times behind since the last log line
        self._reported = -REPORT_EVERY  # monotonic time of the last "behind" line
        self.publisher = Publisher(publishers)
        #: CPU time (ns, of the processing thread) spent in the tick's stages: detectors,
        #: coding into the jobs' buffers, and the files' writes (by the core, and the
        #: Python of the jobs' events) (``recorder serve --metrics``)
        self.cpu_ns = {"detect": 0, "code": 0, "write": 0}
        self._write_ns = 0  # bank.write_ns already counted
        _ENGINES.add(self)

    @classmethod
    def default(cls) -> Engine:
        """The process-wide engine (made on first use)."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    # -- slots --------------------------------------------------------------------------

    def attach(self, channel: Source) -> int:
        """Give ``channel`` a slot and return it.  ``channel`` needs ``is_live()``,
        ``watchdog()`` and ``wake_waiters()`` (the first two are not called for a slot
        whose gaps the engine fills itself, see :meth:`watch_gaps`); it is held weakly,
        and dropping it without :meth:`detach` finishes its recording and frees the slot."""
        with self.lock:
            if not self._free:
                self._grow()
            slot = self._free.pop()
            self.bank.open(slot)
            self._channels[slot] = channel
            # a channel dropped without close(): finish its recording, free its slot
            self._open[slot] = weakref.finalize(channel, self.detach, slot)
            return slot

    def detach(self, slot: int) -> None:
        """Release ``slot``; a recording still running on it ends with ABORTED first."""
        with self.lock:
            fin = self._open.pop(slot, None)
            if fin is None:
                return
            fin.detach()
            job = self._jobs.get(slot)
            if job is not None:
                self.process(np.array([slot], np.int64), partial=True)
                job.abort()
            self._channels.pop(slot, None)
            self._jobs.pop(slot, None)
            self.remove_waiter(slot)  # a waiter may still be on its way out
            self._wake.discard(slot)
            self._recording[slot] = False
            self.bank.close(slot)
            self._free.append(slot)

    def _grow(self) -> None:
        old, new = self._size, max(16, 2 * self._size)
        self._recording = np.concatenate([self._recording, np.zeros(new - old, bool)])
        self._free.extend(range(new - 1, old - 1, -1))
        self.detectors.ensure(new)
        self._size = new

    # -- record jobs --------------------------------------------------------------------

    def start_job(self, slot: int, job: RecordJob, params: JobParams) -> None:
        """Register ``job`` on ``slot`` and start its state machine (lock held).

        The core's job clock and the slot's detectors both start here, together: that
        is what makes the detectors' positions job samples (see :class:`Detections`)."""
        self.bank.start_job(
            slot,
            int(params.fmt),
            params.timeout_at,
            params.size_at,
            params.max_silence,
            params.initial_silence,
            params.barge,
            params.hold,
            params.rate,
            params.max_frames,
        )
        self.detectors.reset(slot)
        self._jobs[slot] = job
        self._recording[slot] = True

    def job_state(self, slot: int) -> JobState:
        """The core's view of ``slot``'s current or last job (lock held)."""
        return self.bank.job(slot)

    def take_coded(self, slot: int) -> bytes:
        """The bytes the core has coded for ``slot``'s job since the last call (not for a
        job whose file the core writes itself)."""
        return self.bank.take_out(slot)

    def write_file(self, slot: int, target: AppendTarget) -> None:
        """From now on the core appends ``slot``'s coded audio to ``target``'s file itself
        (pwrite on its descriptor, in the tick, the GIL released) and refreshes its
        header once a second of media; the job then reports only its end (a failed write
        ends it with ERROR).  :meth:`end_file` hands the file back; until then the
        descriptor must stay open (lock held)."""
        self.bank.write_to(
            slot,
            target.fd,
            target.header,
            target.header_at,
            target.data_at,
            [(f.at, f.width, _FIELD_KINDS[f.counts], f.plus) for f in target.fields],
            target.block_align,
            target.frames_per_block,
        )

    def end_file(self, slot: int, write_rest: bool) -> FileWrites:
        """The core stops writing ``slot``'s file (:meth:`write_file`), after writing what
        it has coded if ``write_rest``; what it wrote (lock held)."""
        nbytes, frames, err = self.bank.end_output(slot, write_rest)
        return FileWrites(nbytes, frames, OSError(err, os.strerror(err)) if err else None)

    def end_job(self, slot: int, cause: EndCause, commit_held: bool) -> None:
        """End ``slot``'s job in the core now (no-op if it has ended); ``commit_held``:
        the media held back for barge-in goes to the file too."""
        self.bank.end_job(slot, int(cause), commit_held)

    def barge(self, slot: int, digit: str, start: int) -> bool:
        """An out-of-band digit that started at job sample ``start``; True if it ended
        the job (barge-in on)."""
        return self.bank.barge(slot, ord(digit), start)

    def job_ended(self, slot: int) -> None:
        """The job on ``slot`` has ended: it gets no more events (lock held)."""
        self._jobs.pop(slot, None)
        self._recording[slot] = False

    def finish_later(self, work: Callable[[], None]) -> None:
        """Run ``work`` (closing and publishing a finished recording's file) on the
        publisher's pool, away from the engine lock."""
        self.publisher.submit(work)

    def drain(self) -> None:
        """Wait until every finished recording's file is published."""
        self.publisher.drain()

    def add_waiter(self, slot: int, channel: Source, deadline: int | None = None) -> None:
        """A thread waits on ``channel`` (lock held).  The worker wakes it when the job on
        ``slot`` reports an event (it ended, its file advanced) or when the slot's media
        clock reaches ``deadline`` (a media sample; None: no deadline); the waiter's own
        channel wakes it on a state change.  Several waiters: the earliest deadline."""
        self._waited[slot] = channel
        if deadline is not None:
            self._deadlines[slot] = min(deadline, self._deadlines.get(slot, deadline))

    def remove_waiter(self, slot: int) -> None:
        """No thread waits on ``slot``'s channel any more (lock held)."""
        self._waited.pop(slot, None)
        self._deadlines.pop(slot, None)

    def _wake_waiters(self) -> None:
        """Wake the waiters that have something to see (lock held): a job event this
        tick, or a deadline reached.  Waking every waiter every tick cost more than the
        recording itself at a thousand calls."""
        due, self._wake = self._wake, set()
        for slot, deadline in self._deadlines.items():
            if self.bank.media(slot) >= deadline:
                due.add(slot)
        for slot in due:
            ch = self._waited.get(slot)
            if ch is not None:
                ch.wake_waiters()

    def let_others_in(self) -> None:
        """Called between the pieces of long work done outside the lock: lets the
        threads waiting for the lock (the worker, other channels) have their turn."""
        time.sleep(_YIELD)

    # -- media in -----------------------------------------------------------------------

    def pending(self, slot: int) -> int:
        """Samples waiting in ``slot``'s ring."""
        return self.bank.pending(slot)

    def media_samples(self, slot: int) -> int:
        """Samples of media ``slot`` has processed since :meth:`reset_media`."""
        return self.bank.media(slot)

    def reset_media(self, slot: int) -> None:
        """Start ``slot``'s media clock at 0 (a call answered)."""
        self.bank.reset_media(slot)

    def push(self, slot: int, pcm: np.ndarray) -> None:
        """Queue int16 media for ``slot`` (lock held by the caller).  When the ring is
        full, just enough of the slot's oldest media is processed here, on the caller's
        thread, to make room (back-pressure; see :meth:`push_rows`)."""
        pos = self.bank.push_s16(slot, pcm)
        while pos < pcm.size:  # ring full: the worker is a ring behind on this slot
            self._make_room(np.array([slot], np.int64), pcm.size - pos)
            pos += self.bank.push_s16(slot, pcm[pos:])

    def push_g711(self, slot: int, codes, ulaw: bool) -> None:
        """Queue A-law / mu-law coded media (any byte buffer; decoded straight into the
        ring).  Lock held by the caller; a full ring is handled as in :meth:`push`."""
        n = len(codes)
        pos = self.bank.push_g711(slot, codes, ulaw)
        while pos < n:
            self._make_room(np.array([slot], np.int64), n - pos)
            pos += self.bank.push_g711(slot, memoryview(codes)[pos:], ulaw)

    def push_rows(self, slots: np.ndarray, gens: np.ndarray, block: np.ndarray, codec: str) -> None:
        """Queue one frame for each of many slots in one compiled call (lock held by the
        caller): row ``r`` of ``block`` (k, n) goes to ``slots[r]``, which must still be the
        slot of :meth:`generation` ``gens[r]`` (else ValueError naming the row).
        ``codec``: 's16' (int16 block), 'alaw' or 'ulaw' (uint8 block, decoded into the
        rings).  Rows of slots whose call is not answered (:meth:`set_accept`) are dropped.

        Rule for a full ring (the engine is more than :data:`PIECE` samples behind on that
        slot): no media is dropped and nothing waits; the pusher processes, here and under
        the lock, just enough of those slots' oldest media to make room (one 20 ms round
        for a 20 ms frame), so the backlog stays bounded by the ring and a pusher faster
        than the engine is slowed to its pace."""
        code = _PUSH_CODES[codec]
        n = block.shape[1]
        taken = self.bank.push_rows(slots, gens, block, code)
        if not taken.size or taken.min() >= n:  # every row queued whole (the usual case)
            return
        short = (taken < n).nonzero()[0]
        self._make_room(slots[short], int(n - taken[short].min()))
        for r in short.tolist():
            slot, pos = int(slots[r]), int(taken[r])
            if code == 0:
                self.push(slot, block[r, pos:])
            else:
                self.push_g711(slot, block[r, pos:], code == 2)

    def _make_room(self, slots: np.ndarray, need: int) -> None:
        """Process the oldest ``need`` samples (whole 20 ms units) of ``slots`` now."""
        self.process(slots, rounds=-(-need // FRAME))

    def watch_gaps(self, slot: int, origin: float, floor: float, slack: float) -> None:
        """The worker fills the gaps in ``slot``'s media itself, in one compiled pass
        over every such slot per tick, instead of calling the channel's ``is_live()`` and
        ``watchdog()`` (lock held; until the slot is attached again).  For a
        channel whose watchdog clock reads ``max(floor, time.monotonic() - slack)`` and
        which was answered at ``origin`` on it: the same gaps, filled the same way."""
        self.bank.watch_gaps(slot, origin, floor, slack)

    def fill_gap(self, slot: int, due: int) -> int:
        """When ``slot``'s media (processed and pending) is more than
        :data:`GAP_SAMPLES` behind media sample ``due``, queue silence up to ``due`` in
        one step, as much as the ring has room for; returns how many samples.  Nothing is
        processed here: a gap longer than the ring is filled over the following ticks, so
        filling costs the same whatever the lag.  (The rule :meth:`watch_gaps` slots get
        in the worker's compiled pass.)"""
        return self.bank.fill_gap(slot, due, GAP_SAMPLES)

    def generation(self, slot: int) -> int:
        """How many times ``slot`` has been given out: remember it with the slot, and
        :meth:`push_rows` refuses the slot once it belongs to another channel."""
        return self.bank.generation(slot)

    def set_accept(self, slot: int, on: bool) -> None:
        """Whether :meth:`push_rows` queues ``slot``'s rows (its call is answered) or
        drops them.  Lock held."""
        self.bank.set_accept(slot, on)

    # -- processing ---------------------------------------------------------------------

    def process(
        self, slots: np.ndarray | None = None, *, partial: bool = False, rounds: int | None = None
    ) -> None:
        """Process the pending media of ``slots`` (default: every slot) in 20 ms units;
        at most ``rounds`` units per slot if given; with ``partial`` also the remainder
        shorter than a unit.  Lock held."""
        among = None if slots is None else np.ascontiguousarray(slots, np.int64)
        ready = self.bank.ready(FRAME, among)
        done = 0
        while ready.size and (rounds is None or done < rounds):
            self._dispatch(ready, self.bank.take(ready, FRAME))
            ready = self.bank.ready(FRAME, ready)
            done += 1
        if partial and among is not None:
            for slot in self.bank.ready(1, among):
                one = np.array([slot], np.int64)
                self._dispatch(one, self.bank.take(one, self.bank.pending(int(slot))))

    def _dispatch(self, slots: np.ndarray, block: np.ndarray) -> None:
        recording = self._recording[slots]
        if recording.size and recording.all():  # every slot records (no copies)
            rec, sub = slots, block
        else:
            rows = recording.nonzero()[0]
            if not rows.size:
                return
            rec, sub = slots[rows], block[rows]
        t0 = time.thread_time_ns()
        det = self.detectors.process(sub, rec)
        t1 = time.thread_time_ns()
        events = self.bank.feed(
            rec, sub, det.silence, det.audio_seen, det.digit_start, det.digit, det.audio_start
        )
        t2 = time.thread_time_ns()
        wrote = self.bank.write_ns - self._write_ns  # the core's own file writes
        self._write_ns += wrote
        for i in events.nonzero()[0]:
            slot = int(rec[i])
            self._wake.add(slot)
            job = self._jobs.get(slot)
            if job is None:
                continue
            try:
                job.on_event(Event(int(events[i])))
            except Exception as e:  # one job's failure must not touch the others
                log.exception("record job on slot %d failed", int(rec[i]))
                job.fail(e)
        cpu = self.cpu_ns
        cpu["detect"] += t1 - t0
        cpu["code"] += t2 - t1 - wrote
        cpu["write"] += time.thread_time_ns() - t2 + wrote

    # -- load ---------------------------------------------------------------------------

    @property
    def behind(self) -> bool:
        """True while the worker cannot keep up: for :data:`BEHIND_TICKS` ticks in a row
        it has used its whole tick and some channel's media had waited
        :data:`BEHIND_BACKLOG` samples (200 ms) or more.  It clears as soon as a tick
        finishes all waiting media.  While behind, the gap watchdog waits (it would
        only add work) and a server should refuse new calls."""
        return self._behind

    @property
    def load(self) -> float:
        """The share of the worker's time spent processing (moving average over about
        five ticks; 1.0 or more: it is at or past its capacity)."""
        return self._load

    # -- the worker ---------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Start the worker thread if it is not running."""
        with self.lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(
                    target=self._run, name="callrecorder-engine", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stopping.is_set():
            next_tick += self.tick
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stopping.wait(delay)
            else:
                next_tick = time.monotonic()  # fell behind: don't try to catch up in bursts
            self._one_tick()

    def _one_tick(self) -> None:
        """One round of the worker: the gap watchdog, then the waiting media in 20 ms
        rounds over every ready slot, the lock released between rounds (so no pusher
        waits more than a round), for at most one tick of time."""
        start = time.monotonic()
        deadline = start + self.tick
        with self.lock:
            try:
                # channels that got no media for QUIET_TICKS ticks (a live call's packets
                # come in bursts: one quiet tick is not a gap)
                idle = self.bank.idle(QUIET_TICKS)  # those not watched by the core
                if not self._behind:  # a gap is filled once the engine has caught up
                    self.bank.fill_gaps(time.monotonic(), QUIET_TICKS, GAP_SAMPLES)
                    for slot in idle:
                        ch = self._channels.get(int(slot))
                        if ch is not None and ch.is_live():
                            ch.watchdog()
                    ch = None  # no strong references to channels between ticks
                done = self._round()
            except Exception:  # keep serving the other calls whatever happened
                log.exception("engine tick failed")
                done = True
        while not done and time.monotonic() < deadline and not self._stopping.is_set():
            self.let_others_in()
            with self.lock:
                try:
                    done = self._round()
                except Exception:
                    log.exception("engine tick failed")
                    done = True
        with self.lock:
            try:
                self._wake_waiters()  # blocked record()/wait calls with something to see
            except Exception:  # the worker must go on whatever happened
                log.exception("waking waiters failed")
            backlog = not done and self.bank.ready(BEHIND_BACKLOG).size > 0
        self._load = 0.8 * self._load + 0.2 * (time.monotonic() - start) / self.tick
        self._late_ticks = self._late_ticks + 1 if backlog else 0
        now = time.monotonic()
        if not self._behind and self._late_ticks >= BEHIND_TICKS:
            self._behind, self._behind_since = True, now
            self._episodes += 1
            if now - self._reported >= REPORT_EVERY:  # a log line, not a flood of them
                log.warning(
                    "engine behind: media is waiting longer than a tick (load %.2f; "
                    "%d time(s) since the last report)",
                    self._load,
                    self._episodes,
                )
                self._reported, self._episodes = now, 0
        elif self._behind and done:
            self._behind = False
            log.info("engine caught up after %.1f s behind", now - self._behind_since)

    def _round(self) -> bool:
        """One 20 ms unit of every slot that has one waiting (lock held); True when no
        slot has a whole unit waiting any more."""
        ready = self.bank.ready(FRAME)
        if ready.size:
            self._dispatch(ready, self.bank.take(ready, FRAME))
        return not self.bank.ready(FRAME, ready).size if ready.size else True

    def thread_cpu_seconds(self) -> float:
        """CPU time of the worker thread so far: every tick (the stages of :attr:`cpu_ns`
        plus the watchdog, waking waiters and the Python around them); 0.0 while it is
        not running."""
        thread = self._thread
        if thread is None or thread.ident is None or not thread.is_alive():
            return 0.0
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except OSError:
            return 0.0

    def stop(self, abort_jobs: bool = True) -> None:
        """Stop the worker; with ``abort_jobs`` finish every running recording first
        (cause ABORTED), so no recording is left unfinished."""
        if abort_jobs:
            with self.lock:
                if self._jobs:  # what is already in the rings belongs in the files
                    self.process(np.array(list(self._jobs), np.int64), partial=True)
                for job in list(self._jobs.values()):
                    job.abort()
                for ch in list(self._waited.values()):  # their jobs have ended
                    ch.wake_waiters()
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if abort_jobs:
            self.drain()


_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


@atexit.register
def _finish_recordings_at_exit() -> None:
    for engine in list(_ENGINES):
        try:
            engine.stop(abort_jobs=True)  # every running recording ends and is published
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass
