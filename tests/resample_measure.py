"""Measuring a resampler with sines: passband gain and alias / image rejection.

Used by tests/test_resample.py and bench/resample.py (which measures our filter and the
peers' the same way).  Amplitudes come from a Kaiser-windowed (beta 20) DFT at the exact
frequency over the middle of the output, so leakage and quantisation noise stay far
below -120 dB and the filter delay does not matter.
"""

from __future__ import annotations

import numpy as np

BETA = 20.0


def tone(n: int, freq: float, rate: float, amp: float = 0.5) -> np.ndarray:
    """``amp * cos(2 pi freq t)`` sampled at ``rate``, float64."""
    return amp * np.cos(2 * np.pi * freq / rate * np.arange(n))


def amplitude(y: np.ndarray, freq: float, rate: float) -> float:
    """Amplitude of the sinusoid at ``freq`` in y (0 < freq < rate/2)."""
    y = np.asarray(y, dtype=np.float64)
    w = np.kaiser(len(y), BETA)
    z = np.dot(y * w, np.exp(-2j * np.pi * freq / rate * np.arange(len(y))))
    return 2 * abs(z) / w.sum()


def middle(y: np.ndarray, frac: float = 0.15) -> np.ndarray:
    """y without its first and last ``frac`` (start-up and end effects)."""
    cut = int(len(y) * frac)
    return y[cut : len(y) - cut]


def fold(freq: float, rate: float) -> float:
    """Where a component at ``freq`` lands when sampled at ``rate`` (0 .. rate/2)."""
    f = freq % rate
    return rate - f if f > rate / 2 else f


def unwanted(freq: float, in_rate: float, out_rate: float) -> list[float]:
    """Output frequencies (0 < f < out_rate/2) where an input sine at ``freq`` Hz may
    leave aliases (downsampling) or images (upsampling): every fold of
    ``m * in_rate +- freq`` other than ``freq`` itself, at least 20 Hz from it (closer,
    the window cannot part them)."""
    found = set()
    top = int(out_rate // in_rate) + 2
    for m in range(top + 1):
        for f in (m * in_rate - freq, m * in_rate + freq):
            if f <= 0 or (m == 0 and f == freq):
                continue
            g = fold(f, out_rate)
            if 0 < g < out_rate / 2 and abs(g - freq) >= 20.0:
                found.add(round(g, 6))
    if freq > out_rate / 2:  # the input sine itself cannot be represented
        found.add(round(fold(freq, out_rate), 6))
    return sorted(found)


def gain_db(
    fn,
    freq: float,
    in_rate: int,
    out_rate: int,
    n_out: int = 32768,
    amp: float = 0.5,
    dtype=np.float32,
) -> float:
    """Gain (dB) of ``fn(x) -> y`` for a sine at ``freq`` (in the passband)."""
    n_in = int(n_out * in_rate / out_rate)
    x = tone(n_in, freq, in_rate, amp)
    x = np.round(x).astype(dtype) if np.dtype(dtype).kind == "i" else x.astype(dtype)
    y = middle(np.asarray(fn(x), np.float64))
    return 20 * np.log10(amplitude(y, freq, out_rate) / amp)


def leak_db(
    fn,
    freq: float,
    in_rate: int,
    out_rate: int,
    n_out: int = 32768,
    amp: float = 0.5,
    dtype=np.float32,
) -> float:
    """Strongest alias / image (dB relative to the input sine) of ``fn`` for a sine at
    ``freq``; -inf if it has none inside the output band."""
    spots = unwanted(freq, in_rate, out_rate)
    if not spots:
        return -np.inf
    n_in = int(n_out * in_rate / out_rate)
    x = tone(n_in, freq, in_rate, amp)
    x = np.round(x).astype(dtype) if np.dtype(dtype).kind == "i" else x.astype(dtype)
    y = middle(np.asarray(fn(x), np.float64))
    worst = max(amplitude(y, f, out_rate) for f in spots)
    return 20 * np.log10(max(worst, 1e-300) / amp)


def stopband_freqs(in_rate: int, out_rate: int, count: int, guard: float = 10.0):
    """Input frequencies whose aliases / images must go: from the lower Nyquist
    frequency up to in_rate/2 when downsampling; when upsampling, those below in_rate/2
    whose first image (in_rate - f) falls inside the output band.  ``guard`` Hz is
    kept off in_rate/2, where a sine and its image meet (the DFT cannot part them)."""
    if out_rate < in_rate:
        lo, hi = out_rate / 2 + 1.0, in_rate / 2 - guard
    else:
        lo, hi = max(in_rate - out_rate / 2, 1.0) + 1.0, in_rate / 2 - guard
    return np.linspace(lo, hi, count)


def quality(
    fn,
    in_rate: int,
    out_rate: int,
    passband: float,
    n_pass: int = 24,
    n_stop: int = 40,
    n_out: int = 32768,
) -> dict:
    """Passband ripple (largest |gain| in dB from 50 Hz to ``passband``) and rejection
    (weakest attenuation of aliases / images, dB, positive) of ``fn`` (float32 in)."""
    gains = [gain_db(fn, f, in_rate, out_rate, n_out) for f in np.linspace(50, passband, n_pass)]
    leaks = [
        leak_db(fn, f, in_rate, out_rate, n_out) for f in stopband_freqs(in_rate, out_rate, n_stop)
    ]
    return {"ripple_db": float(np.max(np.abs(gains))), "rejection_db": float(-np.max(leaks))}
