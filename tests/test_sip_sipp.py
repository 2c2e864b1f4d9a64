"""The SIP server against a real peer: SIPp (Debian ``sip-tester``) on 127.0.0.1.

Each test starts its own server on a free port and its own sipp process (bounded by
``-timeout`` and a subprocess timeout), and checks sipp's exit status and statistics
and what the server's application saw.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time

import pytest
from sip_helpers import DATA

from recorder.sip import SipServer, Timers


@pytest.fixture(scope="module")
def sipp():
    from conftest import need_exe

    return need_exe("sipp")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_sipp(
    sipp: str,
    server: SipServer,
    tmp_path,
    *,
    scenario: str = "uac",
    calls: int = 1,
    rate: int = 10,
    limit: int = 10,
    tcp: bool = False,
    extra: tuple[str, ...] = (),
) -> tuple[int, dict[str, int], str]:
    """Run sipp to completion; return (exit status, cumulative counters, screen)."""
    scen = ["-sn", scenario] if scenario in ("uac",) else ["-sf", str(DATA / scenario)]
    cmd = [
        sipp,
        *scen,
        f"127.0.0.1:{server.port}",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-l",
        str(limit),
        "-timeout",
        "20s",
        "-timeout_error",
        "-trace_err",
        "-nostdin",
        "-t",
        "t1" if tcp else "u1",
        *extra,
    ]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    counters = {}
    for name in ("Successful call", "Failed call", "Total Calls created"):
        m = re.search(rf"{name}\s*\|(?:\s*\d+\s*\|)?\s*(\d+)", p.stdout)
        counters[name] = int(m.group(1)) if m else -1
    errors = "".join(f.read_text() for f in tmp_path.glob("*_errors.log"))
    return p.returncode, counters, p.stdout[-3000:] + p.stderr[-2000:] + errors


class App:
    """A minimal application: answers (or not), records what it saw."""

    def __init__(self, answer: bool = True) -> None:
        self.calls, self.ended, self.updates = [], [], []
        self.answer = answer
        self.lock = threading.Lock()
        self.port = 30000

    def on_call(self, call) -> None:
        with self.lock:
            self.calls.append(call)
            self.port += 2
            port = self.port
        call.on_end = lambda c, reason: self.ended.append((c.call_id, reason))
        call.on_update = lambda c: self.updates.append(c.media)
        if self.answer:
            call.answer(port)


def server_for(app: App, **kw) -> SipServer:
    return SipServer(app.on_call, host="127.0.0.1", port=0, **kw)


def wait_for(server: SipServer, cond, timeout: float = 30.0) -> bool:
    """Poll ``cond()`` on the server's loop until it holds (bounded)."""
    deadline = time.monotonic() + timeout
    while not server.call_in_loop(cond):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_sipp_uac_calls_answered_and_ended_by_far_end_bye(sipp, tmp_path, tcp):
    app = App()
    server = server_for(app, timers=Timers(t1=0.05, t2=0.2))  # Timer J: 3.2 s
    with server.run_in_thread():
        rc, counters, screen = run_sipp(
            sipp, server, tmp_path, calls=100, rate=100, limit=20, tcp=tcp
        )
        assert rc == 0, screen
        assert counters["Successful call"] == 100 and counters["Failed call"] == 0, screen
        assert server.call_in_loop(lambda: server.core.active_calls) == 0
        # Nothing is left once the timers ran out: every table drains.
        assert wait_for(server, lambda: server.core.transaction_count == 0)
    assert len(app.calls) == 100 and len({c.id for c in app.calls}) == 100
    assert sorted(r for _, r in app.ended) == ["bye"] * 100
    # sipp's built-in scenario offers PCMU from 127.0.0.1; its first call's port is 6000
    # (the calls reach the application in any order)
    assert {c.media.codec for c in app.calls} == {"PCMU"}
    assert min(c.media.remote_rtp for c in app.calls) == ("127.0.0.1", 6000)
    for call in app.calls:
        assert call.from_uri.startswith("sip:sipp@127.0.0.1") and call.remote.transport == (
            "tcp" if tcp else "udp"
        )


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_sipp_cancel_before_answer(sipp, tmp_path, tcp):
    app = App(answer=False)
    server = server_for(app)
    with server.run_in_thread():
        rc, counters, screen = run_sipp(
            sipp, server, tmp_path, scenario="sipp_cancel.xml", calls=5, rate=20, limit=5, tcp=tcp
        )
        assert rc == 0 and counters["Successful call"] == 5, screen
        assert server.call_in_loop(lambda: server.core.active_calls) == 0
    assert [r for _, r in app.ended] == ["cancel"] * 5
    assert all(c.state == "ended" and c.ended.is_set() for c in app.calls)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_sipp_hold_and_resume(sipp, tmp_path, tcp):
    app = App()
    server = server_for(app)
    with server.run_in_thread():
        rc, counters, screen = run_sipp(sipp, server, tmp_path, scenario="sipp_hold.xml", tcp=tcp)
        assert rc == 0 and counters["Successful call"] == 1, screen
    assert [(m.direction, m.on_hold) for m in app.updates] == [
        ("sendonly", True),
        ("inactive", True),
        ("sendrecv", False),
    ]
    assert all(m.codec == "PCMA" and m.telephone_event == 101 for m in app.updates)
    assert app.ended == [(app.calls[0].call_id, "bye")]


def test_sipp_options(sipp, tmp_path):
    app = App()
    server = server_for(app)
    with server.run_in_thread():
        rc, counters, screen = run_sipp(
            sipp, server, tmp_path, scenario="sipp_options.xml", calls=3
        )
        assert rc == 0 and counters["Successful call"] == 3, screen
    assert app.calls == []


def test_sipp_late_offer(sipp, tmp_path):
    app = App()
    server = server_for(app)
    with server.run_in_thread():
        rc, counters, screen = run_sipp(
            sipp, server, tmp_path, scenario="sipp_late_offer.xml", calls=2
        )
        assert rc == 0 and counters["Successful call"] == 2, screen
    assert [c.media.codec for c in app.calls] == ["PCMA", "PCMA"]
    assert all(c.media.telephone_event == 101 and not c.media.on_hold for c in app.calls)
    assert sorted(r for _, r in app.ended) == ["bye", "bye"]


def test_sipp_invite_flood_beyond_max_calls_gets_503(sipp, tmp_path):
    app = App(answer=False)  # calls stay ringing: they hold the max_calls slots
    server = server_for(app, max_calls=2)
    with server.run_in_thread():
        result = {}
        runner = threading.Thread(
            target=lambda: result.update(
                zip(
                    ("rc", "counters", "screen"),
                    run_sipp(
                        sipp,
                        server,
                        tmp_path,
                        scenario="sipp_busy.xml",
                        calls=12,
                        rate=200,
                        limit=12,
                    ),
                    strict=False,
                )
            )
        )
        runner.start()
        # Bounded wait on the real event: ten INVITEs refused as busy.
        assert wait_for(server, lambda: server.core.stats["busy"] >= 10), "no 10 refusals"
        for call in list(app.calls):
            call.reject(486)
        runner.join(60)
        assert result["rc"] == 0, result["screen"]
        assert result["counters"]["Successful call"] == 12, result["screen"]
    assert len(app.calls) == 2 and [r for _, r in app.ended] == ["rejected"] * 2
