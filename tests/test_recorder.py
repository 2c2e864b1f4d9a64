"""FileRecorder on a call channel: the spec's API (every method, default, state, cause and
exception), terminations at the exact sample, files, encryption.  Everything runs on
media time: fast replays are driven by the waiting call, so no test sleeps for media."""

from __future__ import annotations

import inspect
import os
import subprocess
import threading

import numpy as np
import pytest
from signals import dtmf, join, silence, speechlike, tone

import recorder
from recorder import AesCbcCipher, CallChannel, CallState, Error, FileRecorder, Hangup, wav
from recorder.filerecorder import RECORD_FORMATS, RECORD_RATES

Cause, State = FileRecorder.Cause, FileRecorder.State


@pytest.fixture
def root(tmp_path):
    return tmp_path / "media"


@pytest.fixture
def call_file(tmp_path):
    """Write a call's audio to a WAV file and return its path."""

    def make(*parts, fmt="s16bit", rate=8000, name="call.wav"):
        path = tmp_path / name
        wav.write(path, join(*parts), fmt=fmt, rate=rate)
        return path

    return make


def replay(path, root, **kw):
    return CallChannel.replay(path, media_root=root, **kw)


# --- the spec's surface -------------------------------------------------------------------


def test_states_and_causes_are_the_specs():
    assert {s.name for s in State} == {"RECORDING", "IDLE", "ERROR"}
    assert {c.name for c in Cause} == {
        "ERROR",
        "BARGEIN",
        "SILENCE",
        "SIZE",
        "ABORTED",
        "HANGUP",
        "TIMEOUT",
        "NONE",
    }
    ch = CallChannel()
    assert ch.FileRecorder.State is State and ch.FileRecorder.Cause is Cause
    assert ch.file_recorder is ch.FileRecorder


def test_defaults_are_the_specs():
    rec = inspect.signature(FileRecorder.record).parameters
    assert {k: v.default for k, v in rec.items() if k not in ("self", "filename")} == {
        "file_format": "alaw",
        "rate": 8000,
        "seconds_timeout": 120,
        "max_bytes": 1920000,
        "milliseconds_max_silence": 10000,
        "milliseconds_initial_silence": 0,
        "barge_in": False,
        "cipher": None,
    }
    start = inspect.signature(FileRecorder.start).parameters
    assert {k: v.default for k, v in start.items() if k not in ("self", "filename")} == {
        "file_format": "alaw",
        "rate": 8000,
        "max_bytes": 1920000,
        "milliseconds_max_silence": 10000,
        "milliseconds_initial_silence": 0,
        "barge_in": False,
        "cipher": None,
    }
    assert (
        inspect.signature(FileRecorder.wait_until_finished).parameters["seconds_timeout"].default
        == 120
    )


def test_before_any_job(root):
    ch = CallChannel(media_root=root)
    fr = ch.FileRecorder
    assert fr.state() is State.IDLE and fr.cause() is Cause.NONE
    assert fr.audio_detected_in_recording() is None


def test_call_state_errors(root):
    ch = CallChannel(media_root=root)
    assert ch.state() is CallState.IDLE
    for call in (
        lambda: ch.FileRecorder.record("a.wav"),
        lambda: ch.FileRecorder.start("a.wav"),
        ch.FileRecorder.stop,
        ch.FileRecorder.wait_until_finished,
    ):
        with pytest.raises(Hangup):
            call()
    ch.ring()
    assert ch.state() is CallState.RINGING
    for call in (
        lambda: ch.FileRecorder.record("a.wav"),
        lambda: ch.FileRecorder.start("a.wav"),
        ch.FileRecorder.stop,
        ch.FileRecorder.wait_until_finished,
    ):
        with pytest.raises(Error):
            call()
    ch.hangup()
    ch.dial()
    assert ch.state() is CallState.CALLING
    with pytest.raises(Error):
        ch.FileRecorder.record("a.wav")
    ch.answer()
    assert ch.state() is CallState.ANSWERED
    assert ch.FileRecorder.stop() is True  # not recording: simply True
    assert not os.path.exists(root / "a.wav")


def test_already_recording_is_an_error(root, call_file):
    ch = replay(call_file(speechlike(2)), root)
    assert ch.FileRecorder.start("one.wav") is True
    assert ch.FileRecorder.state() is State.RECORDING
    assert ch.FileRecorder.cause() is Cause.NONE
    assert ch.FileRecorder.audio_detected_in_recording() is None
    with pytest.raises(Error):
        ch.FileRecorder.start("two.wav")
    with pytest.raises(Error):
        ch.FileRecorder.record("two.wav")
    assert ch.FileRecorder.stop() is True
    assert ch.FileRecorder.cause() is Cause.ABORTED


