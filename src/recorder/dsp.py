"""Telephony detectors: DTMF digits and silence / activity, streaming, compiled, with the
GIL released.

Levels are in dBm0: 0 dBm0 is an RMS of 16139 in 16-bit linear (the A-law digital
milliwatt); a full-scale sine is +3.14 dBm0.  Sample positions (``start``, ``end``) count
samples from the start of the stream (or from the last ``reset()``), whatever the
chunking: feeding a signal in any chunks gives the same digits, times and decisions.

DTMF (:class:`DtmfDetector`, :func:`detect_dtmf`)
    All 16 digits.  Defaults: tones from ``min_level_dbm0`` (-42 dBm0) per tone up;
    twist up to 10 dB with the high tone weaker, 6 dB with the low tone weaker (ITU-T
    Q.24 asks for 8 and 4: the margin keeps digits that are also off-frequency and
    noisy); tone frequencies within 2.0 % (Q.24: accept 1.5 %, reject 3.5 %; the
    frequency is measured from the phase advance of each tone, so the limit is sharp);
    tones of 40 ms or more are detected, tones shorter than ~26 ms never are; a pause of
    20 ms or more separates two digits, a dropout of 10 ms or less does not; dial tone
    (350 + 440 Hz) under the digit is tolerated at the digit's level.

    A digit is reported 28 to 38 ms after it starts, with its ``start`` dated back to
    the sample, so a recorder can cut the file at the digit's start.

Silence (:class:`SilenceDetector`, :func:`audio_segments`)
    Every 5 ms, the DC-free level of the last 10 ms is compared with ``threshold_dbm0``
    (default -42 dBm0).  Audio must last ``min_audio_ms`` (20 ms) to count, so clicks
    and spikes are silence; it is then dated back to where it began.  The silence run
    ends where audio begins and starts where the level falls below the threshold, to
    +-10 ms.

Many channels (:class:`MultiDetector`)
    A bank of independent channel states; one call runs a 2-D block (one row per
    channel, each row for any slot) and returns numpy arrays, no Python work per channel.
    Results are identical to the single-channel detectors fed the same samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ._buffers import MAX_CHANNELS, as_int16, integer, sample_rate, slot_array
from ._codecs import detect as _k

if TYPE_CHECKING:
    from .types import BufferLike

__all__ = [
    "DEFAULT_SILENCE_THRESHOLD_DBM0",
    "DTMF_KEYS",
    "Digit",
    "DtmfDetector",
    "MultiDetector",
    "MultiResult",
    "Onsets",
    "SilenceDetector",
    "audio_segments",
    "detect_dtmf",
    "onsets_across",
]

#: The 16 DTMF digits, by row (697, 770, 852, 941 Hz) and column (1209, 1336, 1477, 1633 Hz).
#: The one definition: ``recorder.channel.DTMF_DIGITS`` is made from it, and the compiled
#: detector's table (``cr_dtmf_keys`` in src/_codecs/detect_k.h) is checked against it by
#: the tests.
DTMF_KEYS = "123A456B789C*0#D"

#: Default silence threshold (dBm0, level of a 10 ms window).  Chosen by measurement
#: (bench/silence.py, bench/RESULTS.md): steady line noise at -50 dBm0 stays below it with
#: margin (over eleven 60 s runs the loudest 10 ms window of white 300-3400 Hz noise was
#: -47.1 dBm0, of pink 20-4000 Hz noise -44.6 dBm0: 2.6 dB below); speech at -35 dBm0
#: active level in -55 dBm0 noise is heard (40 of 40 prompts); the pauses it finds in real
#: speech agree with ffmpeg's silencedetect as well as any threshold from -50 to -36 does
#: (89 % of boundaries within 20 ms, median 4.5 ms) and with a sample-by-sample oracle to
#: within 20 ms (tests/test_silence.py).
DEFAULT_SILENCE_THRESHOLD_DBM0 = -42.0

_DTMF_DEFAULTS = {
    "min_level_dbm0": -42.0,
    "normal_twist_db": 10.0,
    "reverse_twist_db": 6.0,
    "freq_tolerance": 0.02,
}
# internal tuning, not public options
_REL_PEAK_DB = 6.0
_FRAC_HIT = 0.8
_FRAC_PRESENT = 0.3


class Digit(NamedTuple):
    """A DTMF digit: ``start`` and ``end`` are sample indices (end exclusive) from the start
    of the stream; ``end`` is None while the digit is still sounding.  ``level_dbm0`` is
    the total level of its two tones (two tones at -10 dBm0 each give -7 dBm0)."""

    digit: str
    start: int
    end: int | None
    level_dbm0: float


def _check_rate(rate, what):
    return sample_rate(rate, f"{what} rate", 8000, 48000, multiple=200)


def _number(value, name, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    value = float(value)
    if not (lo <= value <= hi):
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _dtmf_config(rate, min_level_dbm0, normal_twist_db, reverse_twist_db, freq_tolerance):
    rate = _check_rate(rate, "DTMF")
    return _k.DtmfConfig(
        rate,
        _number(min_level_dbm0, "min_level_dbm0", -80.0, 0.0),
        _number(normal_twist_db, "normal_twist_db", 0.0, 20.0),
        _number(reverse_twist_db, "reverse_twist_db", 0.0, 20.0),
        _REL_PEAK_DB,
        _number(freq_tolerance, "freq_tolerance", 0.001, 0.1),
        _FRAC_HIT,
        _FRAC_PRESENT,
    )


def _silence_config(rate, threshold_dbm0, min_audio_ms):
    rate = _check_rate(rate, "silence detector")
    return _k.SilenceConfig(
        rate,
        _number(threshold_dbm0, "threshold_dbm0", -90.0, 3.0),
        _number(min_audio_ms, "min_audio_ms", 0.0, 1000.0),
    )


def _pcm1(pcm):
    x = as_int16(pcm, "pcm")
    if x.ndim != 1:
        raise ValueError(f"pcm must be one channel (1-D), got shape {x.shape}")
    return x


def _digits(ev) -> list[Digit]:
    return [
        Digit(chr(d), int(s), int(e), round(float(lv), 2))
        for d, s, e, lv in zip(ev["digit"], ev["start"], ev["end"], ev["level"], strict=True)
    ]


class DtmfDetector:
    """Streaming DTMF receiver for one channel.

    ``process(pcm)`` takes the next chunk (any length, any C-contiguous int16 buffer) and
    returns the digits that *ended* in it, as :class:`Digit` with sample-exact ``start``
    and ``end``.  A digit is known earlier, as soon as it is confirmed (28..38 ms after it
    starts): :attr:`current` is then the digit in progress (``end`` None) and
    :attr:`started` lists the digits confirmed during the last ``process`` call, which is
    what a recorder needs to stop and cut at the digit's start.  ``finish()`` ends the
    stream (a digit still sounding ends at the last sample).

    Parameters
    ----------
    rate : int, default 8000
        Sample rate in Hz: a multiple of 200 from 8000 to 48000.
    min_level_dbm0 : float, default -42
        Lowest level of each tone, -80..0.
    normal_twist_db : float, default 10
        How much weaker the high tone may be, 0..20 dB.
    reverse_twist_db : float, default 6
        How much weaker the low tone may be, 0..20 dB.
    freq_tolerance : float, default 0.02
        Relative frequency tolerance, 0.001..0.1.

    Attributes
    ----------
    rate : int
        The sample rate.
    started : list of Digit
        Digits confirmed during the last :meth:`process` call (``end`` None).

    Raises
    ------
    TypeError
        For an unknown option, or a rate or option that is not a number.
    ValueError
        For a rate or option out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import dsp
    >>> t = np.arange(800) / 8000
    >>> tone = (6000 * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 1209 * t))).astype(np.int16)
    >>> det = dsp.DtmfDetector()
    >>> det.process(np.concatenate([tone, np.zeros(800, np.int16)]))[0].digit
    '1'
    """

    def __init__(self, rate: int = 8000, **options: float):
        unknown = set(options) - set(_DTMF_DEFAULTS)
        if unknown:
            raise TypeError(
                f"unknown option(s) {sorted(unknown)}; allowed: {sorted(_DTMF_DEFAULTS)}"
            )
        self._conf = _dtmf_config(rate, **{**_DTMF_DEFAULTS, **options})
        self.rate = int(rate)
        self._st = _k.DtmfState(self._conf)
        self.started: list[Digit] = []

    def _run(self, ev) -> list[Digit]:
        starts = ev[ev["kind"] == _k.DIGIT_START]
        self.started = [
            Digit(chr(d), int(s), None, round(float(lv), 2))
            for d, s, lv in zip(starts["digit"], starts["start"], starts["level"], strict=True)
        ]
        return _digits(ev[ev["kind"] == _k.DIGIT_END])

    def process(self, pcm: BufferLike) -> list[Digit]:
        """Feed the next chunk.

        Parameters
        ----------
        pcm : BufferLike
            1-D int16 samples, any length.

        Returns
        -------
        list of Digit
            The digits that ended in this chunk, with sample-exact ``start`` and ``end``.

        Raises
        ------
        TypeError
            If ``pcm`` is not a buffer of int16 samples.
        ValueError
            If ``pcm`` is not 1-D.
        """
        return self._run(self._st.process(_pcm1(pcm)))

    def finish(self) -> list[Digit]:
        """End of stream: returns the digit still in progress, if any, ended."""
        return self._run(self._st.finish())

    def reset(self) -> None:
        """Forget everything; sample positions count from zero again."""
        self._st.reset()
        self.started = []

    @property
    def current(self) -> Digit | None:
        """The confirmed digit still sounding (``end`` None), or None."""
        cur = self._st.current
        if cur is None:
            return None
        return Digit(DTMF_KEYS[cur[0]], int(cur[1]), None, round(float(cur[2]), 2))

    @property
    def samples(self) -> int:
        """Samples processed since the start (or the last reset)."""
        return int(self._st.samples)


def detect_dtmf(pcm: BufferLike, rate: int = 8000, **options: float) -> list[Digit]:
    """All DTMF digits in a signal, with their start and end sample and level.

    Parameters
    ----------
    pcm : BufferLike
        One channel of int16 samples (1-D).
    rate : int, default 8000
        Sample rate in Hz: a multiple of 200 from 8000 to 48000.
    **options
        Those of :class:`DtmfDetector`.

    Returns
    -------
    list of Digit
        In order; a digit still sounding at the end ends at the last sample.

    Raises
    ------
    TypeError, ValueError
        As :class:`DtmfDetector` and its ``process``.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import dsp
    >>> dsp.detect_dtmf(np.zeros(8000, np.int16))
    []
    """
    det = DtmfDetector(rate, **options)
    return det.process(pcm) + det.finish()


_SILENCE_DEFAULTS = {"threshold_dbm0": DEFAULT_SILENCE_THRESHOLD_DBM0, "min_audio_ms": 20.0}


def _silence_options(options):
    unknown = set(options) - set(_SILENCE_DEFAULTS)
    if unknown:
        raise TypeError(
            f"unknown option(s) {sorted(unknown)}; allowed: {sorted(_SILENCE_DEFAULTS)}"
        )
    return {**_SILENCE_DEFAULTS, **options}


class SilenceDetector:
    """Streaming silence / activity detector for one channel.

    Every 5 ms the DC-free level of the last 10 ms is measured; at or above
    ``threshold_dbm0`` the window is active.  ``min_audio_ms`` (default 20) of activity is
    needed before it counts as audio, so clicks and spikes are silence; audio is then
    dated back to where it began.  Audio ends at the first window below the threshold.

    ``process(pcm)`` returns the 10 ms windows completed in the chunk as a structured
    array (``start`` sample, ``level`` dBm0, ``active``).  The state after it:

    * :attr:`silence_ms` - the current run of silence, in ms (0 while in audio): what
      ``milliseconds_max_silence`` and, before any audio, ``milliseconds_initial_silence``
      are compared with.  While a possible onset is being confirmed the run is counted
      only up to it, so the run never overshoots because of a pending decision.
    * :attr:`silence_start` - the sample at which that run began (exact cut point).
    * :attr:`audio_detected` - whether any audio was seen since the start / reset.
    * :attr:`in_audio`, :attr:`audio_start`, :attr:`level_dbm0` (last window).
    * :attr:`changes` - audio/silence changes in the last call: ``(kind, sample)`` with
      kind ``"audio"`` or ``"silence"``.

    Parameters
    ----------
    rate : int, default 8000
        Sample rate in Hz: a multiple of 200 from 8000 to 48000.
    threshold_dbm0 : float, default -42
        Level from which a window is active, -90..3 dBm0.
    min_audio_ms : float, default 20
        Activity needed before it counts as audio, 0..1000 ms.

    Raises
    ------
    TypeError
        For an unknown option, or a rate or option that is not a number.
    ValueError
        For a rate or option out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import dsp
    >>> det = dsp.SilenceDetector()
    >>> windows = det.process(np.zeros(8000, np.int16))
    >>> det.silence_ms, det.audio_detected
    (1000.0, False)
    """

    def __init__(self, rate: int = 8000, **options: float):
        opts = _silence_options(options)
        self.rate = _check_rate(rate, "silence detector")
        self.threshold_dbm0 = float(opts["threshold_dbm0"])
        self.min_audio_ms = float(opts["min_audio_ms"])
        self._conf = _silence_config(rate, opts["threshold_dbm0"], opts["min_audio_ms"])
        self._st = _k.SilenceState(self._conf)
        self.changes: list[tuple[str, int]] = []

    def process(self, pcm: BufferLike) -> np.ndarray:
        """Feed the next chunk.

        Parameters
        ----------
        pcm : BufferLike
            1-D int16 samples, any length.

        Returns
        -------
        numpy.ndarray
            The 10 ms windows completed in this chunk, a structured array with fields
            ``start`` (int64 sample), ``level`` (float32 dBm0) and ``active`` (bool).

        Raises
        ------
        TypeError
            If ``pcm`` is not a buffer of int16 samples.
        ValueError
            If ``pcm`` is not 1-D.
        """
        frames, ev = self._st.process(_pcm1(pcm))
        self.changes = [
            ("audio" if k == _k.AUDIO_START else "silence", int(s))
            for k, s in zip(ev["kind"], ev["start"], strict=True)
        ]
        out = np.empty(len(frames), dtype=[("start", "i8"), ("level", "f4"), ("active", "?")])
        out["start"] = frames["start"]
        out["level"] = frames["level"]
        out["active"] = frames["active"] != 0
        return out

    def reset(self) -> None:
        """Forget everything; sample positions count from zero again."""
        self._st.reset()
        self.changes = []

    @property
    def silence_ms(self) -> float:
        """The current run of silence in ms (0 while in audio)."""
        return self._st.silence_samples * 1000.0 / self.rate

    @property
    def silence_samples(self) -> int:
        """The current run of silence in samples (0 while in audio)."""
        return int(self._st.silence_samples)

    @property
    def silence_start(self) -> int | None:
        """First sample of the current silence run (None while in audio)."""
        return None if self._st.in_audio else int(self._st.silence_start)

    @property
    def audio_detected(self) -> bool:
        """Whether any audio was seen since the start (or the last reset)."""
        return self._st.audio_seen

    @property
    def in_audio(self) -> bool:
        """Whether the signal is in audio now."""
        return self._st.in_audio

    @property
    def audio_start(self) -> int | None:
        """First sample of the current run of audio (None while in silence)."""
        return None if not self._st.in_audio else int(self._st.audio_start)

    @property
    def level_dbm0(self) -> float:
        """Level of the last 10 ms window, dBm0."""
        return float(self._st.level)

    @property
    def samples(self) -> int:
        """Samples processed since the start (or the last reset)."""
        return int(self._st.samples)


def audio_segments(pcm: BufferLike, rate: int = 8000, **options: float) -> np.ndarray:
    """The runs of audio in a signal, with the decisions of :class:`SilenceDetector`.

    Parameters
    ----------
    pcm : BufferLike
        One channel of int16 samples (1-D).
    rate : int, default 8000
        Sample rate in Hz: a multiple of 200 from 8000 to 48000.
    **options
        Those of :class:`SilenceDetector`.

    Returns
    -------
    numpy.ndarray
        int64, shape ``(n, 2)``: ``[start, end)`` samples of each run of audio.

    Raises
    ------
    TypeError, ValueError
        As :class:`SilenceDetector` and its ``process``.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import dsp
    >>> dsp.audio_segments(np.zeros(8000, np.int16)).shape
    (0, 2)
    """
    det = SilenceDetector(rate, **options)
    x = _pcm1(pcm)
    det.process(x)
    segs, start = [], None
    for kind, s in det.changes:
        if kind == "audio":
            start = s
        elif start is not None:
            segs.append((start, s))
            start = None
    if start is not None:
        segs.append((start, len(x)))
    return np.array(segs, dtype=np.int64).reshape(-1, 2)


# ---------------------------------------------------------------- many channels ----

DIGIT_DTYPE = np.dtype(
    [
        ("row", "i4"),
        ("slot", "i8"),
        ("digit", "U1"),
        ("start", "i8"),
        ("end", "i8"),
        ("level", "f4"),
    ]
)
CHANGE_DTYPE = np.dtype([("row", "i4"), ("slot", "i8"), ("start", "i8")])


class Onsets(NamedTuple):
    """What one :meth:`MultiDetector.onsets` call found, row by row of the block: the
    compact summary a recorder needs every 20 ms (positions are samples since the slot's
    last ``reset``).

    * ``silence_samples`` (k,) int64 - the current run of silence.
    * ``audio_seen`` (k,) uint8 - 1 once audio was heard since the reset.
    * ``digit_start`` (k,) int64 - start of the earliest digit confirmed in this call
      (-1: none); ``digit`` (k,) int32 - its character code (0: none).
    * ``audio_start`` (k,) int64 - the first audio onset in this call (-1: none).
    """

    silence_samples: np.ndarray
    audio_seen: np.ndarray
    digit_start: np.ndarray
    digit: np.ndarray
    audio_start: np.ndarray


class MultiResult(NamedTuple):
    """What one :meth:`MultiDetector.process` call found, row by row of the block.

    * ``silence_ms`` (k,) float64 - current silence run in ms (0 while in audio).
    * ``silence_samples`` (k,) int64 - the same in samples.
    * ``in_audio``, ``audio_seen``, ``digit_active`` (k,) bool; ``level_dbm0`` (k,) float32.
    * ``digits`` - digits confirmed in this call: (row, slot, digit, start, end, level);
      ``end`` is -1 unless the digit also ended in this call.
    * ``ended`` - digits that ended in this call, same fields, ``end`` set.
    * ``audio_starts``, ``silence_starts`` - changes in this call: (row, slot, start).
    """

    silence_ms: np.ndarray
    silence_samples: np.ndarray
    in_audio: np.ndarray
    audio_seen: np.ndarray
    digit_active: np.ndarray
    level_dbm0: np.ndarray
    digits: np.ndarray
    ended: np.ndarray
    audio_starts: np.ndarray
    silence_starts: np.ndarray


def onsets_across(
    detectors: Sequence[MultiDetector], block: np.ndarray, rows: np.ndarray
) -> Onsets:
    """:meth:`MultiDetector.onsets` over slots kept in several detectors, in one call:
    the detectors' slots are numbered one after the other (the first detector's
    ``0 .. channels - 1``, then the next one's, ...), and row ``i`` of ``block`` continues
    slot ``rows[i]``.  Rows of one detector that follow each other run together.

    Raises
    ------
    TypeError
        If ``block`` is not a C-contiguous 2-D int16 numpy array, ``rows`` not a 1-D
        int64 numpy array, or a detector not a :class:`MultiDetector`.
    ValueError
        If no detectors (or more than 62), or the slots are out of range, repeated or
        not one per row.
    """
    if not (
        isinstance(block, np.ndarray)
        and block.dtype == np.int16
        and block.ndim == 2
        and block.flags.c_contiguous
    ):
        raise TypeError("block must be a C-contiguous 2-D int16 numpy array")
    if not (isinstance(rows, np.ndarray) and rows.dtype == np.int64 and rows.ndim == 1):
        raise TypeError("rows must be a 1-D int64 numpy array")
    if not detectors:
        raise ValueError("detectors must hold at least one MultiDetector")
    for i, d in enumerate(detectors):
        if not isinstance(d, MultiDetector):
            raise TypeError(f"detectors[{i}] is a {type(d).__name__}, not a MultiDetector")
    k = block.shape[0]
    out = Onsets(
        np.empty(k, np.int64),
        np.empty(k, np.uint8),
        np.empty(k, np.int64),
        np.empty(k, np.int32),
        np.empty(k, np.int64),
    )
    _k.onsets([d._m for d in detectors], block, np.ascontiguousarray(rows), *out)
    return out


def _digit_records(ev, slots):
    out = np.empty(len(ev), DIGIT_DTYPE)
    out["row"] = ev["row"]
    out["slot"] = slots[ev["row"]] if len(ev) else 0
    out["digit"] = ev["digit"].astype(np.uint32).view("U1") if len(ev) else ""
    out["start"] = ev["start"]
    out["end"] = ev["end"]
    out["level"] = ev["level"]
    return out


def _change_records(ev, slots):
    out = np.empty(len(ev), CHANGE_DTYPE)
    out["row"] = ev["row"]
    out["slot"] = slots[ev["row"]] if len(ev) else 0
    out["start"] = ev["start"]
    return out


class MultiDetector:
    """DTMF and silence detection for many channels at once (a recording server).

    ``MultiDetector(channels, rate=8000, dtmf=True, silence=True, **silence_options)``
    holds ``channels`` independent slots (1 to 1,000,000; a slot takes about 700 bytes).
    Slot numbers out of range raise ValueError.  ``process(block, rows=None)`` runs ``block``
    (int16, shape (k, n): k channels of n samples, typically 160 = 20 ms) on slots
    ``rows`` (k distinct slot numbers; None means all slots, k == channels) and returns a
    :class:`MultiResult` of numpy arrays.  Each slot counts its own samples from its last
    ``reset``, so channels may start at different times and receive chunks of any length.
    The per-row results are exactly those of a :class:`DtmfDetector` and a
    :class:`SilenceDetector` fed the same samples.

    Detection latency: see the module docstring (a digit is reported 28..38 ms after
    its start, with its start sample).

    Parameters
    ----------
    channels : int
        Slots, 1 to 1,000,000.
    rate : int, default 8000
        Sample rate in Hz: a multiple of 200 from 8000 to 48000.
    dtmf, silence : bool, default True
        Which detectors run (at least one).
    dtmf_options : dict, optional
        Options of :class:`DtmfDetector`.
    **silence_options
        Options of :class:`SilenceDetector`.

    Raises
    ------
    TypeError
        For an unknown option, or an argument that is not a number.
    ValueError
        For an argument out of range, or neither detector enabled.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import dsp
    >>> m = dsp.MultiDetector(100)
    >>> r = m.process(np.zeros((2, 160), np.int16), rows=[7, 42])
    >>> r.silence_ms.tolist(), len(r.digits)
    ([20.0, 20.0], 0)
    """

    def __init__(
        self,
        channels: int,
        rate: int = 8000,
        dtmf: bool = True,
        silence: bool = True,
        *,
        dtmf_options: dict | None = None,
        **silence_options,
    ):
        channels = integer(channels, "channels", 1, MAX_CHANNELS)
        if not (dtmf or silence):
            raise ValueError("at least one of dtmf and silence must be enabled")
        self.rate = _check_rate(rate, "detector")
        self.channels = int(channels)
        dopts = dict(dtmf_options or {})
        unknown = set(dopts) - set(_DTMF_DEFAULTS)
        if unknown:
            raise TypeError(
                f"unknown DTMF option(s) {sorted(unknown)}; allowed: {sorted(_DTMF_DEFAULTS)}"
            )
        dconf = _dtmf_config(rate, **{**_DTMF_DEFAULTS, **dopts}) if dtmf else None
        sopts = _silence_options(silence_options)
        sconf = (
            _silence_config(rate, sopts["threshold_dbm0"], sopts["min_audio_ms"])
            if silence
            else None
        )
        self.dtmf = bool(dtmf)
        self.silence = bool(silence)
        self._m = _k.MultiState(self.channels, dconf, sconf)
        self._all = np.arange(self.channels, dtype=np.int64)
        self._ev = np.empty(0, _k.EVENT_DTYPE)

    def _rows(self, rows, k):
        if rows is None:
            if k != self.channels:
                raise ValueError(
                    f"block has {k} rows: without rows= it must have one per channel ({self.channels})"
                )
            return self._all
        r = slot_array(rows, self.channels)
        if len(r) != k:
            raise ValueError(f"rows has {len(r)} entries for a block of {k} rows")
        return r

    def process(self, block: BufferLike, rows=None) -> MultiResult:
        """Run the next chunk of each listed slot.

        Parameters
        ----------
        block : BufferLike
            int16, shape ``(k, n)``: row ``i`` continues the stream of slot ``rows[i]``.
        rows : sequence of int, optional
            ``k`` distinct slot numbers; None: all slots (``k == channels``).

        Returns
        -------
        MultiResult
            numpy arrays, row by row of ``block``.

        Raises
        ------
        TypeError
            If ``block`` is not a buffer of int16 samples.
        ValueError
            If ``block`` is not 2-D, or the slots are out of range, repeated or not one
            per row.
        """
        x = as_int16(block, "block")
        if x.ndim != 2:
            raise ValueError(f"block must be 2-D (channels, samples), got shape {x.shape}")
        k, n = x.shape
        if n > 1 << 28:
            raise ValueError(f"block rows of {n} samples: feed at most {1 << 28} samples per call")
        slots = self._rows(rows, k)
        ev, silence, flags, level = self._run(x, slots)
        return self._result(ev, slots, silence, flags, level)

    def _run(self, x: np.ndarray, slots: np.ndarray):
        """The detectors over ``x`` for ``slots``: (events, silence, flags, level)."""
        k, n = x.shape
        need = self._m.max_events(k, n)
        if len(self._ev) < need:
            self._ev = np.empty(need, _k.EVENT_DTYPE)
        silence = np.empty(k, np.int64)
        flags = np.empty(k, np.uint8)
        level = np.empty(k, np.float32)
        nev = self._m.process(x, slots, self._ev, silence, flags, level)
        return self._ev[:nev], silence, flags, level

    def onsets(self, block: np.ndarray, rows: np.ndarray) -> Onsets:
        """Run the next chunk of each listed slot, like :meth:`process`, and return only
        the per-row summary (:class:`Onsets`): no event records are built, so a call
        costs a few numpy operations besides the detectors themselves (a recording
        engine calls this for every 20 ms of every call).

        Parameters
        ----------
        block : numpy.ndarray
            int16, C-contiguous, shape ``(k, n)``: row ``i`` continues slot ``rows[i]``.
        rows : numpy.ndarray
            int64, C-contiguous, ``k`` distinct slot numbers.

        Returns
        -------
        Onsets
            numpy arrays, row by row of ``block``.

        Raises
        ------
        TypeError
            If ``block`` or ``rows`` is not such an array.
        ValueError
            If the slots are out of range, repeated or not one per row.
        """
        return onsets_across([self], block, rows)

    def _result(self, ev, slots, silence, flags, level):
        kind = ev["kind"]
        started = _digit_records(ev[kind == _k.DIGIT_START], slots)
        ended = _digit_records(ev[kind == _k.DIGIT_END], slots)
        if len(started) and len(ended):
            # a digit that started and ended in the same call: give it its end
            key_s = started["row"].astype(np.int64) * (1 << 40) + started["start"]
            key_e = ended["row"].astype(np.int64) * (1 << 40) + ended["start"]
            _, i_s, i_e = np.intersect1d(key_s, key_e, assume_unique=False, return_indices=True)
            started["end"][i_s] = ended["end"][i_e]
        return MultiResult(
            silence_ms=silence * (1000.0 / self.rate),
            silence_samples=silence,
            in_audio=(flags & 1).astype(bool),
            audio_seen=(flags & 2).astype(bool),
            digit_active=(flags & 4).astype(bool),
            level_dbm0=level,
            digits=started,
            ended=ended,
            audio_starts=_change_records(ev[kind == _k.AUDIO_START], slots),
            silence_starts=_change_records(ev[kind == _k.SILENCE_START], slots),
        )

    def reset(self, rows=None) -> None:
        """Start these slots afresh (None: all): a new call on the slot."""
        self._m.reset(self._all if rows is None else slot_array(rows, self.channels))

    def finish(self, rows=None) -> np.ndarray:
        """End of stream on these slots: the digits still in progress, ended (``ended``
        records; ``row`` indexes ``rows``)."""
        r = self._all if rows is None else slot_array(rows, self.channels)
        return _digit_records(self._m.finish(r), r)

    def current_digit(self, slot: int) -> Digit | None:
        """The confirmed digit still sounding on ``slot`` (``end`` None), or None."""
        cur = self._m.current(integer(slot, "slot", 0, self.channels - 1))
        if cur is None:
            return None
        return Digit(DTMF_KEYS[cur[0]], int(cur[1]), None, round(float(cur[2]), 2))
