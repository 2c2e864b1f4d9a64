"""The ``recorder`` command line, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from signals import dtmf, join, silence, speechlike

from recorder import AesCbcCipher, wav
from recorder.filerecorder import RECORD_FORMATS, RECORD_RATES

KEY = "000102030405060708090a0b0c0d0e0f"
IV = "f0e0d0c0b0a090807060504030201000"


def cli(*args, check=True, cwd=None, timeout=300):
    proc = subprocess.run(
        [sys.executable, "-m", "recorder", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"recorder {args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def fails(*args, match: str, timeout=300):
    proc = cli(*args, check=False, timeout=timeout)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line, no traceback
    assert lines[0].startswith("recorder: error:") and match in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def call(tmp_path):
    path = tmp_path / "call.wav"
    x = join(
        speechlike(1.2),
        silence(0.8),
        speechlike(0.8),
        silence(0.1),
        dtmf("7", 0.15, -8),
        silence(0.2),
        speechlike(0.5),
    )
    wav.write(path, x, fmt="s16bit")
    return path


def test_console_script_and_help():
    exe = shutil.which("recorder")
    assert exe, "the console script 'recorder' is not installed"
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("demo", "record", "convert", "info", "dtmf", "repair"):
        assert command in out
        sub = cli(command, "--help").stdout
        assert "usage: recorder " + command in sub
    assert "callrecorder" in cli("--version").stdout


def test_demo(tmp_path):
    out = json.loads(cli("demo", "--out", tmp_path, "--json").stdout)
    rows = out["recordings"]
    combos = {(r["format"], r["rate"]) for r in rows if r["options"] == "barge_in=True"}
    assert combos == {(f, r) for f in RECORD_FORMATS for r in RECORD_RATES}
    for r in rows:
        info = wav.info(r["file"])
        assert (info.format, info.rate) == (r["format"], r["rate"])
        assert r["audio"] is True
    by_opt = {r["options"]: r for r in rows if r["options"] != "barge_in=True"}
    assert by_opt["milliseconds_max_silence=1000"]["cause"] == "SILENCE"
    assert by_opt["max_bytes=12000"]["cause"] == "SIZE"
    assert by_opt["max_bytes=12000"]["bytes"] <= 12000
    assert by_opt["seconds_timeout=2"]["cause"] == "TIMEOUT"
    assert by_opt["milliseconds_max_silence=0"]["cause"] == "HANGUP"
    barge = [r for r in rows if r["options"] == "barge_in=True"]
    assert {r["cause"] for r in barge} == {"BARGEIN"} and {r["digit"] for r in barge} == {"5"}
    table = cli("demo", "--out", tmp_path / "t").stdout
    assert "BARGEIN" in table and "recordings in" in table


def test_record(tmp_path, call):
    out = tmp_path / "out" / "rec.wav"
    r = json.loads(
        cli(
            "record", call, out, "--format", "ulaw", "--rate", "11025", "--barge-in", "--json"
        ).stdout
    )
    assert r["cause"] == "BARGEIN" and r["digit"] == "7"
    assert abs(r["digit_time"] - 2.9) < 0.02
    info = wav.info(out)
    assert (info.format, info.rate) == ("ulaw", 11025)
    assert abs(info.duration - r["duration"]) < 1e-3
    text = cli("record", call, tmp_path / "b.wav", "--max-silence-ms", "500").stdout
    assert "cause: SILENCE" in text and "audio detected: yes" in text
    fails("record", call, out, match="exists (use --overwrite)")
    cli("record", call, out, "--overwrite", "--timeout", "1")
    assert wav.info(out).duration == pytest.approx(1.0)


def test_record_encrypted_both_ways(tmp_path, call):
    enc = tmp_path / "enc.wav"
    cli("record", call, enc, "--format", "s16bit", "--key", KEY, "--iv", IV)
    assert not enc.read_bytes().startswith(b"RIFF")
    y, _ = wav.read(enc, cipher=AesCbcCipher(KEY, IV))
    np.testing.assert_array_equal(y, wav.read(call)[0])
    again = tmp_path / "again.wav"
    r = json.loads(cli("record", enc, again, "--in-key", KEY, "--in-iv", IV, "--json").stdout)
    assert r["cause"] == "HANGUP"
    fails("record", enc, tmp_path / "x.wav", match="encrypted? give --key and --iv")
    fails(
        "record", enc, tmp_path / "x.wav", "--in-key", "00" * 16, "--in-iv", IV, match="wrong key"
    )
    fails("record", call, tmp_path / "x.wav", "--key", KEY, match="give both --key and --iv")
    fails("record", call, tmp_path / "x.wav", "--key", "abc", "--iv", IV, match="key")


def test_record_errors(tmp_path, call):
    fails("record", tmp_path / "missing.wav", tmp_path / "x.wav", match="no such file")
    fails("record", call, tmp_path / "x.wav", "--format", "mp3", match="invalid choice: 'mp3'")
    fails("record", call, tmp_path / "x.wav", "--rate", "16000", match="invalid choice: 16000")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    fails("record", junk, tmp_path / "x.wav", match="not a readable WAV file")
    fails("record", call, tmp_path, match="is a directory")
    fails("record", call, tmp_path / "x.wav", "--max-bytes", "10", match="max_bytes")


def test_convert(tmp_path, call):
    second = tmp_path / "second.wav"
    wav.write(second, speechlike(2.0), fmt="alaw", rate=11025)
    out = tmp_path / "conv"
    res = cli("convert", call, second, "-o", out, "--format", "ima", "--rate", "8000", "-j", "2")
    assert "conv" in res.stdout
    for name, src in (("call.wav", call), ("second.wav", second)):
        info = wav.info(out / name)
        assert (info.format, info.rate) == ("ima", 8000)
        assert abs(info.duration - wav.info(src).duration) < 0.01
    fails("convert", call, "-o", out, "--format", "ima", match="exists (use --overwrite)")
    cli("convert", call, "-o", out, "--format", "ulaw", "--overwrite", "-q")
    assert wav.info(out / "call.wav").format == "ulaw"
    fails("convert", call, "-o", out, "--format", "mp3", match="unknown format 'mp3'")
    fails("convert", tmp_path / "nope.wav", "-o", out, match="no such file")
    bar = cli("convert", call, second, "-o", tmp_path / "bar", "--progress")
    assert "2/2" in bar.stderr and "file" in bar.stderr  # tqdm's progress bar
    cli("convert", call, "-o", tmp_path / "enc", "--key", KEY, "--iv", IV)
    y, _ = wav.read(tmp_path / "enc" / "call.wav", cipher=AesCbcCipher(KEY, IV))
    np.testing.assert_array_equal(y, wav.read(call)[0])


def test_info_and_dtmf(tmp_path, call):
    r = json.loads(cli("info", call, "--json").stdout)
    assert (r["format"], r["rate"], r["channels"]) == ("s16bit", 8000, 1)
    assert r["duration"] == pytest.approx(wav.info(call).duration)
    assert -25 < r["level_dbm0"] < -15
    assert 0.2 < r["silence_share"] < 0.45  # 1.1 s of 3.75 s is silence
    assert [d["digit"] for d in r["dtmf"]] == ["7"]
    assert abs(r["dtmf"][0]["start"] - 2.9) < 0.01
    text = cli("info", call).stdout
    assert "DTMF 7" in text and "s16bit" in text
    digits = json.loads(cli("dtmf", call, "--json").stdout)
    assert [d["digit"] for d in digits] == ["7"] and abs(digits[0]["start"] - 2.9) < 0.01
    assert "no DTMF digits" in cli("dtmf", _speech(tmp_path)).stdout
    fails("info", tmp_path / "missing.wav", match="no such file")
    fails("dtmf", tmp_path, match="is a directory")


def _speech(tmp_path):
    p = tmp_path / "speech.wav"
    wav.write(p, speechlike(1.0), fmt="alaw")
    return p


def test_repair(tmp_path):
    p = tmp_path / "crashed.wav"
    x = speechlike(2.0)
    w = wav.Writer(p, "alaw", 8000)
    w.write(x[:8000])
    w.sync()
    w.write(x[8000:])
    w._f.flush()  # killed before the next header refresh
    assert wav.info(p).frames == 8000
    out = cli("repair", p).stdout
    assert "8000 -> 16000 frames" in out
    assert wav.info(p).frames == 16000
    assert "already whole" in cli("repair", p).stdout
    fails("repair", tmp_path / "missing.wav", match="no such file")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    fails("repair", junk, match="cannot repair")


# --- hardening: inputs that are not files, output locations, numbers, killed workers ------


def test_fifo_and_devices_are_refused_not_read(tmp_path, call):
    """Opening a FIFO blocks until a writer comes: every command refuses it (and a
    character device) at once, one line, exit 2.  A timeout turns a regression into a
    failure instead of a hang."""
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for args in (
        ("info", fifo),
        ("info", call, fifo),
        ("dtmf", fifo),
        ("dtmf", call, fifo),
        ("repair", fifo),
        ("record", fifo, tmp_path / "r.wav"),
        ("convert", fifo, "-o", tmp_path / "c"),
        ("convert", call, fifo, "-o", tmp_path / "c", "-j", "2"),
    ):
        fails(*args, match="pipe.wav: is a named pipe (FIFO), not a regular file", timeout=60)
    fails(
        "info",
        "/dev/zero",
        match="/dev/zero: is a character device, not a regular file",
        timeout=60,
    )
    fails("repair", "/dev/null", match="is a character device", timeout=60)
    assert not (tmp_path / "r.wav").exists()


def _unwritable_folder(tmp_path) -> str:
    """A folder this process cannot create files in: a read-only one, or (as root, whom
    permissions do not stop) sysfs."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    for folder in (str(ro), "/sys/kernel"):
        try:
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError:
            return folder
    pytest.skip("no folder here refuses new files")


