"""Kamailio in front of two ``recorder serve`` nodes (``deploy/kamailio/``), everything on
127.0.0.1: SIPp calls Kamailio, Kamailio's dispatcher spreads the calls over the nodes by
Call-ID hash and keeps itself in the path (Record-Route), the RTP goes from SIPp straight
to the node that answered.  Then one node is killed: the new calls all reach the other.
Kamailio runs in the foreground (``-DD -E``) with its runtime files under tmp_path; every
process is stopped by its PID and every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import test_serve
from signals import speechlike
from sip_helpers import request
from test_serve import (
    alaw_file,
    assert_whole_call,
    audio_bytes,
    free_rtp_range,
    free_udp_port,
    published,
    run_sipp,
    sipp_cmd,
)

from recorder.sip.message import Response, parse

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kamailio"
sipp = test_serve.sipp  # the fixtures


@pytest.fixture(scope="module")
def kamailio_exe():
    from conftest import need_exe

    return need_exe("kamailio")


class Kamailio:
    """``kamailio -DD -E`` with deploy/kamailio/kamailio.cfg on ``port``, the nodes in
    its own dispatcher.list; its log lines in ``lines``."""

    def __init__(self, exe: str, tmp_path: Path, nodes: list[int]) -> None:
        run = tmp_path / "kamailio"
        run.mkdir()
        ds = run / "dispatcher.list"
        ds.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in nodes))
        self.port = free_udp_port()
        self.lines: list[str] = []
        self._ready = threading.Event()
        # one UDP worker process: with two, a 180 and the 200 right after it can leave
        # Kamailio in the other order; a real UA ignores a 180 after the 200, but SIPp's
        # scenario takes it as unexpected and aborts the call with a BYE that has no
        # route set, which Kamailio refuses with 404 (seen in 1 run of 4 under load)
        cmd = [
            *(exe, "-f", str(DEPLOY / "kamailio.cfg"), "-DD", "-E", "-Y", str(run)),
            *("-P", str(run / "kamailio.pid"), "-w", str(run), "-m", "32", "-M", "4"),
            *("-A", f"LISTEN=udp:127.0.0.1:{self.port}", "-A", f'DS_LIST="{ds}"'),
            *("-A", "DS_PING_INTERVAL=1", "-A", "FR_TIMER=1500", "-A", "CHILDREN=1"),
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=run
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(30) or self.proc.poll() is not None:
            self.stop()
            raise AssertionError("kamailio did not start:\n" + "".join(self.lines[-40:]))

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "SO_RCVBUF is finally" in line:  # its SIP socket is bound
                self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._reader.join(10)


def wait_ends(nodes, n: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(len(s.ends()) for s in nodes) < n and time.monotonic() < deadline:
        time.sleep(0.1)


def uac_with_routes(tmp_path: Path, pause_ms: int) -> str:
    """tests/data/sipp/uac_rtp.xml whose ACK and BYE carry the route set of the 200
    (Kamailio's Record-Route), as a UA behind a proxy must send them."""
    text = (test_serve.SIPP_DATA / "uac_rtp.xml").read_text()
    text = text.replace("{AUDIO}", "caller.al").replace("{PAUSE_MS}", str(pause_ms))
    assert text.count("[last_To:]\n") == 2
    text = text.replace("[last_To:]\n", "[last_To:]\n      [routes]\n")
    path = tmp_path / "uac_routes.xml"
    path.write_text(text)
    return str(path)


def through(cmd: list[str], calls: int) -> list[str]:
    cmd = list(cmd)
    for flag, value in (("-m", calls), ("-r", 20), ("-l", 60)):
        cmd[cmd.index(flag) + 1] = str(value)
    return cmd


def test_kamailio_spreads_calls_over_two_nodes_and_fails_over(kamailio_exe, sipp, tmp_path):
    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=21))
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a_dir.mkdir()
    b_dir.mkdir()
    lo, hi = free_rtp_range(200)
    node_a = test_serve.Serve(a_dir, "--workers", "2", "--rtp-ports", f"{lo}-{hi}")
    lo, hi = free_rtp_range(200)
    node_b = test_serve.Serve(b_dir, "--rtp-ports", f"{lo}-{hi}")
    kam = None
    try:
        kam = Kamailio(kamailio_exe, tmp_path, [node_a.port, node_b.port])
        scenario = uac_with_routes(tmp_path, pause_ms=1300)
        cmd = sipp_cmd(sipp, tmp_path, kam.port, pause_ms=0, scenario=scenario)
        p = run_sipp(through(cmd, 100), tmp_path)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:] + "".join(kam.lines[-30:])
        wait_ends([node_a, node_b], 100)
        ends = node_a.ends() + node_b.ends()
        assert len(ends) == 100
        assert len({e["call_id"] for e in ends}) == 100  # each call recorded once
        assert len(node_a.ends()) > 10 and len(node_b.ends()) > 10  # spread over both
        for e in ends:
            assert (e["cause"], e["end"], e["packets"], e["lost"]) == ("HANGUP", "bye", 50, 0)
            assert_whole_call(audio_bytes(e["file"]), audio)
        before = len(node_a.ends())

        node_b.kill()  # SIGKILL by PID: gone without a word
        p = run_sipp(
            through(sipp_cmd(sipp, tmp_path, kam.port, pause_ms=0, scenario=scenario), 20), tmp_path
        )
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:] + "".join(kam.lines[-30:])
        wait_ends([node_a], before + 20)
        new = node_a.ends()[before:]
        assert len(new) == 20 and {e["cause"] for e in new} == {"HANGUP"}
        for e in new:
            assert_whole_call(audio_bytes(e["file"]), audio)
        # the OPTIONS probes: the dead node was taken out, the live one never was
        deadline = time.monotonic() + 20
        while not any(f"node down: sip:127.0.0.1:{node_b.port}" in x for x in kam.lines):
            assert time.monotonic() < deadline, "".join(kam.lines[-30:])
            time.sleep(0.1)
        assert not any(f"node down: sip:127.0.0.1:{node_a.port}" in x for x in kam.lines)
        assert node_a.terminate() == 0
        assert len(published(node_a.media)) == before + 20
        assert Counter(e["worker"] for e in node_a.ends()).keys() == {0, 1}
    finally:
        for node in (node_a, node_b):
            node.kill()
        if kam is not None:
            kam.stop()


