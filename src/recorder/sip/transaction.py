"""Transaction timing (RFC 3261 §17): timer values and the retransmission schedule."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timers:
    """RFC 3261 timer base values (make them small in tests).

    Parameters
    ----------
    t1 : float, optional
        T1, the round-trip estimate, in seconds (RFC 3261: 0.5).
    t2 : float, optional
        T2, the longest retransmission interval, in seconds (RFC 3261: 4).

    Examples
    --------
    >>> from recorder.sip import Timers
    >>> Timers().h, Timers(t1=0.01).j
    (32.0, 0.64)
    """

    t1: float = 0.5
    t2: float = 4.0

    @property
    def h(self) -> float:
        """Give up waiting for an ACK (Timer H; also the 2xx case of §13.3.1.4)."""
        return 64 * self.t1

    @property
    def j(self) -> float:
        """Keep a non-INVITE final response for retransmitted requests (Timer J)."""
        return 64 * self.t1


class Retransmitter:
    """Send a message now and again after T1, 2·T1, 4·T1 ... (capped at T2) until
    :meth:`stop`, or until Timer H has passed: then ``on_timeout()`` runs.

    This is Timer G for non-2xx final responses, the §13.3.1.4 schedule for 2xx
    responses, and Timer E/F for the BYE requests the server sends.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The loop the timers run on (construct it on that loop's thread).
    timers : Timers
        T1 and T2.
    send : callable
        ``send()`` sends the message once; called at once, then at each interval.
    on_timeout : callable or None
        Called once if :meth:`stop` was not called within Timer H.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timers: Timers,
        send: Callable[[], None],
        on_timeout: Callable[[], object] | None,
    ) -> None:
        self.loop, self.timers, self.send, self.on_timeout = loop, timers, send, on_timeout
        self.interval = timers.t1
        self.handle = loop.call_later(self.interval, self._fire)
        self.deadline = loop.call_later(timers.h, self._expire)
        send()

    def _fire(self) -> None:
        self.send()
        self.interval = min(2 * self.interval, self.timers.t2)
        self.handle = self.loop.call_later(self.interval, self._fire)

    def _expire(self) -> None:
        self.handle.cancel()
        if self.on_timeout is not None:
            self.on_timeout()

    def stop(self) -> None:
        """Stop retransmitting and cancel the timeout (the answer came)."""
        self.handle.cancel()
        self.deadline.cancel()
