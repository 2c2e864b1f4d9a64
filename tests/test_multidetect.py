"""MultiDetector: many channels in one call give exactly what the single-channel detectors
give on the same samples, whatever the slots, start times and chunk lengths."""

from __future__ import annotations

import dsp_signals as S
import numpy as np
import pytest

import recorder
from recorder import dsp


def _channel_signal(seed: int, n: int) -> np.ndarray:
    """Speech-like noise bursts, silences and DTMF digits, different per channel."""
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < n:
        kind = rng.integers(0, 4)
        ms = float(rng.integers(30, 400))
        if kind == 0:
            p = S.silence(ms)
        elif kind == 1:
            p = S.band_noise(S.samples(ms), float(rng.uniform(-50, -20)), rng)
        else:
            p = S.tone_pair(
                S.KEYS[rng.integers(0, 16)],
                ms,
                float(rng.uniform(-30, -5)),
                float(rng.uniform(-30, -5)),
            )
        parts.append(p)
        total += len(p)
    x = np.concatenate(parts)[:n]
    return S.to_int16(x + S.band_noise(n, -60, rng))


def _digits_of(recs):
    return [(r["digit"], int(r["start"]), int(r["end"]), round(float(r["level"]), 2)) for r in recs]


def test_equal_to_single_channel_detectors():
    channels, n_total = 24, 8000 * 6
    rng = np.random.default_rng(99)
    signals = [_channel_signal(s, n_total) for s in range(channels)]
    # each channel starts at its own call (tick); every tick a random subset of the active
    # channels sends a chunk of a random length that is the same for all rows of the block
    start_tick = rng.integers(0, 30, channels)
    multi = dsp.MultiDetector(channels)
    pos = np.zeros(channels, np.int64)
    got_ended = {c: [] for c in range(channels)}
    got_started = {c: [] for c in range(channels)}
    states = {c: [] for c in range(channels)}
    tick = 0
    while np.any(pos < n_total):
        active = [c for c in range(channels) if tick >= start_tick[c] and pos[c] < n_total]
        tick += 1
        if not active:
            continue
        sel = [c for c in active if rng.random() < 0.8]
        if not sel:
            continue
        rng.shuffle(sel)
        n = int(rng.choice([1, 37, 80, 160, 160, 160, 241, 800]))
        n = min(n, min(n_total - pos[c] for c in sel))
        block = np.stack([signals[c][pos[c] : pos[c] + n] for c in sel])
        res = multi.process(block, rows=np.array(sel))
        for i, c in enumerate(sel):
            pos[c] += n
            states[c].append(
                (
                    int(pos[c]),
                    int(res.silence_samples[i]),
                    bool(res.in_audio[i]),
                    bool(res.audio_seen[i]),
                    bool(res.digit_active[i]),
                )
            )
        for r in res.ended:
            assert sel[r["row"]] == r["slot"]
            got_ended[int(r["slot"])].append(r)
        for r in res.digits:
            got_started[int(r["slot"])].append(r)
    for c in range(channels):
        det = dsp.DtmfDetector()
        sil = dsp.SilenceDetector()
        ref = det.process(signals[c])
        sil.process(signals[c])
        assert _digits_of(got_ended[c]) == [(d.digit, d.start, d.end, d.level_dbm0) for d in ref], c
        pending = [det.current] if det.current is not None else []
        assert [(r["digit"], int(r["start"])) for r in got_started[c]] == [
            (d.digit, d.start) for d in ref + pending
        ]
        # the silence state after each chunk equals the single detector's at that point
        det2, sil2, p = dsp.DtmfDetector(), dsp.SilenceDetector(), 0
        for end, silence_samples, in_audio, seen, digit_active in states[c]:
            det2.process(signals[c][p:end])
            sil2.process(signals[c][p:end])
            p = end
            assert silence_samples == sil2.silence_samples
            assert in_audio == sil2.in_audio and seen == sil2.audio_detected
            assert digit_active == (det2.current is not None)
        assert len(ref) >= 1, c


