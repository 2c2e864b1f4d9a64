"""RTP port allocation: one even port per call from a configured range (``--rtp-ports``)."""

from __future__ import annotations

import threading
from collections import deque


class PortsExhausted(RuntimeError):
    """Every RTP port of the range is in use (answer the call with 503).

    Raised by :meth:`RtpPorts.acquire`.
    """


class RtpPorts:
    """Even RTP ports ``first..last`` (RTCP would use port + 1), one per call,
    thread-safe.

    Parameters
    ----------
    first, last : int
        The range, inclusive: ``1024 <= first <= last <= 65534``.

    Raises
    ------
    ValueError
        The bounds are not ints in that order and range, or the range holds no even
        port.

    Examples
    --------
    >>> from recorder.sip import RtpPorts
    >>> ports = RtpPorts(40000, 40010)
    >>> p = ports.acquire()
    >>> p, ports.in_use
    (40000, 1)
    >>> ports.release(p)
    >>> RtpPorts(40001, 40001)
    Traceback (most recent call last):
    ...
    ValueError: RTP port range 40001..40001 holds no even port
    """

    def __init__(self, first: int, last: int) -> None:
        if not all(isinstance(v, int) for v in (first, last)) or not (
            1024 <= first <= last <= 65534
        ):
            raise ValueError(
                f"RTP port range must be ints with 1024 <= first <= last <= "
                f"65534, got {first!r}..{last!r}"
            )
        # free ports, the one released longest ago first (at first: lowest first), so a
        # port that another process holds comes back only after every other free one
        self._free = deque(range(first + first % 2, last + 1, 2))
        if not self._free:
            raise ValueError(f"RTP port range {first}..{last} holds no even port")
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def acquire(self) -> int:
        """Take a free port.

        Returns
        -------
        int
            An even port of the range: the one free for the longest time (at first the
            lowest).

        Raises
        ------
        PortsExhausted
            Every port is in use.
        """
        with self._lock:
            if not self._free:
                raise PortsExhausted(f"all {len(self._used)} RTP ports are in use")
            port = self._free.popleft()
            self._used.add(port)
            return port

    def release(self, port: int) -> None:
        """Give a port back; it is handed out again after every port free now.

        Parameters
        ----------
        port : int
            A port :meth:`acquire` returned.

        Raises
        ------
        ValueError
            ``port`` is not in use (never acquired, or already released).
        """
        with self._lock:
            if port not in self._used:
                raise ValueError(f"RTP port {port!r} is not in use")
            self._used.remove(port)
            self._free.append(port)

    @property
    def in_use(self) -> int:
        """How many ports are acquired now."""
        return len(self._used)
