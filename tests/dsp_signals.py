"""Test signals and reference tools for the detectors, shared by tests/test_dtmf.py,
tests/test_silence.py and bench/dtmf.py, bench/silence.py.

* DTMF tone pairs at given levels (dBm0), frequency offsets and durations, band-limited
  white noise and pink noise at a given level, dial tone.
* spandsp (Debian libspandsp) through ctypes: ``dtmf_rx`` (the peer DTMF receiver),
  ``dtmf_tx`` (an independent DTMF generator), and the IMA / OKI ADPCM codecs as a
  reference codec pass (used while recorder.codecs has no ADPCM of its own).
* The real-speech / music corpora of Debian's asterisk sound packages.
* ffmpeg's ``silencedetect`` as an independent measurement of pauses in speech.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import re
import subprocess

import numpy as np

RATE = 8000
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = "123A456B789C*0#D"
DBM0_RMS = 16139.0


def amplitude(dbm0: float) -> float:
    """Peak amplitude of a sine at this level (0 dBm0 = RMS 16139)."""
    return DBM0_RMS * np.sqrt(2.0) * 10.0 ** (dbm0 / 20.0)


def samples(ms: float, rate: int = RATE) -> int:
    return int(round(ms * rate / 1000.0))


def tone_pair(
    digit: str,
    ms: float,
    low_dbm0: float = -4.0,
    high_dbm0: float = -4.0,
    low_dev: float = 0.0,
    high_dev: float = 0.0,
    rate: int = RATE,
    phases=(0.0, 0.0),
) -> np.ndarray:
    """One DTMF digit (float64 samples): row tone at low_dbm0, column tone at high_dbm0,
    each frequency offset by a relative deviation."""
    r, c = divmod(KEYS.index(digit), 4)
    t = np.arange(samples(ms, rate)) / rate
    return amplitude(low_dbm0) * np.sin(
        2 * np.pi * ROWS[r] * (1 + low_dev) * t + phases[0]
    ) + amplitude(high_dbm0) * np.sin(2 * np.pi * COLS[c] * (1 + high_dev) * t + phases[1])


def silence(ms: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(samples(ms, rate))


def to_int16(x) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def digit_train(
    digits: str, on_ms: float = 50, off_ms: float = 50, lead_ms: float = 13, **tone
) -> np.ndarray:
    """lead silence, then each digit for on_ms followed by off_ms of silence (float64)."""
    parts = [silence(lead_ms)]
    for d in digits:
        parts += [tone_pair(d, on_ms, **tone), silence(off_ms)]
    return np.concatenate(parts)


def band_noise(
    n: int, dbm0: float, rng, lo: float = 300.0, hi: float = 3400.0, rate: int = RATE
) -> np.ndarray:
    """Gaussian white noise limited to lo..hi Hz (FFT brick wall), RMS at dbm0."""
    w = rng.standard_normal(n)
    spec = np.fft.rfft(w)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    spec[(f < lo) | (f > hi)] = 0
    y = np.fft.irfft(spec, n)
    return y * (DBM0_RMS * 10.0 ** (dbm0 / 20.0) / np.sqrt(np.mean(y**2)))


def pink_noise(n: int, dbm0: float, rng, lo: float = 20.0, rate: int = RATE) -> np.ndarray:
    """Gaussian pink (1/f power) noise from lo Hz to Nyquist, RMS at dbm0."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / rate)
    gain = np.zeros_like(f)
    gain[f >= lo] = 1.0 / np.sqrt(f[f >= lo])
    y = np.fft.irfft(spec * gain, n)
    return y * (DBM0_RMS * 10.0 ** (dbm0 / 20.0) / np.sqrt(np.mean(y**2)))


def dial_tone(n: int, dbm0: float, rate: int = RATE) -> np.ndarray:
    """North American dial tone: 350 + 440 Hz, each at dbm0."""
    t = np.arange(n) / rate
    return amplitude(dbm0) * (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t))


# ------------------------------------------------------------------ spandsp --------