def test_started_event_carries_start_and_end_when_known():
    x = S.to_int16(S.digit_train("5", 60, 100))
    m = dsp.MultiDetector(2)
    res = m.process(np.stack([x, np.zeros_like(x)]))
    (d,) = res.digits
    assert d["digit"] == "5" and d["row"] == 0 and d["slot"] == 0
    assert d["end"] == res.ended[0]["end"] > d["start"]
    # in 20 ms chunks the digit is known at its start, its end only later
    m.reset()
    started, ended = [], []
    for i in range(0, len(x) - 159, 160):
        r = m.process(np.stack([x[i : i + 160], x[i : i + 160]]))
        started += list(r.digits)
        ended += list(r.ended)
    assert len(started) == 2 and all(s["end"] == -1 for s in started)
    assert [e["start"] for e in ended] == [s["start"] for s in started]


def test_dtmf_only_and_silence_only():
    x = S.to_int16(S.digit_train("12", 60, 100))
    a = dsp.MultiDetector(1, silence=False).process(x[None, :])
    b = dsp.MultiDetector(1, dtmf=False).process(x[None, :])
    assert "".join(a.ended["digit"]) == "12" and not a.audio_seen[0]
    assert len(b.ended) == 0 and b.audio_seen[0]


def test_options_reach_the_kernels():
    x = S.to_int16(S.digit_train("1", 60, 100, low_dbm0=-38, high_dbm0=-38))
    assert len(dsp.MultiDetector(1).process(x[None]).ended) == 1
    assert (
        len(dsp.MultiDetector(1, dtmf_options={"min_level_dbm0": -30}).process(x[None]).ended) == 0
    )
    assert dsp.MultiDetector(1, threshold_dbm0=-30).process(x[None]).audio_seen[0] == False  # noqa: E712
    assert dsp.MultiDetector(1, threshold_dbm0=-45).process(x[None]).audio_seen[0] == True  # noqa: E712


def test_reset_finish_and_errors():
    m = dsp.MultiDetector(4)
    x = S.to_int16(S.tone_pair("9", 200, -10, -10))
    r = m.process(np.tile(x, (4, 1)))
    assert r.digit_active.all() and len(r.digits) == 4
    fin = m.finish([1, 2])
    assert list(fin["slot"]) == [1, 2] and all(fin["end"] == len(x))
    m.reset([0])
    assert m.current_digit(0) is None and m.current_digit(3) is not None
    with pytest.raises(ValueError):
        m.process(np.zeros((2, 160), np.int16), rows=[1, 1])
    with pytest.raises(ValueError, match="out of range"):
        m.process(np.zeros((1, 160), np.int16), rows=[4])
    with pytest.raises(ValueError):
        m.process(np.zeros((3, 160), np.int16))
    with pytest.raises(ValueError):
        m.process(np.zeros(160, np.int16))
    with pytest.raises(TypeError):
        m.process(np.zeros((1, 160), np.float32), rows=[0])
    with pytest.raises(TypeError):
        m.process(np.zeros((1, 160), np.int16), rows=[0.5])
    with pytest.raises(ValueError):
        dsp.MultiDetector(0)
    with pytest.raises(ValueError):
        dsp.MultiDetector(2, dtmf=False, silence=False)
    with pytest.raises(TypeError):
        dsp.MultiDetector(2, dtmf_options={"bogus": 1})
    with pytest.raises(TypeError):
        dsp.MultiDetector(2, bogus=1)
    # an empty call is fine
    r = m.process(np.zeros((0, 160), np.int16), rows=np.zeros(0, np.int64))
    assert len(r.silence_ms) == 0


def test_threads_give_same_results():
    """The kernels release the GIL: separate banks in parallel threads give the results
    of a serial run."""
    from concurrent.futures import ThreadPoolExecutor

    sigs = np.stack([_channel_signal(s, 8000 * 3) for s in range(8)])

    def run(_):
        m = dsp.MultiDetector(8)
        out = []
        for i in range(0, sigs.shape[1], 160):
            r = m.process(sigs[:, i : i + 160])
            out.append((r.silence_samples.copy(), _digits_of(r.ended)))
        return out

    serial = run(0)
    with ThreadPoolExecutor(4) as ex:
        for res in ex.map(run, range(4)):
            assert len(res) == len(serial)
            for (a, da), (b, db) in zip(res, serial, strict=True):
                assert np.array_equal(a, b) and da == db