def test_record_bad_output_locations_are_usage_errors(tmp_path, call):
    """An output the recorder could never create is a usage error (exit 2, one line)
    found before recording, not a failed recording (exit 1)."""
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"x")
    fails("record", call, a_file / "x.wav", match=f"{a_file} is not a directory")
    fails("record", call, a_file / "sub" / "x.wav", match=f"{a_file} is not a directory")
    fails(
        "record",
        call,
        tmp_path / ("n" * 300 + ".wav"),
        match="the file name is too long (304 bytes",
    )
    fails("record", call, tmp_path / ("d" * 300) / "x.wav", match="File name too long")
    fails(
        "record", call, os.path.join(_unwritable_folder(tmp_path), "x.wav"), match="cannot write in"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "call.wav", "ro"]
    fails("record", call, "", match="argument OUTPUT: expected a path, got an empty string")
    fails("demo", "--out", a_file, match=f"--out: {a_file} is not a directory")
    r = json.loads(cli("record", call, tmp_path / "new" / "deeper" / "ok.wav", "--json").stdout)
    assert r["cause"] == "HANGUP" and wav.info(r["file"]).duration == pytest.approx(
        wav.info(call).duration
    )


def test_convert_numbers_and_output_folder_checked(tmp_path, call):
    out = tmp_path / "out"
    for bad, match in (
        (("--rate", "0"), "argument --rate: must be at least 1, got 0"),
        (("--rate", "-8000"), "argument --rate: must be at least 1, got -8000"),
        (("--rate", "8k"), "argument --rate: expected a whole number, got '8k'"),
        (("--rate", str(10**12)), "rate must be between 1 and 1000000 Hz"),
        (("--rate", "7999"), "cannot convert 8000 Hz to 7999 Hz"),
        (("-j", "0"), "argument -j/--jobs: must be from 1 to 256, got 0"),
        (("-j", "-1"), "argument -j/--jobs: must be from 1 to 256, got -1"),
        (("-j", str(10**6)), "argument -j/--jobs: must be from 1 to 256"),
    ):
        fails("convert", call, "-o", out, *bad, match=match)
    assert not out.exists()  # nothing done before the checks
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"x")
    fails("convert", call, "-o", a_file / "sub", match=f"{a_file} is not a directory")
    fails("convert", call, "-o", "", match="argument -o/--output-dir: expected a path")
    fails("convert", call, "-o", _unwritable_folder(tmp_path), match="cannot write in")
    long_in = tmp_path / ("n" * 251 + ".wav")  # a legal name; + ".part" would not be
    shutil.copy(call, long_in)
    res = cli("convert", long_in, call, "-o", out, "-j", "2", "--rate", "11025", "--format", "ulaw")
    assert len(res.stdout.splitlines()) == 2
    assert sorted(os.listdir(out)) == sorted([long_in.name, "call.wav"])
    assert wav.info(out / long_in.name).rate == 11025