class Spandsp:
    """ctypes bindings to the parts of libspandsp used as reference."""

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        vp, i, i16p = ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p
        lib.dtmf_rx_init.restype = vp
        lib.dtmf_rx_init.argtypes = [vp, vp, vp]
        lib.dtmf_rx.argtypes = [vp, i16p, i]
        lib.dtmf_rx.restype = i
        lib.dtmf_rx_get.argtypes = [vp, ctypes.c_char_p, i]
        lib.dtmf_rx_get.restype = ctypes.c_size_t
        lib.dtmf_rx_free.argtypes = [vp]
        lib.dtmf_tx_init.restype = vp
        lib.dtmf_tx_init.argtypes = [vp]
        lib.dtmf_tx_put.argtypes = [vp, ctypes.c_char_p, i]
        lib.dtmf_tx_set_level.argtypes = [vp, i, i]
        lib.dtmf_tx_set_timing.argtypes = [vp, i, i]
        lib.dtmf_tx.argtypes = [vp, i16p, i]
        lib.dtmf_tx.restype = i
        lib.dtmf_tx_free.argtypes = [vp]
        for name in ("ima_adpcm_init", "oki_adpcm_init"):
            getattr(lib, name).restype = vp
        lib.ima_adpcm_init.argtypes = [vp, i, i]
        lib.oki_adpcm_init.argtypes = [vp, i]
        for name in (
            "ima_adpcm_encode",
            "oki_adpcm_encode",
            "ima_adpcm_decode",
            "oki_adpcm_decode",
        ):
            getattr(lib, name).argtypes = [vp, vp, vp, i]
            getattr(lib, name).restype = i
        lib.ima_adpcm_free.argtypes = [vp]
        lib.oki_adpcm_free.argtypes = [vp]

    def dtmf_rx(self, x, chunk: int = 8000) -> str:
        """The digits spandsp's receiver reports for these samples (default settings)."""
        x = np.ascontiguousarray(x, np.int16)
        s = self.lib.dtmf_rx_init(None, None, None)
        buf = ctypes.create_string_buffer(256)
        out = []
        try:
            for i in range(0, len(x), chunk):
                seg = x[i : i + chunk]
                self.lib.dtmf_rx(s, seg.ctypes.data, len(seg))
                n = self.lib.dtmf_rx_get(s, buf, 128)
                out.append(buf.raw[:n].decode())
        finally:
            self.lib.dtmf_rx_free(s)
        return "".join(out)

    def dtmf_rx_state(self):
        return self.lib.dtmf_rx_init(None, None, None)

    def dtmf_tx(
        self,
        digits: str,
        level_dbm0: int = -10,
        twist_db: int = 0,
        on_ms: int = 50,
        off_ms: int = 55,
    ) -> np.ndarray:
        """spandsp's own DTMF generator (low tone at level_dbm0, high tone twist_db
        lower) for an independent check of our receiver."""
        s = self.lib.dtmf_tx_init(None)
        try:
            self.lib.dtmf_tx_set_level(s, level_dbm0, twist_db)
            self.lib.dtmf_tx_set_timing(s, on_ms, off_ms)
            self.lib.dtmf_tx_put(s, digits.encode(), len(digits))
            out = np.zeros(len(digits) * (on_ms + off_ms) * 8 + 800, np.int16)
            n = self.lib.dtmf_tx(s, out.ctypes.data, len(out))
        finally:
            self.lib.dtmf_tx_free(s)
        return out[:n]

    def adpcm_pass(self, x, kind: str) -> np.ndarray:
        """Encode then decode with spandsp's IMA (DVI4 variant) or OKI (32 kbit/s) codec."""
        lib = self.lib
        if kind == "ima":
            init, enc, dec, free = (
                lambda: lib.ima_adpcm_init(None, 1, 0),
                lib.ima_adpcm_encode,
                lib.ima_adpcm_decode,
                lib.ima_adpcm_free,
            )
        elif kind == "oki":
            init, enc, dec, free = (
                lambda: lib.oki_adpcm_init(None, 32000),
                lib.oki_adpcm_encode,
                lib.oki_adpcm_decode,
                lib.oki_adpcm_free,
            )
        else:
            raise ValueError(kind)
        x = np.ascontiguousarray(x, np.int16)
        code = np.zeros(len(x), np.uint8)
        out = np.zeros(len(x) + 2, np.int16)
        e, d = init(), init()
        try:
            nb = enc(e, code.ctypes.data, x.ctypes.data, len(x))
            ns = dec(d, out.ctypes.data, code.ctypes.data, nb)
        finally:
            free(e)
            free(d)
        return out[:ns]


