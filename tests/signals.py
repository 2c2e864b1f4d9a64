"""Test signals at telephony levels (0 dBm0 = RMS 16139 in int16)."""

from __future__ import annotations

import numpy as np

RATE = 8000
DBM0_RMS = 16139.0
DTMF_LOW = {
    "1": 697,
    "2": 697,
    "3": 697,
    "A": 697,
    "4": 770,
    "5": 770,
    "6": 770,
    "B": 770,
    "7": 852,
    "8": 852,
    "9": 852,
    "C": 852,
    "*": 941,
    "0": 941,
    "#": 941,
    "D": 941,
}
DTMF_HIGH = {
    "1": 1209,
    "4": 1209,
    "7": 1209,
    "*": 1209,
    "2": 1336,
    "5": 1336,
    "8": 1336,
    "0": 1336,
    "3": 1477,
    "6": 1477,
    "9": 1477,
    "#": 1477,
    "A": 1633,
    "B": 1633,
    "C": 1633,
    "D": 1633,
}


def amp(dbm0: float) -> float:
    """Peak amplitude of a sine at ``dbm0``."""
    return DBM0_RMS * np.sqrt(2) * 10 ** (dbm0 / 20)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)), np.int16)


def tone(freq: float, seconds: float, dbm0: float = -10.0, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    return to_int16(amp(dbm0) * np.sin(2 * np.pi * freq * t + phase))


def dtmf(digit: str, seconds: float = 0.1, dbm0: float = -10.0) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    a = amp(dbm0)
    return to_int16(
        a * np.sin(2 * np.pi * DTMF_LOW[digit] * t) + a * np.sin(2 * np.pi * DTMF_HIGH[digit] * t)
    )


def speechlike(seconds: float, dbm0: float = -20.0, seed: int = 1) -> np.ndarray:
    """Voiced buzz with moving pitch and syllable envelope: loud enough to be audio
    throughout (no pauses longer than ~60 ms)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * RATE))) / RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    env = 0.35 + 0.65 * np.abs(np.sin(2 * np.pi * 2.0 * t))
    x = voiced * env + 0.05 * rng.standard_normal(t.size)
    x *= DBM0_RMS * 10 ** (dbm0 / 20) / np.sqrt(np.mean(x**2))
    return to_int16(x)


def join(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts).astype(np.int16)
