"""The media engine: one per process (or per ``Engine()`` you create), serving every call
channel attached to it.

* Each channel owns a slot of the compiled core (``_codecs.engine.Bank``).  Inbound media
  (8000 Hz int16) waits in the slot's ring (``push`` decodes a frame straight in; nothing
  else happens on the caller's thread).
* A worker thread wakes every ``tick`` (20 ms), runs the live channels' watchdogs (a gap
  in the media is filled with silence so timers and files stay true to real time), and
  processes the waiting media of all slots together, 20 ms (160 samples) at a time: the
  silence and DTMF detectors run over a 2-D block (one row per recording channel), then
  one ``Bank.feed`` call applies every row to its record job (terminations, coding), both
  in compiled code with the GIL released.  Python runs only for the jobs that report an
  event (a buffer to write, a header to refresh, a job that ended).
* Fast replay channels are not served by the worker: the thread waiting on such a channel
  (a blocking ``record`` or ``wait_until_finished``) pulls the media through the same
  processing, so replays run as fast as the CPU allows and deterministically.

All channel and job state of an engine is guarded by ``engine.lock``.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref

import numpy as np

from ._codecs import engine as _core
from .dsp import MultiDetector
from .publish import DEFAULT_WORKERS, Publisher

__all__ = ["Engine", "FRAME", "MEDIA_RATE", "PIECE"]

log = logging.getLogger("recorder.engine")

MEDIA_RATE = 8000
FRAME = 160                 # 20 ms at 8000 Hz: the engine's processing unit
BANK = 256                  # detector slots allocated at a time
_YIELD = 0.0                # seconds let_others_in() gives up the CPU for
PIECE = _core.CONSTANTS["RING_SIZE"]   # samples a large push takes per hold of the lock


class DetectorBank:
    """Silence + DTMF detector states for any number of slots (grown in banks)."""

    def __init__(self):
        self._banks: list[MultiDetector] = []

    def ensure(self, slots: int) -> None:
        while len(self._banks) * BANK < slots:
            self._banks.append(MultiDetector(BANK, rate=MEDIA_RATE))

    def reset(self, slot: int) -> None:
        self._banks[slot // BANK].reset(np.array([slot % BANK]))

    def process(self, block: np.ndarray, slots: np.ndarray):
        """Run the detectors on ``block`` (k, n) for ``slots`` (k,); returns a
        ``dsp.MultiResult`` whose ``row`` fields index ``block``."""
        bank_of = slots // BANK
        banks = np.unique(bank_of)
        if banks.size == 1:
            return self._banks[int(banks[0])].process(block, rows=slots % BANK)
        parts, rows = [], []
        for b in banks:
            idx = np.flatnonzero(bank_of == b)
            parts.append(self._banks[int(b)].process(block[idx], rows=slots[idx] % BANK))
            rows.append(idx)
        k = len(slots)
        out = {}
        for name in ("silence_ms", "audio_seen"):
            arr = np.empty(k, parts[0]._asdict()[name].dtype)
            for part, idx in zip(parts, rows):
                arr[idx] = getattr(part, name)
            out[name] = arr
        for name in ("digits", "audio_starts"):
            recs = []
            for part, idx in zip(parts, rows):
                r = getattr(part, name).copy()
                r["row"] = idx[r["row"]] if len(r) else r["row"]
                recs.append(r)
            out[name] = np.concatenate(recs)
        return _Merged(**out)


class _Merged:
    def __init__(self, **fields):
        self.__dict__.update(fields)


class Engine:
    """Serves call channels: buffers their media and runs detection and recording.

    ``tick``: seconds between the worker's rounds.  ``publishers``: threads that finish
    recordings' files at once (see :mod:`recorder.publish`)."""

    _default = None
    _default_lock = threading.Lock()

    def __init__(self, tick: float = 0.02, publishers: int = DEFAULT_WORKERS):
        self.lock = threading.RLock()
        self.tick = tick
        self.bank = _core.Bank(16)
        self.detectors = DetectorBank()
        self._channels = weakref.WeakValueDictionary()   # slot -> CallChannel
        self._waited = weakref.WeakValueDictionary()     # slot -> channel a thread waits on
        self._jobs: dict[int, object] = {}           # slot -> running Job
        self._recording = np.zeros(0, bool)          # slot -> has a running job
        self._free: list[int] = []
        self._open: dict[int, weakref.finalize] = {}    # slot -> finaliser of its channel
        self._size = 0
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.publisher = Publisher(publishers)
        _ENGINES.add(self)

    @classmethod
    def default(cls) -> "Engine":
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    # -- slots --------------------------------------------------------------------------

    def attach(self, channel) -> int:
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
                job.end_aborted()
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

    def start_job(self, slot: int, job, **params) -> None:
        """Register ``job`` on ``slot`` and start its state machine (lock held)."""
        self.bank.start_job(slot, **params)
        self.detectors.reset(slot)
        self._jobs[slot] = job
        self._recording[slot] = True

    def job_ended(self, slot: int) -> None:
        self._jobs.pop(slot, None)
        self._recording[slot] = False

    def finish_later(self, work) -> None:
        """Run ``work`` (closing and publishing a finished recording's file) on the
        publisher's pool, away from the engine lock."""
        self.publisher.submit(work)

    def drain(self) -> None:
        """Wait until every finished recording's file is published."""
        self.publisher.drain()

    def add_waiter(self, slot: int, channel) -> None:
        """A thread waits on ``channel`` (lock held): the worker wakes it every tick."""
        self._waited[slot] = channel

    def remove_waiter(self, slot: int) -> None:
        self._waited.pop(slot, None)

    def let_others_in(self) -> None:
        """Called between the pieces of long work done outside the lock: lets the
        threads waiting for the lock (the worker, other channels) have their turn."""
        time.sleep(_YIELD)

    # -- media in -----------------------------------------------------------------------

    def pending(self, slot: int) -> int:
        return self.bank.pending(slot)

    def push(self, slot: int, pcm: np.ndarray) -> None:
        """Queue int16 media for ``slot`` (lock held by the caller)."""
        pos = 0
        while pos < pcm.size:
            n = self.bank.push_s16(slot, pcm[pos:])
            pos += n
            if pos < pcm.size:                      # ring full: the worker is behind, catch up here
                self.process(np.array([slot], np.int64))

    def push_g711(self, slot: int, codes, ulaw: bool) -> None:
        """Queue A-law / mu-law coded media (any byte buffer; decoded straight into the
        ring).  Lock held by the caller."""
        n = len(codes)
        pos = self.bank.push_g711(slot, codes, ulaw)
        while pos < n:
            self.process(np.array([slot], np.int64))
            pos += self.bank.push_g711(slot, memoryview(codes)[pos:], ulaw)

    def push_silence(self, slot: int, n: int) -> None:
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
        res = self.detectors.process(sub, rec)
        start = np.full(rec.size, -1, np.int64)
        char = np.zeros(rec.size, np.int32)
        for ev in res.digits:                        # the earliest digit of each row counts
            r, at = int(ev["row"]), int(ev["start"])
            if start[r] < 0 or at < start[r]:
                start[r], char[r] = at, ord(str(ev["digit"]))
        audio = np.full(rec.size, -1, np.int64)
        starts = res.audio_starts
        if len(starts):                              # the first audio onset of each row
            first = np.full(rec.size, np.iinfo(np.int64).max, np.int64)
            np.minimum.at(first, starts["row"].astype(np.int64), starts["start"].astype(np.int64))
            audio = np.where(first == np.iinfo(np.int64).max, -1, first)
        events = self.bank.feed(rec, sub, res.silence_ms, res.audio_seen.view(np.uint8), start, char,
                                audio)
        for i in np.flatnonzero(events):
            job = self._jobs.get(int(rec[i]))
            if job is None:
                continue
            try:
                job.on_event(int(events[i]))
            except Exception as e:      # one job's failure must not touch the others
                log.exception("record job on slot %d failed", int(rec[i]))
                job.fail(e)

    # -- the worker ---------------------------------------------------------------------

    def ensure_running(self) -> None:
        with self.lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="callrecorder-engine",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stopping.is_set():
            next_tick += self.tick
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stopping.wait(delay)
            else:
                next_tick = time.monotonic()       # fell behind: don't try to catch up in bursts
            with self.lock:
                try:
                    # the watchdog looks only at channels that got no media this tick
                    for slot in self.bank.idle():
                        ch = self._channels.get(int(slot))
                        if ch is not None and ch.is_live():
                            ch.watchdog()
                    self.process()
                    for ch in list(self._waited.values()):   # wake blocked record()/wait calls
                        ch.wake_waiters()
                except Exception:       # keep serving the other calls whatever happened
                    log.exception("engine tick failed")
                ch = None                # no strong references to channels between ticks

    def stop(self, abort_jobs: bool = True) -> None:
        """Stop the worker; with ``abort_jobs`` finish every running recording first
        (cause ABORTED), so no recording is left unfinished."""
        if abort_jobs:
            with self.lock:
                if self._jobs:            # what is already in the rings belongs in the files
                    self.process(np.array(list(self._jobs), np.int64), partial=True)
                for job in list(self._jobs.values()):
                    job.end_aborted()
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if abort_jobs:
            self.drain()


_ENGINES: "weakref.WeakSet[Engine]" = weakref.WeakSet()


@atexit.register
def _finish_recordings_at_exit() -> None:
    for engine in list(_ENGINES):
        try:
            engine.stop(abort_jobs=True)      # every running recording ends and is published
        except Exception:   # pragma: no cover - best effort at interpreter exit
            pass