def load_spandsp() -> Spandsp | None:
    name = ctypes.util.find_library("spandsp")
    for candidate in filter(None, (name, "libspandsp.so.2", "libspandsp.so")):
        try:
            return Spandsp(ctypes.CDLL(candidate))
        except OSError:
            continue
    return None


def codec_pass(x, codec: str, spandsp: Spandsp | None = None) -> np.ndarray:
    """x (int16) through a codec and back: 'alaw', 'ulaw' with recorder.codecs; 'ima',
    'oki' with recorder.codecs when it has them, else spandsp's reference codecs."""
    from recorder import codecs

    x = np.ascontiguousarray(x, np.int16)
    if codec == "alaw":
        return codecs.alaw_decode(codecs.alaw_encode(x))
    if codec == "ulaw":
        return codecs.ulaw_decode(codecs.ulaw_encode(x))
    try:
        enc, dec = codecs.get_encoder(codec), codecs.get_decoder(codec)
    except (ValueError, KeyError, AttributeError, NotImplementedError):
        enc = dec = None
    if enc is not None:
        data = np.concatenate(
            [np.asarray(enc.encode(x), np.uint8), np.asarray(enc.flush(), np.uint8)]
        )
        y = np.asarray(dec.decode(data), np.int16)
        return y[: len(x)]
    if spandsp is None:
        raise RuntimeError(f"no {codec} codec: neither recorder.codecs nor spandsp has one")
    return spandsp.adpcm_pass(x, codec)


# ------------------------------------------------------------------ corpora --------

SOUNDS = "/usr/share/asterisk/sounds"
MOH = "/usr/share/asterisk/moh"

#: The folder (under SOUNDS) each Debian ``asterisk-core-sounds-<lang>-wav`` package
#: installs its prompts in, newest layout first.  Corpora are selected by these folders,
#: never by a piece of a path ("/fr" is also in "en_US_f_Allison/from-unknown-caller.wav").
SPEECH_FOLDERS = {
    "fr": ("fr_CA_f_June", "fr"),
    "es": ("es_MX_f_Allison", "es"),
    "en": ("en_US_f_Allison", "en"),
}
#: The packages the test setup installs (README, .ci/run): missing, they fail the run in
#: CI; the others are used when installed, skipped when not.
REQUIRED_SPEECH = ("fr", "es")


def speech_folder(lang: str) -> str | None:
    """The prompt folder of ``asterisk-core-sounds-<lang>-wav``, None when not installed
    (a folder that is a symbolic link is an alias of another package's, not counted)."""
    for name in SPEECH_FOLDERS[lang]:
        d = os.path.join(SOUNDS, name)
        if os.path.isdir(d) and not os.path.islink(d):
            return d
    return None


def speech_files(*langs: str, recursive: bool = True) -> list[str]:
    """The 8 kHz speech prompts of the asterisk-core-sounds packages of ``langs`` (default:
    every package of SPEECH_FOLDERS) that are installed, package by package, in name order;
    with ``recursive=False`` only the top folder (no digits, letters, ... sub-folders)."""
    files = []
    for lang in langs or SPEECH_FOLDERS:
        d = speech_folder(lang)
        if d is not None:
            pattern = os.path.join(d, "**", "*.wav") if recursive else os.path.join(d, "*.wav")
            files += sorted(glob.glob(pattern, recursive=recursive))
    return files


def speech_files_or_skip(lang: str) -> list[str]:
    """speech_files(lang), or skip the test when that package is not installed (fail, in
    CI, for a required one)."""
    files = speech_files(lang)
    if not files:
        package = f"asterisk-core-sounds-{lang}-wav"
        if lang in REQUIRED_SPEECH:
            from conftest import missing

            missing(package)
        import pytest

        pytest.skip(f"{package} (optional) is not installed")
    return files


