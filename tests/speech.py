"""Speech for codec quality tests: a synthetic speech-like signal, espeak-ng sentences and
recorded telephone prompts (Debian asterisk-core-sounds), plus the measures spandsp's
codec tests use."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np
from scipy import signal as sg

from recorder import wav

#: The prompts used: those of the packages the test setup installs (dsp_signals.py says
#: which folder each package installs).
PROMPT_LANGS = ("fr", "es")
SENTENCES = {
    "en": "The quick brown fox jumps over the lazy dog. Please leave a message after the tone.",
    "fr": "Bonjour, votre appel est important pour nous, veuillez patienter.",
    "de": "Guten Tag, bitte hinterlassen Sie eine Nachricht nach dem Signalton.",
}


def quality(ref: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """(gain error, residual) as spandsp's ADPCM tests measure them: output energy over
    input energy minus one, and the energy of (output - input) over the output energy."""
    x = np.asarray(ref, np.float64)
    y = np.asarray(out, np.float64)[: x.size]
    assert y.size == x.size
    ey = float(np.sum(y * y))
    return ey / float(np.sum(x * x)) - 1.0, float(np.sum((y - x) ** 2)) / ey


def speechlike(
    seed: int = 0, seconds: float = 3.0, rate: int = 8000, rms: float = 3000.0
) -> np.ndarray:
    """Voiced speech, synthesised: a glottal pulse train (pitch gliding around 110 Hz,
    -12 dB/octave) with some breath noise, through three formant resonators that change
    every 200 ms among five vowels, a syllable-rate envelope with pauses, band-limited to
    the telephone band (300-3400 Hz), at ``rms`` (3000: about -14.6 dBm0)."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0 = (
        110
        + 40 * np.sin(2 * np.pi * 0.5 * t + rng.uniform(0, 6))
        + 10 * np.sin(2 * np.pi * 3.1 * t)
    )
    pulses = np.diff(np.floor(np.cumsum(f0 / rate)), prepend=0) > 0
    src = sg.lfilter([1], [1, -0.9], sg.lfilter([1], [1, -0.95], pulses.astype(np.float64)))
    src += 0.05 * rng.standard_normal(n)
    vowels = [
        (700, 1200, 2600),
        (300, 2300, 3000),
        (500, 900, 2400),
        (400, 1700, 2500),
        (600, 1000, 2700),
    ]
    y = np.zeros(n)
    seg = int(0.2 * rate)
    for s in range(0, n, seg):
        x = src[s : s + seg]
        for f, bw in zip(vowels[rng.integers(len(vowels))], (80, 100, 150), strict=True):
            r = np.exp(-np.pi * bw / rate)
            x = sg.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / rate), r * r], x)
        y[s : s + seg] = x
    y *= np.clip(np.sin(2 * np.pi * 2.0 * t + rng.uniform(0, 6)), 0, None) ** 0.6
    b, a = sg.butter(4, [300, 3400], btype="band", fs=rate)
    y = sg.lfilter(b, a, y)
    y *= rms / np.sqrt(np.mean(y**2))
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def resample_to_8k(x: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    y = soxr.resample(x.astype(np.float64), rate, 8000)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def espeak(lang: str) -> np.ndarray | None:
    """A sentence spoken by espeak-ng, at 8000 Hz; None when espeak-ng is missing."""
    exe = shutil.which("espeak-ng")
    if not exe:
        return None
    fd, path = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        subprocess.run(
            [exe, "-v", lang, "-w", path, SENTENCES[lang]],
            check=True,
            capture_output=True,
            timeout=60,
        )
        x, meta = wav.read(path)
    finally:
        os.unlink(path)
    return resample_to_8k(x, meta.rate)


def prompts(limit: int | None = None) -> dict[str, np.ndarray]:
    """The 8 kHz mono French and Spanish telephone prompts installed (the top folder of
    each package: every file of at least 0.5 s, in name order, or the first ``limit``):
    real recorded speech, keyed by package folder / file name."""
    from dsp_signals import speech_files

    out = {}
    for path in speech_files(*PROMPT_LANGS, recursive=False):
        x, meta = wav.read(path)
        if meta.rate == 8000 and meta.channels == 1 and x.size >= 4000:
            out[os.path.relpath(path, os.path.dirname(os.path.dirname(path)))] = x
        if limit and len(out) >= limit:
            return out
    return out
