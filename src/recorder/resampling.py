"""Sample-rate conversion for telephony audio: rational polyphase FIR, streaming, exact.

* :func:`resample` converts a whole signal; :class:`Resampler` converts a stream chunk
  by chunk (``process(chunk, last=False)``, the shape of soxr's ``ResampleStream``);
  :class:`MultiResampler` converts many independent streams (one per call on a server)
  in one call with the GIL released.
* Any ``out_rate / in_rate = p / q`` with ``p, q <= 1000`` in lowest terms: 8000 Hz to and
  from 6000 (3/4), 11000 (11/8) and 11025 Hz (441/320), 44100 <-> 48000, ...
* int16 in gives int16 out (rounded to nearest, ties to even, saturated; the clipped
  samples are counted); float32 in gives float32 out (no clipping, any scale).
* Output sample ``k`` sits at input time ``k / out_rate`` (the filter delay is
  compensated); a finished stream of ``n`` samples gives ``round(n * p / q)`` samples
  (halves rounded up).  The signal is taken as silent before its first sample and after
  its last.
* Chunked output equals one-shot output sample for sample, for every chunking: each
  output is one dot product in a fixed order, whatever the chunking or the CPU.

The filter (see :func:`design`) keeps the telephone band (up to 3400 Hz; 2700 Hz for
6000 Hz) flat and removes everything that would alias.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from ._buffers import MAX_CHANNELS, as_int16, integer, sample_rate
from ._codecs import resample as _rs

if TYPE_CHECKING:
    from .types import BufferLike

__all__ = ["MAX_PQ", "FilterDesign", "MultiResampler", "Resampler", "design", "resample", "to_mono"]

#: Largest numerator / denominator of out_rate / in_rate in lowest terms.
MAX_PQ = 1000
#: Stopband attenuation the Kaiser design aims at (dB); rounding the taps per phase up to
#: a multiple of 8 adds some, and the tests check >= 90 dB on the real filters.
ATTENUATION_DB = 91.0
#: The telephone band's upper edge (Hz); see :func:`passband_edge`.
TELEPHONE_EDGE = 3400.0


@dataclass(frozen=True)
class FilterDesign:
    """A resampling filter.  Frequencies in Hz.

    ``prototype`` (float64, ``taps * p - 1`` values, symmetric, DC gain ``p``) is the
    low-pass at ``fine_rate = p * in_rate``; ``coef`` (float32, ``p x taps``) is its
    polyphase split: output ``k`` with ``k*q = n0*p + phase`` is
    ``sum_j coef[phase, j] * x[n0 - taps/2 + 1 + j]``.
    """

    in_rate: int
    out_rate: int
    p: int
    q: int
    taps: int
    passband: float
    stopband: float
    cutoff: float
    beta: float
    attenuation: float
    fine_rate: int
    prototype: np.ndarray
    coef: np.ndarray

    @property
    def delay(self) -> int:
        """Input samples a stream holds back before its output catches up."""
        return self.taps // 2


def _rate(value, name: str) -> int:
    # no upper bound here: ratio() limits what a resampler takes (p, q <= MAX_PQ)
    return sample_rate(value, name, 1, None, whole_floats=True)


def ratio(in_rate, out_rate) -> tuple[int, int]:
    """``(p, q)``: out_rate / in_rate in lowest terms; ValueError beyond :data:`MAX_PQ`."""
    fi, fo = _rate(in_rate, "in_rate"), _rate(out_rate, "out_rate")
    g = math.gcd(fi, fo)
    p, q = fo // g, fi // g
    if p > MAX_PQ or q > MAX_PQ:
        raise ValueError(
            f"{fi} Hz -> {fo} Hz is the ratio {p}/{q}; numerator and denominator must be "
            f"<= {MAX_PQ} in lowest terms (e.g. 8000 <-> 6000, 11000, 11025, 16000, 44100)"
        )
    return p, q


def passband_edge(in_rate, out_rate) -> float:
    """Passband edge in Hz: 3400 Hz, kept between 85 % and 90 % of the lower Nyquist."""
    nyq = min(_rate(in_rate, "in_rate"), _rate(out_rate, "out_rate")) / 2
    return min(max(TELEPHONE_EDGE, 0.85 * nyq), 0.9 * nyq)


def kaiser_beta(attenuation: float) -> float:
    """Kaiser's window parameter for a stopband attenuation in dB (Kaiser 1974)."""
    a = attenuation
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def kaiser_lowpass(numtaps: int, cutoff: float, beta: float, fs: float) -> np.ndarray:
    """Windowed-sinc low-pass (odd ``numtaps``, ``cutoff`` Hz at sample rate ``fs``),
    normalised to unit DC gain and made exactly symmetric."""
    n = np.arange(numtaps) - (numtaps - 1) / 2
    fc = 2.0 * cutoff / fs  # cutoff as a fraction of Nyquist
    h = fc * np.sinc(fc * n) * np.kaiser(numtaps, beta)
    h = 0.5 * (h + h[::-1])
    return h / h.sum()