def music_files() -> list[str]:
    """Music on hold (asterisk-moh-opsound-wav)."""
    return sorted(glob.glob(os.path.join(MOH, "*.wav")))


def read_wav8k(path: str) -> np.ndarray:
    from recorder import wav

    x, info = wav.read(path)
    if info.rate != 8000:
        raise ValueError(f"{path}: {info.rate} Hz, expected 8000")
    return x if x.ndim == 1 else x[:, 0]


def corpus(paths, gap_ms: float = 100) -> np.ndarray:
    """The files one after the other with gap_ms of digital silence between them."""
    gap = np.zeros(samples(gap_ms), np.int16)
    parts = []
    for p in paths:
        parts += [read_wav8k(p), gap]
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def espeak(text: str, voice: str = "en", speed: int = 150, pitch: int = 50) -> np.ndarray:
    """espeak-ng speech resampled to 8 kHz (int16)."""
    import tempfile

    from recorder import wav

    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "s.wav")
        out = os.path.join(tmp, "s8.wav")
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", raw, text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            ["sox", "-V1", raw, "-r", "8000", "-c", "1", "-b", "16", out],
            check=True,
            capture_output=True,
            timeout=60,
        )
        x, _ = wav.read(out)
    return x


def active_level_dbm0(x, floor_dbm0: float = -50.0) -> float:
    """Level of the 10 ms windows above floor_dbm0 (a simple 'active speech level')."""
    x = np.asarray(x, np.float64)
    n = len(x) // 80
    w = x[: n * 80].reshape(n, 80)
    p = np.mean((w - w.mean(1, keepdims=True)) ** 2, axis=1)
    lv = 10 * np.log10(np.maximum(p, 1e-9) / DBM0_RMS**2)
    act = p[lv > floor_dbm0]
    return float(10 * np.log10(np.mean(act) / DBM0_RMS**2)) if len(act) else -200.0


def ffmpeg_silences(x, threshold_dbfs: float, min_ms: float = 100, rate: int = RATE):
    """Silence runs found by ffmpeg's silencedetect (every sample's magnitude below
    threshold_dbfs, relative to full scale, for at least min_ms): list of (start, end)
    samples; a run still open at the end ends at len(x)."""
    import tempfile

    from recorder import wav

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.wav")
        wav.write(path, np.asarray(x, np.int16), fmt="s16bit", rate=rate)
        proc = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "info",
                "-nostdin",
                "-i",
                path,
                "-af",
                f"silencedetect=noise={threshold_dbfs}dB:d={min_ms / 1000.0}",
                "-f",
                "null",
                "-",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    runs, start = [], None
    for m in re.finditer(r"silence_(start|end): (-?[0-9.]+)", proc.stderr):
        t = int(round(float(m.group(2)) * rate))
        if m.group(1) == "start":
            start = max(t, 0)
        elif start is not None:
            runs.append((start, t))
            start = None
    if start is not None:
        runs.append((start, len(x)))
    return runs


# ------------------------------------------------- comparing pause boundaries ------


def silences(segs, n: int, min_len: int):
    """The silence runs (start, end) of at least min_len samples between audio segments
    (start, end) of a signal of n samples."""
    out, prev = [], 0
    for a, b in segs:
        if a - prev >= min_len:
            out.append((prev, a))
        prev = b
    if n - prev >= min_len:
        out.append((prev, n))
    return out


def boundary_errors(ref, ours, n: int, min_len: int = 150 * 8):
    """For each reference silence run of at least min_len samples, the error (samples) of
    the start and of the end of the run of ours that overlaps it most; None where none
    does.  Runs touching the ends of the signal count only their inner boundary."""
    errs = []
    for rs, re_ in ref:
        if re_ - rs < min_len:
            continue
        best = max(ours, key=lambda o: min(re_, o[1]) - max(rs, o[0]), default=None)
        if best is None or min(re_, best[1]) - max(rs, best[0]) <= 0:
            errs.append(None)
            continue
        if rs > 0:
            errs.append(best[0] - rs)
        if re_ < n:
            errs.append(best[1] - re_)
    return errs