def test_bad_arguments_name_what_is_allowed(root, call_file):
    ch = replay(call_file(speechlike(1)), root)
    fr = ch.FileRecorder
    with pytest.raises(ValueError, match="alaw, ulaw, oki, ima, s16bit, u8bit"):
        fr.record("a.wav", file_format="mp3")
    with pytest.raises(ValueError, match="8000, 6000, 11000, 11025"):
        fr.record("a.wav", rate=16000)
    with pytest.raises(ValueError, match="max_bytes"):
        fr.record("a.wav", max_bytes=-1)
    with pytest.raises(ValueError, match="smaller than the WAV header"):
        fr.record("a.wav", max_bytes=20)
    with pytest.raises(TypeError, match="barge_in"):
        fr.record("a.wav", barge_in="yes")
    with pytest.raises(ValueError, match="seconds_timeout"):
        fr.record("a.wav", seconds_timeout=-3)
    with pytest.raises(TypeError, match="milliseconds_max_silence"):
        fr.record("a.wav", milliseconds_max_silence="10")
    for bad in ("/etc/passwd", "../x.wav", "a/../../x.wav", "a\0b", "", "a//b", "a\\b", "./a"):
        with pytest.raises(ValueError):
            fr.record(bad)
    assert fr.state() is State.IDLE and fr.cause() is Cause.NONE


# --- terminations -------------------------------------------------------------------------


def test_timeout_is_exact(root, call_file):
    ch = replay(call_file(speechlike(5)), root)
    assert ch.FileRecorder.record("t.wav", seconds_timeout=1.5) is Cause.TIMEOUT
    y, info = wav.read(root / "t.wav")
    assert info.frames == 12000
    assert ch.FileRecorder.state() is State.IDLE
    assert ch.FileRecorder.cause() is Cause.TIMEOUT
    assert ch.FileRecorder.audio_detected_in_recording() is True


def test_hangup_keeps_everything(root, call_file):
    x = speechlike(2.37)
    ch = replay(call_file(x), root)
    assert ch.FileRecorder.record("h.wav", file_format="s16bit") is Cause.HANGUP
    y, info = wav.read(root / "h.wav")
    np.testing.assert_array_equal(y, x)  # every sample, bit-exact
    assert ch.state() is CallState.IDLE
    with pytest.raises(Hangup):
        ch.FileRecorder.wait_until_finished()


def test_max_silence_ends_at_the_silence_timer(root, call_file):
    ch = replay(call_file(speechlike(1.0), silence(5.0), speechlike(1.0)), root)
    assert ch.FileRecorder.record("s.wav", milliseconds_max_silence=2000) is Cause.SILENCE
    info = wav.info(root / "s.wav")
    assert abs(info.duration - 3.0) <= 0.02  # 1 s of audio + the 2 s silence timer
    assert ch.FileRecorder.audio_detected_in_recording() is True


def test_initial_silence(root, call_file):
    ch = replay(call_file(silence(4.0), speechlike(1.0)), root)
    assert ch.FileRecorder.record("i.wav", milliseconds_initial_silence=1500) is Cause.SILENCE
    assert abs(wav.info(root / "i.wav").duration - 1.5) <= 0.02
    assert ch.FileRecorder.audio_detected_in_recording() is False


def test_max_silence_counts_from_the_start_without_an_initial_limit(root, call_file):
    # the spec's example: a caller who never speaks ends the recording with SILENCE
    ch = replay(call_file(silence(30.0)), root)
    assert ch.FileRecorder.record("recfile", milliseconds_max_silence=2000) is Cause.SILENCE
    assert ch.FileRecorder.audio_detected_in_recording() is False
    assert abs(wav.info(root / "recfile").duration - 2.0) <= 0.02


def test_initial_limit_replaces_max_silence_until_audio(root, call_file):
    # 3 s to start speaking are allowed; after speech, 1 s of silence ends the recording
    ch = replay(call_file(silence(3.0), speechlike(1.0), silence(2.0)), root)
    assert (
        ch.FileRecorder.record(
            "l.wav", milliseconds_max_silence=1000, milliseconds_initial_silence=5000
        )
        is Cause.SILENCE
    )
    assert abs(wav.info(root / "l.wav").duration - 5.0) <= 0.02
    assert ch.FileRecorder.audio_detected_in_recording() is True


