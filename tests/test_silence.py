"""Silence / activity detection: the threshold and its neighbourhood (tone bursts), steady
line noise (white, pink), G.711 idle codes, DC offset, clicks, soft speech in noise, and
the boundaries of pauses in real speech against two independent measurements: a
sample-by-sample sliding-window oracle written here with numpy, and ffmpeg's
silencedetect (a real tool with its own, peak-based, definition).  Plus the recorder's
semantics: silence_ms / silence_start / audio_detected, to +-10 ms whatever the chunking.
"""

from __future__ import annotations

import shutil

import dsp_signals as S
import numpy as np
import pytest
from dsp_signals import boundary_errors, silences
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder import codecs, dsp

T = dsp.DEFAULT_SILENCE_THRESHOLD_DBM0
MS = 8  # samples per ms


def tone(ms, dbm0, f=1000.0):
    t = np.arange(S.samples(ms)) / 8000
    return S.amplitude(dbm0) * np.sin(2 * np.pi * f * t)


def segments(x, **opts):
    return dsp.audio_segments(S.to_int16(x), **opts).tolist()


# --------------------------------------------------------- oracle (independent)


def oracle_segments(x, threshold_dbm0=T, min_audio_ms=20.0):
    """Audio runs by definition, computed sample by sample with numpy: the DC-free level of
    the 10 ms window centred on each sample is at or above the threshold; dips shorter
    than 5 ms (which a detector deciding every 5 ms cannot see) are bridged, then runs of
    activity shorter than min_audio_ms + 10 ms (the window's own spread) are dropped."""
    x = np.asarray(x, np.float64)
    n = len(x)
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    t = np.arange(n)
    lo = np.clip(t - 40, 0, n)
    hi = np.clip(t + 40, 0, n)
    m = hi - lo
    s1 = c1[hi] - c1[lo]
    s2 = c2[hi] - c2[lo]
    e = (s2 - s1 * s1 / m) / 80.0  # mean power over a full 10 ms window
    active = e >= (S.DBM0_RMS**2) * 10 ** (threshold_dbm0 / 10)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    merged = []
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if merged and a - merged[-1][1] < 5 * MS:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged if b - a >= (min_audio_ms + 10) * MS]


@pytest.fixture(scope="module", params=list(S.SPEECH_FOLDERS))
def speech(request):
    """80 prompts of one sound package (each package on its own: every assertion must hold
    whichever packages are installed), 300 ms of digital silence between them."""
    files = S.speech_files_or_skip(request.param)
    rng = np.random.default_rng(7)
    pick = [files[i] for i in rng.choice(len(files), min(80, len(files)), replace=False)]
    return S.corpus(pick, gap_ms=300)


# ---------------------------------------------------------- threshold, tones


def test_tone_bursts_around_threshold():
    for dbm0 in (T + 1.0, T + 3, T + 20, -10, 0):
        x = np.concatenate([S.silence(300), tone(500, dbm0), S.silence(300)])
        segs = segments(x)
        assert len(segs) == 1, (dbm0, segs)
        ((a, b),) = segs
        assert abs(a - 300 * MS) <= 10 * MS and abs(b - 800 * MS) <= 10 * MS, (dbm0, segs)
    for dbm0 in (T - 1.0, T - 3, -60):
        x = np.concatenate([S.silence(300), tone(500, dbm0), S.silence(300)])
        assert segments(x) == [], dbm0


def test_threshold_option():
    x = np.concatenate([S.silence(300), tone(500, -30), S.silence(300)])
    assert len(segments(x)) == 1
    assert segments(x, threshold_dbm0=-25) == []
    assert len(segments(x, threshold_dbm0=-35)) == 1


def test_frames_report_level():
    det = dsp.SilenceDetector()
    fr = det.process(S.to_int16(tone(1000, -20)))
    assert len(fr) == 199
    assert np.all(np.abs(fr["level"][1:] - (-20)) < 0.1)
    assert fr["active"].all()
    assert np.array_equal(fr["start"], np.arange(199) * 40)


# ------------------------------------------------------------------- noise


