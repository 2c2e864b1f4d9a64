"""The asyncio server on real UDP and TCP sockets on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest
from sip_helpers import offer, request

from recorder.sip import SipServer, Timers
from recorder.sip.message import MAX_MESSAGE, Response, StreamFramer, parse


@pytest.fixture
def server():
    calls = []

    def on_call(call):
        calls.append(call)
        call.answer(41000)

    srv = SipServer(on_call, port=0, timers=Timers(t1=0.05, t2=0.2), max_connections=4)
    with srv.run_in_thread():
        srv.calls = calls
        yield srv


def tcp_exchange(port: int, data: bytes, n: int) -> list[Response]:
    """Send ``data`` on a new TCP connection; read ``n`` messages (5 s bound)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        framer, out = StreamFramer(), []
        while len(out) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += [parse(m, stream=True) for m in framer.feed(chunk)]
        return out


def test_tcp_two_messages_in_one_segment_and_a_bad_one(server):
    bad = request("OPTIONS", cseq_method="BYE")
    out = tcp_exchange(server.port, request("OPTIONS") + request("INVITE", body=offer()) + bad, 4)
    assert [m.status for m in out] == [200, 100, 200, 400]
    assert server.calls[0].remote.transport == "tcp"


def test_tcp_oversized_message_closes_the_connection(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\n")
        assert s.recv(100) == b""  # closed by the server
    # The server still serves others.
    assert [m.status for m in tcp_exchange(server.port, request("OPTIONS"), 1)] == [200]


def test_tcp_connection_limit(server):
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(4)]
    try:
        # Make sure the four are registered before opening the fifth.
        for s in socks:
            s.sendall(request("OPTIONS"))
            assert s.recv(65536).startswith(b"SIP/2.0 200")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            assert extra.recv(100) == b""
    finally:
        for s in socks:
            s.close()


def test_udp_garbage_is_survived(server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for junk in (
            b"",
            b"\x00" * 1000,
            b"INVITE",
            b"\r\n\r\n",
            b"x" * (MAX_MESSAGE - 100),
            request("INVITE", body=offer())[:-5],
        ):
            s.sendto(junk, ("127.0.0.1", server.port))
        s.sendto(request("OPTIONS"), ("127.0.0.1", server.port))
        replies = []
        while True:
            reply = parse(s.recv(65536))
            replies.append(reply.status)
            if reply.get("CSeq") == "1 OPTIONS":
                break
    assert replies == [400, 200]  # the truncated INVITE got 400, the junk nothing
    assert server.calls == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="port"):
        SipServer(lambda c: None, port=70000)
    with pytest.raises(ValueError, match="max_calls"):
        SipServer(lambda c: None, max_calls=0)
    with pytest.raises(ValueError, match="allow"):
        SipServer(lambda c: None, allow=("not-a-net",))
    with pytest.raises(ValueError, match="udp and tcp"):
        SipServer(lambda c: None, udp=False, tcp=False)
