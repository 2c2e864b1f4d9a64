"""``recorder serve --workers N`` end to end: a supervisor and N worker processes on one
SIP address (``SO_REUSEPORT``), SIPp calling from one port (so the kernel gives every
datagram or the one TCP connection to one worker, and the calls the other worker owns
travel through the router).  Every process is stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import pytest
import test_serve
from signals import speechlike
from sip_helpers import offer, request
from test_serve import (
    SIP_DATA,
    alaw_file,
    assert_whole_call,
    audio_bytes,
    free_rtp_range,
    free_udp_port,
    published,
    run_sipp,
    sipp_cmd,
)

from recorder.sip import SipServer
from recorder.sip.message import Response, StreamFramer, parse
from recorder.sip.router import Router, make_inboxes, owner_of
from recorder.workers import split_ports

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="--workers needs fork")
sipp = test_serve.sipp  # the fixtures
serve = test_serve.serve


def many_calls(cmd: list[str], calls: int, rate: int, limit: int) -> list[str]:
    """``sipp_cmd`` for ``calls`` calls at ``rate`` per second, ``limit`` at once."""
    cmd = list(cmd)
    for flag, value in (("-m", calls), ("-r", rate), ("-l", limit)):
        cmd[cmd.index(flag) + 1] = str(value)
    return cmd


def check_owners(srv, ends: list[dict]) -> None:
    """Each call was logged by its owner, both workers had calls, none twice."""
    ids = [e["call_id"] for e in ends]
    assert len(set(ids)) == len(ids)
    starts = {e["call_id"]: e for e in srv.lines if e.get("msg") == "call start"}
    assert set(starts) == set(ids)
    for e in ends:
        assert e["worker"] == starts[e["call_id"]]["worker"] == owner_of(e["call_id"], 2)
    assert set(Counter(e["worker"] for e in ends)) == {0, 1}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_two_workers_record_every_call_once_byte_exact(sipp, serve, tmp_path, transport):
    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=3))
    calls = 100 if transport == "udp" else 30
    lo, hi = free_rtp_range(240)
    srv = serve("--workers", "2", "--transport", transport, "--rtp-ports", f"{lo}-{hi}")
    listening = srv.wait_for(lambda e: e.get("msg") == "listening" and "workers" in e)
    assert listening["workers"] == 2 and len(listening["pids"]) == 2
    cmd = sipp_cmd(sipp, tmp_path, srv.port, pause_ms=1300, tcp=transport == "tcp")
    p = run_sipp(many_calls(cmd, calls, rate=25, limit=60), tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    srv.wait_for_ends(calls, 60)
    assert srv.terminate() == 0
    ends = srv.ends()
    assert len(ends) == calls
    check_owners(srv, ends)
    for e in ends:
        assert (e["cause"], e["end"], e["packets"], e["lost"]) == ("HANGUP", "bye", 50, 0)
        assert_whole_call(audio_bytes(e["file"]), audio)
    assert sorted(str(f) for f in published(srv.media)) == sorted(e["file"] for e in ends)
    stopped = [e for e in srv.lines if e.get("msg") == "stopped"]
    assert sorted(e.get("worker", -1) for e in stopped) == [-1, 0, 1]  # both, then the supervisor


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_cancel_and_reinvite_reach_the_owner(sipp, serve, tmp_path, transport):
    app = tmp_path / "waiting.py"
    app.write_text(  # sipp_hold.xml offers PCMA: answered; sipp_cancel.xml PCMU: left ringing
        "def app(channel):\n"
        "    if channel.call.codec == 'PCMA':\n"
        "        channel.answer()\n"
        "    channel.wait_for_hangup(60)\n"
    )
    srv = serve(f"{app}:app", "--workers", "2", "--transport", transport)
    tcp = transport == "tcp"
    cancel = sipp_cmd(
        sipp, tmp_path, srv.port, pause_ms=0, scenario=str(SIP_DATA / "sipp_cancel.xml"), tcp=tcp
    )
    p = run_sipp(many_calls(cancel, 12, rate=20, limit=12), tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    hold = sipp_cmd(
        sipp, tmp_path, srv.port, pause_ms=0, scenario=str(SIP_DATA / "sipp_hold.xml"), tcp=tcp
    )
    p = run_sipp(many_calls(hold, 12, rate=20, limit=12), tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]  # 200 to each re-INVITE
    srv.wait_for_ends(24, 30)
    assert srv.terminate() == 0
    ends = srv.ends()
    assert sorted(Counter(e["end"] for e in ends).items()) == [("bye", 12), ("cancel", 12)]
    check_owners(srv, ends)


def test_sigterm_drains_every_worker(sipp, serve, tmp_path):
    audio = alaw_file(tmp_path, speechlike(20.0, dbm0=-15, seed=5))
    lo, hi = free_rtp_range(64)
    srv = serve("--workers", "2", "--drain-seconds", "0.5", "--rtp-ports", f"{lo}-{hi}")
    caller = subprocess.Popen(
        many_calls(sipp_cmd(sipp, tmp_path, srv.port, pause_ms=30000), 8, rate=20, limit=8),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30  # every recording has begun: 8 .part files
        while sum(p.name.endswith(".part") for p in srv.media.rglob("*")) < 8:
            assert time.monotonic() < deadline, "the recordings never started"
            time.sleep(0.05)
        assert srv.terminate() == 0
    finally:
        if caller.poll() is None:
            os.kill(caller.pid, signal.SIGKILL)
        caller.wait(10)
    ends = srv.ends()
    assert len(ends) == 8 and {e["cause"] for e in ends} == {"ABORTED"}
    check_owners(srv, ends)
    assert sorted(str(f) for f in published(srv.media)) == sorted(e["file"] for e in ends)
    for e in ends:
        got = audio_bytes(e["file"])
        assert got == audio[: len(got)]
    assert sorted(e["worker"] for e in srv.lines if e.get("msg") == "draining") == [0, 1]


def test_a_dead_worker_is_logged_and_the_server_exits_nonzero(sipp, serve, tmp_path):
    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=9))
    srv = serve("--workers", "2", "--drain-seconds", "5")
    listening = srv.wait_for(lambda e: e.get("msg") == "listening" and "workers" in e)
    os.kill(listening["pids"][1], signal.SIGKILL)
    died = srv.wait_for(lambda e: e.get("msg", "").startswith("worker died"))
    assert died["level"] == "ERROR" and died["worker"] == 1 and died["exit"] == -signal.SIGKILL
    assert srv.terminate(signal_it=False) == 1  # the other one drained and stopped
    assert any(e.get("msg") == "stopped" and e.get("worker") == 0 for e in srv.lines)
    assert audio  # no call was needed


def test_metrics_are_summed_over_the_workers(sipp, serve, tmp_path):
    pytest.importorskip("prometheus_client")
    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=15))
    port = free_udp_port()
    lo, hi = free_rtp_range(64)
    srv = serve("--workers", "2", "--metrics", f"127.0.0.1:{port}", "--rtp-ports", f"{lo}-{hi}")
    srv.wait_for(lambda e: e.get("msg") == "listening" and "workers" in e)
    cmd = sipp_cmd(sipp, tmp_path, srv.port, pause_ms=1300)
    p = run_sipp(many_calls(cmd, 10, rate=20, limit=10), tmp_path)
    assert p.returncode == 0, p.stdout[-2000:]
    srv.wait_for_ends(10, 30)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert srv.terminate() == 0
    assert set(Counter(e["worker"] for e in srv.ends())) == {0, 1}
    values = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert float(values["recorder_calls_total"]) == 10
    assert float(values["recorder_calls_active"]) == 0
    assert float(values['recorder_recordings_total{cause="HANGUP"}']) == 10
    assert float(values["recorder_rtp_packets_total"]) == 10 * len(audio) // 160


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        k: float(v)
        for k, v in (
            line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
        )
    }


def test_workers_report_engine_gauges_and_cpu_stages(sipp, serve, tmp_path):
    """The engine gauges and the CPU stages come from the workers, even with an app
    module that imports prometheus_client itself (before the workers start)."""
    pytest.importorskip("prometheus_client")
    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=16))
    app = tmp_path / "own_metrics.py"
    app.write_text(
        "import prometheus_client  # the app's own metrics, imported at load\n"
        "from recorder.serve import record_app\n"
        "app = record_app()\n"
    )
    port = free_udp_port()
    lo, hi = free_rtp_range(64)
    srv = serve(
        f"{app}:app",
        "--workers",
        "2",
        "--metrics",
        f"127.0.0.1:{port}",
        "--rtp-ports",
        f"{lo}-{hi}",
    )
    srv.wait_for(lambda e: e.get("msg") == "listening" and "workers" in e)
    cmd = sipp_cmd(sipp, tmp_path, srv.port, pause_ms=1300)
    p = run_sipp(many_calls(cmd, 10, rate=20, limit=10), tmp_path)
    assert p.returncode == 0, p.stdout[-2000:]
    srv.wait_for_ends(10, 30)
    stages = ("receive", "tick", "detect", "code", "write")
    deadline = time.monotonic() + 15  # the workers write their values once a second
    while True:
        values = scrape(port)
        cpu = {s: values.get(f'recorder_cpu_seconds_total{{stage="{s}"}}', 0.0) for s in stages}
        if all(cpu.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert srv.terminate() == 0
    assert set(Counter(e["worker"] for e in srv.ends())) == {0, 1}
    assert values["recorder_calls_total"] == 10  # the app's early import broke nothing
    assert values['recorder_recordings_total{cause="HANGUP"}'] == 10
    assert values["recorder_rtp_packets_total"] == 10 * len(audio) // 160
    assert all(0 < cpu[s] < 60 for s in stages), cpu
    assert cpu["tick"] >= cpu["detect"]
    assert values["recorder_engine_behind"] == 0
    assert 0 <= values["recorder_engine_load"] < 1


def test_metrics_with_prometheus_client_imported_too_early_fail_loudly(tmp_path):
    """A supervisor that imported prometheus_client before its multiprocess directory
    was set refuses to start (its workers' metrics would silently stay empty)."""
    pytest.importorskip("prometheus_client")
    code = (
        "import prometheus_client, sys\n"
        "from recorder.workers import supervise\n"
        "try:\n"
        "    supervise(2, host='127.0.0.1', port=0, udp=True, tcp=False,\n"
        "              rtp_ports=(40000, 40010), max_calls=4, metrics=('127.0.0.1', 0),\n"
        "              log_format='json', make_server=None)\n"
        "except ValueError as e:\n"
        "    print(e)\n"
        "    sys.exit(3)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert p.returncode == 3, p.stdout + p.stderr
    assert "prometheus_client was imported" in p.stdout


def test_rtp_ports_are_split_into_disjoint_even_slices():
    assert split_ports(40000, 40010, 2) == [(40000, 40004), (40006, 40010)]
    assert split_ports(40001, 40008, 3) == [(40002, 40004), (40006, 40006), (40008, 40008)]
    slices = split_ports(20000, 29999, 7)
    ports = [p for lo, hi in slices for p in range(lo, hi + 1, 2)]
    assert ports == list(range(20000, 30000, 2))
    with pytest.raises(ValueError, match="holds 2 even ports, fewer than --workers 3"):
        split_ports(40000, 40003, 3)


def owned_by(worker: int, workers: int, prefix: str) -> list[str]:
    """Call-IDs that worker ``worker`` of ``workers`` owns."""
    return [c for c in (f"{prefix}-{i}" for i in range(200)) if owner_of(c, workers) == worker]


@pytest.fixture
def worker0():
    """Worker 0 of 2 on real sockets (UDP and TCP), with real inboxes; the test plays
    worker 1 through ``inboxes[1]``."""
    inboxes = make_inboxes(2)
    router = Router(0, [tx for tx, _ in inboxes], inboxes[0][1])
    srv = SipServer(lambda call: call.answer(41000), port=0, router=router)
    with srv.run_in_thread():
        yield srv, router, inboxes
    for pair in inboxes:
        for s in pair:
            s.close()


def udp_final(port: int, data: bytes) -> Response:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.bind(("127.0.0.1", 0))
        s.sendto(data, ("127.0.0.1", port))
        while True:
            msg = parse(s.recv(65536))
            assert isinstance(msg, Response)
            if msg.status >= 200:
                return msg


def test_new_calls_owned_by_an_exited_worker_get_503_and_one_warning(worker0, caplog):
    srv, router, inboxes = worker0
    inboxes[1][1].close()  # worker 1 has exited: its inbox refuses (ECONNREFUSED)
    caplog.set_level(logging.WARNING, logger="recorder.sip.router")
    ids = owned_by(1, 2, "dead")[:20]
    for call_id in ids:
        resp = udp_final(srv.port, request("INVITE", call_id=call_id, body=offer()))
        assert (resp.status, resp.get("Call-ID")) == (503, call_id)
        assert resp.get("Retry-After") == "5"
    assert router.gone == {1} and router.dropped == len(ids)
    warnings = [r for r in caplog.records if r.name == "recorder.sip.router"]
    assert len(warnings) == 1  # not one per message: a dead worker does not flood the log
    mine = owned_by(0, 2, "alive")[0]  # worker 0's own calls go on
    assert udp_final(srv.port, request("INVITE", call_id=mine, body=offer())).status == 200


def test_in_dialog_requests_of_an_exited_worker_get_481_and_an_ack_nothing(worker0):
    srv, router, inboxes = worker0
    inboxes[1][1].close()  # worker 1 has exited, and the dialogs it held with it
    call_id = owned_by(1, 2, "gone")[0]
    for method in ("BYE", "INFO", "INVITE"):  # a re-INVITE too: the To has a tag
        body = offer() if method == "INVITE" else b""
        resp = udp_final(srv.port, request(method, call_id=call_id, to_tag="t9", body=body))
        assert (resp.status, resp.get("Call-ID")) == (481, call_id), method
        assert resp.get("Retry-After") is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # an ACK gets no answer
        s.settimeout(1.0)
        s.bind(("127.0.0.1", 0))
        s.sendto(request("ACK", call_id=call_id, to_tag="t9"), ("127.0.0.1", srv.port))
        s.sendto(request("OPTIONS", call_id=call_id), ("127.0.0.1", srv.port))
        answers = [parse(s.recv(65536)) for _ in range(1)]
        with pytest.raises(TimeoutError):
            s.recv(65536)
    assert [(a.status, a.get("CSeq")) for a in answers] == [(503, "1 OPTIONS")]


def test_a_tcp_request_the_owner_cannot_take_gets_503(worker0):
    srv, router, inboxes = worker0
    stuffing = b"x" * 60000
    while True:  # worker 1 is stuck: its inbox is full
        try:
            inboxes[1][0].send(stuffing)
        except BlockingIOError:
            break
    call_id = owned_by(1, 2, "stuck")[0]
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(request("INVITE", call_id=call_id, body=offer()))
        framer, out = StreamFramer(), []
        while not out:
            chunk = s.recv(65536)
            assert chunk, "the connection closed without an answer"
            out += [parse(m, stream=True) for m in framer.feed(chunk)]
    assert isinstance(out[0], Response)
    assert (out[0].status, out[0].get("Call-ID")) == (503, call_id)
    assert router.gone == set() and router.dropped == 1  # stuck, not gone