def test_the_nodes_bye_follows_the_route_set_through_kamailio(kamailio_exe, sipp, tmp_path):
    """The node hangs up (its recording times out after 1 s): its BYE goes to Kamailio
    (the dialog's route set, RFC 3261 §12.2.1.1), which relays it to the caller."""
    audio = alaw_file(tmp_path, speechlike(3.0, dbm0=-15, seed=22))
    lo, hi = free_rtp_range(32)
    node = test_serve.Serve(tmp_path, "--timeout", "1", "--rtp-ports", f"{lo}-{hi}")
    kam = None
    try:
        kam = Kamailio(kamailio_exe, tmp_path, [node.port])
        text = (test_serve.SIPP_DATA / "uac_wait_bye.xml").read_text()
        scenario = tmp_path / "uac_wait_bye.xml"
        scenario.write_text(text.replace("{AUDIO}", "caller.al"))
        cmd = sipp_cmd(sipp, tmp_path, kam.port, pause_ms=0, scenario=str(scenario))
        p = run_sipp(through(cmd, 5), tmp_path)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:] + "".join(kam.lines[-30:])
        wait_ends([node], 5)
        assert node.terminate() == 0
        ends = node.ends()
        assert len(ends) == 5 and {(e["cause"], e["end"]) for e in ends} == {("TIMEOUT", "hangup")}
        for e in ends:
            got = audio_bytes(e["file"])
            assert len(got) == 8000 and got == audio[:8000]
    finally:
        node.kill()
        if kam is not None:
            kam.stop()


def test_in_dialog_requests_are_relayed_only_to_a_node(kamailio_exe, tmp_path):
    """A trusted peer's in-dialog request whose route set ends at an address that is not
    a recorder node gets 403 and goes nowhere; the same request to a node is relayed."""

    def udp() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        return s

    node, other, peer = udp(), udp(), udp()
    me = peer.getsockname()[1]
    kam = None
    try:
        kam = Kamailio(kamailio_exe, tmp_path, [node.getsockname()[1]])
        for target, expect_403 in ((other, True), (node, False)):
            port = target.getsockname()[1]
            bye = request(
                "BYE",
                call_id=f"indialog-{port}",
                to_tag="t1",
                extra=f"Route: <sip:127.0.0.1:{kam.port};lr>\r\n",
            ).replace(b"BYE sip:rec@127.0.0.1 ", f"BYE sip:rec@127.0.0.1:{port} ".encode(), 1)
            # answers go to the Via: this socket
            bye = bye.replace(b"127.0.0.1:5099;branch", f"127.0.0.1:{me};branch".encode(), 1)
            # UDP: sent again until it has an effect (Kamailio's children may be starting)
            deadline = time.monotonic() + 20
            wait_on = peer if expect_403 else node  # the 403, or the relayed BYE
            wait_on.settimeout(0.5)
            got = b""
            while time.monotonic() < deadline:
                peer.sendto(bye, ("127.0.0.1", kam.port))
                try:
                    got = wait_on.recv(65536)
                except TimeoutError:
                    continue
                if got.startswith(b"SIP/2.0 403 ") or got.startswith(b"BYE "):
                    break
            if expect_403:
                answer = parse(got)
                assert isinstance(answer, Response) and answer.status == 403, got[:200]
                other.settimeout(1.0)
                with pytest.raises(TimeoutError):  # nothing was relayed to it
                    while True:
                        assert not other.recv(65536).startswith(b"BYE")
            else:  # relayed to the node (it also gets Kamailio's OPTIONS probes)
                assert got.startswith(b"BYE ") and f"indialog-{port}".encode() in got, got[:200]
    finally:
        if kam is not None:
            kam.stop()
        for s in (node, other, peer):
            s.close()