@pytest.mark.parametrize("kind", ["white-band", "white", "pink"])
def test_line_noise_minus_50_is_silence(kind):
    rng = np.random.default_rng(11)
    n = 8000 * 60
    x = {
        "white-band": lambda: S.band_noise(n, -50, rng),
        "white": lambda: S.band_noise(n, -50, rng, 0, 4000),
        "pink": lambda: S.pink_noise(n, -50, rng),
    }[kind]()
    det = dsp.SilenceDetector()
    fr = det.process(S.to_int16(x))
    assert not det.audio_detected
    assert abs(det.silence_ms - 60000) <= 10
    assert fr["level"].max() < T - 1.0  # margin measured in bench/silence.py


def test_noise_above_threshold_is_audio():
    rng = np.random.default_rng(12)
    x = S.band_noise(8000 * 2, T + 6, rng)
    det = dsp.SilenceDetector()
    det.process(S.to_int16(x))
    assert det.audio_detected and det.in_audio


@pytest.mark.parametrize(
    "code,decode",
    [
        (0xD5, codecs.alaw_decode),
        (0x55, codecs.alaw_decode),
        (0xFF, codecs.ulaw_decode),
        (0x7F, codecs.ulaw_decode),
    ],
)
def test_g711_idle_codes_are_silence(code, decode):
    x = decode(np.full(8000 * 5, code, np.uint8))
    det = dsp.SilenceDetector()
    fr = det.process(x)
    assert not det.audio_detected
    assert fr["level"].max() < -60


def test_dc_offset_removed():
    rng = np.random.default_rng(13)
    quiet = S.band_noise(8000 * 3, -55, rng)
    for dc in (500, -3000, 12000):
        det = dsp.SilenceDetector()
        det.process(S.to_int16(quiet + dc))
        assert not det.audio_detected, dc
    x = np.concatenate([S.silence(300), tone(400, -30), S.silence(300)])
    assert segments(x + 4000) == segments(x)


# ------------------------------------------------------------------ clicks


@pytest.mark.parametrize("ms", [0.125, 1, 5, 10, 15, 19])
def test_clicks_and_short_bursts_are_not_audio(ms):
    for off in range(0, 40, 5):
        for level in (-20, 0):
            x = np.concatenate([S.silence(200 + off / 8), tone(ms, level, 700), S.silence(300)])
            if ms < 1:
                x[S.samples(200) + off] = 32767  # a single full-scale spike
            det = dsp.SilenceDetector()
            det.process(S.to_int16(x))
            assert not det.audio_detected, (ms, off, level)
            assert abs(det.silence_ms - len(x) / 8) <= 10


@pytest.mark.parametrize("ms", [30, 40, 100])
def test_bursts_of_30ms_and_more_are_audio(ms):
    for off in range(0, 40, 5):
        x = np.concatenate([S.silence(200 + off / 8), tone(ms, -20, 700), S.silence(300)])
        segs = segments(x)
        assert len(segs) == 1, (ms, off)
        a, b = segs[0]
        start = S.samples(200 + off / 8)
        assert abs(a - start) <= 10 * MS and abs(b - (start + ms * MS)) <= 10 * MS, (ms, off, segs)


# ------------------------------------------------------------ real speech


def _clear(x, ref, n, min_len=150 * MS, tol=10 * MS):
    """Which boundaries of ref (same order as boundary_errors) are well defined: the
    oracle with the threshold 2 dB lower or higher, or with the shortest audio 5 ms
    shorter or longer, puts them within 10 ms too.  Where the level hovers at the
    threshold for tens of ms, or a burst lasts just about the shortest audio, a detector
    deciding every 5 ms and the oracle deciding every sample may legitimately differ."""

    def edges(runs):
        return np.array(sorted({a for a, b in runs} | {b for a, b in runs}))

    alts = [
        edges(silences(oracle_segments(x, t, m), n, 100 * MS))
        for t, m in ((T - 2, 20.0), (T + 2, 20.0), (T, 15.0), (T, 25.0))
    ]
    out = []
    for rs, re_ in ref:
        if re_ - rs < min_len:
            continue
        for b, inner in ((rs, rs > 0), (re_, re_ < n)):
            if inner:
                out.append(all(len(e) and np.abs(e - b).min() <= tol for e in alts))
    return np.array(out)


