"""``recorder serve`` end to end: the server runs as a subprocess on free ports, SIPp
(Debian ``sip-tester``) calls it from 127.0.0.1 and streams a raw A-law file as RTP
(``tests/data/sipp/uac_rtp.xml``, ``rtp_stream``), and the tests check the published
recordings and the server's JSON call logs.  Every process is stopped by its PID and every
wait is bounded.

Alignment (documented in :mod:`recorder.serve`): a recording started right after answer
begins with the first RTP packet's first sample and ends with the last packet placed
before the BYE, so an A-law 8 kHz recording of a call equals the streamed file byte for
byte (a BYE mid-stream: a prefix of it).
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from signals import dtmf, join, silence, speechlike

from recorder import codecs, wav

HERE = Path(__file__).resolve().parent
SIPP_DATA = HERE / "data" / "sipp"
SIP_DATA = HERE / "data" / "sip"
EXAMPLES = HERE.parent / "examples"


@pytest.fixture(scope="module")
def sipp():
    from conftest import need_exe

    return need_exe("sipp")


def free_udp_port(even: bool = False) -> int:
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not even or (port % 2 == 0 and port < 65000):
            return port
    raise RuntimeError("no free port")


def free_rtp_range(size: int = 16) -> tuple[int, int]:
    """An even port range of ``size`` ports that are free now."""
    for _ in range(200):
        lo = random.randrange(20000, 60000, 2)
        socks = []
        try:
            for p in range(lo, lo + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return lo, lo + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free RTP port range")


class Serve:
    """``python -m recorder serve`` as a subprocess; its JSON log lines in ``lines``."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.media = tmp_path / "media"
        if "--rtp-ports" not in args:
            lo, hi = free_rtp_range()
            args = (*args, "--rtp-ports", f"{lo}-{hi}")
        if "--transport" not in args:
            args = (*args, "--transport", "udp")
        if "--workers" not in args:  # one process, as before --workers (the default is the cores)
            args = (*args, "--workers", "1")
        cmd = [
            sys.executable,
            "-m",
            "recorder",
            "serve",
            *args,
            "--sip",
            "127.0.0.1:0",
            "--media-root",
            str(self.media),
            "--log-format",
            "json",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
        )
        self.lines: list[dict] = []
        self.raw: list[str] = []
        self._q: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready = self.wait_for(lambda e: e.get("msg") == "listening", timeout=60)
        self.port = int(ready["sip"].rpartition(":")[2])

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.raw.append(line)
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            self.lines.append(entry)
            self._q.put(entry)
        self._q.put(None)

    def wait_for(self, pred, timeout: float = 60.0) -> dict:
        """The first log entry (from now on or already seen) matching ``pred``."""
        for e in list(self.lines):
            if pred(e):
                return e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = self._q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if e is None:
                break
            if pred(e):
                return e
        raise AssertionError(f"log entry not seen; log:\n{''.join(self.raw)[-4000:]}")

    def ends(self) -> list[dict]:
        return [e for e in self.lines if e.get("msg") == "call end"]

    def wait_for_ends(self, calls: int, timeout: float = 60.0) -> list[dict]:
        """The call-end entries once there are ``calls`` of them (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        while len(self.ends()) < calls and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.ends()

    def terminate(self, timeout: float = 90.0, signal_it: bool = True) -> int:
        """SIGTERM (unless sent already: ``signal_it=False``); the exit status."""
        if signal_it and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        finally:
            self.kill()
        self._reader.join(10)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def serve(tmp_path):
    started: list[Serve] = []

    def start(*args: str) -> Serve:
        s = Serve(tmp_path, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


def alaw_file(tmp_path: Path, pcm: np.ndarray, name: str = "caller.al") -> bytes:
    """Write ``pcm`` as raw A-law (whole 20 ms packets) for sipp's rtp_stream."""
    pcm = pcm[: pcm.size - pcm.size % 160]
    data = codecs.alaw_encode(pcm).tobytes()
    (tmp_path / name).write_bytes(data)
    return data


