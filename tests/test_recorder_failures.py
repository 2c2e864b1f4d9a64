"""Recordings are never silently lost: I/O failures end a job with ERROR and keep a valid
file where the disk allows; a process killed mid-recording leaves a repairable file."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from signals import speechlike

from recorder import CallChannel, FileRecorder, codecs, wav

Cause, State = FileRecorder.Cause, FileRecorder.State


def run_script(code: str, *args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_file_size_limit_is_an_error_with_a_valid_partial_file(tmp_path):
    src = tmp_path / "call.wav"
    x = speechlike(10)
    wav.write(src, x, fmt="s16bit")
    proc = run_script(
        """
        import resource, signal, sys
        from recorder import CallChannel
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        ch = CallChannel.replay(sys.argv[1], media_root=sys.argv[2])
        resource.setrlimit(resource.RLIMIT_FSIZE, (60000, 60000))   # the 'disk' fills at 60 kB
        fr = ch.FileRecorder
        cause = fr.record("full.wav", file_format="s16bit", max_bytes=0)
        r = fr.result()
        print(cause.name, fr.state().name, r.path, r.error, sep="|")
    """,
        src,
        tmp_path / "media",
    )
    assert proc.returncode == 0, proc.stderr
    cause, state, path, error = proc.stdout.strip().split("|")
    assert (cause, state) == ("ERROR", "ERROR")
    assert "File too large" in error or "EFBIG" in error or "27" in error
    y, info = wav.read(path)  # a valid WAV of what the disk took
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
    (root / "x.wav").mkdir()  # a directory where the file should go
    ch = CallChannel.replay(src, media_root=root)
    with pytest.raises(ValueError, match="directory"):
        ch.FileRecorder.start("x.wav")


@contextlib.contextmanager
def killed_when_done(script: str, *args):
    """Run ``script`` in a child interpreter until it prints "ready" (a recording is
    running), yield, then kill it with SIGKILL: a crash mid-recording."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        yield proc
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)


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
    with killed_when_done(KILLED, root, fmt):
        pass
    assert not (root / "crash.wav").exists()
    parts = [p for p in os.listdir(root) if p.endswith(".part")]
    assert len(parts) == 1
    part = root / parts[0]
    before = wav.info(part)  # playable as it is: the last header sync
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
    proc = run_script(
        """
        import sys
        import numpy as np
        from recorder import CallChannel
        ch = CallChannel(media_root=sys.argv[1], codec="s16", clock=lambda: 0.0)
        ch.ring(); ch.answer()
        ch.FileRecorder.start("at-exit.wav", file_format="ulaw", max_bytes=0)
        ch.push(np.arange(-4000, 4000, dtype=np.int16))
        # the interpreter exits with the recording running
    """,
        root,
    )
    assert proc.returncode == 0, proc.stderr
    y, info = wav.read(root / "at-exit.wav")
    assert info.frames == 8000
    assert not [p for p in os.listdir(root) if p.endswith(".part")]


KILLED_ENCRYPTED = """
import sys, os
import numpy as np
from recorder import AesCbcCipher, AesGcmCipher, CallChannel
root, fmt, mode = sys.argv[1:4]
key = bytes(range(32))
cipher = AesGcmCipher(key) if mode == "gcm" else AesCbcCipher(key, bytes(16))
clock = [0.0]
ch = CallChannel(media_root=root, codec="s16", clock=lambda: clock[0])
ch.ring(); ch.answer()
ch.FileRecorder.start("secret.wav", file_format=fmt, milliseconds_max_silence=0, max_bytes=0,
                      cipher=cipher)
# a recognisable signal: a run of its bytes on disk would be plaintext audio
x = np.tile(np.array([1234, -1234, 4321, -4321], np.int16), 6000)
for i in range(0, x.size, 160):
    ch.push(x[i:i + 160])
    clock[0] += 0.02
ch.poll()
print("ready", flush=True)
sys.stdin.read()          # wait to be killed
"""


@pytest.mark.parametrize("fmt,mode", [("s16bit", "cbc"), ("alaw", "gcm"), ("ima", "cbc")])
def test_an_encrypted_recording_never_puts_plaintext_on_disk_and_survives_kill_9(
    tmp_path, fmt, mode
):
    from recorder import AesCbcCipher, AesGcmCipher

    root = tmp_path / "media"
    root.mkdir()
    with killed_when_done(KILLED_ENCRYPTED, root, fmt, mode):
        parts = [p for p in os.listdir(root) if p.endswith(".part")]
        assert len(parts) == 1
        on_disk = (root / parts[0]).read_bytes()  # while the recording runs
    assert len(on_disk) > 10000  # the audio is there, encrypted
    x = np.tile(np.array([1234, -1234, 4321, -4321], np.int16), 6000)
    coded = {"s16bit": x.tobytes(), "alaw": codecs.alaw_encode(x).tobytes()}.get(fmt)
    for marker in (b"RIFF", b"WAVE", b"fmt ", b"data"):
        assert marker not in on_disk
    if coded is not None:
        assert coded[1000:1016] not in on_disk
    part = root / parts[0]
    with pytest.raises(wav.WavError):
        wav.info(part)  # not readable without the key
    key = bytes(range(32)).hex()
    args = (
        ["--key", key, "--cipher", "aes-gcm"]
        if mode == "gcm"
        else ["--key", key, "--iv", "00" * 16]
    )
    rep = subprocess.run(
        [sys.executable, "-m", "recorder", "repair", *args, str(part)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rep.returncode == 0, rep.stderr
    cipher = (
        AesGcmCipher(bytes(range(32)))
        if mode == "gcm"
        else AesCbcCipher(bytes(range(32)), bytes(16))
    )
    y, info = wav.read(part, cipher=cipher)
    assert info.frames >= 2 * 8000  # every whole frame that reached the disk
    if fmt == "s16bit":
        np.testing.assert_array_equal(y, x[: y.size])


@pytest.mark.parametrize("fmt", ["alaw", "oki", "u8bit"])
def test_an_encrypted_recording_is_published_encrypted(tmp_path, fmt):
    from recorder import AesGcmCipher, CallChannel

    cipher = AesGcmCipher(bytes(range(16)))
    ch = CallChannel(media_root=tmp_path, codec="s16", clock=lambda: 0.0)
    ch.ring()
    ch.answer()
    assert ch.FileRecorder.start("enc.wav", file_format=fmt, max_bytes=0, cipher=cipher)
    x = (np.sin(np.arange(16000) * 0.3) * 8000).astype(np.int16)
    ch.push(x)
    ch.FileRecorder.stop()
    assert ch.FileRecorder.cause() is ch.FileRecorder.Cause.ABORTED
    raw = (tmp_path / "enc.wav").read_bytes()
    assert b"RIFF" not in raw
    y, info = wav.read(tmp_path / "enc.wav", cipher=cipher)
    assert info.frames == 16000 and info.format == fmt
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]
