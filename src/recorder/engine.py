"""The media engine: one per process (or per ``Engine()`` you create), serving every call
channel attached to it.

* Each channel owns a slot.  Inbound media (8000 Hz int16) waits in the slot's row of a
  shared ring (``push`` copies a frame in; nothing else happens on the caller's thread).
* A worker thread wakes every ``tick`` (20 ms), runs the live channels' watchdogs (a gap
  in the media is filled with silence so timers and files stay true to real time), and
  processes the waiting media of all slots together, 20 ms (160 samples) at a time: the
  silence and DTMF detectors run over a 2-D block (one row per recording channel) in
  compiled code with the GIL released; each record job then takes its row.
* Fast replay channels are not served by the worker: the thread waiting on such a channel
  (a blocking ``record`` or ``wait_until_finished``) pulls the media through the same
  processing, so replays run as fast as the CPU allows and deterministically.

All channel and job state of an engine is guarded by ``engine.lock``.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref

import numpy as np

from .dsp import MultiDetector

__all__ = ["Engine", "FRAME", "MEDIA_RATE"]

MEDIA_RATE = 8000
FRAME = 160                 # 20 ms at 8000 Hz: the engine's processing unit
RING = 8192                 # samples of pending media a slot can hold (about 1 s)
BANK = 256                  # detector slots allocated at a time


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
        """Run the detectors on ``block`` (k, n) for ``slots`` (k,).  Returns
        ``(silence_ms (k,), audio_seen (k,), digits)`` with digits a list of
        (row index in block, digit, start sample since reset)."""
        k = len(slots)
        silence = np.zeros(k, np.float64)
        seen = np.zeros(k, bool)
        digits = []
        bank_of = slots // BANK
        for b in np.unique(bank_of):
            idx = np.flatnonzero(bank_of == b)
            res = self._banks[b].process(block[idx], rows=slots[idx] % BANK)
            silence[idx] = res.silence_ms
            seen[idx] = res.audio_seen
            for ev in res.digits:
                digits.append((int(idx[ev["row"]]), str(ev["digit"]), int(ev["start"])))
        return silence, seen, digits


class Engine:
    """Serves call channels: buffers their media and runs detection and recording."""

    _default = None
    _default_lock = threading.Lock()

    def __init__(self, tick: float = 0.02):
        self.lock = threading.RLock()
        self.tick = tick
        self._channels: dict[int, object] = {}
        self._free: list[int] = []
        self._ring = np.zeros((0, RING), np.int16)
        self._fill = np.zeros(0, np.int64)
        self._head = np.zeros(0, np.int64)
        self.detectors = DetectorBank()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
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
            if self._free:
                slot = self._free.pop()
            else:
                slot = len(self._fill)
                self._grow(slot + 1)
            self._channels[slot] = channel
            self._fill[slot] = 0
            self._head[slot] = 0
            return slot

    def detach(self, slot: int) -> None:
        with self.lock:
            self._channels.pop(slot, None)
            self._fill[slot] = 0
            self._free.append(slot)

    def _grow(self, need: int) -> None:
        cap = max(need, 2 * len(self._fill), 16)
        ring = np.zeros((cap, RING), np.int16)
        ring[: len(self._fill)] = self._ring
        self._ring = ring
        self._fill = np.concatenate([self._fill, np.zeros(cap - len(self._fill), np.int64)])
        self._head = np.concatenate([self._head, np.zeros(cap - len(self._head), np.int64)])
        self._free.extend(range(cap - 1, need - 1, -1))
        self.detectors.ensure(cap)

    # -- media in -----------------------------------------------------------------------

    def pending(self, slot: int) -> int:
        return int(self._fill[slot])

    def push(self, slot: int, pcm: np.ndarray) -> None:
        """Queue media for ``slot`` (lock held by the caller)."""
        pos = 0
        while pos < pcm.size:
            room = RING - int(self._fill[slot])
            if room == 0:                           # the worker is behind: catch up here
                self.process(np.array([slot]))
                continue
            n = min(room, pcm.size - pos)
            tail = (int(self._head[slot]) + int(self._fill[slot])) % RING
            first = min(n, RING - tail)
            self._ring[slot, tail:tail + first] = pcm[pos:pos + first]
            if first < n:
                self._ring[slot, : n - first] = pcm[pos + first:pos + n]
            self._fill[slot] += n
            pos += n

    def _take(self, slots: np.ndarray, n: int) -> np.ndarray:
        idx = (self._head[slots, None] + np.arange(n)) % RING
        block = self._ring[slots[:, None], idx]
        self._head[slots] = (self._head[slots] + n) % RING
        self._fill[slots] -= n
        return block

    # -- processing ---------------------------------------------------------------------

    def process(self, slots: np.ndarray | None = None, *, partial: bool = False) -> None:
        """Process the pending media of ``slots`` (default: every slot) in 20 ms units;
        with ``partial`` also the remainder shorter than a unit.  Lock held."""
        if slots is None:
            slots = np.flatnonzero(self._fill >= FRAME)
        slots = np.asarray(slots, np.int64)
        while slots.size:
            ready = slots[self._fill[slots] >= FRAME]
            if not ready.size:
                break
            self._dispatch(ready, self._take(ready, FRAME))
        if partial:
            for s in slots[self._fill[slots] > 0]:
                one = np.array([s])
                self._dispatch(one, self._take(one, int(self._fill[s])))

    def _dispatch(self, slots: np.ndarray, block: np.ndarray) -> None:
        chans = [self._channels[s] for s in slots]
        rec = [i for i, ch in enumerate(chans) if ch._recording_job() is not None]
        det = None
        if rec:
            rows = np.array(rec)
            det = self.detectors.process(block[rows], slots[rows])
            silence, seen, digits = det
            by_row: dict[int, list] = {}
            for r, d, start in digits:
                by_row.setdefault(int(rows[r]), []).append((d, start))
            pos = {int(i): j for j, i in enumerate(rows)}
        for i, ch in enumerate(chans):
            if det is not None and i in pos:
                j = pos[i]
                ch._media(block[i], (float(silence[j]), bool(seen[j]), by_row.get(i, ())))
            else:
                ch._media(block[i], None)

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
                live = [ch for ch in self._channels.values() if ch._is_live()]
                for ch in live:
                    ch._watchdog()
                self.process()
                for ch in live:
                    ch._notify()

    def stop(self, abort_jobs: bool = True) -> None:
        """Stop the worker; with ``abort_jobs`` finish every running recording first
        (cause ABORTED), so no recording is left unfinished."""
        if abort_jobs:
            with self.lock:
                for ch in list(self._channels.values()):
                    ch._abort_for_shutdown()
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


_ENGINES: "weakref.WeakSet[Engine]" = weakref.WeakSet()


@atexit.register
def _finish_recordings_at_exit() -> None:
    for engine in list(_ENGINES):
        try:
            engine.stop(abort_jobs=True)
        except Exception:   # pragma: no cover - best effort at interpreter exit
            pass