def sipp_cmd(
    sipp: str,
    tmp_path: Path,
    port: int,
    *,
    pause_ms: int,
    audio: str = "caller.al",
    calls: int = 1,
    scenario: str | None = None,
    tcp: bool = False,
    rate: int = 1,
    limit: int = 1,
) -> list[str]:
    if scenario is None:
        text = (SIPP_DATA / "uac_rtp.xml").read_text()
        text = text.replace("{AUDIO}", audio).replace("{PAUSE_MS}", str(pause_ms))
        scenario = str(tmp_path / "uac_rtp.xml")
        Path(scenario).write_text(text)
    return [
        sipp,
        "-sf",
        scenario,
        f"127.0.0.1:{port}",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_udp_port()),
        "-mp",
        str(free_udp_port(even=True)),
        "-m",
        str(calls),
        "-l",
        str(limit),
        "-r",
        str(rate),
        "-timeout",
        "60s",
        "-nostdin",
        "-t",
        "t1" if tcp else "u1",
    ]


def run_sipp(cmd: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )


def audio_bytes(path: str) -> bytes:
    info = wav.info(path)
    assert (info.format, info.rate, info.channels) == ("alaw", 8000, 1)
    with open(path, "rb") as f:
        f.seek(info.data_offset)
        return f.read(info.data_bytes)


def assert_whole_call(got: bytes, audio: bytes) -> None:
    """The recording is the streamed audio byte for byte, then at most silence: a caller
    that sends nothing for over a second (here: after the file ends, before its BYE) is
    recorded as silence by wall time."""
    assert got[: len(audio)] == audio
    assert set(got[len(audio) :]) <= {0xD5}  # A-law of 0


