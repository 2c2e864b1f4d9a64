"""SDP (RFC 4566) offer/answer (RFC 3264) for a recording endpoint.

We only receive: the answer offers PCMU (0) or PCMA (8), plus ``telephone-event``
(RFC 4733) when the offer has it, with ``a=recvonly`` (``a=inactive`` when the offer
is ``recvonly``/``inactive``, i.e. the far end sends nothing).  Malformed SDP raises
:class:`SdpError`; an offer with nothing we can take raises :class:`NoCommonCodec`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field

MAX_SDP = 16384
STATIC = {0: "PCMU", 8: "PCMA"}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# What we answer for each offered direction (we never send media).
ANSWER_DIRECTION = {"sendrecv": "recvonly", "sendonly": "recvonly",
                    "recvonly": "inactive", "inactive": "inactive"}


class SdpError(ValueError):
    """The SDP body is malformed."""


class NoCommonCodec(SdpError):
    """The offer has no audio stream with PCMU or PCMA (answer 488)."""


@dataclass
class MediaLine:
    """One ``m=`` section of a session description."""

    media: str
    port: int
    proto: str
    formats: list[str]
    conn: str | None = None
    rtpmap: dict[int, str] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    ptime: int | None = None
    direction: str | None = None


@dataclass
class Session:
    """A parsed session description (only what offer/answer needs)."""

    conn: str | None
    media: list[MediaLine]
    direction: str = "sendrecv"


@dataclass(frozen=True)
class Media:
    """What was negotiated for a call: the stream the recorder receives.

    ``direction`` is the far end's ``a=`` direction; ``on_hold`` is true while the far
    end sends nothing (it offered ``sendonly``/``inactive`` or the old ``c=0.0.0.0``;
    or answered our late offer with ``inactive``): the recording goes on, the held
    stretch is silence.
    """

    codec: str
    payload_type: int
    telephone_event: int | None
    ptime: int
    remote_rtp: tuple[str, int]
    direction: str
    on_hold: bool = False


def _conn(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line {value[:60]!r}")
    addr = parts[2].split("/")[0]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise SdpError(f"c= address is not an IP address: {addr[:60]!r}") from None
    if (ip.version == 4) != (parts[1] == "IP4"):
        raise SdpError("c= address family mismatch")
    return str(ip)


def _int(text: str, lo: int, hi: int, what: str) -> int:
    if not text.isdigit() or not lo <= int(text) <= hi:
        raise SdpError(f"bad {what}: {text[:20]!r}")
    return int(text)


def parse(body: bytes) -> Session:
    """Parse an SDP body."""
    if len(body) > MAX_SDP:
        raise SdpError(f"SDP larger than {MAX_SDP} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln]
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP must start with v=0")
    sess = Session(conn=None, media=[])
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad SDP line {line[:40]!r}")
        kind, value = line[0], line[2:].strip()
        cur = sess.media[-1] if sess.media else None
        if kind == "m":
            parts = value.split()
            if len(parts) < 4:
                raise SdpError(f"bad m= line {value[:60]!r}")
            port = _int(parts[1].split("/")[0], 0, 65535, "m= port")
            sess.media.append(MediaLine(parts[0], port, parts[2], parts[3:]))
        elif kind == "c":
            if cur is None:
                sess.conn = _conn(value)
            else:
                cur.conn = _conn(value)
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in DIRECTIONS:
                if cur is None:
                    sess.direction = name
                else:
                    cur.direction = name
            elif cur is None:
                continue
            elif name in ("rtpmap", "fmtp"):
                pt_text, _, rest = arg.partition(" ")
                pt = _int(pt_text, 0, 127, f"{name} payload type")
                (cur.rtpmap if name == "rtpmap" else cur.fmtp)[pt] = rest.strip()
            elif name == "ptime":
                cur.ptime = _int(arg.strip().split(".")[0], 1, 1000, "ptime")
    return sess


def _encoding(m: MediaLine, pt: int) -> str:
    name = m.rtpmap.get(pt) or STATIC.get(pt, "")
    enc, _, rate = name.partition("/")
    return f"{enc.upper()}/{rate.split('/')[0] or '8000'}"


def negotiate(offer: Session) -> tuple[int, Media]:
    """Pick the stream we record: ``(index of the m= line, Media)``."""
    for index, m in enumerate(offer.media):
        if m.media != "audio" or m.port == 0 or m.proto not in ("RTP/AVP", "RTP/AVPF"):
            continue
        pts = [int(f) for f in m.formats if f.isdigit() and int(f) < 128]
        codec = next((pt for pt in pts if _encoding(m, pt) in ("PCMU/8000", "PCMA/8000")),
                     None)
        if codec is None:
            continue
        te = next((pt for pt in pts if _encoding(m, pt) == "TELEPHONE-EVENT/8000"), None)
        addr = m.conn or offer.conn
        if addr is None:
            raise SdpError("no c= line for the audio stream")
        ptime = m.ptime if m.ptime and 10 <= m.ptime <= 200 and m.ptime % 10 == 0 else 20
        direction = m.direction or offer.direction
        on_hold = direction in ("sendonly", "inactive") or addr in ("0.0.0.0", "::")
        return index, Media(_encoding(m, codec).split("/")[0], codec, te, ptime,
                            (addr, m.port), direction, on_hold)
    raise NoCommonCodec("no audio stream with PCMU or PCMA in the offer")


def answer(offer: Session, local_ip: str, rtp_port: int, session_id: int,
           version: int) -> tuple[bytes, Media]:
    """Build the answer to ``offer``: our stream on ``rtp_port``, other m= lines refused."""
    index, media = negotiate(offer)
    lines = _head(local_ip, session_id, version)
    for i, m in enumerate(offer.media):
        if i != index:
            lines.append(f"m={m.media} 0 {m.proto} {m.formats[0]}")
            continue
        pts = [media.payload_type] + ([media.telephone_event]
                                      if media.telephone_event is not None else [])
        lines.append(f"m=audio {rtp_port} {m.proto} {' '.join(map(str, pts))}")
        lines.append(f"a=rtpmap:{media.payload_type} {media.codec}/8000")
        if media.telephone_event is not None:
            lines.append(f"a=rtpmap:{media.telephone_event} telephone-event/8000")
            lines.append(f"a=fmtp:{media.telephone_event} "
                         f"{m.fmtp.get(media.telephone_event, '0-16')}")
        lines.append(f"a=ptime:{media.ptime}")
        lines.append(f"a={ANSWER_DIRECTION.get(media.direction, 'recvonly')}")
    return ("\r\n".join(lines) + "\r\n").encode(), media


def offer(local_ip: str, rtp_port: int, session_id: int, version: int,
          ptime: int = 20) -> bytes:
    """Our offer, for an INVITE without SDP (late offer: the answer comes in the ACK)."""
    lines = _head(local_ip, session_id, version) + [
        f"m=audio {rtp_port} RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16",
        f"a=ptime:{ptime}", "a=recvonly"]
    return ("\r\n".join(lines) + "\r\n").encode()


def _head(local_ip: str, session_id: int, version: int) -> list[str]:
    fam = "IP6" if ":" in local_ip else "IP4"
    return ["v=0", f"o=- {session_id} {version} IN {fam} {local_ip}", "s=-",
            f"c=IN {fam} {local_ip}", "t=0 0"]


def accept_answer(answer_sdp: Session) -> Media:
    """Read the far end's answer to our late offer (the SDP in the ACK)."""
    _, media = negotiate(answer_sdp)
    # "sendonly" is the normal answer to our "recvonly" offer.
    on_hold = media.direction in ("recvonly", "inactive") or media.remote_rtp[0] in (
        "0.0.0.0", "::")
    return dataclasses.replace(media, on_hold=on_hold)
