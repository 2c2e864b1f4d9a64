"""Edge cases found in review: failures that must not wedge the engine, closed channels,
real-time replays, names and numbers at their limits, buffered writing for every format,
encryption failures, digits and audio at the cut.  Thread joins with a timeout are hang
guards, not timing assertions."""

from __future__ import annotations

import itertools
import os
import threading

import numpy as np
import pytest
from signals import dtmf, join, silence, speechlike

import recorder
from recorder import AesCbcCipher, CallChannel, Error, FileRecorder, wav
from recorder.cipher import SealedPart, is_sealed_part
from recorder.filerecorder import RECORD_FORMATS, RECORD_RATES

Cause, State = FileRecorder.Cause, FileRecorder.State


class ManualClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def in_thread(fn, guard=30.0):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # re-raised below
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(guard)
    assert not t.is_alive(), "hangs"
    if "error" in out:
        raise out["error"]
    return out["value"]


@pytest.fixture
def call(tmp_path):
    def make(*parts):
        p = tmp_path / "call.wav"
        wav.write(p, join(*parts), fmt="s16bit")
        return p

    return make


def live(root, engine=None, codec="s16"):
    clock = ManualClock()
    ch = CallChannel(media_root=root, codec=codec, clock=clock, engine=engine)
    ch.ring()
    ch.answer()
    return ch, clock


# --- failures never wedge anything --------------------------------------------------------


def test_the_4_gib_wav_limit_ends_a_recording_with_size(tmp_path, call, monkeypatch):
    ch = CallChannel.replay(call(speechlike(4)), media_root=tmp_path)
    monkeypatch.setattr(wav, "max_file_bytes", lambda: 30000 - 1)  # stand-in for 4 GiB
    assert ch.FileRecorder.record("big.wav", file_format="s16bit", max_bytes=0) is Cause.SIZE
    assert os.path.getsize(tmp_path / "big.wav") <= 30000
    assert ch.FileRecorder.state() is State.IDLE


def test_any_writer_exception_ends_the_job_with_error_and_spares_the_engine(
    tmp_path, call, monkeypatch
):
    engine = recorder.Engine()
    a, clock = live(tmp_path, engine)
    b, _ = live(tmp_path, engine)
    # a's file is enciphered, so written by Writer.write_coded (coded by the engine's
    # core; a plain file like b's the core writes itself): a bug in the writer of a's file
    # (the one at 11025 Hz) breaks only a
    key = AesCbcCipher(bytes(16), bytes(16))
    a.FileRecorder.start(
        "a.wav", file_format="s16bit", rate=11025, milliseconds_max_silence=0, cipher=key
    )
    b.FileRecorder.start("b.wav", file_format="s16bit", milliseconds_max_silence=0)
    write_coded = wav.Writer.write_coded

    def boom(self, data, **kw):
        if self.rate == 11025:
            raise RuntimeError("simulated bug in the writer")
        write_coded(self, data, **kw)

    monkeypatch.setattr(wav.Writer, "write_coded", boom)
    x = speechlike(2)
    for i in range(0, x.size, 160):
        a.push(x[i : i + 160])
        b.push(x[i : i + 160])
        clock.t += 0.02
    engine.ensure_running()
    assert in_thread(lambda: a.FileRecorder.wait_until_finished(5)) is Cause.ERROR
    assert a.FileRecorder.state() is State.ERROR
    assert "simulated bug" in a.FileRecorder.last_error()
    assert b.FileRecorder.state() is State.RECORDING  # the other call goes on
    b.push(x[:160])
    assert in_thread(b.FileRecorder.stop) is True
    assert wav.info(tmp_path / "b.wav").frames == x.size + 160
    assert a.FileRecorder.start("again.wav") is True  # and the failed channel too
    a.close()
    b.close()
    engine.stop()