def published(media: Path) -> list[Path]:
    files = sorted(p for p in media.rglob("*") if p.is_file())
    assert not [p for p in files if p.name.endswith(".part")], files
    return files


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_recording_equals_the_callers_rtp_audio(sipp, serve, tmp_path, transport):
    audio = alaw_file(tmp_path, speechlike(2.0, dbm0=-15))
    srv = serve("--transport", transport)
    p = run_sipp(
        sipp_cmd(sipp, tmp_path, srv.port, pause_ms=2600, tcp=transport == "tcp"), tmp_path
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    end = srv.wait_for(lambda e: e.get("msg") == "call end")
    assert srv.terminate() == 0
    start = next(e for e in srv.lines if e.get("msg") == "call start")
    assert start["call_id"] == end["call_id"] and start["codec"] == "PCMA"
    assert start["from"].startswith("sip:caller@127.0.0.1") and start["transport"] == transport
    assert end["cause"] == "HANGUP" and end["end"] == "bye"
    assert (end["packets"], end["lost"], end["late"]) == (len(audio) // 160, 0, 0)
    files = published(srv.media)
    assert [str(f) for f in files] == [end["file"]]
    assert Path(end["file"]).name == f"{start['id']}.wav"
    assert_whole_call(audio_bytes(end["file"]), audio)  # bit-exact, start to end


def test_bye_mid_recording_keeps_the_audio(sipp, serve, tmp_path):
    audio = alaw_file(tmp_path, speechlike(6.0, dbm0=-15, seed=3))
    srv = serve()
    p = run_sipp(sipp_cmd(sipp, tmp_path, srv.port, pause_ms=1000), tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    end = srv.wait_for(lambda e: e.get("msg") == "call end")
    assert srv.terminate() == 0
    assert end["cause"] == "HANGUP" and end["end"] == "bye"
    got = audio_bytes(end["file"])
    assert 0 < len(got) < len(audio)
    assert got == audio[: len(got)]  # what came before the BYE, exactly
    assert end["packets"] * 160 >= len(got)


SLOW_DISK_APP = """
import time

from recorder import AesCbcCipher
from recorder.serve import record_app


class SlowDisk(AesCbcCipher):  # publishing takes half a second more: a slow disk
    def encrypt_file(self, src, dst):
        time.sleep(0.5)
        return super().encrypt_file(src, dst)


app = record_app(cipher=SlowDisk(bytes(range(16)), bytes(16)))
"""


def test_a_burst_of_byes_ends_every_recording_at_its_bye(sipp, serve, tmp_path):
    """30 callers hang up within a fraction of a second (a trunk drops) while the disk
    is slow: every recording ends with HANGUP at its BYE, holding exactly the audio sent
    (no BYE waits behind other calls' publishing while silence is filled by wall time)."""
    from recorder import AesCbcCipher

    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=21))
    app = tmp_path / "slow_disk.py"
    app.write_text(SLOW_DISK_APP)
    calls = 30
    lo, hi = free_rtp_range(2 * calls + 8)
    srv = serve(f"{app}:app", "--rtp-ports", f"{lo}-{hi}")
    cmd = sipp_cmd(sipp, tmp_path, srv.port, pause_ms=1300, calls=calls, rate=200, limit=calls)
    p = run_sipp(cmd, tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    srv.wait_for_ends(calls, 90)
    assert srv.terminate() == 0
    ends = srv.ends()
    assert len(ends) == calls
    cipher = AesCbcCipher(bytes(range(16)), bytes(16))
    for i, e in enumerate(ends):
        assert (e["cause"], e["end"], e["packets"], e["lost"]) == ("HANGUP", "bye", 50, 0)
        plain = tmp_path / f"plain{i}.wav"
        plain.write_bytes(cipher.decrypt(Path(e["file"]).read_bytes()))
        assert audio_bytes(str(plain)) == audio  # sample-exact: nothing after the BYE
    assert sorted(str(f) for f in published(srv.media)) == sorted(e["file"] for e in ends)


def test_a_port_held_by_another_process_costs_no_call(sipp, serve, tmp_path):
    """Another process holds the first RTP port of the range: each call that is given
    it takes another free port before answering, and every call is recorded (the port
    used to be handed out again after every failure, so every later call was refused)."""
    audio = alaw_file(tmp_path, speechlike(0.6, dbm0=-15, seed=5))
    lo, hi = free_rtp_range(8)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        squatter.bind(("127.0.0.1", lo))
        srv = serve("--rtp-ports", f"{lo}-{hi}")
        calls = 4  # one after another: each would get the lowest free port
        cmd = sipp_cmd(sipp, tmp_path, srv.port, pause_ms=900, calls=calls, rate=2, limit=1)
        p = run_sipp(cmd, tmp_path)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        srv.wait_for_ends(calls)
        assert srv.terminate() == 0
    finally:
        squatter.close()
    ends = srv.ends()
    assert [(e["cause"], e["end"]) for e in ends] == [("HANGUP", "bye")] * calls
    for e in ends:
        assert audio_bytes(e["file"]) == audio
    assert any("cannot be bound, trying another" in e.get("msg", "") for e in srv.lines)


def test_cancel_before_answer_records_nothing(sipp, serve, tmp_path):
    app = tmp_path / "waiting.py"
    app.write_text(
        "def app(channel):\n"
        "    channel.wait_for_hangup(60)\n"
        "    channel.answer()   # the caller has gone: raises recorder.Hangup\n"
    )
    srv = serve(f"{app}:app")
    p = run_sipp(
        sipp_cmd(sipp, tmp_path, srv.port, pause_ms=0, scenario=str(SIP_DATA / "sipp_cancel.xml")),
        tmp_path,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    end = srv.wait_for(lambda e: e.get("msg") == "call end")
    assert srv.terminate() == 0
    assert end["end"] == "cancel" and end["cause"] == "NONE" and end["file"] is None
    assert "error" not in end
    assert any("hung up during the app" in e["msg"] for e in srv.lines)
    assert not srv.media.exists() or published(srv.media) == []


def test_sigterm_drains_a_running_recording_as_aborted(sipp, serve, tmp_path):
    audio = alaw_file(tmp_path, speechlike(20.0, dbm0=-15, seed=5))
    srv = serve("--drain-seconds", "0.2")
    caller = subprocess.Popen(
        sipp_cmd(sipp, tmp_path, srv.port, pause_ms=30000),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        srv.wait_for(lambda e: e.get("msg") == "call start")
        deadline = time.monotonic() + 30  # the recording has begun: its .part exists
        while not any(p.name.endswith(".part") for p in srv.media.rglob("*")):
            assert time.monotonic() < deadline, "the recording never started"
            time.sleep(0.05)
        assert srv.terminate() == 0
    finally:
        if caller.poll() is None:
            os.kill(caller.pid, signal.SIGKILL)
        caller.wait(10)
    ends = srv.ends()
    assert len(ends) == 1 and ends[0]["cause"] == "ABORTED", srv.raw[-20:]
    assert ends[0]["end"] == "hangup"  # we sent BYE
    assert [str(f) for f in published(srv.media)] == [ends[0]["file"]]
    got = audio_bytes(ends[0]["file"])
    assert got == audio[: len(got)]  # everything received, exactly
    assert any(e.get("msg") == "draining" for e in srv.lines)


def test_sigterm_lets_a_running_call_finish_and_refuses_new_ones(sipp, serve, tmp_path):
    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=7))
    srv = serve("--drain-seconds", "60")
    caller = subprocess.Popen(
        sipp_cmd(sipp, tmp_path, srv.port, pause_ms=3000),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        srv.wait_for(lambda e: e.get("msg") == "call start")
        os.kill(srv.proc.pid, signal.SIGTERM)
        srv.wait_for(lambda e: e.get("msg") == "draining")
        # a new call while draining: 503 (sipp_busy.xml takes 503 or 486)
        busy = run_sipp(
            sipp_cmd(
                sipp, tmp_path, srv.port, pause_ms=0, scenario=str(SIP_DATA / "sipp_busy.xml")
            ),
            tmp_path,
        )
        assert busy.returncode == 0, busy.stdout[-2000:]
        out, _ = caller.communicate(timeout=60)
        assert caller.returncode == 0, out[-2000:]
        assert srv.terminate(signal_it=False) == 0
    finally:
        if caller.poll() is None:
            os.kill(caller.pid, signal.SIGKILL)
            caller.wait(10)
    ends = srv.ends()
    assert len(ends) == 1 and ends[0]["cause"] == "HANGUP" and ends[0]["end"] == "bye"
    assert_whole_call(audio_bytes(ends[0]["file"]), audio)


def test_an_app_that_raises_is_logged_and_the_next_call_works(sipp, serve, tmp_path):
    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=9))
    app = tmp_path / "flaky.py"
    app.write_text(
        "calls = []\n"
        "def app(channel):\n"
        "    calls.append(channel.call.call_id)\n"
        "    channel.answer()\n"
        "    if len(calls) == 1:\n"
        "        raise RuntimeError('boom in the first call')\n"
        "    channel.FileRecorder.record(channel.call.id + '.wav')\n"
    )
    srv = serve(f"{app}:app")
    run_sipp(sipp_cmd(sipp, tmp_path, srv.port, pause_ms=1600, calls=2), tmp_path)
    srv.wait_for(lambda e: e.get("msg") == "call end" and e.get("file"))
    assert srv.terminate() == 0
    first, second = srv.ends()
    assert first["error"] == "RuntimeError: boom in the first call"
    assert first["end"] == "hangup" and first["file"] is None  # hung up with BYE
    failed = next(e for e in srv.lines if e.get("msg") == "app failed")
    assert failed["call_id"] == first["call_id"] and "Traceback" in failed["traceback"]
    assert "boom in the first call" in failed["traceback"]
    assert second["cause"] == "HANGUP" and "error" not in second
    assert_whole_call(audio_bytes(second["file"]), audio)


def test_example_voicemail_app_stops_at_a_dtmf_key(sipp, serve, tmp_path):
    talk = speechlike(1.0, dbm0=-15, seed=11)
    audio = alaw_file(tmp_path, join(talk, dtmf("5", 0.1), silence(0.5), speechlike(1.0)))
    srv = serve(f"{EXAMPLES / 'voicemail.py'}:voicemail")
    run_sipp(sipp_cmd(sipp, tmp_path, srv.port, pause_ms=4000), tmp_path)
    end = srv.wait_for(lambda e: e.get("msg") == "call end")
    assert srv.terminate() == 0
    assert end["cause"] == "BARGEIN" and end["end"] == "hangup"  # the app hung up
    assert Path(end["file"]).parent.name == "service"  # the To user's mailbox
    got = audio_bytes(end["file"])
    assert len(got) == talk.size  # cut at the digit's start
    assert got == audio[: len(got)]


def test_example_voicemail_app_stops_after_3_s_of_silence(sipp, serve, tmp_path):
    talk = speechlike(1.0, dbm0=-15, seed=13)
    audio = alaw_file(tmp_path, join(talk, silence(4.0)))
    srv = serve(f"{EXAMPLES / 'voicemail.py'}:voicemail")
    run_sipp(sipp_cmd(sipp, tmp_path, srv.port, pause_ms=6000), tmp_path)
    end = srv.wait_for(lambda e: e.get("msg") == "call end")
    assert srv.terminate() == 0
    assert end["cause"] == "SILENCE" and end["end"] == "hangup"
    got = audio_bytes(end["file"])
    assert got == audio[: len(got)] and len(got) >= talk.size


def test_metrics_in_prometheus_text_format(sipp, serve, tmp_path):
    pytest.importorskip("prometheus_client")
    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=15))
    port = free_udp_port()
    srv = serve("--metrics", f"127.0.0.1:{port}")
    run_sipp(sipp_cmd(sipp, tmp_path, srv.port, pause_ms=1400), tmp_path)
    srv.wait_for(lambda e: e.get("msg") == "call end")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert srv.terminate() == 0
    values = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert float(values["recorder_calls_total"]) == 1
    assert float(values["recorder_calls_active"]) == 0
    assert float(values['recorder_recordings_total{cause="HANGUP"}']) == 1
    assert float(values["recorder_rtp_packets_total"]) == len(audio) // 160
    assert float(values["recorder_rtp_lost_total"]) == 0
    assert float(values["recorder_recorded_seconds_total"]) >= len(audio) / 8000