def _descendants(pid: int) -> dict[int, int]:
    """{process: its parent} for every descendant of ``pid``, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found.update((k, parent) for k in kids)
        todo += kids
    return found


def _pool_worker_of(pid: int, deadline: float) -> int:
    """A worker process of the pool run by ``pid``, as soon as one exists: a process with
    no children of its own, not the resource tracker, and not the fork server (a child of
    ``pid`` under fork or spawn; a child of the fork server under forkserver)."""
    while time.monotonic() < deadline:
        tree = _descendants(pid)
        for p, parent in tree.items():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            helper = b"resource_tracker" in cmd or (parent == pid and b"forkserver" in cmd)
            if not helper and p not in tree.values():
                return p
        time.sleep(0.001)
    raise AssertionError("no worker process appeared")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker processes through /proc")
def test_convert_worker_killed(tmp_path):
    """SIGKILL one worker of ``convert -j 2`` as soon as it exists (the jobs take far longer
    than that): one line, exit 2, every converted file complete and no temporary left."""
    rng = np.random.default_rng(3)
    inputs = []
    for i in range(4):
        p = tmp_path / f"in{i}.wav"
        wav.write(p, (rng.standard_normal(8000 * 240) * 3000).astype(np.int16), fmt="s16bit")
        inputs.append(p)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recorder",
            "convert",
            *map(str, inputs),
            "-o",
            str(out),
            "-j",
            "2",
            "--rate",
            "11025",
            "--format",
            "ima",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        os.kill(_pool_worker_of(proc.pid, time.monotonic() + 120), signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, (proc.returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("recorder: error: a worker process ended abruptly"), lines[0]
    assert stdout == ""
    left = os.listdir(out)
    assert set(left) <= {p.name for p in inputs}, left  # no *.tmp / *.part
    for name in left:  # what was converted is whole
        assert wav.info(out / name).duration == pytest.approx(240, abs=0.01)


def test_dtmf_many_files(tmp_path, call):
    """One process for many files: per-file lines (like info), a list of {file, dtmf} in
    JSON; one file keeps its own format."""
    speech = _speech(tmp_path)
    second = tmp_path / "two.wav"
    wav.write(
        second,
        join(silence(0.3), dtmf("1", 0.1, -10), silence(0.2), dtmf("#", 0.1, -10), silence(0.3)),
        fmt="ulaw",
    )
    text = cli("dtmf", call, speech, second).stdout.splitlines()
    assert text == [
        f"{call}: 7 at 2.900 s",
        f"{speech}: no DTMF digits",
        f"{second}: 1 at 0.300 s, # at 0.600 s",
    ]
    got = json.loads(cli("dtmf", call, speech, second, "--json").stdout)
    assert [g["file"] for g in got] == [str(call), str(speech), str(second)]
    assert [[d["digit"] for d in g["dtmf"]] for g in got] == [["7"], [], ["1", "#"]]
    assert got[2]["dtmf"][1]["start"] == pytest.approx(0.6, abs=0.01)
    one = json.loads(cli("dtmf", second, "--json").stdout)
    assert one == got[2]["dtmf"]
    lines = cli("dtmf", second).stdout.splitlines()
    assert len(lines) == 2 and lines[0].split()[:3] == ["0.300", "s", "1"]
    fails("dtmf", call, tmp_path / "missing.wav", match="missing.wav: no such file")


def test_inputs_at_rates_the_detectors_cannot_take(tmp_path):
    """A valid WAV at 7999 Hz (no resampling ratio to 8000 Hz): one line naming the file."""
    odd = tmp_path / "odd.wav"
    wav.write(odd, speechlike(0.5), fmt="s16bit", rate=7999)
    for args in (
        ("info", odd),
        ("dtmf", odd),
        ("record", odd, tmp_path / "r.wav"),
        ("convert", odd, "-o", tmp_path / "c", "--rate", "8000"),
    ):
        fails(*args, match=f"{odd}: ")
    assert "7999 Hz" in cli("info", odd, check=False).stderr