def test_zero_turns_limits_off(root, call_file):
    ch = replay(call_file(speechlike(0.5), silence(12.0)), root)
    assert (
        ch.FileRecorder.record("z.wav", milliseconds_max_silence=0, max_bytes=0, seconds_timeout=0)
        is Cause.HANGUP
    )
    assert wav.info(root / "z.wav").frames == 12.5 * 8000


@pytest.mark.parametrize("fmt", ["alaw", "ulaw", "s16bit", "u8bit"])
def test_max_bytes_is_never_exceeded(root, call_file, fmt):
    ch = replay(call_file(speechlike(3)), root)
    assert ch.FileRecorder.record("m.wav", file_format=fmt, max_bytes=10001) is Cause.SIZE
    size = os.path.getsize(root / "m.wav")
    assert 10001 - 3 <= size <= 10001
    info = wav.info(root / "m.wav")
    assert info.data_offset + info.data_bytes + (info.data_bytes & 1) == size


def test_default_max_bytes_is_two_minutes_of_16_bit(root, call_file):
    ch = replay(call_file(speechlike(130)), root)
    cause = ch.FileRecorder.record("d.wav", file_format="s16bit", seconds_timeout=0)
    assert cause is Cause.SIZE
    assert os.path.getsize(root / "d.wav") <= 1920000
    assert wav.info(root / "d.wav").duration == pytest.approx(120, abs=0.01)


def test_default_timeout_is_120_seconds(root, call_file):
    ch = replay(call_file(speechlike(125)), root)
    assert ch.FileRecorder.record("d.wav") is Cause.TIMEOUT
    assert wav.info(root / "d.wav").frames == 120 * 8000


def test_start_wait_stop(root, call_file):
    ch = replay(call_file(speechlike(10)), root)
    fr = ch.FileRecorder
    assert fr.start("w.wav", milliseconds_max_silence=0) is True
    assert fr.wait_until_finished(1.25) is Cause.TIMEOUT  # the job goes on
    assert fr.state() is State.RECORDING and fr.cause() is Cause.NONE
    assert fr.stop() is True
    assert fr.state() is State.IDLE and fr.cause() is Cause.ABORTED
    assert wav.info(root / "w.wav").frames == 10000
    assert fr.wait_until_finished() is Cause.ABORTED  # nothing running: the cause


def test_wait_forever(root, call_file):
    ch = replay(call_file(speechlike(3)), root)
    ch.FileRecorder.start("f.wav", milliseconds_max_silence=0)
    assert ch.FileRecorder.wait_until_finished(None) is Cause.HANGUP
    assert wav.info(root / "f.wav").frames == 24000


def test_replay_without_hangup_continues_with_silence(root, call_file):
    ch = replay(call_file(speechlike(1)), root, hangup_at_end=False)
    assert ch.FileRecorder.record("n.wav", milliseconds_max_silence=700) is Cause.SILENCE
    assert abs(wav.info(root / "n.wav").duration - 1.7) <= 0.02
    assert ch.state() is CallState.ANSWERED


def test_out_of_band_dtmf_barge_in_cuts_at_the_digit_start(root, call_file):
    ch = replay(call_file(speechlike(5)), root)
    fr = ch.FileRecorder
    assert fr.start("b.wav", barge_in=True, milliseconds_max_silence=0)
    assert fr.wait_until_finished(2.0) is Cause.TIMEOUT
    ch.push_dtmf("7", duration_ms=50)  # an RFC 4733 event, 50 ms old
    assert fr.wait_until_finished() is Cause.BARGEIN
    digit, at = fr.last_digit()
    assert digit == "7" and at == pytest.approx(1.95)
    assert wav.info(root / "b.wav").frames == 1.95 * 8000


def test_out_of_band_dtmf_without_barge_in_is_ignored(root, call_file):
    ch = replay(call_file(speechlike(3)), root)
    ch.FileRecorder.start("b.wav")
    ch.FileRecorder.wait_until_finished(1)
    ch.push_dtmf("1")
    assert ch.FileRecorder.state() is State.RECORDING
    assert ch.FileRecorder.wait_until_finished() is Cause.HANGUP