def test_avx_and_generic_builds_agree():
    """The Goertzel loop has an AVX build chosen at run time; it must give the same bits
    as the generic build (no fused multiply-add, same operation order)."""
    sigs = np.stack([_channel_signal(s, 8000 * 4) for s in range(6)])
    results = []
    try:
        for level in ("avx", "sse2"):
            recorder.set_simd_level(level)
            m = dsp.MultiDetector(6)
            out = []
            for i in range(0, sigs.shape[1], 160):
                r = m.process(sigs[:, i : i + 160])
                out.append((r.silence_samples.copy(), _digits_of(r.digits), _digits_of(r.ended)))
            single = [dsp.detect_dtmf(s) for s in sigs]
            results.append((out, single))
    finally:
        recorder.set_simd_level(None)
    (a, sa), (b, sb) = results
    assert sa == sb
    assert len(a) == len(b)
    for (x1, d1, e1), (x2, d2, e2) in zip(a, b, strict=True):
        assert np.array_equal(x1, x2) and d1 == d2 and e1 == e2
    assert sum(len(s) for s in sa) > 0


@pytest.mark.parametrize("chunk", [160, 80, 320])
def test_onsets_summarise_what_process_finds(chunk):
    """onsets() on one bank of slots and process() on an identical bank, the same chunks:
    silence, audio seen, the earliest digit started and the first audio onset of each
    row agree call by call (digits, noise bursts and silences on 13 channels)."""
    k, n = 13, 16000
    signals = np.stack([_channel_signal(100 + i, n) for i in range(k)])
    slots = np.array([40, 3, 17, 99, 0, 64, 5, 81, 12, 77, 30, 58, 21], np.int64)
    full, lean = dsp.MultiDetector(100), dsp.MultiDetector(100)
    digits = onsets_seen = 0
    for pos in range(0, n, chunk):
        block = np.ascontiguousarray(signals[:, pos : pos + chunk])
        r = full.process(block, rows=slots)
        o = lean.onsets(block, slots)
        assert o.silence_samples.tolist() == r.silence_samples.tolist()
        assert o.audio_seen.tolist() == r.audio_seen.astype(np.uint8).tolist()
        want_start, want_digit = [-1] * k, [0] * k
        for d in r.digits:
            row = int(d["row"])
            if want_start[row] < 0 or d["start"] < want_start[row]:
                want_start[row], want_digit[row] = int(d["start"]), ord(str(d["digit"]))
        assert o.digit_start.tolist() == want_start and o.digit.tolist() == want_digit
        want_onset = [-1] * k
        for a in r.audio_starts:
            row = int(a["row"])
            if want_onset[row] < 0 or a["start"] < want_onset[row]:
                want_onset[row] = int(a["start"])
        assert o.audio_start.tolist() == want_onset
        digits += len(r.digits)
        onsets_seen += len(r.audio_starts)
    assert digits > 20 and onsets_seen > 20  # the signals exercise both


def test_onsets_refuse_what_process_would_convert():
    m = dsp.MultiDetector(8)
    ok = np.zeros((2, 160), np.int16)
    with pytest.raises(TypeError, match="block must be a C-contiguous 2-D int16"):
        m.onsets(ok.astype(np.float32), np.array([0, 1], np.int64))
    with pytest.raises(TypeError, match="block must be"):
        m.onsets(np.zeros((4, 160), np.int16)[::2], np.array([0, 1], np.int64))
    with pytest.raises(TypeError, match="rows must be a 1-D int64"):
        m.onsets(ok, [0, 1])
    with pytest.raises(ValueError, match="appears twice"):
        m.onsets(ok, np.array([3, 3], np.int64))
    with pytest.raises(ValueError):
        m.onsets(ok, np.array([0, 8], np.int64))
    with pytest.raises(ValueError, match="entries for 2 rows"):
        m.onsets(ok, np.array([0], np.int64))


