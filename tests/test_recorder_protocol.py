"""The recorder core's typed protocol: the engine's enums and views agree with the
compiled core, one unit (samples) crosses the boundary, one result type from the
detectors, one publishing step, and where the engine's work runs."""

from __future__ import annotations

import os

import numpy as np
import pytest
from signals import dtmf, join, silence, speechlike

import recorder
from recorder import CallChannel, channel, engine, filerecorder, files, wav
from recorder._codecs import engine as core
from recorder.engine import (
    MEDIA_RATE,
    CoreFormat,
    Detections,
    DetectorBank,
    EndCause,
    Event,
    JobState,
)
from recorder.filerecorder import Cause, FailedStart, State
from recorder.publish import publish_file


class ManualClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


# --- the enums are the core's codes -------------------------------------------------------


@pytest.mark.parametrize(
    "enum, prefix", [(CoreFormat, "FMT_"), (EndCause, "CAUSE_"), (Event, "EV_")]
)
def test_each_enum_matches_the_cores_constants_one_for_one(enum, prefix):
    mine = {f"{prefix}{m.name}": int(m) for m in enum}
    theirs = {k: v for k, v in core.CONSTANTS.items() if k.startswith(prefix)}
    assert mine == theirs


def test_end_causes_are_the_recorders_causes():
    assert [c.name for c in EndCause] == sorted(
        (c.name for c in Cause), key=lambda n: EndCause[n].value
    )


def test_media_rate_has_one_home():
    assert MEDIA_RATE == core.CONSTANTS["MEDIA_RATE"] == 8000
    assert filerecorder.MEDIA_RATE is engine.MEDIA_RATE
    assert channel.MEDIA_RATE is engine.MEDIA_RATE
    assert engine.FRAME == MEDIA_RATE // 50


# --- the core's views and units -----------------------------------------------------------


def _bank_with_job(max_silence: int) -> core.Bank:
    b = core.Bank(4)
    b.open(0)
    b.start_job(0, int(CoreFormat.S16), -1, -1, max_silence, 0, False, 0)
    return b


def _feed(b, silence_run: int, seen: bool = True) -> int:
    return int(
        b.feed(
            np.array([0], np.int64),
            np.zeros((1, 160), np.int16),
            np.array([silence_run], np.int64),
            np.array([seen], np.uint8),
            np.full(1, -1, np.int64),
            np.zeros(1, np.int32),
            np.full(1, -1, np.int64),
        )[0]
    )


def test_job_state_is_a_named_view_not_a_tuple():
    b = _bank_with_job(0)
    st = b.job(0)
    assert isinstance(st, JobState)
    assert (st.active, st.n, st.committed, st.cause, st.digit, st.digit_start, st.first_audio) == (
        True,
        0,
        0,
        EndCause.NONE,
        None,
        -1,
        -1,
    )
    _feed(b, 0)
    assert b.job(0).n == 160 and b.job(0).committed == 160
    b.end_job(0, int(EndCause.HANGUP), True)
    assert EndCause(b.job(0).cause) is EndCause.HANGUP and not b.job(0).active
    with pytest.raises(TypeError):
        st[0]


def test_silence_crosses_into_the_core_in_samples_and_cuts_at_the_exact_sample():
    b = _bank_with_job(max_silence=200)  # 25 ms of silence ends the job
    assert _feed(b, 0) & Event.DONE == 0
    assert _feed(b, 199) & Event.DONE == 0  # one sample short: goes on
    ev = _feed(b, 200 + 160)  # limit passed 160 samples into the chunk
    assert ev & Event.DONE
    st = b.job(0)
    assert EndCause(st.cause) is EndCause.SILENCE
    assert st.committed == 480 - 160  # cut where the silence timer expired


def test_the_core_refuses_silence_in_milliseconds():
    b = _bank_with_job(0)
    with pytest.raises(ValueError):  # float64 ms: the wrong unit is a buffer error
        b.feed(
            np.array([0], np.int64),
            np.zeros((1, 160), np.int16),
            np.zeros(1),
            np.ones(1, np.uint8),
            np.full(1, -1, np.int64),
            np.zeros(1, np.int32),
            np.full(1, -1, np.int64),
        )


# --- one result type from the detectors --------------------------------------------------


def test_detector_bank_gives_the_same_detections_within_one_bank_and_across_banks():
    x = join(silence(0.1), dtmf("7", 0.1), silence(0.05), speechlike(0.3), silence(0.2))
    rows = np.stack([x, np.roll(x, 800), np.zeros_like(x)])
    spread = np.array([3, 300, 700], np.int64)  # three detector banks
    packed = np.array([0, 1, 2], np.int64)  # one bank
    a, b = DetectorBank(), DetectorBank()
    a.ensure(701)
    b.ensure(3)
    for s in spread:
        a.reset(int(s))
    for s in packed:
        b.reset(int(s))
    found = []
    for i in range(0, x.size - 159, 160):
        da = a.process(rows[:, i : i + 160], spread)
        db = b.process(rows[:, i : i + 160], packed)
        assert type(da) is type(db) is Detections
        for f in Detections._fields:
            np.testing.assert_array_equal(getattr(da, f), getattr(db, f), err_msg=f)
        found.append(da)
    assert any(chr(d.digit[0]) == "7" for d in found if d.digit_start[0] >= 0)
    assert any(d.digit_start[1] >= 0 for d in found)
    assert all(d.digit_start[2] < 0 and d.audio_start[2] < 0 for d in found)
    assert found[-1].silence[2] == 160 * len(found)  # silence counted in samples since reset