def test_in_band_dtmf_barge_in(root, call_file):
    x = join(speechlike(1.5), silence(0.1), dtmf("5", 0.12, -10), silence(0.2), speechlike(2))
    ch = replay(call_file(x), root)
    assert ch.FileRecorder.record("d.wav", barge_in=True) is Cause.BARGEIN
    digit, at = ch.FileRecorder.last_digit()
    assert digit == "5"
    assert abs(at - 1.6) <= 0.02
    info = wav.info(root / "d.wav")
    assert abs(info.duration - 1.6) <= 0.02  # the tone is cut from the end
    y, _ = wav.read(root / "d.wav")
    tail = y[-400:].astype(float)
    assert np.sqrt(np.mean(tail**2)) < 300  # no tone energy at the end of the file


def test_in_band_digit_without_barge_in_is_recorded(root, call_file):
    x = join(speechlike(1), dtmf("5", 0.12), speechlike(1))
    ch = replay(call_file(x), root)
    assert ch.FileRecorder.record("d.wav") is Cause.HANGUP
    assert wav.info(root / "d.wav").frames == x.size


def test_consecutive_jobs_split_the_media_exactly(root, call_file):
    x = speechlike(3)
    ch = replay(call_file(x), root)
    assert ch.FileRecorder.record("a.wav", file_format="s16bit", seconds_timeout=1) is Cause.TIMEOUT
    assert ch.FileRecorder.record("b.wav", file_format="s16bit", seconds_timeout=1) is Cause.TIMEOUT
    np.testing.assert_array_equal(wav.read(root / "a.wav")[0], x[:8000])
    np.testing.assert_array_equal(wav.read(root / "b.wav")[0], x[8000:16000])
    assert ch.media_time == pytest.approx(2.0)


def test_replays_are_deterministic(root, call_file):
    path = call_file(speechlike(2), silence(1.2), speechlike(1))
    for name in ("x.wav", "y.wav"):
        ch = replay(path, root)
        ch.FileRecorder.record(name, file_format="ulaw", milliseconds_max_silence=1000)
    assert (root / "x.wav").read_bytes() == (root / "y.wav").read_bytes()


# --- formats and rates --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", RECORD_FORMATS)
@pytest.mark.parametrize("rate", RECORD_RATES)
def test_every_format_and_rate(root, call_file, ffmpeg, sox, soundfile, fmt, rate):
    from tools import ffmpeg_decode

    x = join(speechlike(1.0), tone(1000, 0.5, -12))
    ch = replay(call_file(x), root)
    assert ch.FileRecorder.record("r.wav", file_format=fmt, rate=rate) is Cause.HANGUP
    y, info = wav.read(root / "r.wav")
    assert (info.format, info.rate, info.channels) == (fmt, rate, 1)
    assert info.frames == round(x.size * rate / 8000)
    ref = ffmpeg_decode(root / "r.wav")
    assert ref.size >= info.frames
    if fmt == "ima":  # FFmpeg rounds IMA differently (see tests/test_adpcm_interop.py)
        diff = ref[: info.frames].astype(float) - y
        assert np.abs(diff).max() <= 128
        assert np.sum(diff**2) < 0.005 * np.sum(y.astype(float) ** 2)  # < 0.5 % residual
    else:
        np.testing.assert_array_equal(ref[: info.frames], y)
    if fmt != "oki":  # sox and libsndfile read every other format in WAV, exactly
        import soundfile
        from tools import sox_decode

        for got in (
            sox_decode(root / "r.wav"),
            soundfile.read(str(root / "r.wav"), dtype="int16")[0],
        ):
            assert info.frames <= got.size < info.frames + 1024  # sox ignores the fact chunk
            np.testing.assert_array_equal(got[: info.frames], y)
    # the 1 kHz tone survives at its level in every format and rate
    seg = y[int(1.1 * rate) : int(1.45 * rate)].astype(float)
    level = 20 * np.log10(np.sqrt(np.mean(seg**2)) / 16139)
    assert abs(level - -12) < 1.0


# --- files --------------------------------------------------------------------------------


def test_subfolders_and_no_partial_file_under_the_final_name(root, call_file):
    ch = replay(call_file(speechlike(4)), root)
    fr = ch.FileRecorder
    fr.start("a/b/c.wav", milliseconds_max_silence=0)
    fr.wait_until_finished(2.5)
    final = root / "a" / "b" / "c.wav"
    assert not final.exists()  # not there until complete
    parts = [p for p in os.listdir(final.parent) if p.endswith(".part")]
    assert len(parts) == 1
    part = final.parent / parts[0]
    assert wav.info(part).frames >= 16000  # header refreshed at least once a second
    fr.stop()
    assert final.exists() and not part.exists()
    assert wav.info(final).frames == 20000


