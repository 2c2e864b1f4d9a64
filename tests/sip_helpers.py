"""Builders for SIP test messages and a harness that drives a real UasCore on a real
asyncio loop, collecting what it sends."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from recorder.sip import Config, Peer, Timers, UasCore
from recorder.sip.message import Request, Response, parse

DATA = Path(__file__).parent / "data" / "sip"
PEER = Peer("udp", "127.0.0.1", 5099)
FAST = Timers(t1=0.01, t2=0.04)
_ids = itertools.count(1)

OFFER = (
    "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:30\r\n{dir}"
)


def offer(direction: str = "sendrecv") -> bytes:
    return OFFER.format(dir=f"a={direction}\r\n").encode()


def request(
    method: str,
    *,
    call_id: str = "c1",
    branch: str | None = None,
    from_tag: str = "ft1",
    to_tag: str | None = None,
    cseq: int = 1,
    body: bytes = b"",
    cseq_method: str | None = None,
    extra: str = "",
) -> bytes:
    branch = branch or f"z9hG4bK-{next(_ids)}"
    to = "<sip:rec@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    ctype = "Content-Type: application/sdp\r\n" if body else ""
    head = (
        f"{method} sip:rec@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5099;branch={branch}\r\n"
        f"Max-Forwards: 70\r\n"
        f'From: "Alice A" <sip:alice@127.0.0.1>;tag={from_tag}\r\n'
        f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {cseq_method or method}\r\n"
        f"Contact: <sip:alice@127.0.0.1:5099>\r\n{extra}{ctype}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def load(name: str) -> bytes:
    """A test message from tests/data/sip: LF line ends become CRLF; ``{CL}`` becomes
    the body's length."""
    text = (DATA / name).read_text(encoding="utf-8").replace("\r\n", "\n").replace("\n", "\r\n")
    head, _, body = text.partition("\r\n\r\n")
    return (head.replace("{CL}", str(len(body.encode()))) + "\r\n\r\n").encode() + body.encode()


class Harness:
    """A UasCore on its own event loop; ``sent`` holds (parsed message, peer)."""

    def __init__(self, answer_port: int | None = 40000, **config) -> None:
        self.loop = asyncio.new_event_loop()
        self.sent: list[tuple[Request | Response, Peer]] = []
        self.calls = []
        self.answer_port = answer_port
        self.waiters: list[tuple[object, asyncio.Future]] = []
        # RFC default timers: no retransmission can slip into a quick exchange on a busy
        # machine; tests about timers pass FAST.
        config.setdefault("timers", Timers())
        self.core = UasCore(self.loop, self._send, self._on_call, Config(**config))

    def _on_call(self, call) -> None:
        self.calls.append(call)
        if self.answer_port is not None:
            call.answer(self.answer_port)

    def _send(self, data: bytes, peer: Peer) -> None:
        self.sent.append((parse(data), peer))
        for pred, fut in self.waiters:
            if not fut.done() and pred(self.sent[-1][0]):
                fut.set_result(self.sent[-1][0])

    def feed(self, data: bytes, peer: Peer = PEER) -> list[Request | Response]:
        """Deliver ``data``, let the loop run ready callbacks; return what was sent."""
        n = len(self.sent)
        self.core.receive(data, peer)
        self.loop.run_until_complete(asyncio.sleep(0))
        return [m for m, _ in self.sent[n:]]

    def wait_sent(self, pred, timeout: float = 5.0):
        """Run the loop until a sent message matches ``pred`` (bounded)."""
        for m, _ in self.sent:
            if pred(m):
                return m
        fut = self.loop.create_future()
        self.waiters.append((pred, fut))
        return self.loop.run_until_complete(asyncio.wait_for(fut, timeout))

    def run_until(self, cond, timeout: float = 5.0) -> bool:
        """Run the loop (timers fire) until ``cond()`` holds or ``timeout`` passes."""
        deadline = self.loop.time() + timeout
        while not cond() and self.loop.time() < deadline:
            self.loop.run_until_complete(asyncio.sleep(0.01))
        return cond()

    def statuses(self, msgs) -> list[int]:
        return [m.status for m in msgs if isinstance(m, Response)]

    def close(self) -> None:
        self.core.close()
        self.loop.close()


