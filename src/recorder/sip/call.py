"""The per-call object the UAS hands to the application (the media/recording layer).

For each new INVITE the server calls ``on_call(call)``.  The application reads the
call's identity and negotiated media, then calls :meth:`Call.answer` with the local
RTP port it listens on (now, or later from any thread), or :meth:`Call.reject`.
It learns of the end of the call through :attr:`Call.on_end` (a callback) or
:attr:`Call.ended` (a ``threading.Event``), and of media changes (hold/resume,
late-offer answer in the ACK) through :attr:`Call.on_update`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .sdp import Media

if TYPE_CHECKING:  # pragma: no cover
    from .uas import UasCore

log = logging.getLogger(__name__)


def _safely(fn: Callable[..., object], *args: object) -> None:
    """Run an application callback; its exception is logged, never the server's."""
    try:
        fn(*args)
    except Exception:
        log.exception("call callback %r failed", fn)


@dataclass(frozen=True)
class Peer:
    """Where a message came from or goes to.

    Parameters
    ----------
    transport : {"udp", "tcp"}
        The transport.
    host : str
        The peer's IP address.
    port : int
        The peer's port.
    conn : int or None, optional
        Which TCP connection (None over UDP).
    worker : int or None, optional
        With ``--workers N``: the worker process that holds the TCP connection, when
        another worker forwarded the message (None: this process).
    """

    transport: str
    host: str
    port: int
    conn: int | None = None
    worker: int | None = None


class Call:
    """One call (an INVITE dialog) as seen by the application.

    The UAS core makes one for each new INVITE and hands it to ``on_call(call)``; the
    application answers (:meth:`answer`), refuses (:meth:`reject`) or ends
    (:meth:`hangup`) it, from any thread.  Callbacks (set them inside ``on_call``; they
    run on the server's event-loop thread and must not block): ``on_end(call,
    reason)`` once when the call ends, ``on_update(call)`` when ``media`` changes.

    Attributes
    ----------
    id : str
        A unique hex string.
    call_id : str
        The SIP Call-ID.
    from_uri, from_name, to_uri, to_name : str
        The caller and the called party (URI and display name).
    remote : Peer
        Where the INVITE came from.
    headers : list of (str, str)
        The INVITE's headers, in order.
    media : recorder.sip.sdp.Media or None
        What was negotiated; None until a late offer is answered in the ACK.
    local_rtp_port : int or None
        The port given to :meth:`answer`.
    state : str
        "ringing", "answered", "confirmed" or "ended".
    end_reason : str or None
        "bye", "cancel", "hangup", "rejected", "timeout", "bad-sdp" (no usable answer
        to our late offer), "shutdown", or None while the call lasts.
    ended : threading.Event
        Set when the call ends.
    on_end : callable or None
        ``on_end(call, reason)``.
    on_update : callable or None
        ``on_update(call)``.
    """

    def __init__(
        self,
        core: UasCore,
        *,
        call_id: str,
        from_uri: str,
        from_name: str,
        to_uri: str,
        to_name: str,
        remote: Peer,
        headers: list[tuple[str, str]],
        media: Media | None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.call_id = call_id
        self.from_uri, self.from_name = from_uri, from_name
        self.to_uri, self.to_name = to_uri, to_name
        self.remote = remote
        self.headers = list(headers)
        self.media = media
        self.local_rtp_port: int | None = None
        self.state = "ringing"
        self.end_reason: str | None = None
        self.ended = threading.Event()
        self.on_end: Callable[[Call, str], None] | None = None
        self.on_update: Callable[[Call], None] | None = None
        self._core = core

    def answer(self, local_rtp_port: int) -> None:
        """Answer with 200 OK and our SDP (thread-safe).

        Parameters
        ----------
        local_rtp_port : int
            The port our RTP receiver listens on, 1..65535.

        Raises
        ------
        ValueError
            ``local_rtp_port`` is not an int in 1..65535.
        """
        if not isinstance(local_rtp_port, int) or not 0 < local_rtp_port < 65536:
            raise ValueError(
                f"local_rtp_port must be an int in 1..65535, " f"got {local_rtp_port!r}"
            )
        self._core.answer_call(self, local_rtp_port)

    def reject(self, code: int = 486) -> None:
        """Refuse the call (thread-safe); ``on_end`` then runs with "rejected".

        Parameters
        ----------
        code : int, optional
            The final status, 300..699 (486 Busy Here unless told).

        Raises
        ------
        ValueError
            ``code`` is not an int in 300..699.
        """
        if not isinstance(code, int) or not 300 <= code <= 699:
            raise ValueError(f"reject code must be an int in 300..699, got {code!r}")
        self._core.reject_call(self, code)

    def hangup(self) -> None:
        """End the call (thread-safe): BYE once answered, 480 while ringing.

        ``on_end`` then runs with "hangup"; hanging up an ended call does nothing.
        """
        self._core.hangup_call(self)

    # -- used by the UAS core (on its event-loop thread) ----------------------------

    def set_state(self, state: str, media: Media | None = None) -> None:
        """Record a new dialog state (used by the UAS core, on its loop thread).

        Parameters
        ----------
        state : str
            The new state.
        media : Media or None, optional
            The media after an SDP exchange; ``on_update`` runs when it changed.
        """
        self.state = state
        if media is not None:
            changed = media != self.media
            self.media = media
            if changed and self.on_update is not None:
                _safely(self.on_update, self)

    def finish(self, reason: str) -> None:
        """Mark the call ended and tell the application, once (used by the UAS core).

        Parameters
        ----------
        reason : str
            The ``end_reason``; later calls are ignored.
        """
        if self.state == "ended":
            return
        self.state, self.end_reason = "ended", reason
        self.ended.set()
        if self.on_end is not None:
            _safely(self.on_end, self, reason)

    def __repr__(self) -> str:
        return (
            f"<Call {self.id[:8]} {self.from_uri} -> {self.to_uri} {self.state}"
            f"{' ' + self.end_reason if self.end_reason else ''}>"
        )
