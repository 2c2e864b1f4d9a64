"""Every format at every rate is coded inside the engine's compiled tick: the file's bytes
are exactly those of the one-shot oracle built from the public functions (the whole
committed media resampled by ``recorder.resample``, cut to the file's frames, written by
``wav.Writer``), however the media arrives (frame sizes, barge-in hold-back) and wherever
the recording is cut (SIZE at ``max_bytes``, SILENCE, BARGEIN, TIMEOUT, stop or hangup in
the middle of an ADPCM block)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from signals import dtmf, join, silence, speechlike

import recorder
from recorder import CallChannel, FileRecorder, wav
from recorder.filerecorder import RECORD_FORMATS, RECORD_RATES

Cause = FileRecorder.Cause
CASES = [(f, r) for f in RECORD_FORMATS for r in RECORD_RATES]


class ManualClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def oracle(pcm: np.ndarray, fmt: str, rate: int, max_frames: int | None = None) -> bytes:
    """The file for committed 8 kHz media ``pcm``: resampled in one shot to
    round(n * rate / 8000) frames (halves to even), at most ``max_frames`` of them."""
    y = pcm
    if rate != 8000:
        y = recorder.resample(pcm, 8000, rate)[: round(pcm.size * rate / 8000)]
    if max_frames is not None:
        y = y[:max_frames]
    buf = io.BytesIO()
    with wav.Writer(buf, fmt, rate) as w:
        w.write(y)
    return buf.getvalue()


def file_is_oracle(path, pieces, result) -> bool:
    """The recording at ``path`` holds exactly the oracle's bytes for the media pushed
    (``pieces``, in order) at the format and rate of its ``result``."""
    return path.read_bytes() == oracle(np.concatenate(pieces), result.format, result.rate)


def most_frames(pcm: np.ndarray, fmt: str, rate: int, limit: int) -> int:
    """The most frames whose oracle file fits in ``limit`` bytes (file size grows with
    the frames: bisect)."""
    lo, hi = 0, round(pcm.size * rate / 8000)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(oracle(pcm, fmt, rate, mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


@pytest.fixture(scope="module")
def media():
    return join(speechlike(2.3), silence(1.3), speechlike(0.77), dtmf("5", 0.1), speechlike(0.6))


@pytest.fixture
def replay_file(tmp_path, media):
    path = tmp_path / "call.wav"
    wav.write(path, media, fmt="s16bit")
    return path


def record(path, root, name, **kw):
    ch = CallChannel.replay(path, media_root=root)
    cause = ch.FileRecorder.record(name, **kw)
    ch.close()
    return cause, (root / name).read_bytes()


def cut_at(path, root, **kw) -> int:
    """Where the same media and options cut a recording, in 8 kHz samples (the decision
    is made on the 8 kHz media, whatever the file's format and rate)."""
    record(path, root, "ref.wav", file_format="s16bit", rate=8000, max_bytes=0, **kw)
    return wav.info(root / "ref.wav").frames


@pytest.mark.parametrize("fmt, rate", CASES)
def test_cuts_give_the_oracle_bytes(tmp_path, replay_file, media, fmt, rate):
    base = {"file_format": fmt, "rate": rate, "max_bytes": 0, "milliseconds_max_silence": 0}
    # HANGUP at the end of the replay: everything
    cause, data = record(replay_file, tmp_path, "all.wav", **base)
    assert cause is Cause.HANGUP
    assert data == oracle(media, fmt, rate)
    # TIMEOUT at an exact media time
    cause, data = record(replay_file, tmp_path, "t.wav", **{**base, "seconds_timeout": 1.2345})
    assert cause is Cause.TIMEOUT
    assert data == oracle(media[: round(1.2345 * 8000)], fmt, rate)
    # SIZE: the most frames (ADPCM: whole blocks) that fit in max_bytes; the job ends at
    # the first 8 kHz sample whose frames reach them
    for limit in (1001, 3003):
        cause, data = record(replay_file, tmp_path, "s.wav", **{**base, "max_bytes": limit})
        frames = most_frames(media, fmt, rate, limit)
        assert cause is Cause.SIZE
        assert data == oracle(media[: math.ceil(frames * 8000 / rate)], fmt, rate, frames)
        assert len(data) <= limit
    # SILENCE and BARGEIN: where the 8 kHz decision cut
    for extra, want in (
        ({"milliseconds_max_silence": 1000}, Cause.SILENCE),
        ({"barge_in": True}, Cause.BARGEIN),
    ):
        at = cut_at(replay_file, tmp_path, **{"milliseconds_max_silence": 0, **extra})
        assert 0 < at < media.size
        cause, data = record(replay_file, tmp_path, "c.wav", **{**base, **extra})
        assert cause is want
        assert data == oracle(media[:at], fmt, rate)


@pytest.mark.parametrize("fmt, rate", CASES)
def test_frame_sizes_and_mid_block_ends_give_the_oracle_bytes(tmp_path, media, fmt, rate):
    # pushes of any size, barge-in hold-back or not, ended by stop() or a hangup at a
    # sample that is not on a 20 ms frame, an IMA block (505) or an OKI byte boundary
    n = 12345
    for size, barge, end in ((80, False, "stop"), (333, True, "hangup"), (1000, True, "stop")):
        clock = ManualClock()
        ch = CallChannel(media_root=tmp_path, codec="s16", clock=clock)
        ch.ring()
        ch.answer()
        name = f"{size}.wav"
        assert ch.FileRecorder.start(
            name,
            file_format=fmt,
            rate=rate,
            max_bytes=0,
            milliseconds_max_silence=0,
            barge_in=barge,
        )
        for i, lo in enumerate(range(0, n, size)):
            chunk = media[lo : min(lo + size, n)]
            ch.push(chunk)
            clock.t += chunk.size / 8000  # a live source: no gap for the watchdog to fill
            if i % 3 == 0:
                ch.poll()
        if end == "stop":
            ch.FileRecorder.stop()
            assert ch.FileRecorder.cause() is Cause.ABORTED
        else:
            ch.hangup()
            assert ch.FileRecorder.cause() is Cause.HANGUP
        ch.close()
        assert (tmp_path / name).read_bytes() == oracle(media[:n], fmt, rate), (size, end)


@pytest.mark.parametrize("fmt", ["ima", "oki"])
@pytest.mark.parametrize("rate", [8000, 11025])
def test_adpcm_cut_mid_block_decodes_in_ffmpeg(tmp_path, replay_file, media, ffmpeg, fmt, rate):
    from tools import ffmpeg_decode

    cause, _ = record(
        replay_file,
        tmp_path,
        "r.wav",
        file_format=fmt,
        rate=rate,
        max_bytes=0,
        milliseconds_max_silence=0,
        seconds_timeout=0.7771,
    )
    assert cause is Cause.TIMEOUT
    y, info = wav.read(tmp_path / "r.wav")
    assert info.frames == round(round(0.7771 * 8000) * rate / 8000)
    ref = ffmpeg_decode(tmp_path / "r.wav")
    assert info.frames <= ref.size < info.frames + 505
    if fmt == "oki":  # FFmpeg's OKI decoder rounds as ours does
        np.testing.assert_array_equal(ref[: info.frames], y)
    else:  # FFmpeg rounds IMA differently (see tests/test_adpcm_interop.py)
        diff = ref[: info.frames].astype(float) - y
        assert np.sum(diff**2) < 0.005 * np.sum(y.astype(float) ** 2)


def test_many_channels_in_one_engine_give_the_oracle_bytes(tmp_path, media):
    # the core codes the OKI samples of all the slots of a tick together (rows of one
    # length at a time): channels at every rate, started at different times, with and
    # without the barge-in hold-back, ended at different samples
    engine = recorder.Engine()
    clock = ManualClock()
    chans, got = [], []
    for _ in range(16):
        ch = CallChannel(media_root=tmp_path, codec="s16", clock=clock, engine=engine)
        ch.ring()
        ch.answer()
        chans.append(ch)
        got.append([])
    steps = 140
    for step in range(steps):
        for i, ch in enumerate(chans):
            if step == 3 * i:
                fmt = ("oki", "ima", "oki", "alaw")[i % 4]
                rate = RECORD_RATES[(i // 4) % len(RECORD_RATES)]
                assert ch.FileRecorder.start(
                    f"{i}.wav",
                    file_format=fmt,
                    rate=rate,
                    max_bytes=0,
                    milliseconds_max_silence=0,
                    barge_in=bool(i // 2 % 2),
                )
            frame = media[(step * 160 + 17 * i) % (media.size - 160) :][:160]
            ch.push(frame)
            if step >= 3 * i:
                got[i].append(frame)
        clock.t += 0.02
        with engine.lock:
            engine.process()
    for i, ch in enumerate(chans):
        tail = media[: 7 * i + 1]  # a last piece shorter than a frame
        ch.push(tail)
        got[i].append(tail)
        ch.FileRecorder.stop()
        assert ch.FileRecorder.cause() is Cause.ABORTED
        assert file_is_oracle(tmp_path / f"{i}.wav", got[i], ch.FileRecorder.result()), i
        ch.close()
    engine.stop()


@pytest.mark.parametrize("level", ["c", "avx2"])
def test_many_oki_channels_coded_side_by_side_give_the_oracle_bytes(tmp_path, media, level):
    # 24 OKI channels of one rate started together: each tick the core codes their rows
    # 16 side by side (AVX2 lanes), every row up to its lookahead (its last two samples
    # wait for the next tick); half of them hold media back for barge-in, so their rows
    # differ in length on the first ticks and at the end
    recorder.set_simd_level(level)
    try:
        engine = recorder.Engine()
        clock = ManualClock()
        chans = []
        for i in range(24):
            ch = CallChannel(media_root=tmp_path, codec="s16", clock=clock, engine=engine)
            ch.ring()
            ch.answer()
            assert ch.FileRecorder.start(
                f"{i}.wav",
                "oki",
                8000,
                max_bytes=0,
                milliseconds_max_silence=0,
                barge_in=bool(i % 2),
            )
            chans.append(ch)
        got = [[] for _ in chans]
        for step in range(60):
            for i, ch in enumerate(chans):
                frame = media[(step * 160 + 311 * i) % (media.size - 160) :][:160]
                ch.push(frame)
                got[i].append(frame)
            clock.t += 0.02
            with engine.lock:
                engine.process()
        for i, ch in enumerate(chans):
            ch.FileRecorder.stop()
            assert file_is_oracle(tmp_path / f"{i}.wav", got[i], ch.FileRecorder.result()), i
            ch.close()
        engine.stop()
    finally:
        recorder.set_simd_level(None)


@pytest.mark.parametrize("level", ["c", "sse2", "avx2"])
@pytest.mark.parametrize("rate", [r for r in RECORD_RATES if r != 8000])
def test_many_channels_resampled_together_give_the_oracle_bytes(tmp_path, media, rate, level):
    # the core resamples the slots of a tick together: slots of one rate and filter
    # phase four at a time, the others one by one (6000 and 11000 Hz: whole periods of
    # 8p outputs eight at a time where the CPU has AVX2).  Channels started at the same
    # tick share a phase (groups of 4 and leftovers), others start later or hold back
    # media for barge-in (other phases), one pushes big chunks (more than a slot's
    # history waits for), and they end at different ticks, so the groups change as they
    # go.  At every SIMD level the files are the oracle's, built on the portable loops.
    recorder.set_simd_level(level)
    try:
        engine = recorder.Engine()
        clock = ManualClock()
        starts = [0] * 5 + [1] * 7 + [2, 2, 3, 5, 8]
        n = len(starts)
        chans, got, stop = [], [[] for _ in range(n)], [60 + 3 * i for i in range(n)]
        for _ in range(n):
            ch = CallChannel(media_root=tmp_path, codec="s16", clock=clock, engine=engine)
            ch.ring()
            ch.answer()
            chans.append(ch)
        for step in range(max(stop) + 1):
            for i, ch in enumerate(chans):
                if step == starts[i]:
                    assert ch.FileRecorder.start(
                        f"{i}.wav",
                        file_format=RECORD_FORMATS[i % len(RECORD_FORMATS)],
                        rate=rate,
                        max_bytes=0,
                        milliseconds_max_silence=0,
                        barge_in=i in (3, 9),
                    )
                if step > stop[i]:
                    continue
                size = 960 if i == n - 1 and step % 5 == 0 else 160
                frame = media[(step * 160 + 11 * i) % (media.size - size) :][:size]
                if step == stop[i]:
                    frame = frame[: 13 * i + 1]  # a last piece shorter than a frame
                ch.push(frame)
                if step >= starts[i]:
                    got[i].append(frame)
                if step == stop[i]:
                    ch.FileRecorder.stop()
                    assert ch.FileRecorder.cause() is Cause.ABORTED
            clock.t += 0.02
            with engine.lock:
                engine.process()
        results = [ch.FileRecorder.result() for ch in chans]
        for ch in chans:
            ch.close()
        engine.stop()
        recorder.set_simd_level("c")
        for i, r in enumerate(results):
            assert r.rate == rate
            assert file_is_oracle(tmp_path / f"{i}.wav", got[i], r), i
    finally:
        recorder.set_simd_level(None)


def _ima_media(kind: int, i: int, n: int) -> np.ndarray:
    """n samples at 8 kHz of one kind: real speech (asterisk prompts), loud noise, a
    full-scale square wave, silence, or speech cut by full-scale square bursts."""
    from dsp_signals import read_wav8k, speech_files_or_skip

    rng = np.random.default_rng(i)
    if kind in (0, 4):
        files = speech_files_or_skip("fr")
        start = (37 * i) % len(files)
        x = np.concatenate([read_wav8k(f) for f in (files[start:] + files[:start])[:40]])
        x = np.resize(x[(997 * i) % 8000 :], n)
        if kind == 4:
            period = 9 + i
            square = np.where(np.arange(n) % period < period // 2, 32767, -32768)
            burst = (np.arange(n) // 700) % 3 == 1
            x = np.where(burst, square, x)
        return x.astype(np.int16)
    if kind == 1:
        return (rng.standard_normal(n) * 12000).clip(-32768, 32767).astype(np.int16)
    if kind == 2:
        period = 6 + 2 * i
        return np.where(np.arange(n) % period < period // 2, 32767, -32768).astype(np.int16)
    return np.zeros(n, np.int16)


def test_many_ima_channels_give_the_oracle_bytes_at_every_simd_level(tmp_path):
    # IMA blocks are coded by the search encoder (with its AVX2 own costs and scorer of all
    # 8 magnitudes where the CPU has AVX2, the portable primitives below): at every SIMD
    # level the files are exactly the one-shot oracle's, and the same bytes at every level,
    # on real speech, loud noise, full-scale square waves (predictor clamps), silence and
    # speech cut by square bursts; 21 channels in one engine, most starting together, others
    # later, at other rates, with barge-in hold-back, pushing chunks of 37 to 1010 samples
    # (two blocks in one tick), ending at different ticks mid-block
    n = 21
    starts = [0] * 9 + [1] * 5 + [2, 2, 3, 4, 6, 9, 13]
    rates = [8000] * 14 + [6000, 11025, 11000, 8000, 6000, 11025, 8000]
    sizes = {14: 505, 15: 1010, 16: 80, 17: 37, 18: 240}
    stop = [70 + (7 * i) % 17 for i in range(n)]
    media = [_ima_media(i % 5, i, 1010 * (max(stop) + 1)) for i in range(n)]
    files = {}
    for level in recorder.simd.LEVELS:
        name = recorder.set_simd_level(level)
        try:
            root = tmp_path / name
            root.mkdir(exist_ok=True)
            # no worker ticks: channel 16 gets half its clock's media, so a worker tick
            # that found it idle would rightly fill a gap (the test drives process())
            engine = recorder.Engine(tick=3600.0)
            clock = ManualClock()
            chans, got = [], [[] for _ in range(n)]
            for _ in range(n):
                ch = CallChannel(media_root=root, codec="s16", clock=clock, engine=engine)
                ch.ring()
                ch.answer()
                chans.append(ch)
            pos = [0] * n
            for step in range(max(stop) + 1):
                for i, ch in enumerate(chans):
                    if step == starts[i]:
                        assert ch.FileRecorder.start(
                            f"{i}.wav",
                            file_format="ima",
                            rate=rates[i],
                            max_bytes=0,
                            milliseconds_max_silence=0,
                            barge_in=i in (4, 11),
                        )
                # the tick's media of every channel, then one process: the engine's worker
                # cannot take a channel's frame alone in between
                with engine.lock:
                    for i, ch in enumerate(chans):
                        if step > stop[i]:
                            continue
                        size = sizes.get(i, 160)
                        if step == stop[i]:
                            size = 11 * i + 1  # a last piece shorter than a frame
                        frame = media[i][pos[i] : pos[i] + size]
                        pos[i] += size
                        ch.push(frame)
                        if step >= starts[i]:
                            got[i].append(frame)
                    clock.t += 0.02
                    engine.process()
                for i, ch in enumerate(chans):
                    if step == stop[i]:
                        ch.FileRecorder.stop()
                        assert ch.FileRecorder.cause() is Cause.ABORTED
            for i, ch in enumerate(chans):
                data = (root / f"{i}.wav").read_bytes()
                assert data == oracle(np.concatenate(got[i]), "ima", rates[i]), (name, i)
                files.setdefault(i, data)
                assert data == files[i], (name, i)
                ch.close()
            engine.stop()
        finally:
            recorder.set_simd_level(None)