class Uac:
    """A minimal SIP caller over UDP on 127.0.0.1 for end-to-end tests: INVITE (with or
    without an offer), ACK (with the late offer's answer), re-INVITE, BYE; answers the
    server's BYE.  Every wait is bounded by ``timeout``."""

    def __init__(self, server_port: int, call_id: str = "uac-1", timeout: float = 20.0) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(timeout)
        self.port = self.sock.getsockname()[1]
        self.server = ("127.0.0.1", server_port)
        self.call_id = call_id
        self.cseq = 0
        self.to_tag: str | None = None
        self.invite_cseq = 0
        self.requests: list[Request] = []  # requests the server sent us (BYE)

    def _send(self, method: str, body: bytes = b"", cseq: int | None = None, **kw) -> str:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        branch = f"z9hG4bK-uac-{next(_ids)}"
        data = request(
            method,
            call_id=self.call_id,
            branch=branch,
            to_tag=self.to_tag,
            cseq=cseq,
            body=body,
            **kw,
        ).replace(b"127.0.0.1:5099", f"127.0.0.1:{self.port}".encode())
        self.sock.sendto(data, self.server)
        return branch

    def final(self, method: str) -> Response:
        """The next final response to ``method`` (1xx skipped; a BYE from the server is
        answered with 200 and kept in ``requests``)."""
        while True:
            data, _ = self.sock.recvfrom(65536)
            msg = parse(data)
            if isinstance(msg, Request):
                self.requests.append(msg)
                if msg.method == "BYE":
                    from recorder.sip.message import make_response

                    self.sock.sendto(make_response(msg, 200, reason="OK").to_bytes(), self.server)
                continue
            cseq = (msg.get("CSeq") or "").split()
            if msg.status >= 200 and cseq[-1:] == [method] and int(cseq[0]) == self.cseq:
                return msg

    def invite(self, body: bytes = b"") -> Response:
        """INVITE (``body``: the SDP offer, or none for a late offer); the final response;
        a 2xx is not yet ACKed."""
        self.invite_cseq = self.cseq + 1
        self._send("INVITE", body)
        resp = self.final("INVITE")
        if resp.status < 300 and self.to_tag is None:
            self.to_tag = parse_to_tag(resp)
        return resp

    def ack(self, body: bytes = b"") -> None:
        """ACK the last 2xx (with ``body``: the answer to the server's late offer)."""
        self._send("ACK", body, cseq=self.invite_cseq)

    def bye(self) -> Response:
        self._send("BYE")
        return self.final("BYE")

    def close(self) -> None:
        self.sock.close()


def parse_to_tag(msg: Request | Response) -> str:
    from recorder.sip.message import parse_name_addr

    return parse_name_addr(msg.get("To") or "").tag or ""


def sdp_of(msg: Request | Response) -> dict[str, str]:
    """The c= address, m=audio port and payload types of a message's SDP body."""
    lines = msg.body.decode().splitlines()
    conn = next(ln for ln in lines if ln.startswith("c=")).split()[-1]
    m = next(ln for ln in lines if ln.startswith("m=audio")).split()
    origin = next(ln for ln in lines if ln.startswith("o=")).split()[-1]
    return {"c": conn, "o": origin, "port": m[1], "pts": " ".join(m[3:])}


def sdp_offer(port: int, pts: str = "8 101", direction: str = "sendrecv") -> bytes:
    """An offer (or answer) for RTP from 127.0.0.1:``port`` with payload types ``pts``
    (0 PCMU, 8 PCMA, 101 telephone-event)."""
    names = {"0": "PCMU/8000", "8": "PCMA/8000", "101": "telephone-event/8000"}
    maps = "".join(f"a=rtpmap:{pt} {names[pt]}\r\n" for pt in pts.split())
    return (
        "v=0\r\no=uac 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {pts}\r\n{maps}a=ptime:20\r\na={direction}\r\n"
    ).encode()