def rtp(pt: int, seq: int, ts: int, payload: bytes, marker: bool = False) -> bytes:
    return (
        bytes([0x80, pt | (0x80 if marker else 0)])
        + seq.to_bytes(2, "big")
        + ts.to_bytes(4, "big")
        + (0x1234ABCD).to_bytes(4, "big")
        + payload
    )


def test_rfc4733_digit_barges_in_at_its_timestamp(sipp, serve, tmp_path):
    """Our own RTP sender (audio PT 8, telephone-event PT 101 for '7' at media position
    3200, as a burst: placement is by timestamp, not arrival): the recording is cut at the
    digit's timestamp, byte for byte."""
    app = tmp_path / "bargein.py"
    app.write_text(
        "import logging\n"
        "log = logging.getLogger('test-app')\n"
        "def app(channel):\n"
        "    channel.answer()\n"
        "    channel.FileRecorder.start(channel.call.id + '.wav', barge_in=True)\n"
        "    log.info('recording', extra={'fields': {'rtp_port': channel.rtp_port}})\n"
        "    channel.FileRecorder.wait_until_finished(60)\n"
        "    r = channel.FileRecorder.result()\n"
        "    log.info('result', extra={'fields': {'digit': r.digit, 'at': r.digit_time}})\n"
    )
    audio = codecs.alaw_encode(speechlike(0.8, dbm0=-15, seed=17)).tobytes()
    srv = serve(f"{app}:app")
    text = (SIPP_DATA / "uac_no_media.xml").read_text().replace("{PAUSE_MS}", "20000")
    (tmp_path / "uac.xml").write_text(text)
    caller = subprocess.Popen(
        sipp_cmd(sipp, tmp_path, srv.port, pause_ms=0, scenario=str(tmp_path / "uac.xml")),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = srv.wait_for(lambda e: e.get("msg") == "recording")["rtp_port"]
        packets = []
        seq = 1000
        for ts in range(0, len(audio), 160):
            packets.append(rtp(8, seq, 50000 + ts, audio[ts : ts + 160], marker=ts == 0))
            seq += 1
            if ts >= 3200 and ts < 3200 + 6 * 160:  # '7' lasting 6 packets, 3 ends
                n = (ts - 3200) // 160 + 1
                end = n == 6
                for _ in range(3 if end else 1):
                    body = bytes([7, (0x80 if end else 0) | 10]) + (n * 160).to_bytes(2, "big")
                    packets.append(rtp(101, seq, 50000 + 3200, body, marker=n == 1))
                    seq += 1
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for p in packets:
                s.sendto(p, ("127.0.0.1", port))
        result = srv.wait_for(lambda e: e.get("msg") == "result")
        end = srv.wait_for(lambda e: e.get("msg") == "call end")
        assert srv.terminate() == 0
    finally:
        if caller.poll() is None:
            os.kill(caller.pid, signal.SIGKILL)
        caller.wait(10)
    assert result["digit"] == "7" and result["at"] == 3200 / 8000
    assert end["cause"] == "BARGEIN" and end["end"] == "hangup"
    got = audio_bytes(end["file"])
    assert (len(got), got) == (3200, audio[:3200])


def test_an_app_returning_with_the_call_up_is_hung_up(sipp, serve, tmp_path):
    app = tmp_path / "brief.py"
    app.write_text("def app(channel):\n    channel.answer()\n")
    srv = serve(f"{app}:app")
    text = (SIPP_DATA / "uac_no_media.xml").read_text().replace("{PAUSE_MS}", "20000")
    (tmp_path / "uac.xml").write_text(text)
    caller = subprocess.Popen(
        sipp_cmd(sipp, tmp_path, srv.port, pause_ms=0, scenario=str(tmp_path / "uac.xml")),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = srv.wait_for(lambda e: e.get("msg") == "call end")
    finally:
        if caller.poll() is None:
            os.kill(caller.pid, signal.SIGKILL)
        caller.wait(10)
    assert srv.terminate() == 0
    assert end["end"] == "hangup" and end["cause"] == "NONE" and "error" not in end


def test_calls_from_outside_allow_get_403(serve, tmp_path):
    from sip_helpers import offer, request

    srv = serve("--allow", "10.0.0.0/8")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(10)
        s.sendto(request("INVITE", body=offer()), ("127.0.0.1", srv.port))
        reply = s.recv(65536).decode()
    assert srv.terminate() == 0
    assert reply.startswith("SIP/2.0 403")
    assert srv.ends() == []


def test_systemd_unit_runs_a_valid_serve_command():
    from recorder.cli import build_parser

    unit = (EXAMPLES / "recorder-serve.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = exec_start.split("=", 1)[1].split()
    assert argv[0].endswith("/recorder") and argv[1] == "serve"
    args = build_parser().parse_args(argv[1:])
    assert args.sip == ("192.0.2.10", 5060) and args.rtp_ports == (40000, 49999)
    assert args.log_format == "json" and args.drain_seconds == 30


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sip", "nonsense"], "expected HOST:PORT"),
        (["--sip", "127.0.0.1:0", "--rtp-ports", "5"], "expected LO-HI"),
        (["--sip", "127.0.0.1:0", "--transport", "sctp"], "--transport"),
        (["--sip", "127.0.0.1:0", "no_such_module_xyz:app"], "cannot be loaded"),
        (["--sip", "127.0.0.1:0", "missing/app.py:app"], "no such file"),
        (["--sip", "127.0.0.1:0", "os:no_such_function"], "no function"),
        (["--sip", "127.0.0.1:0", "--rtp-ports", "50001-50001"], "holds no even port"),
        # --advertise: required on a wildcard address, an IP callers can reach
        (["--sip", "0.0.0.0:0"], "--advertise HOST"),
        (["--sip", "127.0.0.1:0", "--advertise", "pbx.example"], "must be an IP address"),
        (["--sip", "127.0.0.1:0", "--advertise", "0.0.0.0"], "callers can reach"),
        # --workers
        (["--sip", "127.0.0.1:0", "--workers", "0"], "--workers: must be from 1 to 1024, got 0"),
        (
            ["--sip", "127.0.0.1:0", "--workers", "3", "--rtp-ports", "40000-40003"],
            "fewer than --workers 3",
        ),
    ],
)
def test_bad_serve_arguments_are_one_line_errors(tmp_path, argv, message):
    p = subprocess.run(
        [sys.executable, "-m", "recorder", "serve", *argv, "--media-root", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert p.returncode == 2
    assert message in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_an_app_file_python_cannot_import_is_named_as_such(tmp_path):
    """A FILE:FUNCTION whose file has no importable suffix is a clear error naming the file,
    not an internal AttributeError."""
    (tmp_path / "app.txt").write_text("def app(ch):\n    pass\n")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "recorder",
            "serve",
            "--sip",
            "127.0.0.1:0",
            "./app.txt:app",
            "--media-root",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert p.returncode == 2
    assert "'./app.txt' cannot be loaded as a module" in p.stderr, p.stderr
    assert "AttributeError" not in p.stderr and p.stderr.count("\n") == 1, p.stderr
