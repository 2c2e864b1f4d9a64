"""Hardening of the recorder core (issue 10): confinement under a symlink-swapping
attacker, no call stalled by another's slow publication, the result of a hangup, large
pushes that leave room for other channels, names beyond the file system's limits.

Thread joins with a timeout are hang guards, not timing assertions; the attacker runs
for a bounded number of attempts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from signals import speechlike

import recorder
from recorder import AesCbcCipher, CallChannel, FileRecorder, Hangup, wav

Cause, State = FileRecorder.Cause, FileRecorder.State
GUARD = 60.0


class ManualClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def live(root, engine, codec="s16"):
    ch = CallChannel(media_root=root, codec=codec, clock=ManualClock(), engine=engine)
    ch.ring()
    ch.answer()
    return ch


@pytest.fixture
def engine():
    e = recorder.Engine()
    yield e
    e.stop()


def in_thread(fn):
    """Run ``fn`` in a thread; returns (thread, out) with out['value'] / out['error']."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # inspected by the test
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def joined(t):
    t.join(GUARD)
    assert not t.is_alive(), "hangs"


# --- confinement under a race --------------------------------------------------------------

ATTACKER = r"""
import ctypes, os, sys
root, outside = sys.argv[1], sys.argv[2]
os.chdir(root)
os.symlink(outside, "lnk")
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
print("ready", flush=True)
while True:        # atomically swap root/sub between a folder and a link to outside
    if libc.renameat2(AT_FDCWD, b"sub", AT_FDCWD, b"lnk", RENAME_EXCHANGE) != 0:
        print("renameat2 failed:", os.strerror(ctypes.get_errno()), flush=True)
        break
"""


def _race(tmp_path, engine, attempts):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    attacker = subprocess.Popen(
        [sys.executable, "-c", ATTACKER, str(root), str(outside)], stdout=subprocess.PIPE, text=True
    )
    outcomes = {"recorded": 0, "refused": 0, "error": 0}
    try:
        assert attacker.stdout.readline().strip() == "ready"
        ch = live(root, engine)
        fr = ch.FileRecorder
        frame = np.zeros(160, np.int16)
        for i in range(attempts):
            name = f"sub/d{i % 7}/r{i}.wav" if i % 2 else f"sub/r{i}.wav"
            try:
                started = fr.start(name, file_format="s16bit")
            except ValueError as e:  # a symbolic link on the way: refused
                assert "symbolic link" in str(e) or "keeps changing" in str(e), e
                outcomes["refused"] += 1
                continue
            if started:
                ch.push(frame)
                assert fr.stop() is True
                r = fr.result()
                if r.cause is Cause.ABORTED:
                    outcomes["recorded"] += 1
                    assert r.path == os.path.join(root, name)
                else:
                    assert r.cause is Cause.ERROR and fr.last_error()
                    outcomes["error"] += 1
            else:
                assert fr.state() is State.ERROR and fr.last_error()
                outcomes["error"] += 1
        ch.close()
    finally:
        attacker.kill()
        attacker.wait()
    escaped = [os.path.join(d, f) for d, _, fs in os.walk(outside) for f in fs]
    assert escaped == [], f"{len(escaped)} files written outside the media root: {escaped[:5]}"
    assert sum(outcomes.values()) == attempts
    assert outcomes["recorded"] > 0, outcomes  # the attacker did not stop everything
    return outcomes


def test_a_symlink_swapping_attacker_never_gets_a_file_outside_the_root(tmp_path, engine):
    _race(tmp_path, engine, 5000)


@pytest.mark.slow
def test_a_symlink_swapping_attacker_long_run(tmp_path, engine):
    _race(tmp_path, engine, 50000)


# --- one slow publication stalls nobody else -----------------------------------------------


class GatedCipher(AesCbcCipher):
    """A real AES cipher whose encryption waits until the test opens the gate."""

    def __init__(self):
        super().__init__(bytes(16), bytes(16))
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.finished = threading.Event()

    def encrypt_file(self, src, dst):
        self.entered.set()
        assert self.gate.wait(GUARD)
        n = super().encrypt_file(src, dst)
        self.finished.set()
        return n


def test_a_slow_publication_does_not_hold_up_another_calls_stop(tmp_path, engine):
    slow, fast = live(tmp_path, engine), live(tmp_path, engine)
    cipher = GatedCipher()
    x = speechlike(1)
    assert slow.FileRecorder.start("slow.wav", file_format="s16bit", cipher=cipher)
    assert fast.FileRecorder.start("fast.wav", file_format="s16bit")
    slow.push(x)
    fast.push(x)
    first, _ = in_thread(slow.FileRecorder.stop)
    assert cipher.entered.wait(GUARD)  # the slow file occupies a publisher
    second, second_out = in_thread(
        lambda: (slow.FileRecorder.stop(), os.path.exists(tmp_path / "slow.wav"))
    )
    try:
        done, _ = in_thread(fast.FileRecorder.stop)
        joined(done)  # returns while the slow one still waits
        assert fast.FileRecorder.cause() is Cause.ABORTED
        np.testing.assert_array_equal(wav.read(tmp_path / "fast.wav")[0], x)
        assert not cipher.gate.is_set() and slow.FileRecorder.state() is State.RECORDING
        assert not (tmp_path / "slow.wav").exists()
    finally:
        cipher.gate.set()
    joined(first)
    joined(second)
    # the second stop() returned only once the file was there
    assert second_out["value"] == (True, True)
    assert slow.FileRecorder.cause() is Cause.ABORTED
    y, _ = wav.read(tmp_path / "slow.wav", cipher=AesCbcCipher(bytes(16), bytes(16)))
    np.testing.assert_array_equal(y, x)