def test_a_closed_channel_cannot_touch_another_call(tmp_path):
    engine = recorder.Engine()
    old = CallChannel(media_root=tmp_path, codec="s16", clock=ManualClock(), engine=engine)
    old.close()
    new, _ = live(tmp_path, engine)
    new.FileRecorder.start("victim.wav", file_format="s16bit")
    for action in (
        old.ring,
        old.answer,
        old.dial,
        lambda: old.push(np.full(800, 12345, np.int16)),
        lambda: old.FileRecorder.start("x.wav"),
        lambda: old.push_dtmf("1"),
    ):
        with pytest.raises(Error, match="closed"):
            action()
    new.push(speechlike(0.1))
    new.FileRecorder.stop()
    y, _ = wav.read(tmp_path / "victim.wav")
    assert y.size == 800 and not (y == 12345).any()
    new.close()
    engine.stop()


def test_realtime_replay_without_hangup_keeps_time_running(tmp_path, call):
    ch = CallChannel.replay(
        call(speechlike(0.3)), media_root=tmp_path, realtime=True, hangup_at_end=False
    )
    ch.FileRecorder.start("rt.wav", milliseconds_max_silence=200)
    assert in_thread(lambda: ch.FileRecorder.wait_until_finished(2.0)) is Cause.SILENCE
    ch.close()


def test_stop_and_hangup_during_a_fast_replay_wait(tmp_path, call):
    for end in ("stop", "hangup"):
        hour = np.tile(speechlike(10), 360)  # an hour
        ch = CallChannel.replay(call(hour), media_root=tmp_path)
        ch.FileRecorder.start(f"{end}.wav", milliseconds_max_silence=0, max_bytes=0)
        waiter = threading.Thread(target=ch.FileRecorder.wait_until_finished, args=(None,))
        waiter.start()
        while ch.media_time < 1.0:
            waiter.join(0.001)
        (ch.FileRecorder.stop if end == "stop" else ch.hangup)()
        waiter.join(30)
        assert not waiter.is_alive()
        want = Cause.ABORTED if end == "stop" else Cause.HANGUP
        assert ch.FileRecorder.result().cause is want
        assert wav.info(tmp_path / f"{end}.wav").frames >= 8000


# --- names and numbers --------------------------------------------------------------------


@pytest.mark.parametrize("target", ["outside", "m/inside"])
def test_a_symlinked_folder_is_refused_and_nothing_is_created(tmp_path, call, target):
    """No folder under the root may be a symbolic link, wherever it points (files.py)."""
    root = tmp_path / "m"
    root.mkdir()
    (tmp_path / target).mkdir()
    os.symlink(tmp_path / target, root / "link")
    ch = CallChannel.replay(call(speechlike(0.2)), media_root=root)
    with pytest.raises(ValueError, match="'link' is a symbolic link"):
        ch.FileRecorder.record("link/a/b/x.wav")
    assert os.listdir(tmp_path / target) == []
    assert ch.FileRecorder.state() is State.IDLE


def test_the_media_root_itself_may_be_a_symlink(tmp_path, call):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "root")
    ch = CallChannel.replay(call(speechlike(0.2)), media_root=tmp_path / "root")
    assert ch.FileRecorder.record("a/b.wav") is Cause.HANGUP
    assert ch.FileRecorder.result().path == str(tmp_path / "root" / "a" / "b.wav")
    assert wav.info(tmp_path / "real" / "a" / "b.wav").frames == 1600


def test_a_final_name_that_is_a_symlink_is_replaced_not_followed(tmp_path, call):
    root = tmp_path / "m"
    root.mkdir()
    victim = tmp_path / "victim.wav"
    victim.write_bytes(b"keep me")
    os.symlink(victim, root / "x.wav")
    ch = CallChannel.replay(call(speechlike(0.2)), media_root=root)
    assert ch.FileRecorder.record("x.wav") is Cause.HANGUP
    assert victim.read_bytes() == b"keep me"
    assert not (root / "x.wav").is_symlink() and wav.info(root / "x.wav").frames == 1600