# --- where the engine's work runs -----------------------------------------------------------


def test_a_push_larger_than_the_ring_is_processed_on_the_callers_thread(tmp_path):
    eng = recorder.Engine(tick=3600.0)  # the worker never gets to a round
    ch = CallChannel(media_root=tmp_path, codec="s16", clock=ManualClock(), engine=eng)
    ch.ring()
    ch.answer()
    ch.FileRecorder.start("big.wav", file_format="s16bit", milliseconds_max_silence=0)
    x = speechlike(3)
    assert x.size > 2 * engine.PIECE
    ch.push(x)
    # no worker round ran: everything beyond one ring was processed by push() itself
    assert ch.media_samples() >= x.size - engine.PIECE
    assert ch.FileRecorder.stop() is True
    assert wav.info(tmp_path / "big.wav").frames == x.size
    ch.close()
    eng.stop()


# --- a recording that cannot start ----------------------------------------------------------


def test_a_recording_that_cannot_start_has_a_complete_outcome(tmp_path):
    (tmp_path / "blocked").write_bytes(b"a file where a folder should be")
    ch = CallChannel.replay(_wav(tmp_path, speechlike(1)), media_root=tmp_path)
    fr = ch.FileRecorder
    assert fr.start("blocked/x.wav") is False
    assert fr.state() is State.ERROR and fr.cause() is Cause.ERROR
    assert fr.audio_detected_in_recording() is False
    r = fr.result()
    assert r.cause is Cause.ERROR and r.path is None and r.frames == 0 and "blocked" in r.error
    assert fr.start("ok.wav") is True  # the channel records again
    assert fr.wait_until_finished(None) is Cause.HANGUP
    ch.close()


def test_failed_start_is_constructed_whole():
    spec = filerecorder.JobSpec.build("/tmp", "x.wav", "alaw", 8000, None, 0, 0, 0, False, None)
    f = FailedStart(spec, OSError(28, "No space left on device"))
    assert f.ended and f.done.is_set() and f.cause is Cause.ERROR and not f.audio_seen
    assert f.result.error == f.error == "OSError: [Errno 28] No space left on device"


def _wav(folder, pcm) -> str:
    path = os.path.join(folder, "in.wav")
    wav.write(path, pcm, fmt="s16bit", rate=8000)
    return path


# --- publishing ---------------------------------------------------------------------------


def test_publish_file_replaces_the_file_whole(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"old")
    folder = files.Folder(tmp_path, "f.bin")
    try:
        publish_file(folder, lambda f: f.write(b"new content"))
    finally:
        folder.close()
    assert (tmp_path / "f.bin").read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_publish_file_that_fails_leaves_the_old_file_and_no_debris(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"old")
    folder = files.Folder(tmp_path, "f.bin")

    def half(f):
        f.write(b"half of it")
        raise OSError(28, "No space left on device")

    try:
        with pytest.raises(OSError, match="No space"):
            publish_file(folder, half)
        with pytest.raises(FileExistsError):  # a named temporary file must be new
            (tmp_path / ".taken").write_bytes(b"")
            publish_file(folder, lambda f: f.write(b"x"), temp=".taken")
    finally:
        folder.close()
    assert (tmp_path / "f.bin").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == [".taken", "f.bin"]


def test_convert_publishes_through_the_one_step(tmp_path):
    from recorder.cli import main

    src = _wav(tmp_path, speechlike(0.5))
    out = tmp_path / "out"
    out.mkdir()
    (out / "in.wav").write_bytes(b"old")
    assert main(["convert", "--format", "alaw", "--overwrite", "-o", str(out), src, "-q"]) == 0
    assert os.listdir(out) == ["in.wav"]
    assert wav.info(out / "in.wav").format == "alaw"


# --- the recording's file has its own home ----------------------------------------------------


def test_recording_file_publishes_whole_or_salvages(tmp_path):
    spec = filerecorder.JobSpec.build(
        str(tmp_path), "f/r.wav", "s16bit", 8000, None, 0, 0, 0, False, None
    )
    f = filerecorder.RecordingFile(spec, str(tmp_path))
    f.writer.write(speechlike(0.5))
    path, error, size = f.finish(None)
    assert (path, error) == (str(tmp_path / "f" / "r.wav"), None)
    assert size == os.path.getsize(path) and wav.info(path).frames == 4000
    assert os.listdir(tmp_path / "f") == ["r.wav"]

    g = filerecorder.RecordingFile(spec, str(tmp_path))
    g.writer.write(speechlike(0.25))
    path, error, size = g.finish("OSError: an earlier write failed")  # kept, repaired
    assert error == "OSError: an earlier write failed" and wav.info(path).frames == 2000

    h = filerecorder.RecordingFile(spec, str(tmp_path))
    h.discard()
    assert os.listdir(tmp_path / "f") == ["r.wav"]