def design(in_rate: Any, out_rate: Any) -> FilterDesign:
    """The filter used for ``in_rate -> out_rate`` (cached).

    Passband ``0 .. passband_edge()``, stopband from the lower Nyquist frequency on (no
    aliasing and no imaging), Kaiser window sized by Kaiser's formula for
    :data:`ATTENUATION_DB`, taps per phase rounded up to a multiple of 8, the spare
    length spent on more attenuation.  Same rate: a pass-through (one tap of 1).

    Parameters
    ----------
    in_rate, out_rate : int
        Sample rates in Hz (whole floats are taken); ``out_rate / in_rate`` in lowest
        terms must have numerator and denominator <= :data:`MAX_PQ`.

    Returns
    -------
    FilterDesign
        The filter (read-only arrays; the same object for the same rates).

    Raises
    ------
    TypeError
        For a rate that is not a number of Hz.
    ValueError
        For a rate that is not a positive whole number, or a ratio beyond :data:`MAX_PQ`.

    Examples
    --------
    >>> from recorder import resampling
    >>> d = resampling.design(8000, 6000)
    >>> (d.p, d.q, d.passband)
    (3, 4, 2700.0)
    """
    # checked before the cache: its key must be a plain int (no unhashable or 8000.0 keys)
    return _design(_rate(in_rate, "in_rate"), _rate(out_rate, "out_rate"))


