"""Recordings are never silently lost: I/O failures end a job with ERROR and keep a valid
file where the disk allows; a process killed mid-recording leaves a repairable file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from recorder import CallChannel, FileRecorder, wav

from signals import speechlike

Cause, State = FileRecorder.Cause, FileRecorder.State


def run_script(code: str, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_file_size_limit_is_an_error_with_a_valid_partial_file(tmp_path):
    src = tmp_path / "call.wav"
    x = speechlike(10)
    wav.write(src, x, fmt="s16bit")
    proc = run_script("""
        import resource, signal, sys
        from recorder import CallChannel
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        ch = CallChannel.replay(sys.argv[1], media_root=sys.argv[2])
        resource.setrlimit(resource.RLIMIT_FSIZE, (60000, 60000))   # the 'disk' fills at 60 kB
        fr = ch.FileRecorder
        cause = fr.record("full.wav", file_format="s16bit", max_bytes=0)
        r = fr.result()
        print(cause.name, fr.state().name, r.path, r.error, sep="|")
    """, src, tmp_path / "media")
    assert proc.returncode == 0, proc.stderr
    cause, state, path, error = proc.stdout.strip().split("|")
    assert (cause, state) == ("ERROR", "ERROR")
    assert "File too large" in error or "EFBIG" in error or "27" in error
    y, info = wav.read(path)                   # a valid WAV of what the disk took
    assert 0 < info.frames and os.path.getsize(path) <= 60000
    np.testing.assert_array_equal(y, x[: info.frames])


def test_disk_full_on_a_real_filesystem(tmp_path, full_disk):
    src = tmp_path / "call.wav"
    x = speechlike(10)
    wav.write(src, x, fmt="s16bit")
    ch = CallChannel.replay(src, media_root=full_disk)
    fr = ch.FileRecorder
    assert fr.record("full.wav", file_format="s16bit", max_bytes=0) is Cause.ERROR
    assert fr.state() is State.ERROR
    assert "No space" in fr.last_error()
    r = fr.result()
    y, info = wav.read(r.path)
    assert info.frames > 8000
    np.testing.assert_array_equal(y, x[: info.frames])
    # the next recording on the same channel starts cleanly (and fails the same way)
    assert fr.record("again.wav", file_format="s16bit") is Cause.ERROR


def test_folder_removed_mid_recording(tmp_path):
    src = tmp_path / "call.wav"
    wav.write(src, speechlike(5), fmt="s16bit")
    root = tmp_path / "media"
    ch = CallChannel.replay(src, media_root=root)
    fr = ch.FileRecorder
    assert fr.start("sub/x.wav", milliseconds_max_silence=0)
    assert fr.wait_until_finished(1) is Cause.TIMEOUT
    shutil.rmtree(root / "sub")
    assert fr.stop() is True
    assert fr.state() is State.ERROR and fr.cause() is Cause.ERROR
    assert fr.last_error()
    # the channel keeps working
    assert fr.record("y.wav", seconds_timeout=1) is Cause.TIMEOUT
    assert fr.state() is State.IDLE


def test_unwritable_target_fails_start(tmp_path):
    src = tmp_path / "call.wav"
    wav.write(src, speechlike(1), fmt="s16bit")
    root = tmp_path / "media"
    root.mkdir()
    (root / "x.wav").mkdir()                    # a directory where the file should go
    ch = CallChannel.replay(src, media_root=root)
    with pytest.raises(ValueError, match="directory"):
        ch.FileRecorder.start("x.wav")


KILLED = """
import sys, os
import numpy as np
from recorder import CallChannel
root = sys.argv[1]
clock = [0.0]
ch = CallChannel(media_root=root, codec="s16", clock=lambda: clock[0])
ch.ring(); ch.answer()
ch.FileRecorder.start("crash.wav", file_format=sys.argv[2], milliseconds_max_silence=0, max_bytes=0)
rng = np.random.default_rng(3)
x = (rng.standard_normal(8000 * 3 + 800) * 3000).astype(np.int16)
np.save(os.path.join(root, "sent.npy"), x)
for i in range(0, x.size, 160):
    ch.push(x[i:i + 160])
    clock[0] += 0.02
ch.poll()
print("ready", flush=True)
sys.stdin.read()          # wait to be killed
"""


@pytest.mark.parametrize("fmt", ["alaw", "s16bit"])
def test_kill_9_mid_recording_then_repair(tmp_path, fmt):
    root = tmp_path / "media"
    root.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(root), fmt], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert not (root / "crash.wav").exists()
    parts = [p for p in os.listdir(root) if p.endswith(".part")]
    assert len(parts) == 1
    part = root / parts[0]
    before = wav.info(part)                     # playable as it is: the last header sync
    assert before.frames >= 3 * 8000
    fixed = wav.repair(part)
    assert fixed.frames >= before.frames
    sent = np.load(root / "sent.npy")
    y, _ = wav.read(part)
    ref = sent if fmt == "s16bit" else None
    if ref is not None:
        np.testing.assert_array_equal(y, ref[: y.size])
    assert y.size == fixed.frames


def test_a_recording_running_at_exit_is_finished_and_published(tmp_path):
    root = tmp_path / "media"
    proc = run_script("""
        import sys
        import numpy as np
        from recorder import CallChannel
        ch = CallChannel(media_root=sys.argv[1], codec="s16", clock=lambda: 0.0)
        ch.ring(); ch.answer()
        ch.FileRecorder.start("at-exit.wav", file_format="ulaw", max_bytes=0)
        ch.push(np.arange(-4000, 4000, dtype=np.int16))
        # the interpreter exits with the recording running
    """, root)
    assert proc.returncode == 0, proc.stderr
    y, info = wav.read(root / "at-exit.wav")
    assert info.frames == 8000
    assert not [p for p in os.listdir(root) if p.endswith(".part")]
