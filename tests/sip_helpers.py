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