def test_speech_pauses_against_oracle(speech):
    """The pauses (>= 150 ms by the oracle) of 80 real prompts separated by 300 ms: every
    well-defined start and end within 20 ms of the sample-by-sample oracle, and at least
    97 % of all of them.  (How many boundaries are well-defined is the corpus's business,
    from 84 % in English to 89 % in French: only enough of them for a real test is asked.)"""
    n = len(speech)
    ours = silences(dsp.audio_segments(speech).tolist(), n, 100 * MS)
    ref = silences(oracle_segments(speech), n, 100 * MS)
    errs = boundary_errors(ref, ours, n)
    assert len(errs) > 150
    assert None not in errs
    errs = np.abs(errs)
    clear = _clear(speech, ref, n)
    assert len(clear) == len(errs) and clear.sum() >= 100
    assert errs[clear].max() <= 20 * MS, sorted(errs[clear])[-10:]
    assert np.mean(errs <= 20 * MS) >= 0.97, sorted(errs)[-10:]
    assert np.median(errs) <= 5 * MS


def test_speech_pauses_against_ffmpeg(speech, ffmpeg):
    """The same pauses as ffmpeg's silencedetect sees them: it tests every sample's
    magnitude against a peak threshold (we use ours + 3 dB, a sine's crest factor), a
    different definition from a 10 ms level, so slow tails differ, more in some languages
    than others (bench/silence.py prints the distribution).  What is asked of our detector:
    it agrees with ffmpeg (within 20 ms) nearly as often as the exact sample-by-sample
    oracle of its own definition does, and where ffmpeg and that oracle agree (within
    10 ms), it agrees with them too."""
    n = len(speech)
    ref = S.ffmpeg_silences(speech, T - 6.15 + 3.0, 100)
    ours = boundary_errors(ref, silences(dsp.audio_segments(speech).tolist(), n, 100 * MS), n)
    exact = boundary_errors(ref, silences(oracle_segments(speech), n, 100 * MS), n)
    assert None not in ours and None not in exact and len(ours) == len(exact) > 150
    ours, exact = np.abs(ours), np.abs(exact)
    near, near_exact = np.mean(ours <= 20 * MS), np.mean(exact <= 20 * MS)
    assert near >= near_exact - 0.03, (near, near_exact)
    agreed = exact <= 10 * MS
    assert np.mean(ours[agreed] <= 20 * MS) >= 0.97, sorted(ours[agreed])[-10:]
    assert np.median(ours) <= 5 * MS


def test_espeak_pauses_against_oracle():
    if not shutil.which("espeak-ng"):
        from conftest import missing

        missing("espeak-ng")
    parts = []
    for v, text in (
        ("en", "Please leave a message after the tone."),
        ("fr", "Bonjour, merci de patienter."),
        ("es", "Gracias por llamar."),
        ("de", "Auf Wiedersehen."),
    ):
        parts += [S.espeak(text, v).astype(np.float64), S.silence(400)]
    x = np.concatenate(parts)
    ours = silences(dsp.audio_segments(S.to_int16(x)).tolist(), len(x), 100 * MS)
    ref = silences(oracle_segments(x), len(x), 100 * MS)
    errs = boundary_errors(ref, ours, len(x))
    assert len(errs) >= 6 and None not in errs
    assert np.abs(errs).max() <= 20 * MS, errs


@pytest.mark.parametrize("lang", list(S.SPEECH_FOLDERS))
def test_soft_speech_in_noise_is_audio(lang):
    """Speech at -35 dBm0 active level in -55 dBm0 noise (the first 20 prompts of each
    package): every utterance is heard, and the noise between utterances stays silence."""
    files = S.speech_files_or_skip(lang)
    rng = np.random.default_rng(21)
    det_total = 0
    for f in files[:20]:
        x = S.read_wav8k(f).astype(np.float64)
        x *= 10 ** ((-35 - S.active_level_dbm0(x)) / 20)
        sig = np.concatenate([S.silence(500), x, S.silence(800)])
        y = sig + S.band_noise(len(sig), -55, rng)
        segs = dsp.audio_segments(S.to_int16(y))
        assert len(segs) >= 1, f
        assert segs[0][0] >= 500 * MS - 20 * MS, (f, segs[:2])
        assert segs[-1][1] <= len(sig) - 800 * MS + 20 * MS + 400 * MS, (f, segs[-1:])
        det_total += 1
    assert det_total == 20