@pytest.mark.parametrize("chunk", [160, 80])
def test_onsets_across_detectors_are_each_detectors_onsets(chunk):
    """onsets_across() over three detectors (slots numbered one detector after the
    other), with the rows of a detector scattered through the block, gives row by row
    what onsets() on each detector alone gives for its rows."""
    sizes, k, n = (4, 8, 16), 14, 12000
    signals = np.stack([_channel_signal(300 + i, n) for i in range(k)])
    # (detector, channel) of each row; rows of one detector not all together
    where = [
        (2, 5),
        (0, 1),
        (0, 3),
        (2, 0),
        (1, 7),
        (2, 15),
        (1, 0),
        (0, 0),
        (2, 9),
        (1, 3),
        (2, 2),
        (1, 4),
        (2, 11),
        (0, 2),
    ]
    base = np.cumsum((0, *sizes))
    slots = np.array([base[d] + c for d, c in where], np.int64)
    across = [dsp.MultiDetector(m) for m in sizes]
    alone = [dsp.MultiDetector(m) for m in sizes]
    found = 0
    for pos in range(0, n, chunk):
        block = np.ascontiguousarray(signals[:, pos : pos + chunk])
        got = dsp.onsets_across(across, block, slots)
        assert type(got) is dsp.Onsets
        for d in range(len(sizes)):
            rows = [r for r, (dd, _) in enumerate(where) if dd == d]
            chans = np.array([where[r][1] for r in rows], np.int64)
            want = alone[d].onsets(np.ascontiguousarray(block[rows]), chans)
            for f in dsp.Onsets._fields:
                mine, theirs = getattr(got, f), getattr(want, f)
                assert mine.dtype == theirs.dtype, f
                assert mine[rows].tolist() == theirs.tolist(), f
        found += int((got.digit_start >= 0).sum() + (got.audio_start >= 0).sum())
    assert found > 20  # digits and audio onsets were there to find


def test_onsets_across_refuses_bad_detectors_and_slots():
    a, b = dsp.MultiDetector(4), dsp.MultiDetector(8)
    ok = np.zeros((3, 160), np.int16)
    with pytest.raises(ValueError, match="at least one"):
        dsp.onsets_across([], ok, np.array([0, 1, 2], np.int64))
    with pytest.raises(TypeError, match=r"detectors\[1\] is a str"):
        dsp.onsets_across([a, "b"], ok, np.array([0, 1, 2], np.int64))
    with pytest.raises(TypeError, match="block must be"):
        dsp.onsets_across([a, b], ok[:, ::2], np.array([0, 1, 2], np.int64))
    with pytest.raises(ValueError, match="out of range 0..11"):
        dsp.onsets_across([a, b], ok, np.array([0, 12, 2], np.int64))
    with pytest.raises(ValueError, match="slot 5 appears twice"):  # not next to each other
        dsp.onsets_across([a, b], ok, np.array([5, 1, 5], np.int64))
    with pytest.raises(ValueError, match="entries for 3 rows"):
        dsp.onsets_across([a, b], ok, np.array([0, 1], np.int64))
    got = dsp.onsets_across([a, b], ok, np.array([11, 0, 4], np.int64))  # still usable
    assert got.silence_samples.tolist() == [160, 160, 160]


def _speech_channels(channels: int, n: int, seed: int) -> list[np.ndarray]:
    """Real speech (asterisk prompts, French and Spanish) at several gains, with DTMF
    digits over it or in its pauses and background noise: different on every channel."""
    files = S.speech_files_or_skip("fr")[:40] + S.speech_files_or_skip("es")[:40]
    speech = S.corpus(files, gap_ms=150).astype(np.float64)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(channels):
        at = int(rng.integers(0, len(speech) - n))
        x = speech[at : at + n] * float(rng.uniform(0.05, 2.0))
        for _ in range(int(rng.integers(3, 9))):
            d = S.tone_pair(
                S.KEYS[rng.integers(0, 16)],
                float(rng.integers(25, 300)),
                float(rng.uniform(-30, -3)),
                float(rng.uniform(-30, -3)),
            )
            p = int(rng.integers(0, n - len(d)))
            x[p : p + len(d)] += d
        out.append(S.to_int16(x + S.band_noise(n, float(rng.uniform(-70, -40)), rng)))
    return out


