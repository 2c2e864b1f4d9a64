"""A call channel: a call with a state, the call's inbound audio, and ``FileRecorder``.

Media reaches a channel in one of two ways:

* **push** (a live call): a telephony stack calls :meth:`CallChannel.push` with each
  frame as it arrives (A-law, mu-law or int16 payloads, any frame size) and
  :meth:`CallChannel.push_dtmf` for out-of-band DTMF (RFC 4733 events).  Time follows
  the clock: if no media arrives for more than 60 ms, the engine's watchdog fills the gap
  with silence, so timers run and the file stays aligned to real time.
* **replay**: :meth:`CallChannel.replay` plays a WAV file (any format :mod:`recorder.wav`
  reads, any of the recorder's rates, stereo mixed down) as the call's audio, in real time
  or as fast as possible, hanging up at the end unless asked not to.  A fast replay
  produces media only while a thread waits on the channel (a blocking ``record`` or
  ``wait_until_finished``), so a two-minute call records in milliseconds, the same way
  every time.

Who owns what: the channel owns the call (its state and its engine slot) and serves
waiting on it (:meth:`CallChannel.wait`); the media comes from a source that uses the
channel's public methods (:meth:`CallChannel.push` for a live stack, ``_Replay.play``
for a real-time replay, which is just such a live source) or, for a fast replay, is
pulled from the file by the waiting thread; the engine (:class:`recorder.engine.Engine`)
processes it; :class:`recorder.filerecorder.FileRecorder` owns the record jobs; and
:mod:`recorder.publish` puts finished files in place.

Call states: IDLE (no call) -> RINGING (an inbound call offered, :meth:`ring`) or CALLING
(an outbound call being set up, :meth:`dial`) -> ANSWERED (:meth:`answer`) -> IDLE
(:meth:`hangup`, also ending a recording with cause HANGUP).
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import codecs, files, wav
from ._buffers import as_int16, as_uint8, slot_array
from .dsp import DTMF_KEYS
from .engine import FRAME, MEDIA_RATE, PIECE, Engine
from .engine import GAP_SAMPLES as GAP_SAMPLES  # (its home is the engine's gap rule)
from .filerecorder import Cause, Error, FileRecorder, Hangup, Job
from .resampling import to_mono

if TYPE_CHECKING:
    from .types import FileCipher

__all__ = ["DTMF_DIGITS", "CallChannel", "CallState", "ChannelBatch", "Error", "Hangup"]

DTMF_DIGITS = "".join(
    sorted(DTMF_KEYS)
)  # the 16 keys of dsp.DTMF_KEYS (the one definition), sorted
_HOLD_BACK = MEDIA_RATE // 5  # 200 ms of media held back from the file while barge-in is on
_BACKSTOP = 2.0  # seconds a blocked wait() sleeps at most between wake-ups it was sent


class CallState(enum.Enum):
    IDLE = "IDLE"
    RINGING = "RINGING"
    CALLING = "CALLING"
    ANSWERED = "ANSWERED"


class _Replay:
    """Media of a WAV file, 8000 Hz mono int16, read out in pieces."""

    def __init__(self, path, realtime: bool, hangup_at_end: bool, cipher: FileCipher | None = None):
        pcm, meta = wav.read(path, cipher=cipher)
        self.pcm = to_mono(pcm, meta.rate, MEDIA_RATE)
        self.pos = 0
        self.realtime = realtime
        self.hangup_at_end = hangup_at_end
        self.info = meta

    def read(self, n: int) -> np.ndarray | None:
        """Up to ``n`` samples, or None at the end."""
        if self.pos >= self.pcm.size:
            return None
        out = self.pcm[self.pos : self.pos + n]
        self.pos += out.size
        return out

    def play(self, channel: CallChannel, clock: Callable[[], float]) -> threading.Thread:
        """Play the file into ``channel`` at the pace of ``clock`` on a thread of its own,
        as a live source does: 20 ms frames through :meth:`CallChannel.push`, then a
        hangup at the end (or silence, if the call is to stay up).  Returns the thread;
        it ends when the call is no longer ANSWERED."""

        def feed() -> None:
            start = clock()
            sent = 0
            while channel.state() is CallState.ANSWERED:
                with channel.lock:
                    chunk = self.read(FRAME)
                if chunk is None:
                    if self.hangup_at_end:
                        channel.hangup()
                        return
                    chunk = np.zeros(FRAME, np.int16)  # the call stays up, silent
                channel.push(chunk, "s16")
                sent += chunk.size
                delay = start + sent / MEDIA_RATE - clock()
                if delay > 0:
                    time.sleep(delay)

        thread = threading.Thread(target=feed, name="callrecorder-replay", daemon=True)
        thread.start()
        return thread


class CallChannel:
    """One call and its recorder.  Create it, :meth:`ring` (or :meth:`dial`),
    :meth:`answer`, feed it media (:meth:`push`) or use :meth:`replay`, and record
    with ``channel.FileRecorder``.

    Parameters
    ----------
    media_root : str or path-like, optional
        Folder that recording file names are relative to (default
        :func:`recorder.files.media_root`).
    codec : str
        Default payload of :meth:`push`: 'alaw', 'ulaw' or 's16'.
    clock : callable, optional
        Returns seconds (default ``time.monotonic``); the live watchdog measures gaps
        with it.
    engine : Engine, optional
        The :class:`recorder.Engine` to use (default: the process-wide one).
    name : str, optional
        Shown in ``repr``.

    Raises
    ------
    ValueError
        An unknown ``codec``.

    Examples
    --------
    >>> import tempfile
    >>> from recorder import CallChannel
    >>> ch = CallChannel(media_root=tempfile.mkdtemp(), codec="ulaw")
    >>> ch.ring(); ch.answer()
    >>> ch.push(b"\\xff" * 160)         # 20 ms of mu-law silence
    >>> ch.state().name
    'ANSWERED'
    >>> ch.close()
    """

    State = CallState

    def __init__(
        self,
        media_root: str | os.PathLike[str] | None = None,
        *,
        codec: str = "alaw",
        clock: Callable[[], float] | None = None,
        engine: Engine | None = None,
        name: str | None = None,
    ) -> None:
        self.media_root = files.media_root() if media_root is None else str(media_root)
        self.name = name
        self._codec = self._check_codec(codec)
        self._clock: Callable[[], float] = clock or time.monotonic
        self._engine = engine or Engine.default()
        self._state = CallState.IDLE
        self._replay: _Replay | None = None
        self._feeder: threading.Thread | None = None
        self._cond = threading.Condition(self._engine.lock)
        self._answered_at = 0.0  # clock() at answer
        self._file_recorder = FileRecorder(self)
        self._closed = False
        self._waiters = 0
        self._slot = self._engine.attach(self)

    # -- spec property ------------------------------------------------------------------

    @property
    def FileRecorder(self) -> FileRecorder:  # the spec's name
        """The channel's :class:`recorder.filerecorder.FileRecorder`."""
        return self._file_recorder

    file_recorder = FileRecorder

    # -- call control -------------------------------------------------------------------

    def state(self) -> CallState:
        return self._state

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise Error("the channel is closed")

    def ring(self) -> None:
        """An inbound call arrives: IDLE -> RINGING."""
        with self._engine.lock:
            self._check_open()
            if self._state is not CallState.IDLE:
                raise Error(f"cannot ring: the call is {self._state.name}")
            self._state = CallState.RINGING

    def dial(self) -> None:
        """An outbound call is being set up: IDLE -> CALLING (then :meth:`answer` when
        the far end answers)."""
        with self._engine.lock:
            self._check_open()
            if self._state is not CallState.IDLE:
                raise Error(f"cannot dial: the call is {self._state.name}")
            self._state = CallState.CALLING

    def answer(self) -> None:
        """The call is answered (RINGING or CALLING -> ANSWERED); media time starts."""
        with self._engine.lock:
            self._check_open()
            if self._state is CallState.IDLE:
                raise Hangup("cannot answer: there is no call (IDLE)")
            if self._state is CallState.ANSWERED:
                return
            self._state = CallState.ANSWERED
            self._answered_at = self._clock()
            self._engine.reset_media(self._slot)
            self._engine.set_accept(self._slot, True)
            form = self._gap_clock()
            if form is not None and self._replay is None:  # the engine fills its gaps
                self._engine.watch_gaps(self._slot, self._answered_at, *form)
        if self.is_live():
            self._engine.ensure_running()
        if self._replay is not None and self._replay.realtime:
            self._feeder = self._replay.play(self, self._clock)

    def hangup(self) -> None:
        """End the call; a running recording ends with cause HANGUP, keeping
        everything received up to now.  Returns once that recording's file is
        published (as ``FileRecorder.stop()`` does), so ``FileRecorder.cause()`` and
        ``FileRecorder.result()`` tell how it ended as soon as this returns."""
        job = self._hang_up()
        if job is not None:
            job.done.wait()

    def _hang_up(self):
        """End the call without waiting for the file; returns the job it ended."""
        with self._engine.lock:
            if self._state is CallState.IDLE:
                return None
            self._engine.process(np.array([self._slot]), partial=True)
            job = self._recording_job()
            if job is not None:
                job.end(Cause.HANGUP)
            self._state = CallState.IDLE
            self._engine.set_accept(self._slot, False)
            self._cond.notify_all()
            return job

    def close(self) -> None:
        """Hang up and release the channel's engine slot; the channel cannot be used
        afterwards (every call control and media method raises Error)."""
        if self._closed:
            return
        self.hangup()
        with self._engine.lock:
            self._closed = True
            self._engine.detach(self._slot)

    # -- media --------------------------------------------------------------------------

    @staticmethod
    def _check_codec(codec):
        name = codecs.lookup(codec, need="push").name  # 's16' and 's16bit' alike
        return "s16" if name == "s16bit" else name

    def push(
        self, payload: bytes | bytearray | memoryview | np.ndarray, codec: str | None = None
    ) -> None:
        """Inbound media from the call: one frame of any size.  ``codec``: 'alaw' or
        'ulaw' (bytes, one per sample) or 's16' = 's16bit' (int16 samples or native-order bytes);
        default the channel's.  Media pushed while the call is not ANSWERED is dropped
        (there is no call audio before answer).  A large push (hours of audio at once)
        is taken in pieces of at most :data:`recorder.engine.PIECE` samples with the
        engine lock released between them, so other channels keep being served."""
        codec = self._codec if codec is None else self._check_codec(codec)
        data: bytes | bytearray | np.ndarray
        if codec == "s16":
            data = as_int16(payload, "payload").reshape(-1)
        elif isinstance(payload, (bytes, bytearray)) or (
            isinstance(payload, np.ndarray) and payload.ndim == 1
        ):
            data = payload  # the compiled ring takes these as they are
        else:
            data = as_uint8(payload, "payload").reshape(-1)
        n = len(data)
        if n <= PIECE:  # a frame: the common case, one hold of the lock
            self._push_piece(data, codec)
            return
        if codec != "s16":
            data = as_uint8(data, "payload")
        for pos in range(0, n, PIECE):
            if pos:
                self._engine.let_others_in()
            if not self._push_piece(data[pos : pos + PIECE], codec):
                return  # hung up meanwhile: the rest is dropped

    def _push_piece(self, piece, codec: str) -> bool:
        """Queue (and for a fast replay, process) one piece; False if not ANSWERED."""
        engine = self._engine
        with engine.lock:
            if self._state is not CallState.ANSWERED:
                self._check_open()
                return False
            if codec == "s16":
                engine.push(self._slot, piece)
            else:
                ulaw = codec == "ulaw"
                try:  # bytes / uint8 arrays go straight into the compiled ring
                    engine.push_g711(self._slot, piece, ulaw)
                except (TypeError, ValueError, BufferError):  # any other buffer: converted
                    engine.push_g711(self._slot, as_uint8(piece, "payload").reshape(-1), ulaw)
            if not self.is_live():
                engine.process(np.array([self._slot]))
        return True

    def push_dtmf(self, digit: str, duration_ms: float = 0) -> None:
        """An out-of-band DTMF event (RFC 4733) for ``digit`` that has lasted
        ``duration_ms`` so far (its start is that long before now).  Ends a recording
        that has barge-in on, cut at the digit's start."""
        if not isinstance(digit, str) or len(digit) != 1 or digit.upper() not in DTMF_DIGITS:
            raise ValueError(f"digit must be one of {DTMF_DIGITS}, got {digit!r}")
        if (
            isinstance(duration_ms, bool)
            or not isinstance(duration_ms, (int, float))
            or not 0 <= duration_ms <= 1e9
        ):
            raise ValueError(f"duration_ms must be a number from 0 to 1e9, got {duration_ms!r}")
        with self._engine.lock:
            if self._state is not CallState.ANSWERED:
                self._check_open()
                return
            self._engine.process(np.array([self._slot]), partial=True)
            job = self._recording_job()
            if job is not None:
                job.out_of_band_digit(
                    digit.upper(), job.n - int(round(duration_ms * MEDIA_RATE / 1000))
                )
                self._cond.notify_all()

    @property
    def media_time(self) -> float:
        """Seconds of call media received since answer."""
        return self.media_samples() / MEDIA_RATE

    def media_samples(self) -> int:
        """Samples of call media received (and processed) since answer."""
        return self._engine.media_samples(self._slot)

    def pending_samples(self) -> int:
        """Samples of call media received but not processed yet (waiting for the engine's
        next tick): the channel's backlog."""
        return self._engine.pending(self._slot)

    # -- replay -------------------------------------------------------------------------

    @classmethod
    def replay(
        cls,
        path: str | os.PathLike[str],
        *,
        realtime: bool = False,
        hangup_at_end: bool = True,
        cipher: FileCipher | None = None,
        answer: bool = True,
        **kwargs: Any,
    ) -> CallChannel:
        """A channel whose inbound audio is the WAV file ``path``: ringing, then answered
        (unless ``answer=False``).  ``realtime``: play at the pace of the clock (a feeder
        thread pushes 20 ms frames); otherwise as fast as someone waits on the channel.
        ``hangup_at_end``: hang up when the file ends (otherwise silence follows)."""
        ch = cls(**kwargs)
        ch._replay = _Replay(path, realtime, hangup_at_end, cipher)
        ch.ring()
        if answer:
            ch.answer()
        return ch

    # -- hooks for the engine and the recorder -------------------------------------------

    def is_live(self) -> bool:
        """True when media follows the clock (pushed, or a real-time replay); False for
        a fast replay, which advances only while someone waits on the channel."""
        return self._replay is None or self._replay.realtime

    def _recording_job(self) -> Job | None:
        """The running job (not yet ended), if any."""
        return self._file_recorder.running_job()

    def _gap_clock(self) -> tuple[float, float] | None:
        """``(floor, slack)`` when the channel's clock reads ``max(floor,
        time.monotonic() - slack)``: the engine then fills the call's gaps itself, in
        one compiled pass for every such call (:meth:`Engine.watch_gaps`), with the
        arithmetic of :meth:`watchdog`, and calls neither :meth:`watchdog` nor
        :meth:`is_live` for the call (a subclass that overrides them, to be called,
        returns None here).  None for any other clock (a test's hand-driven one): the
        engine calls :meth:`watchdog` instead."""
        return (-float("inf"), 0.0) if self._clock is time.monotonic else None

    def watchdog(self) -> int:
        """Fill a gap of more than 60 ms in a live call's media with silence (engine
        lock held; the engine's worker calls this for channels that got no media).  One
        step: as much of the gap as the ring takes (at most
        :data:`recorder.engine.PIECE` samples), nothing processed here; the rest of a
        longer gap follows on the next ticks.  Returns the samples of silence queued."""
        if self._state is not CallState.ANSWERED or self._replay is not None:
            return 0
        due = int((self._clock() - self._answered_at) * MEDIA_RATE)
        return self._engine.fill_gap(self._slot, due)

    def poll(self) -> None:
        """Run the watchdog and process waiting media now (the engine does this every
        20 ms; useful with a hand-driven ``clock``).  A gap longer than the ring is
        filled and processed a ring at a time, the lock released between."""
        while True:
            with self._engine.lock:
                slot = np.array([self._slot])
                self._engine.process(slot)  # room for the gap's silence
                filled = self.watchdog()
                self._engine.process(slot)
                self._cond.notify_all()
            if not filled:
                return
            self._engine.let_others_in()

    def wake_waiters(self) -> None:
        """Wake the threads blocked on this channel (engine lock held)."""
        self._cond.notify_all()

    def check_call(self) -> None:
        """Raise Hangup if the call is IDLE, Error if it is closed or not ANSWERED."""
        self._check_open()
        if self._state is CallState.IDLE:
            raise Hangup("the call is IDLE")
        if self._state is not CallState.ANSWERED:
            raise Error(f"the call is {self._state.name}, not ANSWERED")

    @property
    def lock(self) -> threading.RLock:
        """The lock that guards this channel's and its recorder's state (its engine's)."""
        return self._engine.lock

    def begin_job(self, job: Job) -> None:
        """Start ``job`` on this channel's media (lock held by the caller): media
        received before it is not part of it."""
        self._engine.process(np.array([self._slot]), partial=True)
        job.attach(self._engine, self._slot, _HOLD_BACK)

    def end_job(self, job: Job, cause: Cause) -> None:
        """End ``job`` with ``cause`` after everything received so far (no-op if it has
        ended already); does not wait for its file."""
        with self._engine.lock:
            if job.ended:
                return
            self._engine.process(np.array([self._slot]), partial=True)
            job.end(cause)
            self._cond.notify_all()

    def wait(self, until: Callable[[], bool], deadline: int | None) -> bool:
        """Block until ``until()`` is true or the call is no longer ANSWERED (True), or
        until the media clock reaches sample ``deadline`` (False; None: no deadline).

        A live channel is served by the engine's worker, which wakes this thread when
        the job reports an event or the deadline is reached; a fast replay is pulled through the engine from here (one frame at a time,
        so the result is the same every time).  ``until`` is called with the engine lock
        held."""
        if not self.is_live():
            return self._pull_replay(until, deadline)
        with self._cond:
            self._engine.add_waiter(self._slot, self, deadline)
            self._waiters += 1
            try:
                while not until():
                    if deadline is not None and self.media_samples() >= deadline:
                        return False
                    if self._state is not CallState.ANSWERED:
                        break
                    self._cond.wait(_BACKSTOP)
            finally:
                self._waiters -= 1
                if not self._waiters:
                    self._engine.remove_waiter(self._slot)
        return True

    def _pull_replay(self, until: Callable[[], bool], deadline: int | None) -> bool:
        """Pull replay media through the engine until ``until()`` (True) or the deadline
        passes (False).  At the end of the file the call hangs up (if asked) without
        waiting for the recording's file: the caller does that."""
        slot = np.array([self._slot])
        replay = self._replay
        assert replay is not None
        while True:
            with self._engine.lock:
                if until() or self._state is not CallState.ANSWERED:
                    return True
                n = FRAME
                if deadline is not None:
                    n = min(n, deadline - self.media_samples())
                    if n <= 0:
                        return False
                chunk = replay.read(n)
                if chunk is None:
                    if replay.hangup_at_end:
                        self._hang_up()
                        return True
                    chunk = np.zeros(n, np.int16)
                self._engine.push(self._slot, chunk)
                self._engine.process(slot, partial=True)

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return f"<CallChannel{name} {self._state.name} media={self.media_time:.3f}s>"