# ---------------------------------------------------- recorder semantics


def _speech_then_silence():
    rng = np.random.default_rng(5)
    return np.concatenate(
        [S.silence(700), tone(600, -20, 500), S.band_noise(S.samples(1500), -60, rng)]
    )


@pytest.mark.parametrize("chunk", [1, 7, 40, 160, 333, 8000])
def test_silence_ms_timeline_any_chunking(chunk):
    """silence_ms after each chunk: the initial silence grows from 0, drops to 0 in audio,
    then counts the silence after it, within 10 ms of the truth whatever the chunking."""
    x = S.to_int16(_speech_then_silence())
    det = dsp.SilenceDetector()
    on, off = 700 * MS, 1300 * MS
    for i in range(0, len(x), chunk):
        det.process(x[i : i + chunk])
        now = min(i + chunk, len(x))
        if now <= on:
            truth, seen = now, False
        elif now < off:
            truth, seen = 0, None  # in audio (confirmed 30 ms after the onset)
        else:
            truth, seen = now - off, True
        if seen is None:
            if now >= on + 40 * MS:
                assert det.silence_ms == 0 and det.in_audio and det.audio_detected
            else:
                assert det.silence_ms <= on / MS + 10
        else:
            assert abs(det.silence_ms - truth / MS) <= 10, (now, det.silence_ms, truth / MS)
            assert det.audio_detected == seen
    assert abs(det.silence_start - off) <= 10 * MS


def test_silence_ms_frozen_while_onset_pending():
    """A click does not make the silence run shorter, and the run never runs past an
    onset that is still being confirmed."""
    x = S.to_int16(np.concatenate([S.silence(1000), tone(8, -10), S.silence(500), tone(200, -20)]))
    det = dsp.SilenceDetector()
    det.process(x[: S.samples(1504)])
    assert not det.audio_detected and abs(det.silence_ms - 1504) <= 10
    det.process(x[S.samples(1504) : S.samples(1520)])  # 12 ms into the tone: pending
    assert not det.audio_detected
    assert abs(det.silence_ms - 1508) <= 10
    det.process(x[S.samples(1520) :])
    assert det.audio_detected and det.in_audio and det.silence_ms == 0
    assert abs(det.audio_start - S.samples(1508)) <= 10 * MS


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=900), min_size=1, max_size=40))
def test_chunking_gives_identical_decisions(cuts):
    x = S.to_int16(np.concatenate([_speech_then_silence(), tone(300, -30), S.silence(200)]))
    ref = dsp.SilenceDetector()
    ref_frames = ref.process(x)
    ref_changes = ref.changes
    det = dsp.SilenceDetector()
    frames, changes, pos, k = [], [], 0, 0
    while pos < len(x):
        n = cuts[k % len(cuts)]
        frames.append(det.process(x[pos : pos + n]))
        changes += det.changes
        pos += n
        k += 1
    assert np.array_equal(np.concatenate(frames), ref_frames)
    assert changes == ref_changes
    assert det.silence_ms == ref.silence_ms and det.audio_detected == ref.audio_detected


def test_reset_and_errors():
    det = dsp.SilenceDetector()
    det.process(S.to_int16(tone(300, -10)))
    assert det.audio_detected
    det.reset()
    assert not det.audio_detected and det.samples == 0 and det.silence_ms == 0
    with pytest.raises(ValueError):
        dsp.SilenceDetector(rate=11025)
    with pytest.raises(TypeError):
        dsp.SilenceDetector(threshold=-40)
    with pytest.raises(ValueError):
        dsp.SilenceDetector(threshold_dbm0=10)
    with pytest.raises(TypeError):
        det.process(np.zeros(10, np.float64))
    assert dsp.audio_segments(np.zeros(0, np.int16)).shape == (0, 2)
