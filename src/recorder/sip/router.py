"""Calls spread over worker processes by Call-ID (``recorder serve --workers N``).

Every worker binds the same SIP address with ``SO_REUSEPORT``, so the kernel hands a
datagram (or a TCP connection) to any of them.  Each call belongs to one worker, chosen
from its Call-ID by :func:`owner_of` (CRC-32 modulo N: the same answer in every
process).  A worker that receives a message of a call it does not own hands it, with
its source address, to the owner through the owner's Unix datagram socket; the owner
handles it as if it had received it.  Over UDP the owner answers from its own socket
(the same local address and port, so the peer sees one server).  A TCP connection lives
in the worker that accepted it: the owner's messages for it go back to that worker,
which writes them on the connection.  So ACK, CANCEL, BYE, re-INVITE, retransmissions
and responses to our BYE reach the owner whatever the kernel chose.

The envelope on the Unix socket: one kind byte (``M``: a message received from the
peer, to be handled; ``S``: a message to send on one of our TCP connections), a
``transport host port conn worker`` line, then the SIP message.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import zlib
from collections.abc import Callable, Sequence

from .call import Peer

log = logging.getLogger(__name__)

#: socket buffer of each worker's inbox (SIP messages are at most 64 KiB)
INBOX_BUFFER = 4 << 20
#: seconds between two warnings about messages that could not be handed to a worker
WARN_EVERY = 10.0


def call_id_of(data: bytes) -> str | None:
    """The Call-ID header value of one SIP message (long or compact form), or None.

    A quick scan of the header lines, used only to route the message: the worker that
    handles it parses it in full.

    >>> from recorder.sip.router import call_id_of
    >>> call_id_of(b"BYE sip:a@b SIP/2.0\\r\\ni:  x@y \\r\\n\\r\\n")
    'x@y'
    """
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() in (b"call-id", b"i"):
            return value.strip().decode("utf-8", "replace")
    return None


def owner_of(call_id: str, workers: int) -> int:
    """The worker (0..workers-1) that owns the call with this Call-ID.

    >>> from recorder.sip.router import owner_of
    >>> owner_of("a84b4c76e66710", 1), owner_of("a84b4c76e66710", 8)
    (0, 6)
    """
    return zlib.crc32(call_id.encode("utf-8", "replace")) % workers


def make_inboxes(workers: int) -> list[tuple[socket.socket, socket.socket]]:
    """One Unix datagram socket pair per worker, made before the workers start:
    ``(send end, receive end)``; anyone sends to worker ``i`` on ``pairs[i][0]``."""
    pairs = []
    for _ in range(workers):
        tx, rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for s in (tx, rx):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, INBOX_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, INBOX_BUFFER)
            s.setblocking(False)
        pairs.append((tx, rx))
    return pairs


class Router:
    """Worker ``index`` of ``len(outboxes)``: routes SIP messages to their call's owner.

    Parameters
    ----------
    index : int
        This worker.
    outboxes : sequence of socket
        ``outboxes[i]`` sends to worker ``i`` (the send ends of :func:`make_inboxes`;
        this worker's own entry is not used).
    inbox : socket
        This worker's receive end.
    """

    def __init__(self, index: int, outboxes: Sequence[socket.socket], inbox: socket.socket):
        if not 0 <= index < len(outboxes):
            raise ValueError(f"worker index must be in 0..{len(outboxes) - 1}, got {index!r}")
        self.index, self.workers = index, len(outboxes)
        self._outboxes, self._inbox = list(outboxes), inbox
        self._loop: asyncio.AbstractEventLoop | None = None
        self.forwarded = 0
        self.dropped = 0
        self.gone: set[int] = set()  # workers whose inbox refuses messages (exited)
        self._warned = -WARN_EVERY  # when the last warning about drops was logged
        self._unwarned = 0  # drops since then

    def owner(self, data: bytes) -> int:
        """The worker that must handle ``data`` (this one if it has no Call-ID)."""
        call_id = call_id_of(data)
        return self.index if call_id is None else owner_of(call_id, self.workers)

    def attach(
        self,
        loop: asyncio.AbstractEventLoop,
        handle: Callable[[bytes, Peer], None],
        send_tcp: Callable[[bytes, Peer], None],
    ) -> None:
        """Start reading the inbox on ``loop``: ``handle(data, peer)`` for a message
        forwarded to us, ``send_tcp(data, peer)`` for one to write on our connection."""
        self._loop = loop

        def readable() -> None:
            for _ in range(256):  # then let the loop serve others
                try:
                    envelope = self._inbox.recv(1 << 17)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as e:
                    log.debug("worker inbox: %s", e)
                    return
                try:
                    kind, data, peer = _open(envelope)
                except ValueError:
                    log.warning("worker %d: a malformed envelope was dropped", self.index)
                    continue
                (handle if kind == b"M" else send_tcp)(data, peer)

        loop.add_reader(self._inbox.fileno(), readable)

    def detach(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._inbox.fileno())
        self._loop = None

    def forward(self, to: int, data: bytes, peer: Peer) -> bool:
        """Hand a received message to worker ``to``; over TCP it answers through us.

        Returns True if it was handed over.  False if not: the owner's inbox is full
        (stuck) or the owner has exited (then ``to`` is in :attr:`gone`); the caller
        answers a request 503 unless a UDP peer will retransmit it (full inbox)."""
        if peer.transport == "tcp" and peer.worker is None:
            peer = Peer(peer.transport, peer.host, peer.port, peer.conn, self.index)
        return self._post(to, b"M", data, peer)

    def must_refuse(self, to: int, peer: Peer) -> bool:
        """Whether a request that :meth:`forward` could not hand to ``to`` is answered
        503 here: over TCP (nothing retransmits it) or when ``to`` has exited."""
        return peer.transport == "tcp" or self.has_exited(to)

    def has_exited(self, worker: int) -> bool:
        """Whether ``worker`` has exited (its inbox refused a message)."""
        return worker in self.gone

    def send_back(self, data: bytes, peer: Peer) -> None:
        """Have the worker holding ``peer``'s TCP connection write ``data`` on it."""
        if peer.worker is not None:
            self._post(peer.worker, b"S", data, peer)

    def _post(self, to: int, kind: bytes, data: bytes, peer: Peer) -> bool:
        head = f"{peer.transport} {peer.host} {peer.port} {_num(peer.conn)} {_num(peer.worker)}"
        try:
            self._outboxes[to].send(kind + head.encode() + b"\n" + data)
        except (BlockingIOError, InterruptedError) as e:  # full: the owner is stuck
            self._dropped(to, e)
            return False
        except OSError as e:  # ECONNREFUSED, EPIPE...: the owner has exited
            self.gone.add(to)
            self._dropped(to, e)
            return False
        self.forwarded += 1
        return True

    def _dropped(self, to: int, e: OSError) -> None:
        """Count a message not handed over; warn at most once per :data:`WARN_EVERY` s
        (a dead worker must not flood the log)."""
        self.dropped += 1
        self._unwarned += 1
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY:
            log.warning(
                "worker %d: %d message(s) not handed to worker %d: %s",
                self.index,
                self._unwarned,
                to,
                e,
            )
            self._warned, self._unwarned = now, 0


def _num(v: int | None) -> str:
    return "-" if v is None else str(v)


def _open(envelope: bytes) -> tuple[bytes, bytes, Peer]:
    kind, rest = envelope[:1], envelope[1:]
    head, sep, data = rest.partition(b"\n")
    fields = head.decode("ascii", "replace").split(" ")
    if kind not in (b"M", b"S") or not sep or len(fields) != 5:
        raise ValueError("bad envelope")
    transport, host, port, conn, worker = fields
    peer = Peer(
        transport,
        host,
        int(port),
        None if conn == "-" else int(conn),
        None if worker == "-" else int(worker),
    )
    return kind, data, peer