def test_long_and_unicode_names(tmp_path, call):
    for name in ("a" * 246 + ".wav", "é" * 125 + ".wav", "dir with spaces/ünïcödé ☎.wav"):
        ch = CallChannel.replay(call(speechlike(0.2)), media_root=tmp_path)
        assert ch.FileRecorder.record(name) is Cause.HANGUP, ch.FileRecorder.last_error()
        assert wav.info(tmp_path / name).frames == 1600


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seconds_timeout": float("inf")}, "seconds_timeout"),
        ({"seconds_timeout": float("nan")}, "seconds_timeout"),
        ({"seconds_timeout": 1e300}, "seconds_timeout"),
        ({"max_bytes": 10**30}, "max_bytes"),
        ({"milliseconds_max_silence": 10**20}, "milliseconds_max_silence"),
        ({"milliseconds_initial_silence": -1}, "milliseconds_initial_silence"),
    ],
)
def test_numbers_out_of_range_are_value_errors(tmp_path, call, kwargs, match):
    ch = CallChannel.replay(call(speechlike(0.2)), media_root=tmp_path)
    with pytest.raises(ValueError, match=match):
        ch.FileRecorder.record("x.wav", **kwargs)
    with pytest.raises(ValueError):
        ch.FileRecorder.wait_until_finished(float("inf"))
    with pytest.raises(ValueError):
        ch.push_dtmf("1", duration_ms=float("inf"))


def test_tiny_positive_timeout_is_one_sample(tmp_path, call):
    ch = CallChannel.replay(call(speechlike(2)), media_root=tmp_path)
    assert ch.FileRecorder.record("t.wav", seconds_timeout=1e-5) is Cause.TIMEOUT
    assert wav.info(tmp_path / "t.wav").frames == 1


@pytest.mark.parametrize("fmt", RECORD_FORMATS)
@pytest.mark.parametrize("rate", RECORD_RATES)
def test_size_fills_max_bytes_to_the_last_frame(tmp_path, call, fmt, rate):
    x = call(speechlike(3))
    codec = wav.WRITE_FORMATS[fmt]
    for limit in (5000, 7777):
        ch = CallChannel.replay(x, media_root=tmp_path)
        assert (
            ch.FileRecorder.record("s.wav", file_format=fmt, rate=rate, max_bytes=limit)
            is Cause.SIZE
        )
        size = os.path.getsize(tmp_path / "s.wav")
        info = wav.info(tmp_path / "s.wav")
        assert size <= limit
        more = codec.data_bytes(info.frames + codec.samples_per_block(1, rate), 1, rate)
        assert info.data_offset + more + (more & 1) > limit  # one more frame/block would not fit


# --- buffering, encryption failures -------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, rate", [("oki", 8000), ("alaw", 11025), ("ima", 8000), ("alaw", 8000)]
)
@pytest.mark.parametrize("sealed", [False, True], ids=["core-writes", "enciphered"])
def test_every_format_writes_in_buffered_pieces(tmp_path, fmt, rate, sealed):
    """The temporary file grows about once a second of audio, not per 20 ms frame: the
    core's own writes (a plain file) and the Python path (an enciphered one) alike."""
    ch, clock = live(tmp_path)
    cipher = AesCbcCipher(bytes(16), bytes(16)) if sealed else None
    ch.FileRecorder.start(
        "w.wav", file_format=fmt, rate=rate, milliseconds_max_silence=0, cipher=cipher
    )
    x = speechlike(5)
    sizes = []
    for i in range(0, x.size, 160):
        ch.push(x[i : i + 160])
        clock.t += 0.02
        ch.poll()
        parts = [p for p in os.listdir(tmp_path) if p.endswith(".part")]
        assert len(parts) == 1
        sizes.append(os.path.getsize(tmp_path / parts[0]))
    ch.FileRecorder.stop()
    assert ch.FileRecorder.cause() is Cause.ABORTED
    growths = sum(1 for a, b in itertools.pairwise(sizes) if b != a)
    assert 3 <= growths <= 5 * 3  # about once or twice per second, never per frame
    assert sizes[-1] > sizes[0]
    ch.close()