class ChannelBatch:
    """Many call channels fed together: one frame for each of them in one call, the
    multi-channel form of :meth:`CallChannel.push` (as :class:`recorder.dsp.MultiDetector`
    is of the single detectors).

    A media gateway or an RTP receiver serving thousands of calls pushes a 2-D block
    (one row per channel) every 20 ms; the rows go into the engine's rings in one
    compiled call with the GIL released (A-law / mu-law decoded straight into them), so
    no Python runs per channel.  ``channel.push()`` stays the simple way for one call.

    Parameters
    ----------
    channels : sequence of CallChannel
        The channels, in row order; they must share one :class:`recorder.Engine`.
    codec : str, optional
        Default payload of :meth:`push`: 'alaw', 'ulaw' or 's16' (= 's16bit').  Default:
        the channels' own default codec, which must then be the same for all.

    Raises
    ------
    TypeError
        ``channels`` holds something that is not a :class:`CallChannel`.
    ValueError
        No channels, channels of different engines, an unknown ``codec``, or no
        ``codec`` while the channels' defaults differ.
    recorder.Error
        A channel is closed.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from recorder import CallChannel, ChannelBatch
    >>> root = tempfile.mkdtemp()
    >>> calls = [CallChannel(media_root=root) for _ in range(3)]
    >>> for ch in calls:
    ...     ch.ring(); ch.answer()
    >>> batch = ChannelBatch(calls)
    >>> batch.push(np.full((3, 160), 0xD5, np.uint8))    # 20 ms of A-law for each call
    >>> [ch.pending_samples() for ch in calls]
    [160, 160, 160]
    >>> for ch in calls:
    ...     ch.close()
    """

    def __init__(self, channels, codec: str | None = None) -> None:
        chans = list(channels)
        if not chans:
            raise ValueError("channels must hold at least one CallChannel")
        for i, ch in enumerate(chans):
            if not isinstance(ch, CallChannel):
                raise TypeError(f"channels[{i}] is a {type(ch).__name__}, not a CallChannel")
        engine = chans[0]._engine
        if any(ch._engine is not engine for ch in chans):
            raise ValueError("the channels of a ChannelBatch must share one Engine")
        if codec is None:
            defaults = {ch._codec for ch in chans}
            if len(defaults) != 1:
                raise ValueError(
                    f"the channels' default codecs differ ({', '.join(sorted(defaults))}): "
                    "give codec="
                )
            codec = defaults.pop()
        self._codec = CallChannel._check_codec(codec)
        self._engine = engine
        self._channels = tuple(chans)
        with engine.lock:
            for i, ch in enumerate(chans):
                if ch.closed:
                    raise Error(f"channels[{i}] is closed")
            self._slots = np.array([ch._slot for ch in chans], np.int64)
            self._gens = np.array([engine.generation(ch._slot) for ch in chans], np.int64)
        fast = [i for i, ch in enumerate(chans) if not ch.is_live()]
        self._fast = self._slots[fast] if fast else None

    @property
    def channels(self) -> tuple[CallChannel, ...]:
        """The channels, in row order."""
        return self._channels

    def __len__(self) -> int:
        return len(self._channels)

    def push(self, frames, codec: str | None = None, rows=None) -> None:
        """Inbound media for many channels at once: row ``r`` of ``frames`` is a frame of
        channel ``rows[r]`` (default: of channel ``r``; every channel).

        Parameters
        ----------
        frames : numpy.ndarray
            2-D, one row per channel, all rows the same length (any length; 160 samples
            is 20 ms): uint8 codes for 'alaw' / 'ulaw', int16 samples for 's16'.
        codec : str, optional
            'alaw', 'ulaw' or 's16' (= 's16bit'); default the batch's.
        rows : sequence of int, optional
            Which channels (indices into :attr:`channels`) the rows of ``frames`` are for;
            a channel named twice gets both rows, in order.

        Notes
        -----
        As with :meth:`CallChannel.push`, a row for a channel that is not ANSWERED is
        dropped, and a fast-replay channel's media is processed at once.  When a
        channel's ring is full (the engine more than about a second behind on it), the
        call processes just enough of that channel's oldest media to make room: no media
        is dropped, the backlog stays bounded, and a pusher faster than the engine is
        slowed to its pace.  Rows longer than :data:`recorder.engine.PIECE` samples are
        taken in pieces, the engine lock released between them.

        Raises
        ------
        TypeError
            ``frames`` of the wrong kind (int16 needed for 's16', bytes for G.711).
        ValueError
            ``frames`` not 2-D, a row count that does not match, a bad row index or an
            unknown codec.
        recorder.Error
            A channel of the batch has been closed.
        """
        codec = self._codec if codec is None else CallChannel._check_codec(codec)
        if codec == "s16":
            block = as_int16(frames, "frames")
        else:
            block = as_uint8(frames, "frames")
        if block.ndim != 2:
            raise ValueError(
                f"frames must be 2-D (channels, samples), got {block.ndim} dimension(s)"
            )
        if rows is None:
            slots, gens = self._slots, self._gens
        else:
            idx = slot_array(rows, len(self._channels), "rows")
            slots, gens = self._slots[idx], self._gens[idx]
        if block.shape[0] != slots.size:
            raise ValueError(
                f"frames has {block.shape[0]} rows for {slots.size} channels: one row each"
            )
        n = block.shape[1]
        engine = self._engine
        for pos in range(0, n, PIECE):
            if pos:
                engine.let_others_in()
            piece = block if n <= PIECE else np.ascontiguousarray(block[:, pos : pos + PIECE])
            with engine.lock:
                try:
                    engine.push_rows(slots, gens, piece, codec)
                except ValueError:
                    self._check_open()
                    raise
                if self._fast is not None:
                    engine.process(self._fast)

    def _check_open(self) -> None:
        for i, ch in enumerate(self._channels):
            if ch.closed:
                raise Error(f"channels[{i}] is closed")

    def __repr__(self) -> str:
        return f"<ChannelBatch of {len(self._channels)} channels, {self._codec}>"
