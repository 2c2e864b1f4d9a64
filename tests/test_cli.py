"""The ``recorder`` command line, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from recorder import AesCbcCipher, wav
from recorder.filerecorder import RECORD_FORMATS, RECORD_RATES

from signals import dtmf, join, silence, speechlike

KEY = "000102030405060708090a0b0c0d0e0f"
IV = "f0e0d0c0b0a090807060504030201000"


def cli(*args, check=True, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "recorder", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"recorder {args} failed ({proc.returncode}): {proc.stderr}")
    return proc


def fails(*args, match: str):
    proc = cli(*args, check=False)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr                 # one line, no traceback
    assert lines[0].startswith("recorder: error:") and match in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def call(tmp_path):
    path = tmp_path / "call.wav"
    x = join(speechlike(1.2), silence(0.8), speechlike(0.8), silence(0.1), dtmf("7", 0.15, -8),
             silence(0.2), speechlike(0.5))
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
    r = json.loads(cli("record", call, out, "--format", "ulaw", "--rate", "11025", "--barge-in", "--json").stdout)
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
    fails("record", enc, tmp_path / "x.wav", "--in-key", "00" * 16, "--in-iv", IV, match="wrong key")
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
    assert "2/2" in bar.stderr and "file" in bar.stderr          # tqdm's progress bar
    cli("convert", call, "-o", tmp_path / "enc", "--key", KEY, "--iv", IV)
    y, _ = wav.read(tmp_path / "enc" / "call.wav", cipher=AesCbcCipher(KEY, IV))
    np.testing.assert_array_equal(y, wav.read(call)[0])


def test_info_and_dtmf(tmp_path, call):
    r = json.loads(cli("info", call, "--json").stdout)
    assert (r["format"], r["rate"], r["channels"]) == ("s16bit", 8000, 1)
    assert r["duration"] == pytest.approx(wav.info(call).duration)
    assert -25 < r["level_dbm0"] < -15
    assert 0.2 < r["silence_share"] < 0.45            # 1.1 s of 3.75 s is silence
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
    w._f.flush()                     # killed before the next header refresh
    assert wav.info(p).frames == 8000
    out = cli("repair", p).stdout
    assert "8000 -> 16000 frames" in out
    assert wav.info(p).frames == 16000
    assert "already whole" in cli("repair", p).stdout
    fails("repair", tmp_path / "missing.wav", match="no such file")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    fails("repair", junk, match="cannot repair")