def _raw_digit(e):
    return (str(e["digit"]), int(e["start"]), int(e["end"]), float(e["level"]))


def _schedule(channels: int, n_total: int, seed: int):
    """Ticks of (slots, chunk length): channels join and leave at their own ticks, a random
    subset sends each tick, rows in random order (slots not contiguous).  Mostly whole
    10 ms multiples, so most groups of rows are at the same block position; split blocks
    (k then 80 - k samples: groups that start mid-block); a few channels shifted off the
    others' block phase once (mixed groups)."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 12, channels)
    shifted = set(rng.choice(channels, 4, replace=False).tolist())
    pos = np.zeros(channels, np.int64)
    ticks, tick, carry = [], 0, None
    while np.any(pos < n_total):
        live = [c for c in range(channels) if tick >= start[c] and pos[c] < n_total]
        tick += 1
        u = rng.random()
        if carry is not None:  # the rest of a split block
            sel, n = [c for c in carry[0] if pos[c] < n_total], carry[1]
            carry = None
        elif u < 0.12:
            sel = [c for c in live if rng.random() < 0.9]
            n = int(rng.choice([1, 37, 41, 79]))
            carry = (sel, 80 - n)
        elif u < 0.16 and shifted:
            sel, n = [shifted.pop()], int(rng.choice([1, 37, 163]))
        else:
            sel = [c for c in live if rng.random() < 0.9]
            n = int(rng.choice([160, 160, 160, 80, 240, 320, 800, 800]))
        sel = [c for c in sel if c in live]
        if not sel:
            continue
        rng.shuffle(sel)
        n = min(n, *(n_total - pos[c] for c in sel))
        ticks.append((np.array(sel, np.int64), n))
        pos[sel] += n
    return ticks


def test_many_channels_equal_single_channel_at_every_simd_level():
    """The 8-channel bank (groups of rows at the same block position) and the per-channel
    bank give the same bits: every event (kind, row, start, end, level) in the same order
    and every per-row state after every call, at every SIMD level, equal to the
    single-channel detectors run on each channel's samples."""
    from recorder import simd

    channels, n_total, slots = 45, 8000 * 3, 53
    signals = _speech_channels(channels, n_total, 5)
    slot_of = np.random.default_rng(6).permutation(slots)[:channels]
    ticks = _schedule(channels, n_total, 7)
    runs = {}
    try:
        for lvl in simd.LEVELS:
            recorder.set_simd_level(lvl)
            multi = dsp.MultiDetector(slots)
            dtmf_only = dsp.MultiDetector(slots, silence=False)
            silence_only = dsp.MultiDetector(slots, dtmf=False)
            pos = np.zeros(channels, np.int64)
            out, per_chan = [], {c: [] for c in range(channels)}
            for sel, n in ticks:
                block = np.stack([signals[c][pos[c] : pos[c] + n] for c in sel])
                r = multi.process(block, rows=slot_of[sel])
                # each detector alone gives its part of the results of both
                rd = dtmf_only.process(block, rows=slot_of[sel])
                rs = silence_only.process(block, rows=slot_of[sel])
                for f in ("digits", "ended", "digit_active"):
                    assert getattr(rd, f).tobytes() == getattr(r, f).tobytes()
                for f in ("silence_samples", "in_audio", "level_dbm0", "audio_starts"):
                    assert getattr(rs, f).tobytes() == getattr(r, f).tobytes()
                assert rs.silence_starts.tobytes() == r.silence_starts.tobytes()
                out.append(
                    tuple(
                        getattr(r, f).tobytes()
                        for f in (
                            "silence_samples",
                            "in_audio",
                            "audio_seen",
                            "digit_active",
                            "level_dbm0",
                            "digits",
                            "ended",
                            "audio_starts",
                            "silence_starts",
                        )
                    )
                )
                for i, c in enumerate(sel):
                    pos[c] += n
                    per_chan[c].append(
                        (
                            int(pos[c]),
                            int(r.silence_samples[i]),
                            bool(r.in_audio[i]),
                            bool(r.audio_seen[i]),
                            float(r.level_dbm0[i]),
                            bool(r.digit_active[i]),
                            [_raw_digit(e) for e in r.ended if e["row"] == i],
                            [_raw_digit(e) for e in r.digits if e["row"] == i],
                            [int(e["start"]) for e in r.audio_starts if e["row"] == i],
                            [int(e["start"]) for e in r.silence_starts if e["row"] == i],
                        )
                    )
            fin = multi.finish(slot_of)
            out.append((fin.tobytes(),))
            runs[lvl] = out
            # each channel alone, chunk by chunk, through the one-channel detectors
            n_digits = 0
            for c in range(channels):
                det, sil, p = dsp.DtmfDetector(), dsp.SilenceDetector(), 0
                one = dsp.MultiDetector(1)
                for end, silence, in_audio, seen, level, active, ended, started, au, si in per_chan[
                    c
                ]:
                    digits = det.process(signals[c][p:end])
                    sil.process(signals[c][p:end])
                    r1 = one.process(signals[c][None, p:end])
                    p = end
                    assert [e[:3] + (round(e[3], 2),) for e in ended] == [
                        (d.digit, d.start, d.end, d.level_dbm0) for d in digits
                    ]
                    assert ended == [_raw_digit(e) for e in r1.ended]
                    assert started == [_raw_digit(e) for e in r1.digits]
                    assert active == (det.current is not None)
                    assert (silence, in_audio, seen) == (
                        sil.silence_samples,
                        sil.in_audio,
                        sil.audio_detected,
                    )
                    assert level == sil.level_dbm0
                    assert au == [s for k, s in sil.changes if k == "audio"]
                    assert si == [s for k, s in sil.changes if k == "silence"]
                    n_digits += len(digits)
            assert n_digits >= channels // 2
    finally:
        recorder.set_simd_level(None)
    ref = runs["c"]
    for lvl, out in runs.items():
        assert out == ref, lvl


