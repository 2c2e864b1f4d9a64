"""RTP receive path for the recording server: many calls, one compiled receiver.

:class:`RtpReceiver` owns one non-blocking UDP socket per call (a *slot*, 0 to
``max_calls - 1``).  :meth:`~RtpReceiver.poll` waits on all of them with epoll and drains
each ready socket with ``recvmmsg`` in batches, with the GIL released: no Python runs per
packet.  Each packet is parsed (RFC 3550: version, padding, CSRCs, header extension,
marker), filtered by source, and its G.711 payload decoded to int16 and placed in the
slot's jitter ring *by its RTP timestamp*.  :meth:`~RtpReceiver.take` then hands out fixed
frames of many slots at once as a 2-D block ``(k, n)`` plus the slot numbers, the shape
:meth:`recorder.dsp.MultiDetector.process` and the engine take.  Linux only (epoll,
recvmmsg); IPv4.

Placement rules (media position = samples at 8000 Hz from the start of the call)
-------------------------------------------------------------------------------------
* The first packet of a call starts at position 0.  Later packets go to
  ``position of first + (timestamp - timestamp of first)``, with 16-bit sequence numbers
  and 32-bit timestamps extended to 64 bits around the highest seen, so wraparound is
  seamless.  The recording's length is the sender's media time, whatever the arrival times.
* A lost packet leaves exactly its duration of silence (zeros).  Reordered packets are put
  back in place as long as their media has not been released yet; older ones are dropped
  and counted ``late``.  A sequence number seen already (in the last 1024) is a
  ``duplicate`` and dropped.
* SSRC change: the new stream's first packet continues at the current media position
  (the end of what was placed, or of what was released if that is further): no gap, no
  overlap.  Counted in ``ssrc_changes``.  Packets of the previous SSRC arriving within
  ``window_ms`` after the change (stragglers reordered behind it) are dropped as ``late``;
  later, that SSRC coming back is another change.
* Timestamp discontinuity within one SSRC: when the newest packet (highest sequence
  number) has a timestamp before what was already released, or more than the time since
  the previous packet plus one second ahead of the current position, it re-anchors like an
  SSRC change (``reanchors``).  So a sender's timestamp jump after silence suppression
  gives the true silence, and garbage timestamps cannot create hours of silence.
* Marker bit, padding, CSRCs, header extensions: parsed and skipped over (the marker needs
  no action: placement is by timestamp).

Release rules (when media leaves the jitter ring): a slot's media up to position P is
released by :meth:`take` when

1. ``P <= placed_end - window`` (media one jitter window older than the newest media
   placed is final: what is still missing there is loss), or
2. ``P <= placed_end`` once no packet has arrived for ``window_ms`` (the tail is flushed
   when the stream pauses), or
3. ``P <= placed_end + elapsed`` once no packet has arrived for ``hold_ms`` (default 1 s):
   the far end went silent without BYE (hold, dead peer): the slot's clock follows wall
   time as silence, ``elapsed`` being the time since the last packet.

A network stall shorter than ``hold_ms`` followed by a burst therefore adds no silence at
all: the stalled media is simply released late, when the burst arrives, at its own
timestamps.  A stall longer than ``hold_ms`` is taken for a hold: silence is released for
the time that passed; when packets come back, the next packet in sequence continues at the
current position if its timestamp points into what was already released (a sender that
stopped its clock while on hold), or at its own timestamp if that lies ahead (a sender
whose clock ran on): no audio that arrives is ever dropped after a hold.  Before its first
packet a slot releases nothing until ``hold_ms`` has passed, then silence by wall time.

Source filtering: with ``source=(host, port)`` (the address the SDP announced) packets from
any other address are dropped and counted ``wrong_source``.  With ``source=None`` (or a
host of ``0.0.0.0`` or port 0, e.g. a held call's SDP) the receiver *latches* to the source
of the first valid RTP packet of the audio or event payload type and filters on it from
then on.

RFC 4733 telephone events (``event_payload_type``): one digit per event timestamp; a
``DIGIT_START`` record at its first packet with ``start`` = the event's timestamp as a
media position (its true start, even when that packet arrives late) and one ``DIGIT_END``
record at the first end packet (the redundant end packets are ignored; if all of them are
lost, the end is reported when the next event starts).  Records use
:data:`recorder._codecs.detect.EVENT_DTYPE` (``row`` = slot, ``digit`` = ASCII, ``level`` =
-volume dBm0), the same records the in-band detector gives, so the engine treats both
alike; in-band DTMF in the audio keeps working through the engine's own detector.

Garbage (short datagrams, wrong version, bad padding/CSRC/extension lengths, oversized
datagrams) is counted and dropped; payload types other than the call's audio and event
types (RTCP sent to the RTP port, comfort noise...) are counted ``other_pt``.

Threads: every method may be called from any thread; a lock inside serialises them
(``poll`` waits on epoll without it).  Typically the engine tick calls ``poll(0)`` and
``take`` in one thread, SIP workers call ``add``/``remove``.
"""