def test_encryption_failure_leaves_no_ciphertext_debris_and_no_plaintext_under_the_name(
    tmp_path, call, full_disk
):
    x = speechlike(2.5)
    ch = CallChannel.replay(call(x), media_root=full_disk)
    fr = ch.FileRecorder
    key = AesCbcCipher(bytes(16), bytes(16))
    assert fr.record("secret.wav", file_format="s16bit", cipher=key) is Cause.ERROR
    assert not (full_disk / "secret.wav").exists()  # never published unencrypted
    left = os.listdir(full_disk)
    assert len(left) == 1 and left[0].endswith(".part")  # the recording, kept, and said so
    assert fr.result().path == str(full_disk / left[0])
    assert is_sealed_part(fr.result().path)  # encrypted: no plaintext on disk
    with pytest.raises(wav.WavError):
        wav.read(fr.result().path)
    with SealedPart.open(fr.result().path, key) as part:
        y, _ = wav.read(part)
    assert y.size > 0
    np.testing.assert_array_equal(y, x[: y.size])


# --- digits and audio at the cut ----------------------------------------------------------


def test_late_out_of_band_digit_reports_its_true_start(tmp_path, call):
    ch = CallChannel.replay(call(speechlike(5)), media_root=tmp_path)
    fr = ch.FileRecorder
    fr.start("b.wav", barge_in=True, milliseconds_max_silence=0)
    fr.wait_until_finished(2.0)
    ch.push_dtmf("9", duration_ms=400)  # started 400 ms ago: more than is held back
    assert fr.wait_until_finished() is Cause.BARGEIN
    digit, at = fr.last_digit()
    assert digit == "9" and at == pytest.approx(1.6)
    assert wav.info(tmp_path / "b.wav").frames == 1.8 * 8000  # cut as far back as possible


def test_a_cut_digit_is_not_audio(tmp_path, call):
    ch = CallChannel.replay(call(silence(2), dtmf("3", 0.1, -8), silence(1)), media_root=tmp_path)
    assert ch.FileRecorder.record("d.wav", barge_in=True) is Cause.BARGEIN
    assert ch.FileRecorder.audio_detected_in_recording() is False
    assert abs(wav.info(tmp_path / "d.wav").duration - 2.0) <= 0.01


def test_digit_at_the_very_start(tmp_path, call):
    ch = CallChannel.replay(call(dtmf("1", 0.1, -8), speechlike(1)), media_root=tmp_path)
    assert ch.FileRecorder.record("z.wav", barge_in=True) is Cause.BARGEIN
    assert ch.FileRecorder.last_digit() == ("1", pytest.approx(0.0, abs=0.003))
    assert wav.info(tmp_path / "z.wav").frames <= 24


def test_many_calls_on_one_channel(tmp_path):
    engine = recorder.Engine()
    ch = CallChannel(media_root=tmp_path, codec="s16", clock=ManualClock(), engine=engine)
    x = speechlike(0.3)
    for i in range(50):
        ch.ring()
        ch.answer()
        assert ch.FileRecorder.start(f"c/{i}.wav", file_format="s16bit")
        ch.push(x)
        ch.hangup()
    engine.drain()
    assert ch.FileRecorder.cause() is Cause.HANGUP
    names = os.listdir(tmp_path / "c")
    assert len(names) == 50 and not [p for p in names if p.endswith(".part")]
    for i in range(50):
        np.testing.assert_array_equal(wav.read(tmp_path / "c" / f"{i}.wav")[0], x)
    ch.close()
    engine.stop()