@functools.lru_cache(maxsize=64)
def _design(fi: int, fo: int) -> FilterDesign:
    p, q = ratio(fi, fo)
    fine = p * fi
    if p == q:
        coef = np.zeros((1, 8), np.float32)
        coef[0, 3] = 1.0
        proto = np.zeros(7)
        proto[3] = 1.0
        return FilterDesign(fi, fo, 1, 1, 8, fi / 2, fi / 2, fi / 2, 0.0, math.inf, fi, proto, coef)
    f_pass = passband_edge(fi, fo)
    f_stop = min(fi, fo) / 2
    dw = 2 * math.pi * (f_stop - f_pass) / fine  # transition width, rad/sample
    numtaps = math.ceil((ATTENUATION_DB - 7.95) / (2.285 * dw)) + 1
    taps = -(-numtaps // p)
    taps += -taps % 8
    m = taps * p - 1  # prototype length (odd)
    atten = 7.95 + 2.285 * (m - 1) * dw
    beta = kaiser_beta(atten)
    cutoff = (f_pass + f_stop) / 2
    proto = kaiser_lowpass(m, cutoff, beta, fine) * p
    # tap j of phase ph is the prototype at fine time (taps/2 - 1 - j) * p + ph from the
    # centre; the one fine time left over (-taps*p/2) gets 0
    padded = np.concatenate(([0.0], proto))
    coef = np.ascontiguousarray(padded.reshape(taps, p)[::-1].T, dtype=np.float32)
    proto.setflags(write=False)
    coef.setflags(write=False)
    return FilterDesign(fi, fo, p, q, taps, f_pass, f_stop, cutoff, beta, atten, fine, proto, coef)


@functools.lru_cache(maxsize=64)
def _filter(in_rate: int, out_rate: int) -> _rs.Filter:
    d = design(in_rate, out_rate)
    return _rs.Filter(d.coef, d.p, d.q)


def _rs_total(d: FilterDesign, n: int) -> int:
    """Samples of a finished stream of n input samples: round(n*p/q), halves up."""
    return (2 * n * d.p + d.q) // (2 * d.q)


class Resampler:
    """Streaming sample-rate converter for one signal.

    ``process(chunk, last=False)`` takes the next samples and returns the output
    samples that are complete.  The output lags the input by :attr:`delay` input
    samples; ``last=True`` ends the stream and returns the rest, so the whole stream
    holds ``round(n * p / q)`` samples, exactly those :func:`resample` returns for the
    same input.  After ``last=True`` the object is ready for a new stream.  One object
    must not be used by two threads at once (RuntimeError); different objects run in
    parallel, the GIL released.

    Parameters
    ----------
    in_rate, out_rate : int
        Sample rates in Hz; ``out_rate / in_rate = p / q`` with ``p, q <= 1000`` in
        lowest terms.

    Attributes
    ----------
    in_rate, out_rate : int
        The rates.
    design : FilterDesign
        The filter.

    Raises
    ------
    TypeError
        If a rate is not a number.
    ValueError
        If a rate is not a positive whole number of Hz, or the ratio is out of reach.

    Examples
    --------
    >>> import numpy as np, recorder
    >>> r = recorder.Resampler(8000, 6000)
    >>> first = r.process(np.zeros(160, np.int16))
    >>> rest = r.process(np.zeros(0, np.int16), last=True)
    >>> first.size + rest.size
    120
    """

    def __init__(self, in_rate: int, out_rate: int):
        self.design = design(in_rate, out_rate)
        self.in_rate, self.out_rate = self.design.in_rate, self.design.out_rate
        self._stream = _rs.Stream(_filter(self.in_rate, self.out_rate))

    def process(self, chunk: BufferLike, last: bool = False) -> np.ndarray:
        """Feed the next samples; return the output samples that are now complete.

        Parameters
        ----------
        chunk : BufferLike
            1-D int16 or float32 samples (a numpy array; any other C-contiguous buffer is
            read as int16), any length including 0.
        last : bool, default False
            End the stream: the rest of the output comes back and the object is ready
            for a new stream.

        Returns
        -------
        numpy.ndarray
            The samples, same dtype as ``chunk`` (int16 rounded and saturated).

        Raises
        ------
        TypeError
            If ``chunk`` is not a buffer of samples.
        ValueError
            If ``chunk`` is not 1-D.
        RuntimeError
            If another thread is using this object.
        """
        return self._stream.process(chunk, last)

    def count(self, n: int, last: bool = False) -> int:
        """How many samples :meth:`process` returns for ``n`` more input samples.

        Parameters
        ----------
        n : int
            0 to 2**48.
        last : bool, default False
            As for :meth:`process`.

        Returns
        -------
        int

        Raises
        ------
        TypeError, ValueError
            If ``n`` is not an int in range.
        """
        return self._stream.count(n, last)

    def reset(self) -> None:
        """Start a new stream (forgets the input held back and the ``clipped`` count)."""
        self._stream.reset()

    def flush(self) -> np.ndarray:
        """End the stream: ``process(empty, last=True)`` (int16)."""
        return self._stream.process(np.empty(0, np.int16), True)

    @property
    def n_in(self) -> int:
        """Input samples of the current stream."""
        return self._stream.n_in

    @property
    def n_out(self) -> int:
        """Output samples of the current stream."""
        return self._stream.n_out

    @property
    def pending(self) -> int:
        """Samples ``last=True`` would still add."""
        return self._stream.pending

    @property
    def clipped(self) -> int:
        """int16 outputs saturated since construction or :meth:`reset`."""
        return self._stream.clipped

    @property
    def delay(self) -> int:
        """Input samples the output lags behind."""
        return self.design.delay

    def __repr__(self) -> str:
        return (
            f"Resampler({self.in_rate}, {self.out_rate}) "
            f"[{self.design.p}/{self.design.q}, {self.design.taps} taps/phase, "
            f"in {self.n_in}, out {self.n_out}]"
        )


class MultiResampler:
    """A bank of independent streaming converters sharing one filter, for servers
    converting many calls at once (each may start at any time).

    Each slot gives exactly what a :class:`Resampler` fed the same samples gives.  Every
    call runs with the GIL released.  Per-slot int64 arrays: :attr:`n_in`,
    :attr:`n_out`, :attr:`pending` (samples a flush would still give), :attr:`clipped`.

    Parameters
    ----------
    channels : int
        Slots, 1 to 1,000,000 (a slot takes a few kB).
    in_rate, out_rate : int
        As for :class:`Resampler`.

    Raises
    ------
    TypeError, ValueError
        If ``channels`` or a rate is not valid (as for :class:`Resampler`).

    Examples
    --------
    >>> import numpy as np, recorder
    >>> bank = recorder.MultiResampler(4, 8000, 11025)
    >>> out, counts = bank.process(np.zeros((2, 160), np.int16), rows=[0, 3])
    >>> out.shape[0], counts.shape
    (2, (2,))
    """

    def __init__(self, channels: int, in_rate: int, out_rate: int):
        channels = integer(channels, "channels", 1, MAX_CHANNELS)
        self.design = design(in_rate, out_rate)
        self.in_rate, self.out_rate = self.design.in_rate, self.design.out_rate
        self._bank = _rs.Bank(_filter(self.in_rate, self.out_rate), int(channels))

    @property
    def channels(self) -> int:
        """The number of slots."""
        return self._bank.channels

    def process(
        self, block: BufferLike, rows=None, last: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feed the next samples of some streams.

        Parameters
        ----------
        block : BufferLike
            int16 or float32, shape ``(k, n)``: row ``i`` continues the stream in slot
            ``rows[i]``.
        rows : sequence of int, optional
            ``k`` distinct slot numbers; None: all slots (``k == channels``).
        last : bool, default False
            End the streams of all the given rows (their slots are then ready for new
            streams).

        Returns
        -------
        out : numpy.ndarray
            Same dtype, shape ``(k, max(counts))``; row ``i`` holds ``counts[i]`` valid
            samples, then zeros (slots may be at different phases, so counts differ by
            one).
        counts : numpy.ndarray
            int64, shape ``(k,)``.

        Raises
        ------
        TypeError
            If ``block`` is not a buffer of samples.
        ValueError
            If shapes or slot numbers are wrong (out of range, repeated).
        RuntimeError
            If another thread is using this object.
        """
        return self._bank.process(block, rows, last)

    def counts(self, n: int, rows=None, last: bool = False) -> np.ndarray:
        """What a :meth:`process` call with ``n`` samples per row would return.

        Parameters
        ----------
        n : int
            0 to 2**48.
        rows, last
            As for :meth:`process`.

        Returns
        -------
        numpy.ndarray
            int64 counts, one per row.
        """
        return self._bank.counts(n, rows, last)

    def reset(self, rows=None) -> None:
        """Start the given slots (None: all) afresh, e.g. for a new call on that slot."""
        self._bank.reset(rows)

    def flush(self, rows=None) -> tuple[np.ndarray, np.ndarray]:
        """End the streams of ``rows`` (None: all slots): ``(out, counts)`` int16."""
        k = self.channels if rows is None else np.asarray(rows).reshape(-1).shape[0]
        return self._bank.process(np.empty((k, 0), np.int16), rows, True)

    @property
    def n_in(self) -> np.ndarray:
        """Input samples of each slot's current stream (int64)."""
        return self._bank.n_in

    @property
    def n_out(self) -> np.ndarray:
        """Output samples of each slot's current stream (int64)."""
        return self._bank.n_out

    @property
    def pending(self) -> np.ndarray:
        """Samples a flush would still give, per slot (int64)."""
        return self._bank.pending

    @property
    def clipped(self) -> np.ndarray:
        """int16 outputs saturated per slot since construction or reset (int64)."""
        return self._bank.clipped

    @property
    def delay(self) -> int:
        """Input samples held back by every stream."""
        return self.design.delay

    def __repr__(self) -> str:
        return (
            f"MultiResampler({self.channels}, {self.in_rate}, {self.out_rate}) "
            f"[{self.design.p}/{self.design.q}, {self.design.taps} taps/phase]"
        )


@overload
def resample(
    x: BufferLike, in_rate: int, out_rate: int, *, return_clipped: Literal[False] = ...
) -> np.ndarray: ...
@overload
def resample(
    x: BufferLike, in_rate: int, out_rate: int, *, return_clipped: Literal[True]
) -> tuple[np.ndarray, int]: ...
def resample(
    x: BufferLike, in_rate: int, out_rate: int, *, return_clipped: bool = False
) -> np.ndarray | tuple[np.ndarray, int]:
    """Convert a whole signal from ``in_rate`` to ``out_rate`` Hz.

    The result is identical to feeding :class:`Resampler` any chunking of ``x`` and
    ending with ``last=True``.

    Parameters
    ----------
    x : BufferLike
        int16 or float32 (a numpy array; any other C-contiguous buffer is read as
        int16); 1-D, or N-D with time on the last axis (each row converted on its own).
    in_rate, out_rate : int
        Sample rates in Hz; ``out_rate / in_rate = p / q`` with ``p, q <= 1000`` in
        lowest terms.
    return_clipped : bool, default False
        Also return how many int16 outputs were saturated.

    Returns
    -------
    y : numpy.ndarray
        Same dtype, ``round(n * p / q)`` samples on the last axis (halves up); int16
        output is rounded (ties to even) and saturated.
    clipped : int
        Only with ``return_clipped=True``: the saturated samples.

    Raises
    ------
    TypeError
        If ``x`` is not a buffer of samples, or a rate is not a number.
    ValueError
        If a rate is not a positive whole number of Hz, or the ratio is out of reach.

    Examples
    --------
    >>> import numpy as np, recorder
    >>> recorder.resample(np.zeros(160, np.int16), 8000, 11025).shape
    (221,)
    """
    arr = _rs.as_samples(x, "x")
    shape = arr.shape
    flat = arr.reshape(-1, shape[-1]) if arr.ndim > 1 else arr.reshape(1, -1)
    rows = flat.shape[0]
    d = design(in_rate, out_rate)
    if rows == 0:
        y = np.empty((0, _rs_total(d, shape[-1])), arr.dtype)
        clipped = 0
    elif rows == 1:
        r = Resampler(d.in_rate, d.out_rate)
        y = r.process(flat[0], True)
        clipped = r.clipped
    else:
        bank = MultiResampler(rows, d.in_rate, d.out_rate)
        y, _ = bank.process(flat, None, True)
        clipped = int(bank.clipped.sum())
    y = y.reshape(*shape[:-1], y.shape[-1])
    return (y, clipped) if return_clipped else y


def to_mono(pcm: Any, in_rate: Any, out_rate: Any) -> np.ndarray:
    """One channel of int16 at ``out_rate``: what the detectors and a call's media take.

    The one mono conversion of the package (a replayed call, ``recorder dtmf``/``info``).

    Parameters
    ----------
    pcm : numpy.ndarray
        int16 samples: 1-D (mono) or ``(frames, channels)`` as :func:`recorder.wav.read`
        returns them.
    in_rate, out_rate : int
        Sample rates in Hz (see :func:`resample`).

    Returns
    -------
    numpy.ndarray
        1-D int16: the mean of the channels (rounded to nearest, ties to even), resampled
        when the rates differ.

    Raises
    ------
    ValueError
        For more than two dimensions, or rates :func:`resample` does not take.
    TypeError
        For samples that are not int16.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import resampling
    >>> stereo = np.array([[100, 300], [-1, -2]], np.int16)
    >>> resampling.to_mono(stereo, 8000, 8000).tolist()
    [200, -2]
    """
    x = as_int16(pcm, "pcm")
    if x.ndim > 2:
        raise ValueError(f"pcm must be 1-D or (frames, channels), got {x.ndim} dimensions")
    if x.ndim == 2:
        x = np.rint(x.astype(np.float64).mean(axis=1)).astype(np.int16)
    if _rate(in_rate, "in_rate") != _rate(out_rate, "out_rate"):
        x = resample(x, in_rate, out_rate)
    return np.ascontiguousarray(x, np.int16)