from __future__ import annotations

import ipaddress
import socket
import sys

import numpy as np

from recorder._buffers import MAX_CHANNELS, as_uint8, integer
from recorder._codecs import rtp as _rtp
from recorder._codecs.detect import DIGIT_END, DIGIT_START, EVENT_DTYPE

__all__ = [
    "CODECS",
    "COUNTERS",
    "COUNTER_DTYPE",
    "DIGIT_END",
    "DIGIT_START",
    "EVENT_DTYPE",
    "RtpReceiver",
    "monotonic_ns",
]

#: names of the per-slot counters, in :attr:`COUNTER_DTYPE` order
COUNTERS: tuple[str, ...] = tuple(_rtp.COUNTER_NAMES)
#: structured dtype of :meth:`RtpReceiver.counters` rows (all int64)
COUNTER_DTYPE = np.dtype([(name, "<i8") for name in COUNTERS])
#: codec names accepted by :meth:`RtpReceiver.add` (SDP encoding names) and their number
CODECS = {"PCMA": 0, "PCMU": 1}
RATE = 8000

#: the clock arrivals are stamped with (CLOCK_MONOTONIC, ns): ``now`` arguments use it
monotonic_ns = _rtp.monotonic_ns


def _ms(value, name: str, lo: int, hi: int) -> int:
    return integer(value, name, lo, hi)


def _ipv4(host, name: str) -> int:
    if not isinstance(host, str):
        raise TypeError(f"{name} host must be a str (IPv4 address), not {type(host).__name__}")
    try:
        packed = socket.inet_aton(host)
    except OSError:
        raise ValueError(f"{name} host must be an IPv4 address, got {host!r}") from None
    if host.count(".") != 3:
        raise ValueError(f"{name} host must be a dotted IPv4 address, got {host!r}")
    return int.from_bytes(packed, sys.byteorder)  # s_addr as the C struct holds it