def test_publisher_pool_size_is_checked():
    with pytest.raises(ValueError, match="workers"):
        recorder.Engine(publishers=0)
    with pytest.raises(TypeError, match="workers"):
        recorder.Engine(publishers=2.5)


# --- how a recording ended, after a hangup --------------------------------------------------


def test_hangup_returns_once_the_file_is_published(tmp_path, engine):
    ch = live(tmp_path, engine)
    cipher = GatedCipher()
    assert ch.FileRecorder.start("h.wav", file_format="s16bit", cipher=cipher)
    ch.push(speechlike(1))
    opener = threading.Thread(
        target=lambda: cipher.entered.wait(GUARD) and cipher.gate.set(), daemon=True
    )
    opener.start()
    ch.hangup()
    assert cipher.finished.is_set()  # published before hangup() returned
    assert ch.FileRecorder.cause() is Cause.HANGUP
    assert ch.FileRecorder.state() is State.IDLE
    assert ch.FileRecorder.result().path == str(tmp_path / "h.wav")
    assert (tmp_path / "h.wav").exists()
    joined(opener)


def test_after_a_hangup_the_hangup_exception_comes_with_the_final_cause(tmp_path, engine):
    """Whoever hung up, a FileRecorder call that raises Hangup does so once the last
    file is published: ``cause()`` right after catching it is final."""
    ch = live(tmp_path, engine)
    cipher = GatedCipher()
    assert ch.FileRecorder.start("far.wav", file_format="s16bit", cipher=cipher)
    ch.push(speechlike(1))
    hanger, _ = in_thread(ch.hangup)  # the far end hangs up
    assert cipher.entered.wait(GUARD)
    seen = {}

    def waiter():
        try:
            ch.FileRecorder.wait_until_finished()
        except Hangup:
            seen["cause"] = ch.FileRecorder.cause()
            seen["published"] = cipher.finished.is_set()

    t, out = in_thread(waiter)
    assert not cipher.finished.is_set()
    cipher.gate.set()
    joined(t)
    joined(hanger)
    assert "error" not in out, out
    assert seen == {"cause": Cause.HANGUP, "published": True}
    with pytest.raises(Hangup):
        ch.FileRecorder.stop()
    assert ch.FileRecorder.cause() is Cause.HANGUP


# --- a large push leaves room for the other channels ----------------------------------------


def _big_push(tmp_path, engine, seconds):
    big = live(tmp_path, engine, codec="alaw")
    other = live(tmp_path, engine)
    assert big.FileRecorder.start("big.wav", max_bytes=0, milliseconds_max_silence=0)
    assert other.FileRecorder.start(
        "other.wav", file_format="s16bit", max_bytes=0, milliseconds_max_silence=0
    )
    pushed = [0]
    running, stop = threading.Event(), threading.Event()
    frame = speechlike(0.02)

    def other_call():  # a real second call, 20 ms frames
        while not stop.is_set():
            other.push(frame)
            pushed[0] += 1
            running.set()

    t = threading.Thread(target=other_call, daemon=True)
    t.start()
    try:
        assert running.wait(GUARD)
        codes = recorder.codecs.alaw_encode(speechlike(10))
        payload = np.tile(codes, seconds // 10)
        before = pushed[0]
        big.push(payload)
        during = pushed[0] - before
    finally:
        stop.set()
        joined(t)
    # the other call was served all along: many of its frames went in during the push
    assert during >= 100, during
    assert big.FileRecorder.stop() and other.FileRecorder.stop()
    assert wav.info(tmp_path / "big.wav").frames == payload.size
    assert wav.info(tmp_path / "other.wav").frames == pushed[0] * frame.size


def test_a_large_push_does_not_block_other_channels(tmp_path, engine):
    _big_push(tmp_path, engine, 240)


@pytest.mark.slow
def test_an_hour_long_push_does_not_block_other_channels(tmp_path, engine):
    _big_push(tmp_path, engine, 3600)


# --- names beyond the file system's limits --------------------------------------------------


@pytest.mark.parametrize(
    "name, match",
    [
        ("a" * 252 + ".wav", "NAME_MAX=255"),
        ("sub/" + "é" * 128 + "/x.wav", "NAME_MAX=255"),
        ("/".join(["d" * 200] * 21) + "/x.wav", "PATH_MAX=4096"),
        ("a/" * 2000 + "x.wav", "2000 folders deep"),
    ],
    ids=["component", "utf8-component", "path", "depth"],
)
def test_names_beyond_the_file_system_limits_are_refused_up_front(tmp_path, engine, name, match):
    ch = live(tmp_path / "m", engine)
    with pytest.raises(ValueError, match=match):
        ch.FileRecorder.start(name)
    assert ch.FileRecorder.state() is State.IDLE
    assert not (tmp_path / "m").exists() or os.listdir(tmp_path / "m") == []


def test_the_deepest_allowed_name_records(tmp_path, engine):
    from recorder.files import MAX_DEPTH

    ch = live(tmp_path, engine)
    name = "a/" * MAX_DEPTH + "x.wav"
    assert ch.FileRecorder.start(name)
    assert ch.FileRecorder.stop() and ch.FileRecorder.cause() is Cause.ABORTED
    assert (tmp_path / name).exists()
    with pytest.raises(ValueError, match="folders deep"):
        ch.FileRecorder.start("a/" + name)


def test_folder_open_names_the_modes_it_takes(tmp_path):
    from recorder import files

    folder = files.Folder(tmp_path, "a.wav")
    try:
        with pytest.raises(ValueError, match="'rb' or 'r\\+b'"):
            folder.open("a.wav", "w")
    finally:
        folder.close()