def test_a_file_in_the_way_is_an_io_error(root, call_file):
    root.mkdir(parents=True)
    (root / "blocker").write_text("not a folder")
    ch = replay(call_file(speechlike(1)), root)
    assert ch.FileRecorder.record("blocker/x.wav") is Cause.ERROR
    assert ch.FileRecorder.state() is State.ERROR
    assert "blocker" in ch.FileRecorder.last_error()
    assert ch.FileRecorder.start("ok.wav") is True  # the channel goes on
    assert ch.FileRecorder.state() is State.RECORDING


def test_cipher_with_openssl(root, call_file, tmp_path):
    key, iv = bytes(range(16)), bytes(range(100, 116))
    x = speechlike(1.3)
    ch = replay(call_file(x), root)
    cipher = AesCbcCipher(key, iv)
    assert ch.FileRecorder.record("enc.wav", file_format="s16bit", cipher=cipher) is Cause.HANGUP
    blob = (root / "enc.wav").read_bytes()
    assert not blob.startswith(b"RIFF") and len(blob) % 16 == 0
    out = tmp_path / "dec.wav"
    subprocess.run(
        [
            "openssl",
            "enc",
            "-d",
            "-aes-128-cbc",
            "-K",
            key.hex(),
            "-iv",
            iv.hex(),
            "-in",
            str(root / "enc.wav"),
            "-out",
            str(out),
        ],
        check=True,
    )
    y, info = wav.read(out)
    np.testing.assert_array_equal(y, x)
    y2, _ = wav.read(root / "enc.wav", cipher=cipher)
    np.testing.assert_array_equal(y2, x)
    with pytest.raises(ValueError):
        wav.read(root / "enc.wav", cipher=AesCbcCipher(bytes(16), iv))


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_cipher_key_sizes_and_max_bytes(root, call_file, tmp_path, bits):
    key, iv = os.urandom(bits // 8), AesCbcCipher.random_iv()
    ch = replay(call_file(speechlike(3)), root)
    assert (
        ch.FileRecorder.record("k.wav", max_bytes=9000, cipher=AesCbcCipher(key, iv)) is Cause.SIZE
    )
    assert 9000 - 32 < os.path.getsize(root / "k.wav") <= 9000
    out = tmp_path / "k.dec"
    subprocess.run(
        [
            "openssl",
            "enc",
            "-d",
            f"-aes-{bits}-cbc",
            "-K",
            key.hex(),
            "-iv",
            iv.hex(),
            "-in",
            str(root / "k.wav"),
            "-out",
            str(out),
        ],
        check=True,
    )
    assert wav.info(out).format == "alaw"


def test_cipher_rejects_bad_keys():
    with pytest.raises(ValueError, match="16 bytes"):
        AesCbcCipher(b"short", bytes(16))
    with pytest.raises(ValueError, match="iv"):
        AesCbcCipher(bytes(16), bytes(8))
    with pytest.raises(TypeError):
        AesCbcCipher(123, bytes(16))
    c = AesCbcCipher("00" * 32, "11" * 16)
    assert c.bits == 256 and c.decrypt(c.encrypt(b"hello")) == b"hello"


class ManualClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


# --- many channels, threads ---------------------------------------------------------------


def test_200_concurrent_channels(root, call_file):
    path = call_file(speechlike(1.0), silence(1.5), speechlike(0.5))
    results = {}

    def one(i):
        ch = replay(path, root)
        cause = ch.FileRecorder.record(
            f"many/{i}.wav",
            file_format=("alaw", "ulaw", "s16bit")[i % 3],
            milliseconds_max_silence=1000,
        )
        results[i] = (cause, ch.FileRecorder.result().frames)
        ch.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200
    assert {c for c, _ in results.values()} == {Cause.SILENCE}
    frames = {f for _, f in results.values()}
    assert len(frames) == 1  # every channel the same
    assert abs(frames.pop() - 16000) <= 80  # 1 s audio + 1 s timer, +-10 ms
    assert len(os.listdir(root / "many")) == 200


def test_state_and_stop_from_many_threads(root):
    ch = CallChannel(media_root=root, codec="s16", clock=ManualClock())  # no gaps: time stands
    ch.ring()
    ch.answer()
    assert ch.FileRecorder.start("live.wav", milliseconds_max_silence=0)
    frame = speechlike(0.02)
    seen = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            seen.append(ch.FileRecorder.state())

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    for _ in range(100):
        ch.push(frame)
    stoppers = [threading.Thread(target=ch.FileRecorder.stop) for _ in range(4)]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert ch.FileRecorder.cause() is Cause.ABORTED
    assert set(seen) <= {State.RECORDING, State.IDLE}
    assert wav.info(root / "live.wav").frames == 16000
    ch.close()


# --- live push ----------------------------------------------------------------------------


def test_push_payload_codecs(root):
    ch = CallChannel(media_root=root)
    ch.ring()
    ch.answer()
    x = speechlike(0.5)
    ch.FileRecorder.start("p.wav", file_format="s16bit")
    from recorder import codecs

    ch.push(codecs.alaw_encode(x[:2000]))  # default codec: alaw
    ch.push(codecs.ulaw_encode(x[2000:3000]), "ulaw")
    ch.push(x[3000:], "s16")
    ch.FileRecorder.stop()
    y, info = wav.read(root / "p.wav")
    assert info.frames == 4000
    np.testing.assert_array_equal(y[:2000], codecs.alaw_decode(codecs.alaw_encode(x[:2000])))
    np.testing.assert_array_equal(y[3000:], x[3000:])
    with pytest.raises(ValueError):
        ch.push(b"\0\0", "g729")


def test_live_gap_is_filled_with_silence(root):
    clock = ManualClock()
    ch = CallChannel(media_root=root, codec="s16", clock=clock)
    ch.ring()
    ch.answer()
    ch.FileRecorder.start("gap.wav", milliseconds_max_silence=1500)
    x = speechlike(1.0)
    for i in range(50):  # 1 s of media, in time
        ch.push(x[i * 160 : (i + 1) * 160])
        clock.t += 0.02
    ch.poll()
    clock.t += 3.0  # then the stream stops for 3 s
    ch.poll()
    assert ch.FileRecorder.wait_until_finished(0) is Cause.SILENCE
    info = wav.info(root / "gap.wav")
    assert abs(info.duration - 2.5) <= 0.03  # 1 s audio + 1.5 s of filled silence
    ch.close()


def test_a_dropped_channel_finishes_its_recording(root):
    import gc

    engine = recorder.Engine()
    ch = CallChannel(media_root=root, codec="s16", clock=ManualClock(), engine=engine)
    ch.ring()
    ch.answer()
    ch.FileRecorder.start("dropped.wav", file_format="s16bit")
    x = speechlike(0.5)
    ch.push(x)
    engine.stop(abort_jobs=False)  # its worker holds no channel while we let go of it
    del ch
    gc.collect()
    engine.drain()  # the file is published
    y, info = wav.read(root / "dropped.wav")  # finished (ABORTED), nothing lost
    np.testing.assert_array_equal(y, x)


def test_live_record_in_a_thread_with_rfc4733_barge_in(root):
    clock = ManualClock()
    ch = CallChannel(media_root=root, codec="ulaw", clock=clock)
    ch.ring()
    ch.answer()
    result = {}
    t = threading.Thread(
        target=lambda: result.setdefault(
            "cause", ch.FileRecorder.record("live.wav", file_format="s16bit", barge_in=True)
        )
    )
    t.start()
    while ch.FileRecorder.state() is not State.RECORDING:  # the job is set up synchronously
        t.join(0.001)
    from recorder import codecs

    x = speechlike(1.0)
    for i in range(0, x.size, 160):
        ch.push(codecs.ulaw_encode(x[i : i + 160]))
        clock.t += 0.02
    ch.push_dtmf("#", duration_ms=100)  # began 100 ms ago
    t.join(10)
    assert result["cause"] is Cause.BARGEIN
    assert ch.FileRecorder.last_digit() == ("#", pytest.approx(0.9))
    assert wav.info(root / "live.wav").frames == 7200
    ch.close()


def test_realtime_replay(root, call_file):
    x = speechlike(0.4)
    ch = replay(call_file(x), root, realtime=True)  # plays at the pace of the clock
    assert ch.FileRecorder.record("rt.wav", file_format="s16bit") is Cause.HANGUP
    y, _ = wav.read(root / "rt.wav")
    assert x.size // 2 <= y.size <= x.size  # the call runs from answer; the job starts just after
    np.testing.assert_array_equal(y, x[x.size - y.size :])


def test_media_before_answer_is_dropped(root):
    ch = CallChannel(media_root=root, codec="s16")
    ch.ring()
    ch.push(speechlike(1))
    ch.answer()
    assert ch.media_time == 0.0
    ch.close()