class RtpReceiver:
    """Receive RTP for up to ``max_calls`` calls (slots).

    ``window_ms`` (10..1000, default 80): jitter window, how long media waits for late or
    reordered packets.  ``hold_ms`` (> window_ms, default 1000): no packets for this long
    and the slot's clock runs on as silence.  ``buffer_ms`` (default 1000): jitter ring per
    slot (rounded up to a power of two samples, 2 bytes each); packets further ahead of
    what was released are dropped (``overrun``): call :meth:`take` at least this often.
    ``max_events``: capacity of the event queue between :meth:`events` calls.

    See the module docstring for the placement and release rules.
    """

    def __init__(
        self,
        max_calls: int,
        *,
        window_ms: int = 80,
        hold_ms: int = 1000,
        buffer_ms: int = 1000,
        max_events: int = 65536,
    ):
        if not _rtp.SUPPORTED:
            raise NotImplementedError("the RTP receiver needs Linux (epoll, recvmmsg)")
        self.max_calls = integer(max_calls, "max_calls", 1, MAX_CHANNELS)
        self.window_ms = _ms(window_ms, "window_ms", 10, 1000)
        self.hold_ms = _ms(hold_ms, "hold_ms", self.window_ms + 1, 3_600_000)
        buffer_ms = _ms(buffer_ms, "buffer_ms", max(100, 2 * self.window_ms), 60_000)
        ring = 1 << max(11, (buffer_ms * RATE // 1000 - 1).bit_length())
        self.ring_samples = ring
        max_events = integer(max_events, "max_events", 16, 1 << 24)
        self._core = _rtp.RtpCore(
            self.max_calls,
            ring,
            self.window_ms * RATE // 1000,
            self.hold_ms * 1_000_000,
            max_events,
        )
        self._socks: dict[int, socket.socket] = {}

    # ---------------------------------------------------------------- calls

    def add(
        self,
        slot: int,
        *,
        codec: str = "PCMA",
        payload_type: int | None = None,
        event_payload_type: int | None = None,
        source: tuple[str, int] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
    ) -> int:
        """Start receiving call ``slot``; returns the local UDP port.

        ``codec``: 'PCMA' or 'PCMU'; ``payload_type`` defaults to the static one (8, 0);
        ``event_payload_type``: RFC 4733 telephone-event type or None.  ``source``: the
        (IPv4 host, port) the SDP announced, or None to latch at the first packet; port 0
        latches to the first packet from that host (its port learnt, as behind a NAT
        that keeps the address).  The
        socket is bound to (``host``, ``port``) (port 0: any free port), or pass a bound
        UDP ``sock`` to use instead (the receiver takes it over and closes it at
        :meth:`remove`).
        """
        slot = integer(slot, "slot", 0, self.max_calls - 1)
        pt, ev = self._payload_types(codec, payload_type, event_payload_type)
        if source is None:
            src_ip, src_port = 0, 0
        else:
            if not isinstance(source, tuple) or len(source) != 2:
                raise TypeError("source must be a (host, port) tuple or None")
            src_ip = _ipv4(source[0], "source")
            src_port = integer(source[1], "source port", 0, 65535)
            if src_ip == 0:
                src_port = 0
        if self._core.active(slot):
            raise ValueError(f"slot {slot} is in use")
        if sock is None:
            _ipv4(host, "host")
            port = integer(port, "port", 0, 65535)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError as e:
                sock.close()
                raise ValueError(f"cannot bind RTP socket to {host}:{port}: {e}") from None
        elif (
            not isinstance(sock, socket.socket)
            or sock.family != socket.AF_INET
            or sock.type != socket.SOCK_DGRAM
        ):
            raise TypeError("sock must be an IPv4 UDP socket.socket")
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            self._core.add(
                slot, sock.fileno(), CODECS[codec], pt, ev, src_ip, socket.htons(src_port)
            )
        except BaseException:
            sock.close()
            raise
        self._socks[slot] = sock
        return sock.getsockname()[1]

    def add_media(
        self,
        slot: int,
        media,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latch: bool = False,
        any_source: bool = False,
        sock: socket.socket | None = None,
    ) -> int:
        """:meth:`add` from a negotiated :class:`recorder.sip.sdp.Media` (codec, payload
        types, and ``remote_rtp`` as the expected source).  With ``latch`` only its
        address is expected, the port is learnt from the first packet from it; with
        ``any_source`` too (or when the SDP gives no IPv4 address), the first packet
        from anywhere is latched to (a caller behind a NAT that rewrites addresses, at
        the cost of letting whoever sends first take the stream)."""
        source: tuple[str, int] | None = tuple(media.remote_rtp)
        if latch:
            try:
                source = (str(ipaddress.IPv4Address(media.remote_rtp[0])), 0)
            except ValueError:
                source = None
            if any_source:
                source = None
        return self.add(
            slot,
            codec=media.codec,
            payload_type=media.payload_type,
            event_payload_type=media.telephone_event,
            source=source,
            host=host,
            port=port,
            sock=sock,
        )

    def set_codec(
        self,
        slot: int,
        *,
        codec: str = "PCMA",
        payload_type: int | None = None,
        event_payload_type: int | None = None,
    ) -> None:
        """Change what call ``slot`` decodes (a re-INVITE changed the codec), with the
        same arguments as :meth:`add`.  Packets are placed by timestamp as before, so the
        switch adds no gap; packets of the previous audio payload type still on their
        way (or sent later) are decoded with the previous codec."""
        slot = integer(slot, "slot", 0, self.max_calls - 1)
        pt, ev = self._payload_types(codec, payload_type, event_payload_type)
        if not self._core.active(slot):
            raise ValueError(f"slot {slot} is not in use")
        self._core.set_codec(slot, CODECS[codec], pt, ev)

    @staticmethod
    def _payload_types(codec, payload_type, event_payload_type) -> tuple[int, int]:
        """Checked (audio, event) payload types; event -1 for none."""
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
        pt = (
            integer(8 if codec == "PCMA" else 0, "payload_type", 0, 127)
            if payload_type is None
            else integer(payload_type, "payload_type", 0, 127)
        )
        ev = (
            -1
            if event_payload_type is None
            else integer(event_payload_type, "event_payload_type", 0, 127)
        )
        if ev == pt:
            raise ValueError("event_payload_type must differ from payload_type")
        return pt, ev

    def remove(self, slot: int) -> np.ndarray:
        """Stop call ``slot`` and close its socket; returns the media still buffered
        (int16, holes as silence), including the packets still queued on the socket: together
        with what :meth:`take` gave, the whole call."""
        slot = integer(slot, "slot", 0, self.max_calls - 1)
        rest = self._core.remove(slot)
        sock = self._socks.pop(slot, None)
        if sock is not None:
            sock.close()
        return rest

    def close(self) -> None:
        """Remove every call."""
        for slot in list(self._socks):
            self.remove(slot)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------- media

    def poll(self, timeout_ms: int = 0) -> int:
        """Wait up to ``timeout_ms`` (0: no wait; -1: until something arrives) for packets
        on any call, then read every ready socket.  Returns the datagrams read."""
        return self._core.poll(integer(timeout_ms, "timeout_ms", -1, 3_600_000))

    def feed(self, slot: int, datagrams, now: int | None = None, *, lengths=None) -> None:
        """Parse and place ``datagrams`` (a sequence of bytes-like RTP packets, or with
        ``lengths`` one buffer holding them back to back and their sizes) on call ``slot`` as
        if they had arrived from its source at ``now`` (ns of :func:`monotonic_ns`; None =
        the clock now): replaying a capture, benchmarks.  The same rules and counters as
        packets from the socket (source filtering aside)."""
        slot = integer(slot, "slot", 0, self.max_calls - 1)
        if not self._core.active(slot):
            raise ValueError(f"slot {slot} is not in use")
        now = _rtp.monotonic_ns() if now is None else integer(now, "now", 0, (1 << 62))
        if lengths is None:
            if isinstance(datagrams, (bytes, bytearray, memoryview, str)):
                raise TypeError(
                    "datagrams must be a sequence of bytes-like packets "
                    "(or one buffer with lengths=)"
                )
            self._core.feed_packets(slot, datagrams, now)
            return
        data = as_uint8(datagrams, "datagrams").reshape(-1)
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
            raise TypeError("lengths must be a 1-D integer array")
        # the core checks that they are >= 0 and add up to len(data)
        self._core.feed(slot, data, np.ascontiguousarray(lengths, np.int64), now)

    def take(self, n: int = 160, now: int | None = None, max_rows: int | None = None):
        """The next ``n`` samples of every call that has ``n`` samples released at ``now``
        (ns of :func:`monotonic_ns`; None = the clock now).  Returns ``(block, slots)``:
        int16 ``(k, n)`` and int64 ``(k,)``, at most ``max_rows`` rows, each slot once.
        Call again until ``k == 0`` to catch up."""
        n = integer(n, "n", 1, self.ring_samples // 2)
        now = _rtp.monotonic_ns() if now is None else integer(now, "now", 0, (1 << 62))
        max_rows = (
            self.max_calls if max_rows is None else integer(max_rows, "max_rows", 1, self.max_calls)
        )
        return self._core.take(n, now, max_rows)

    def events(self) -> np.ndarray:
        """RFC 4733 digits since the last call, oldest first (EVENT_DTYPE records)."""
        return self._core.events().view(EVENT_DTYPE)

    @property
    def lost_events(self) -> int:
        """Event records dropped because the queue was full."""
        return self._core.lost_events

    def counters(self) -> np.ndarray:
        """Per slot counters (COUNTER_DTYPE, one row per slot): packets (valid RTP of the
        call), lost (RFC 3550 expected - received), late, duplicates, wrong_source,
        garbage, other_pt, overrun, events, ssrc_changes, reanchors.  Every datagram read
        is counted once in exactly one of packets, wrong_source, garbage, other_pt.
        Counters run from :meth:`add` to the next :meth:`add` of the slot."""
        return self._core.counters().view(COUNTER_DTYPE).reshape(self.max_calls)

    def position(self, slot: int) -> dict:
        """``released`` (media samples taken), ``placed_end``, ``last_arrival`` (ns),
        ``started`` (a packet arrived) of call ``slot``."""
        slot = integer(slot, "slot", 0, self.max_calls - 1)
        released, hi, last, started = self._core.state(slot)
        return {"released": released, "placed_end": hi, "last_arrival": last, "started": started}

    def timed_out(self, timeout_s: float = 60.0, now: int | None = None) -> np.ndarray:
        """Calls with no RTP for ``timeout_s`` seconds (``--rtp-timeout``, default 60):
        the caller ends them.  A call that never received a packet counts from its add."""
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, (int, float))
            or not 0 < timeout_s <= 86400
        ):
            raise ValueError(
                f"timeout_s must be a number of seconds in (0, 86400], " f"got {timeout_s!r}"
            )
        now = _rtp.monotonic_ns() if now is None else integer(now, "now", 0, (1 << 62))
        return self._core.idle(now, int(timeout_s * 1e9))
