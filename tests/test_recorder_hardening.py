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

import recorder
from recorder import AesCbcCipher, CallChannel, Error, FileRecorder, Hangup, wav

from signals import speechlike

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
        except BaseException as e:          # noqa: BLE001 - inspected by the test
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
    attacker = subprocess.Popen([sys.executable, "-c", ATTACKER, str(root), str(outside)],
                                stdout=subprocess.PIPE, text=True)
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
            except ValueError as e:           # a symbolic link on the way: refused
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
    assert outcomes["recorded"] > 0, outcomes         # the attacker did not stop everything
    return outcomes


def test_a_symlink_swapping_attacker_never_gets_a_file_outside_the_root(tmp_path, engine):
    _race(tmp_path, engine, 5000)


@pytest.mark.slow
def test_a_symlink_swapping_attacker_long_run(tmp_path, engine):
    _race(tmp_path, engine, 50000)