@pytest.mark.parametrize("rate", [16000, 48000])
def test_many_channels_other_rates_every_simd_level(rate):
    """At other rates (longer blocks and sub-frames) the 8-channel bank also gives the
    one-channel results, bit for bit, at every SIMD level."""
    from recorder import simd

    channels, ms = 19, 1500
    rng = np.random.default_rng(rate)
    signals = []
    for _ in range(channels):
        parts, n = [], S.samples(ms, rate)
        while sum(len(p) for p in parts) < n:
            lvl = float(rng.uniform(-25, -5))
            parts += [
                S.tone_pair(
                    S.KEYS[rng.integers(0, 16)],
                    float(rng.integers(30, 120)),
                    lvl,
                    lvl + 2,
                    rate=rate,
                ),
                S.silence(float(rng.integers(20, 90)), rate),
            ]
        x = np.concatenate(parts)[:n]
        signals.append(S.to_int16(x + rng.normal(0, 30, n)))
    sigs = np.stack(signals)
    chunk = rate // 50
    runs = {}
    try:
        for lvl in simd.LEVELS:
            recorder.set_simd_level(lvl)
            m = dsp.MultiDetector(channels, rate=rate)
            out, per_row = [], {c: [] for c in range(channels)}
            for i in range(0, sigs.shape[1], chunk):
                r = m.process(sigs[:, i : i + chunk])
                out.append(
                    tuple(
                        getattr(r, f).tobytes()
                        for f in (
                            "ended",
                            "digits",
                            "silence_samples",
                            "level_dbm0",
                            "audio_starts",
                            "silence_starts",
                        )
                    )
                )
                for e in r.ended:
                    per_row[int(e["row"])].append(_raw_digit(e))
            runs[lvl] = out
            for c in range(channels):
                one = dsp.MultiDetector(1, rate=rate)
                ended = []
                for i in range(0, sigs.shape[1], chunk):
                    ended += [
                        _raw_digit(e) for e in one.process(sigs[c : c + 1, i : i + chunk]).ended
                    ]
                assert per_row[c] == ended and len(ended) >= 3, (lvl, c)
    finally:
        recorder.set_simd_level(None)
    for lvl, out in runs.items():
        assert out == runs["c"], lvl
