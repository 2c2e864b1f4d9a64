"""The media engine: one per process (or per ``Engine()`` you create), serving every call
channel attached to it.

Each channel owns a slot; :meth:`Engine.push` (and ``push_g711``, ``push_silence``) hands
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
import threading
import time
import weakref
from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np

from ._codecs import engine as _core
from ._codecs.engine import JobState
from .dsp import MultiDetector
from .publish import DEFAULT_WORKERS, Publisher

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


class Source(Protocol):
    """What the engine needs from a channel attached to it (:meth:`Engine.attach`)."""

    def is_live(self) -> bool: ...
    def watchdog(self) -> None: ...
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


_NO_ONSET = np.iinfo(np.int64).max


class DetectorBank:
    """Silence + DTMF detector states for any number of slots (grown in banks of
    ``BANK``)."""

    def __init__(self) -> None:
        self._banks: list[MultiDetector] = []

    def ensure(self, slots: int) -> None:
        """Make room for slots ``0 .. slots - 1``."""
        while len(self._banks) * BANK < slots:
            self._banks.append(MultiDetector(BANK, rate=MEDIA_RATE))

    def reset(self, slot: int) -> None:
        """Start ``slot``'s detectors afresh.  Detectors count positions from their last
        reset and the core counts job samples from ``start_job``: :meth:`Engine.start_job`
        does both together, so a detector position *is* a job sample."""
        self._banks[slot // BANK].reset(np.array([slot % BANK]))

    def process(self, block: np.ndarray, slots: np.ndarray) -> Detections:
        """Run the detectors on ``block`` (k, n) for ``slots`` (k,)."""
        k = len(slots)
        silence = np.empty(k, np.int64)
        seen = np.empty(k, np.uint8)
        digit_start = np.full(k, -1, np.int64)
        digit = np.zeros(k, np.int32)
        first = np.full(k, _NO_ONSET, np.int64)
        bank_of = slots // BANK
        banks = np.unique(bank_of)
        for b in banks:
            rows = np.flatnonzero(bank_of == b) if banks.size > 1 else np.arange(k)
            sub = block[rows] if banks.size > 1 else block
            res = self._banks[int(b)].process(sub, rows=slots[rows] % BANK)
            silence[rows] = res.silence_samples
            seen[rows] = res.audio_seen
            for ev in res.digits:  # the earliest digit of each row counts
                r, at = int(rows[int(ev["row"])]), int(ev["start"])
                if digit_start[r] < 0 or at < digit_start[r]:
                    digit_start[r], digit[r] = at, ord(str(ev["digit"]))
            starts = res.audio_starts
            if len(starts):  # the first audio onset of each row
                np.minimum.at(
                    first, rows[starts["row"].astype(np.int64)], starts["start"].astype(np.int64)
                )
        audio_start = np.where(first == _NO_ONSET, -1, first)
        return Detections(silence, seen, digit_start, digit, audio_start)


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
    :meth:`attach` with :meth:`push`, :meth:`push_g711`, :meth:`push_silence`,
    :meth:`process`, :meth:`pending`, :meth:`media_samples` and :meth:`reset_media`; a
    record job uses :meth:`start_job`, :meth:`job_state`, :meth:`take_coded`,
    :meth:`end_job`, :meth:`barge`, :meth:`job_ended` and
    :meth:`finish_later`.  All of them but :meth:`attach`, :meth:`detach`,
    :meth:`finish_later` and :meth:`drain` expect ``engine.lock`` held.

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
        self.bank = _core.Bank(16)
        self.detectors = DetectorBank()
        self._channels: weakref.WeakValueDictionary[int, Source] = weakref.WeakValueDictionary()
        self._waited: weakref.WeakValueDictionary[int, Source] = weakref.WeakValueDictionary()
        self._jobs: dict[int, RecordJob] = {}  # slot -> running Job
        self._recording = np.zeros(0, bool)  # slot -> has a running job
        self._free: list[int] = []
        self._open: dict[int, weakref.finalize] = {}  # slot -> finaliser of its channel
        self._size = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.publisher = Publisher(publishers)
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
        ``watchdog()`` and ``wake_waiters()``; it is held weakly, and dropping it without
        :meth:`detach` finishes its recording and frees the slot."""
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
        """The bytes the core has coded for ``slot``'s job since the last call."""
        return self.bank.take_out(slot)

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

    def add_waiter(self, slot: int, channel: Source) -> None:
        """A thread waits on ``channel`` (lock held): the worker wakes it every tick."""
        self._waited[slot] = channel

    def remove_waiter(self, slot: int) -> None:
        """No thread waits on ``slot``'s channel any more (lock held)."""
        self._waited.pop(slot, None)

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
        full, the slot's waiting media is processed here, on the caller's thread, until
        the rest fits (see the module documentation)."""
        pos = 0
        while pos < pcm.size:
            n = self.bank.push_s16(slot, pcm[pos:])
            pos += n
            if pos < pcm.size:  # ring full: the worker is behind, catch up here
                self.process(np.array([slot], np.int64))

    def push_g711(self, slot: int, codes, ulaw: bool) -> None:
        """Queue A-law / mu-law coded media (any byte buffer; decoded straight into the
        ring).  Lock held by the caller; a full ring is processed here, as in :meth:`push`."""
        n = len(codes)
        pos = self.bank.push_g711(slot, codes, ulaw)
        while pos < n:
            self.process(np.array([slot], np.int64))
            pos += self.bank.push_g711(slot, memoryview(codes)[pos:], ulaw)

    def push_silence(self, slot: int, n: int) -> None:
        """Queue ``n`` samples of silence (a gap in the media); as :meth:`push`."""
        while n > 0:
            n -= self.bank.push_zeros(slot, n)
            if n > 0:
                self.process(np.array([slot], np.int64))

    # -- processing ---------------------------------------------------------------------

    def process(self, slots: np.ndarray | None = None, *, partial: bool = False) -> None:
        """Process the pending media of ``slots`` (default: every slot) in 20 ms units;
        with ``partial`` also the remainder shorter than a unit.  Lock held."""
        among = None if slots is None else np.ascontiguousarray(slots, np.int64)
        ready = self.bank.ready(FRAME, among)
        while ready.size:
            self._dispatch(ready, self.bank.take(ready, FRAME))
            ready = self.bank.ready(FRAME, ready)
        if partial and among is not None:
            for slot in self.bank.ready(1, among):
                one = np.array([slot], np.int64)
                self._dispatch(one, self.bank.take(one, self.bank.pending(int(slot))))

    def _dispatch(self, slots: np.ndarray, block: np.ndarray) -> None:
        rows = np.flatnonzero(self._recording[slots])
        if not rows.size:
            return
        rec = slots[rows]
        sub = block[rows] if rows.size != slots.size else block
        det = self.detectors.process(sub, rec)
        events = self.bank.feed(
            rec, sub, det.silence, det.audio_seen, det.digit_start, det.digit, det.audio_start
        )
        for i in np.flatnonzero(events):
            job = self._jobs.get(int(rec[i]))
            if job is None:
                continue
            try:
                job.on_event(Event(int(events[i])))
            except Exception as e:  # one job's failure must not touch the others
                log.exception("record job on slot %d failed", int(rec[i]))
                job.fail(e)

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
            with self.lock:
                try:
                    # the watchdog looks only at channels that got no media this tick
                    for slot in self.bank.idle():
                        ch = self._channels.get(int(slot))
                        if ch is not None and ch.is_live():
                            ch.watchdog()
                    self.process()
                    for ch in list(self._waited.values()):  # wake blocked record()/wait calls
                        ch.wake_waiters()
                except Exception:  # keep serving the other calls whatever happened
                    log.exception("engine tick failed")
                ch = None  # no strong references to channels between ticks

    def stop(self, abort_jobs: bool = True) -> None:
        """Stop the worker; with ``abort_jobs`` finish every running recording first
        (cause ABORTED), so no recording is left unfinished."""
        if abort_jobs:
            with self.lock:
                if self._jobs:  # what is already in the rings belongs in the files
                    self.process(np.array(list(self._jobs), np.int64), partial=True)
                for job in list(self._jobs.values()):
                    job.abort()
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
