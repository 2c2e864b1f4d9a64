"""SIP over UDP and TCP (asyncio) around :class:`~recorder.sip.uas.UasCore`.

>>> server = SipServer(on_call, host="127.0.0.1", port=5060, max_calls=100)  # doctest: +SKIP
>>> with server.run_in_thread():                                             # doctest: +SKIP
...     ...

``on_call(call)`` runs on the server's event-loop thread for each new INVITE; it must
return quickly (hand the call to a worker) and may call ``call.answer(port)`` at once
or later from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator

from .call import Call, Peer
from .message import MAX_MESSAGE, SipParseError, StreamFramer
from .router import Router
from .transaction import Timers
from .uas import Config, UasCore

log = logging.getLogger(__name__)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: SipServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.server.route(data, Peer("udp", addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable etc.
        log.debug("UDP error: %s", exc)


class SipServer:
    """A SIP UAS listening on UDP and/or TCP ``host:port``.

    Serve on your own event loop (``await server.start()`` ... ``await server.stop()``)
    or on a thread of its own (``with server.run_in_thread(): ...``).

    Parameters
    ----------
    on_call : callable
        ``on_call(call)`` for each new INVITE, with a :class:`~recorder.sip.call.Call`;
        it runs on the server's loop thread and must return quickly.
    host : str, optional
        The address to bind (also advertised unless ``advertised_ip`` is given).
    port : int, optional
        The port, 0..65535; 0 picks a free one, the same for UDP and TCP (read
        ``server.port`` after start).
    udp, tcp : bool, optional
        Which transports to serve (at least one).
    max_calls : int, optional
        More simultaneous calls get 503.
    allow : tuple of str, optional
        Source networks (CIDR strings) accepted; others get 403.
    timers : Timers or None, optional
        RFC 3261 T1/T2 (the RFC's values unless given).
    advertised_ip : str or None, optional
        The address put in Via, Contact and SDP, when it differs from ``host``.
    max_connections : int, optional
        TCP connections accepted at once; more are closed.
    idle_timeout : float, optional
        Seconds after which a silent TCP connection is closed.
    udp_socket, tcp_socket : socket.socket or None, optional
        Sockets already bound (the TCP one listening) to serve on instead of binding
        ``host:port``: ``recorder serve --workers N`` binds one ``SO_REUSEPORT`` pair
        per worker before the workers start.
    router : Router or None, optional
        With several workers: hands each message of a call another worker owns to that
        worker (:mod:`recorder.sip.router`).

    Raises
    ------
    ValueError
        Neither transport, a port out of range, ``max_calls`` below 1, or a bad
        network in ``allow``.

    Examples
    --------
    >>> from recorder.sip import SipServer
    >>> server = SipServer(lambda call: call.reject(603), port=0)
    >>> with server.run_in_thread():
    ...     server.port > 0
    True
    """

    def __init__(
        self,
        on_call: Callable[[Call], None],
        *,
        host: str = "127.0.0.1",
        port: int = 5060,
        udp: bool = True,
        tcp: bool = True,
        max_calls: int = 100,
        allow: tuple[str, ...] = ("0.0.0.0/0", "::/0"),
        timers: Timers | None = None,
        advertised_ip: str | None = None,
        max_connections: int = 1024,
        idle_timeout: float = 300.0,
        udp_socket: socket.socket | None = None,
        tcp_socket: socket.socket | None = None,
        router: Router | None = None,
    ) -> None:
        if not (udp or tcp):
            raise ValueError("enable at least one of udp and tcp")
        if not isinstance(port, int) or not 0 <= port < 65536:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        self.on_call, self.host, self.port = on_call, host, port
        self.udp, self.tcp = udp, tcp
        self.config = Config(
            local_ip=advertised_ip or host,
            local_port=port,
            max_calls=max_calls,
            allow=tuple(allow),
            timers=timers or Timers(),
        )
        self.max_connections, self.idle_timeout = max_connections, idle_timeout
        self._udp_socket, self._tcp_socket, self.router = udp_socket, tcp_socket, router
        self.core: UasCore | None = None
        self._udp_transport: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.base_events.Server | None = None
        self._conns: dict[int, asyncio.StreamWriter] = {}
        self._next_conn = 0

    async def start(self) -> None:
        """Bind the sockets and start serving on the running loop.

        Raises
        ------
        OSError
            A socket cannot be bound (the port is taken, the address is not local).
        """
        loop = asyncio.get_running_loop()
        self.core = UasCore(loop, self._send, self.on_call, self.config)
        if self.tcp:
            if self._tcp_socket is not None:
                self._tcp_server = await asyncio.start_server(
                    self._serve_tcp, sock=self._tcp_socket, limit=MAX_MESSAGE
                )
            else:
                self._tcp_server = await asyncio.start_server(
                    self._serve_tcp, self.host, self.port, limit=MAX_MESSAGE
                )
            self.port = self._tcp_server.sockets[0].getsockname()[1]
        if self.udp:
            if self._udp_socket is not None:
                self._udp_transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self), sock=self._udp_socket
                )
            else:
                self._udp_transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Udp(self), local_addr=(self.host, self.port)
                )
            self.port = self._udp_transport.get_extra_info("sockname")[1]
        self.config.local_port = self.port
        if self.router is not None:
            self.router.attach(loop, self.deliver, self._send)

    async def stop(self) -> None:
        """Close the sockets and cancel every timer; calls end with "shutdown"."""
        if self.router is not None:
            self.router.detach()
        if self.core is not None:
            self.core.close()
        if self._udp_transport is not None:
            self._udp_transport.close()
        for w in list(self._conns.values()):
            w.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
            await self._tcp_server.wait_closed()

    def deliver(self, data: bytes, peer: Peer) -> None:
        """Hand one received message to the UAS core (the transports call this).

        A failure in handling it is logged, never raised: the server goes on serving
        everyone else.

        Parameters
        ----------
        data : bytes
            One SIP message.
        peer : Peer
            Where it came from.
        """
        try:
            if self.core is None:
                raise RuntimeError("SIP message delivered before the server started")
            self.core.receive(data, peer)
        except Exception:
            log.exception("SIP message from %s:%s not handled", peer.host, peer.port)

    def route(self, data: bytes, peer: Peer) -> None:
        """Handle a message received here, or hand it to the worker that owns its call
        (with a :class:`~recorder.sip.router.Router`).

        Parameters
        ----------
        data : bytes
            One SIP message.
        peer : Peer
            Where it came from.
        """
        if self.router is not None:
            owner = self.router.owner(data)
            if owner != self.router.index:
                if (
                    not self.router.forward(owner, data, peer)
                    and self.router.must_refuse(owner, peer)
                    and self.core is not None
                ):  # the owner is gone (or TCP, where nothing retransmits): 481/503 here
                    self.core.refuse_unowned(data, peer, self.router.has_exited(owner))
                return
        self.deliver(data, peer)

    def _send(self, data: bytes, peer: Peer) -> None:
        if peer.transport == "udp":
            if self._udp_transport is not None:
                self._udp_transport.sendto(data, (peer.host, peer.port))
        elif self.router is not None and peer.worker not in (None, self.router.index):
            self.router.send_back(data, peer)  # the connection is in another worker
        else:
            writer = None if peer.conn is None else self._conns.get(peer.conn)
            if writer is not None and not writer.is_closing():
                writer.write(data)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._conns) >= self.max_connections:
            writer.close()
            return
        self._next_conn += 1
        conn = self._next_conn
        self._conns[conn] = writer
        host, port = writer.get_extra_info("peername")[:2]
        framer = StreamFramer()
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
                if not data:
                    break
                for msg in framer.feed(data):
                    self.route(msg, Peer("tcp", host, port, conn))
        except (SipParseError, asyncio.TimeoutError, ConnectionError):
            pass  # oversized framing, idle or reset: close the connection
        finally:
            self._conns.pop(conn, None)
            writer.close()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[SipServer]:
        """Serve on a new event-loop thread for the duration of the ``with`` block.

        Yields
        ------
        SipServer
            The server itself, started.

        Raises
        ------
        OSError
            The server could not start (raised in the calling thread).
        """
        loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:  # re-raised in the caller's thread
                failure.append(e)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=main, name=f"sip-{self.port}", daemon=True)
        thread.start()
        started.wait()
        if failure:
            thread.join()
            loop.close()
            raise failure[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    def call_in_loop(self, fn: Callable[[], object]) -> object:
        """Run ``fn`` on the server's loop thread and return its result.

        For inspection from other threads, e.g.
        ``server.call_in_loop(lambda: server.core.active_calls)``.

        Parameters
        ----------
        fn : callable
            Called with no arguments on the loop thread.

        Returns
        -------
        object
            What ``fn`` returned (waits up to 10 s).

        Raises
        ------
        RuntimeError
            The server is not started.
        """
        if self.core is None:
            raise RuntimeError("the server is not started")
        loop = self.core.loop
        fut = asyncio.run_coroutine_threadsafe(_as_coro(fn), loop)
        return fut.result(timeout=10)


async def _as_coro(fn: Callable[[], object]) -> object:
    return fn()
