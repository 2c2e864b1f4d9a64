"""UAS core: server transactions, dialogs and calls (RFC 3261 §13, §15, §17.2).

Transport-free: :meth:`UasCore.receive` takes the bytes of one message and where it
came from; replies go out through the ``send(data, peer)`` function given to the
constructor; timers run on the asyncio ``loop``.  Every table is bounded (calls by
``max_calls``, transactions by ``max_transactions``) and every entry has a timer that
removes it, so no input makes the core grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from . import message as sipmsg
from . import sdp
from .call import Call, Peer
from .message import Request, RequestInfo, Response, SipParseError
from .transaction import Retransmitter, Timers

log = logging.getLogger(__name__)

REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    415: "Unsupported Media Type",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    503: "Service Unavailable",
    603: "Decline",
}
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS"


@dataclass
class Config:
    """UAS settings.

    Parameters
    ----------
    local_ip : str, optional
        Our address in Via, Contact and SDP.
    local_port : int, optional
        Our port in Via and Contact.
    max_calls : int, optional
        Simultaneous calls; more get 503.
    allow : tuple of str, optional
        Source networks (CIDR strings) accepted; others get 403.
    timers : Timers, optional
        RFC 3261 T1/T2.
    user_agent : str, optional
        The Server header of our responses.
    max_transactions : int, optional
        Transactions kept at once; more get a stateless 503 (0: ``8 * max_calls + 64``).
    ring_timeout : float, optional
        Seconds a call may stay ringing before it gets 480.

    Raises
    ------
    ValueError
        ``max_calls`` below 1, a bad network in ``allow``, or ``ring_timeout`` not
        above 0.

    Examples
    --------
    >>> from recorder.sip import Config
    >>> Config(max_calls=10).max_transactions
    144
    >>> Config(allow=("10.0.0.0/33",))
    Traceback (most recent call last):
    ...
    ValueError: allow: bad network: '10.0.0.0/33' does not appear to be an IPv4 or IPv6 network
    """

    local_ip: str = "127.0.0.1"
    local_port: int = 5060
    max_calls: int = 100
    allow: tuple[str, ...] = ("0.0.0.0/0", "::/0")
    timers: Timers = field(default_factory=Timers)
    user_agent: str = "callrecorder"
    max_transactions: int = 0  # 0: 8 * max_calls + 64
    ring_timeout: float = 120.0  # a call the application leaves ringing gets 480

    def __post_init__(self) -> None:
        if not isinstance(self.max_calls, int) or self.max_calls < 1:
            raise ValueError(f"max_calls must be a positive int, got {self.max_calls!r}")
        try:
            self.networks = [ipaddress.ip_network(a, strict=False) for a in self.allow]
        except ValueError as e:
            raise ValueError(f"allow: bad network: {e}") from None
        if not self.ring_timeout > 0:
            raise ValueError(f"ring_timeout must be > 0 seconds, got {self.ring_timeout!r}")
        if self.max_transactions <= 0:
            self.max_transactions = 8 * self.max_calls + 64


@dataclass
class _InviteTx:
    key: tuple
    request: Request
    info: RequestInfo
    peer: Peer
    call: Call | None = None
    last: bytes | None = None
    final: bool = False
    retransmit: Retransmitter | None = None
    expiry: asyncio.TimerHandle | None = None


@dataclass
class _Dialog:
    call: Call
    invite: Request
    info: RequestInfo
    local_tag: str
    session_id: int
    sdp_version: int = 1
    local_cseq: int = 0
    ok: Retransmitter | None = None
    offer_pending: bool = False
    bye_pending: bool = False
    remote_cseq: int = 0
    ring_timer: asyncio.TimerHandle | None = None
    route: list[str] = field(default_factory=list)


def _route_uri(route: str) -> str:
    """The URI of one Route/Record-Route value (``<sip:p.example;lr>``)."""
    return sipmsg.parse_name_addr(route).uri


def _uri_params(route: str) -> dict[str, str]:
    try:
        _, _, params = _route_uri(route).partition(";")
        return sipmsg.parse_params(";" + params) if params else {}
    except SipParseError:
        return {}


def _next_hop(routes: list[str], remote: Peer) -> Peer:
    """Where a request of the dialog goes (RFC 3261 §12.2.1.1, §8.1.2): the first
    route's address when it is an IP literal over UDP, else where the INVITE came from
    (a TCP request goes back on the INVITE's connection; we resolve no names)."""
    if not routes or remote.transport != "udp":
        return remote
    try:
        uri = _route_uri(routes[0])
    except SipParseError:
        return remote
    hostport = uri.partition(":")[2].split(";")[0].rpartition("@")[2]
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    transport = _uri_params(routes[0]).get("transport", "udp").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return remote
    if transport != "udp" or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        return remote
    return Peer("udp", host, int(port) if port else 5060)


def _tag() -> str:
    """A tag or branch suffix nobody can guess (in-dialog requests must match it)."""
    return secrets.token_hex(8)


class UasCore:
    """The SIP user-agent server, without transport: bytes in, bytes out.

    :class:`~recorder.sip.server.SipServer` wraps it in UDP and TCP sockets; tests and
    other transports can drive it directly.  All methods but the ``*_call`` actions run
    on the loop's thread.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The loop the timers run on; the core must be made on its thread.
    send : callable
        ``send(data, peer)`` sends one message.
    on_call : callable
        ``on_call(call)`` for each new INVITE, with a :class:`~recorder.sip.call.Call`.
    config : Config or None, optional
        Settings (defaults unless given).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[bytes, Peer], None],
        on_call: Callable[[Call], None],
        config: Config | None = None,
    ) -> None:
        self.loop, self.send, self.on_call = loop, send, on_call
        self.config = config or Config()
        self.loop_thread = threading.get_ident()
        self._invites: dict[tuple, _InviteTx] = {}
        self._responses: dict[tuple, tuple[bytes, asyncio.TimerHandle]] = {}
        self._dialogs: dict[tuple[str, str], _Dialog] = {}
        self._byes: dict[str, Retransmitter] = {}
        self._by_call: dict[str, tuple[_InviteTx, _Dialog]] = {}  # call.id -> its state
        self.stats = {"received": 0, "malformed": 0, "forbidden": 0, "busy": 0, "calls": 0}

    # -- public views -----------------------------------------------------------------

    @property
    def active_calls(self) -> int:
        """How many dialogs (calls ringing or answered) exist now."""
        return len(self._dialogs)

    @property
    def transaction_count(self) -> int:
        """How many transactions and cached responses are kept now (0 once every timer
        has run out)."""
        return len(self._invites) + len(self._responses) + len(self._byes)

    # -- entry point ------------------------------------------------------------------

    def receive(self, data: bytes, peer: Peer) -> None:
        """Handle one received message.

        Parameters
        ----------
        data : bytes
            One SIP message (a datagram, or a message framed by
            :class:`~recorder.sip.message.StreamFramer` over TCP).
        peer : Peer
            Where it came from.

        Notes
        -----
        Never raises for bad input: a malformed request gets 400 when it can be
        answered, and is dropped otherwise.
        """
        self.stats["received"] += 1
        try:
            msg = sipmsg.parse(data, stream=peer.transport == "tcp")
        except SipParseError:
            self.stats["malformed"] += 1
            self._reply_400_raw(data, peer)
            return
        if isinstance(msg, Response):
            self._on_response(msg)
            return
        try:
            info = sipmsg.check_request(msg)
        except SipParseError as e:
            self.stats["malformed"] += 1
            if msg.method != "ACK":
                self._send_response(msg, peer, 400, reason=f"Bad Request ({e})"[:120])
            return
        sipmsg.stamp_via(msg, peer.host, peer.port)
        if not self._allowed(peer.host):
            self.stats["forbidden"] += 1
            if msg.method != "ACK":
                self._send_response(msg, peer, 403)
            return
        try:
            self._dispatch(msg, info, peer)
        except (SipParseError, sdp.SdpError) as e:
            self.stats["malformed"] += 1
            if msg.method != "ACK":
                self._send_response(msg, peer, 400, reason=f"Bad Request ({e})"[:120])

    def _allowed(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        return any(ip in net for net in self.config.networks)

    def _dispatch(self, req: Request, info: RequestInfo, peer: Peer) -> None:
        method = req.method
        key = self._tx_key(info, "INVITE" if method in ("ACK", "CANCEL") else method)
        if method == "ACK":
            self._on_ack(req, info, key)
            return
        if method == "CANCEL":
            self._on_cancel(req, info, peer, key)
            return
        if method == "INVITE" and key in self._invites:  # retransmission
            tx = self._invites[key]
            if tx.last is not None:
                self.send(tx.last, peer)
            return
        if key in self._responses:
            self.send(self._responses[key][0], peer)
            return
        if self.transaction_count >= self.config.max_transactions:
            self._send_response(req, peer, 503, extra=[("Retry-After", "5")])  # stateless
            return
        dialog = self._dialogs.get((info.call_id, info.to.tag)) if info.to.tag else None
        if info.to.tag and (dialog is None or dialog.info.from_.tag != info.from_.tag):
            if method == "OPTIONS":
                self._reply_nontx(req, info, peer, key, 200)
            else:
                self._reply_nontx(req, info, peer, key, 481)
            return
        if method in ("INVITE", "BYE", "OPTIONS") and req.get("Require"):
            self._reply_nontx(
                req,
                info,
                peer,
                key,
                420,
                extra=[("Unsupported", ", ".join(req.get_all("Require")))],
            )
            return
        if (
            req.body
            and method == "INVITE"
            and (req.get("Content-Type") or "").split(";")[0].strip().lower() != "application/sdp"
        ):
            self._reply_nontx(req, info, peer, key, 415, extra=[("Accept", "application/sdp")])
            return
        if dialog is not None:
            if info.cseq <= dialog.remote_cseq:  # out of order (RFC 3261 §12.2.2)
                self._reply_nontx(req, info, peer, key, 500)
                return
            dialog.remote_cseq = info.cseq
        if method == "INVITE":
            if dialog is not None:
                self._on_reinvite(req, info, peer, key, dialog)
            else:
                self._on_invite(req, info, peer, key)
        elif method == "BYE":
            if dialog is None:
                self._reply_nontx(req, info, peer, key, 481)
            else:
                self._reply_nontx(req, info, peer, key, 200)
                self._end_dialog(dialog, "bye")
        elif method == "OPTIONS":
            self._reply_nontx(req, info, peer, key, 200)
        else:
            self._reply_nontx(req, info, peer, key, 405)

    @staticmethod
    def _tx_key(info: RequestInfo, method: str) -> tuple:
        via = info.via[0]
        if via.branch.startswith("z9hG4bK"):
            return (via.branch, via.host, via.port, method)
        return (info.call_id, info.from_.tag, info.cseq, via.host, via.port, method)

    # -- responses --------------------------------------------------------------------

    def _send_response(self, req: Request, peer: Peer, status: int, **kw) -> bytes:
        kw.setdefault("reason", REASONS.get(status))
        data = sipmsg.make_response(req, status, server=self.config.user_agent, **kw).to_bytes()
        self.send(data, peer)
        return data

    def _reply_nontx(
        self,
        req: Request,
        info: RequestInfo,
        peer: Peer,
        key: tuple,
        status: int,
        to_tag: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        """A final response remembered for retransmissions of the request (Timer J)."""
        if extra is None:
            extra = (
                [("Allow", ALLOW), ("Accept", "application/sdp")]
                if (status in (200, 405) and req.method == "OPTIONS") or status == 405
                else []
            )
        if not info.to.tag:
            to_tag = to_tag or _tag()
        data = self._send_response(req, peer, status, to_tag=to_tag, extra=extra)
        handle = self.loop.call_later(self.config.timers.j, self._responses.pop, key, None)
        self._responses[key] = (data, handle)

    def _reply_400_raw(self, data: bytes, peer: Peer) -> None:
        """400 for a request we could not parse, if it has enough to route a reply."""
        req = sipmsg.salvage_request(data)
        if req is not None:
            self._send_response(req, peer, 400)

    def refuse_unowned(self, data: bytes, peer: Peer, owner_exited: bool) -> None:
        """Answer a request that the worker owning its call could not take (see
        :class:`~recorder.sip.router.Router`): 481 for a request inside a dialog whose
        owner has exited (the dialog died with it: RFC 3261 12.2.2), 503 with
        Retry-After otherwise (a new call, or an owner that is only stuck).

        Parameters
        ----------
        data : bytes
            The request, as received (only the headers a response copies are read); a
            response or an ACK gets nothing.
        peer : Peer
            Where it came from (the response goes there).
        owner_exited : bool
            Whether the owning worker has exited (else it is only stuck).
        """
        req = sipmsg.salvage_request(data)
        if req is None:
            return
        in_dialog = False
        if owner_exited:
            try:
                in_dialog = sipmsg.parse_name_addr(req.get("To") or "").tag is not None
            except SipParseError:
                in_dialog = False
        sipmsg.stamp_via(req, peer.host, peer.port)
        if in_dialog:
            self._send_response(req, peer, 481)
        else:
            self._send_response(req, peer, 503, extra=[("Retry-After", "5")])

    # -- INVITE -----------------------------------------------------------------------

    def _on_invite(self, req: Request, info: RequestInfo, peer: Peer, key: tuple) -> None:
        tx = _InviteTx(key, req, info, peer)
        self._invites[key] = tx
        if self.active_calls >= self.config.max_calls:
            self.stats["busy"] += 1
            self._final(tx, 503, extra=[("Retry-After", "5")])
            return
        media = None
        if req.body:
            try:
                _, media = sdp.negotiate(sdp.parse(req.body))
            except sdp.NoCommonCodec:
                self._final(tx, 488)
                return
            except sdp.SdpError as e:
                self._final(tx, 400, reason=f"Bad Request ({e})"[:120])
                return
        call = Call(
            self,
            call_id=info.call_id,
            from_uri=info.from_.uri,
            from_name=info.from_.display,
            to_uri=info.to.uri,
            to_name=info.to.display,
            remote=peer,
            headers=req.headers,
            media=media,
        )
        route = req.get_all("Record-Route")
        dialog = _Dialog(
            call, req, info, _tag(), secrets.randbits(31), route=route, remote_cseq=info.cseq
        )
        dialog.ring_timer = self.loop.call_later(
            self.config.ring_timeout, lambda: self._reject(call, 480, "timeout")
        )
        self._dialogs[(info.call_id, dialog.local_tag)] = dialog
        self._by_call[call.id] = (tx, dialog)
        tx.call = call
        self.stats["calls"] += 1
        tx.last = self._send_response(req, peer, 100)
        try:
            self.on_call(call)
        except Exception:  # the application's bug must not take the server down
            log.exception("on_call failed; rejecting the call")
            self.reject_call(call, 500)
        self.loop.call_soon(self._ring, tx)

    def _ring(self, tx: _InviteTx) -> None:
        if tx.final or tx.call is None or tx.call.state != "ringing":
            return
        dialog = self._dialog_of(tx.call)
        tx.last = self._send_response(
            tx.request,
            tx.peer,
            180,
            to_tag=dialog.local_tag,
            extra=[("Contact", self._contact(tx.peer))],
        )

    def _hostport(self) -> str:
        ip = self.config.local_ip
        return f"[{ip}]:{self.config.local_port}" if ":" in ip else f"{ip}:{self.config.local_port}"

    def _contact(self, peer: Peer) -> str:
        return f"<sip:recorder@{self._hostport()};transport={peer.transport}>"

    def _final(self, tx: _InviteTx, status: int, **kw) -> None:
        """Send a non-2xx final response, retransmitted until the ACK (Timer G/H)."""
        tx.final = True
        entry = self._by_call.get(tx.call.id) if tx.call else None
        to_tag = entry[1].local_tag if entry else _tag()
        kw.setdefault("reason", REASONS.get(status))
        data = sipmsg.make_response(
            tx.request, status, to_tag=to_tag, server=self.config.user_agent, **kw
        ).to_bytes()
        tx.last = data
        tx.retransmit = self._retransmit(data, tx.peer, lambda: self._invites.pop(tx.key, None))

    def _retransmit(
        self, data: bytes, peer: Peer, on_timeout: Callable[[], object]
    ) -> Retransmitter:
        return Retransmitter(
            self.loop, self.config.timers, lambda: self.send(data, peer), on_timeout
        )

    def _dialog_of(self, call: Call) -> _Dialog:
        return self._by_call[call.id][1]

    def _find(self, call: Call) -> tuple[_InviteTx | None, _Dialog | None]:
        return self._by_call.get(call.id, (None, None))

    def _on_ack(self, req: Request, info: RequestInfo, key: tuple) -> None:
        tx = self._invites.get(key)
        if tx is not None and tx.final and tx.retransmit is not None:  # ACK for non-2xx
            tx.retransmit.stop()
            tx.expiry = self.loop.call_later(self.config.timers.t2, self._invites.pop, key, None)
            return
        dialog = self._dialogs.get((info.call_id, info.to.tag or ""))
        if dialog is None or dialog.ok is None:
            return
        dialog.ok.stop()
        dialog.ok = None
        media = None
        if dialog.offer_pending:  # our offer was in the 2xx: the answer must be here
            dialog.offer_pending = False
            try:
                media = sdp.accept_answer(sdp.parse(req.body))
            except sdp.SdpError as e:
                log.warning("no usable SDP answer in the ACK of %s (%s): BYE", info.call_id, e)
                dialog.call.set_state("confirmed")
                self._bye(dialog, "bad-sdp")
                return
        dialog.call.set_state("confirmed", media)
        if dialog.bye_pending:
            self._bye(dialog, "hangup")

    def _on_cancel(self, req: Request, info: RequestInfo, peer: Peer, key: tuple) -> None:
        tx = self._invites.get(key)
        ckey = key[:-1] + ("CANCEL",)
        if ckey in self._responses:
            self.send(self._responses[ckey][0], peer)
            return
        if tx is None:
            self._reply_nontx(req, info, peer, ckey, 481)
            return
        entry = self._by_call.get(tx.call.id) if tx.call else None
        self._reply_nontx(req, info, peer, ckey, 200, entry[1].local_tag if entry else None)
        if not tx.final and tx.call is not None and tx.call.state == "ringing":
            call = tx.call
            self._final(tx, 487)
            self._drop_dialog(call)
            call.finish("cancel")

    def _on_reinvite(
        self, req: Request, info: RequestInfo, peer: Peer, key: tuple, dialog: _Dialog
    ) -> None:
        tx = _InviteTx(key, req, info, peer, call=dialog.call)
        self._invites[key] = tx
        tx.expiry = self.loop.call_later(self.config.timers.h, self._invites.pop, key, None)
        if dialog.ok is not None or dialog.call.local_rtp_port is None:
            self._final(tx, 491 if dialog.ok else 500)
            return
        if req.body:
            try:
                body, media = sdp.answer(
                    sdp.parse(req.body),
                    self.config.local_ip,
                    dialog.call.local_rtp_port,
                    dialog.session_id,
                    dialog.sdp_version + 1,
                )
            except sdp.NoCommonCodec:
                self._final(tx, 488)
                return
            dialog.sdp_version += 1
            dialog.call.set_state(dialog.call.state, media)
        else:
            dialog.sdp_version += 1
            body = sdp.offer(
                self.config.local_ip,
                dialog.call.local_rtp_port,
                dialog.session_id,
                dialog.sdp_version,
            )
            dialog.offer_pending = True
        tx.final = True
        tx.last = self._send_ok(dialog, req, peer, body)

    # -- application actions (thread-safe) ----------------------------------------------

    def _in_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self.loop_thread:
            fn()
        else:
            self.loop.call_soon_threadsafe(fn)

    def answer_call(self, call: Call, local_rtp_port: int) -> None:
        """Answer ``call`` with 200 OK and our SDP on ``local_rtp_port`` (any thread).

        Parameters
        ----------
        call : Call
            A call this core handed to ``on_call``.
        local_rtp_port : int
            The port our RTP receiver listens on.
        """
        self._in_loop(lambda: self._answer(call, local_rtp_port))

    def reject_call(self, call: Call, code: int) -> None:
        """Refuse ``call`` with the final status ``code`` (any thread).

        Parameters
        ----------
        call : Call
            A ringing call this core handed to ``on_call``.
        code : int
            A status in 300..699.
        """
        self._in_loop(lambda: self._reject(call, code, "rejected"))

    def hangup_call(self, call: Call) -> None:
        """End ``call`` (any thread): BYE once answered, 480 while ringing.

        Parameters
        ----------
        call : Call
            A call this core handed to ``on_call``.
        """

        def run() -> None:
            if call.state == "ringing":
                self._reject(call, 480, "hangup")
            elif call.state in ("answered", "confirmed"):
                _, d = self._find(call)
                if d is not None:
                    if call.state == "answered":
                        d.bye_pending = True  # BYE after the ACK (or Timer H)
                    else:
                        self._bye(d, "hangup")

        self._in_loop(run)

    def _answer(self, call: Call, port: int) -> None:
        tx, dialog = self._find(call)
        if call.state != "ringing" or tx is None or dialog is None or tx.final:
            return
        tx.final = True
        if dialog.ring_timer is not None:
            dialog.ring_timer.cancel()
        dialog.sdp_version += 1
        if dialog.invite.body:
            try:
                body, media = sdp.answer(
                    sdp.parse(dialog.invite.body),
                    self.config.local_ip,
                    port,
                    dialog.session_id,
                    dialog.sdp_version,
                )
            except sdp.SdpError:  # checked when the INVITE came: cannot happen
                self._reject(call, 488, "rejected")
                return
        else:
            body, media = (
                sdp.offer(self.config.local_ip, port, dialog.session_id, dialog.sdp_version),
                None,
            )
            dialog.offer_pending = True
        call.local_rtp_port = port
        call.set_state("answered", media)
        # The INVITE transaction ends with the 2xx (RFC 3261 §17.2.1); the dialog
        # retransmits the 2xx; keep the entry a while to absorb INVITE retransmissions.
        tx.last = self._send_ok(dialog, tx.request, tx.peer, body)
        tx.expiry = self.loop.call_later(self.config.timers.h, self._invites.pop, tx.key, None)

    def _send_ok(self, dialog: _Dialog, req: Request, peer: Peer, body: bytes) -> bytes:
        """Send the 2xx, retransmitted until the ACK; return its bytes."""
        extra = [("Contact", self._contact(peer)), ("Allow", ALLOW)]
        extra += [("Record-Route", r) for r in dialog.route] if req is dialog.invite else []
        data = sipmsg.make_response(
            req,
            200,
            reason="OK",
            to_tag=dialog.local_tag,
            body=body,
            extra=extra,
            server=self.config.user_agent,
        ).to_bytes()
        dialog.ok = self._retransmit(data, peer, lambda: self._ack_timeout(dialog))
        return data

    def _ack_timeout(self, dialog: _Dialog) -> None:
        dialog.ok = None
        log.warning("no ACK for the 2xx of %s: ending it with BYE", dialog.info.call_id)
        dialog.call.set_state("confirmed")
        self._bye(dialog, "timeout")

    def _reject(self, call: Call, code: int, reason: str) -> None:
        tx, _ = self._find(call)
        if call.state != "ringing" or tx is None or tx.final:
            return
        self._final(tx, code)
        self._drop_dialog(call)
        call.finish(reason)

    def _drop_dialog(self, call: Call) -> None:
        entry = self._by_call.pop(call.id, None)
        if entry is not None:
            d = entry[1]
            if d.ok is not None:
                d.ok.stop()
            if d.ring_timer is not None:
                d.ring_timer.cancel()
            self._dialogs.pop((d.info.call_id, d.local_tag), None)

    def _end_dialog(self, dialog: _Dialog, reason: str) -> None:
        self._drop_dialog(dialog.call)
        dialog.call.finish(reason)

    # -- BYE from us (a minimal non-INVITE client transaction) --------------------------

    def _bye(self, dialog: _Dialog, reason: str) -> None:
        info, c = dialog.info, self.config
        dialog.local_cseq += 1
        branch = "z9hG4bK" + _tag()
        try:  # the remote target: the INVITE's Contact (RFC 3261 §12.1.1)
            target = sipmsg.parse_name_addr(dialog.invite.get_all("Contact")[0]).uri
        except (IndexError, SipParseError):
            target = info.from_.uri
        try:
            routes = [r for value in dialog.route for r in sipmsg.split_commas(value)]
        except SipParseError:  # sent back as it came
            routes = list(dialog.route)
        peer = _next_hop(routes, dialog.call.remote)
        if routes and "lr" not in _uri_params(routes[0]):  # strict router (§12.2.1.1)
            with contextlib.suppress(SipParseError):
                first = _route_uri(routes[0])
                routes = [*routes[1:], f"<{target}>"]
                target = first
        to = dialog.invite.get("From") or ""
        frm = (dialog.invite.get("To") or "") + f";tag={dialog.local_tag}"
        via = f"SIP/2.0/{peer.transport.upper()} {self._hostport()};branch={branch};rport"
        headers = [
            ("Via", via),
            *[("Route", r) for r in routes],
            ("Max-Forwards", "70"),
            ("From", frm),
            ("To", to),
            ("Call-ID", info.call_id),
            ("CSeq", f"{dialog.local_cseq} BYE"),
            ("User-Agent", c.user_agent),
        ]
        data = Request(headers=headers, method="BYE", uri=target).to_bytes()
        self._byes[branch] = self._retransmit(data, peer, lambda: self._byes.pop(branch, None))
        self._end_dialog(dialog, reason)

    def _on_response(self, resp: Response) -> None:
        vias = resp.get_all("Via")
        try:
            branch = sipmsg.parse_via(vias[0]).branch if vias else ""
        except SipParseError:
            return
        if resp.status >= 200 and branch in self._byes:
            self._byes.pop(branch).stop()

    def close(self) -> None:
        """Cancel every timer and end every call with reason "shutdown"."""
        for _tx, dialog in list(self._by_call.values()):
            self._drop_dialog(dialog.call)
            dialog.call.finish("shutdown")
        for tx in self._invites.values():
            for h in (tx.retransmit, tx.expiry):
                if h is not None:
                    (h.stop if isinstance(h, Retransmitter) else h.cancel)()
        for _, handle in self._responses.values():
            handle.cancel()
        for d in self._dialogs.values():
            if d.ok is not None:
                d.ok.stop()
        for r in self._byes.values():
            r.stop()
        self._invites.clear()
        self._responses.clear()
        self._byes.clear()
