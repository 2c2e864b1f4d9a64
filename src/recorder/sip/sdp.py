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
ANSWER_DIRECTION = {
    "sendrecv": "recvonly",
    "sendonly": "recvonly",
    "recvonly": "inactive",
    "inactive": "inactive",
}


class SdpError(ValueError):
    """The SDP body is malformed (the message names the fault)."""


class NoCommonCodec(SdpError):
    """The offer has no audio stream with PCMU or PCMA (answer 488)."""


@dataclass
class MediaLine:
    """One ``m=`` section of a session description.

    Parameters
    ----------
    media : str
        The media type ("audio", "video", ...).
    port : int
        The port (0: a refused stream).
    proto : str
        The transport ("RTP/AVP", ...).
    formats : list of str
        The payload formats, in order of preference.
    conn : str or None, optional
        The section's own ``c=`` address.
    rtpmap, fmtp : dict of int to str, optional
        ``a=rtpmap`` and ``a=fmtp`` values by payload type.
    ptime : int or None, optional
        ``a=ptime`` in ms.
    direction : str or None, optional
        The section's own direction attribute.
    """

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
    """A parsed session description (only what offer/answer needs).

    Parameters
    ----------
    conn : str or None
        The session-level ``c=`` address.
    media : list of MediaLine
        The ``m=`` sections, in order.
    direction : str, optional
        The session-level direction attribute.
    """

    conn: str | None
    media: list[MediaLine]
    direction: str = "sendrecv"


@dataclass(frozen=True)
class Media:
    """What was negotiated for a call: the stream the recorder receives.

    Parameters
    ----------
    codec : {"PCMU", "PCMA"}
        The audio codec.
    payload_type : int
        Its RTP payload type.
    telephone_event : int or None
        The RFC 4733 payload type, or None when the far end offered none.
    ptime : int
        Packet duration in ms (20 unless the offer asked for another multiple of 10).
    remote_rtp : tuple of (str, int)
        The far end's RTP address and port.
    direction : str
        The far end's ``a=`` direction.
    on_hold : bool, optional
        True while the far end sends nothing (it offered ``sendonly``/``inactive`` or
        the old ``c=0.0.0.0``, or answered our late offer with ``inactive``): the
        recording goes on, the held stretch is silence.
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
    r"""Parse an SDP body.

    Parameters
    ----------
    body : bytes
        The body of an INVITE, a 200 or an ACK (at most :data:`MAX_SDP` bytes).

    Returns
    -------
    Session
        The connection address, the ``m=`` sections and the directions.

    Raises
    ------
    SdpError
        The body is too large, not UTF-8, or malformed.

    Examples
    --------
    >>> from recorder.sip import sdp
    >>> s = sdp.parse(b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 8 0\r\n")
    >>> s.conn, s.media[0].port, s.media[0].formats
    ('192.0.2.1', 4000, ['8', '0'])
    """
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
    r"""Pick the stream we record from an offer.

    The first audio stream over RTP/AVP(F) with PCMU or PCMA (in the offer's order of
    preference) is taken, with telephone-event when it is offered.

    Parameters
    ----------
    offer : Session
        The parsed offer.

    Returns
    -------
    tuple of (int, Media)
        The index of the chosen ``m=`` line and what was negotiated.

    Raises
    ------
    NoCommonCodec
        No audio stream with PCMU or PCMA.
    SdpError
        The chosen stream has no connection address.

    Examples
    --------
    >>> from recorder.sip import sdp
    >>> offer = sdp.parse(b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 8 0\r\n")
    >>> index, media = sdp.negotiate(offer)
    >>> index, media.codec, media.remote_rtp
    (0, 'PCMA', ('192.0.2.1', 4000))
    """
    for index, m in enumerate(offer.media):
        if m.media != "audio" or m.port == 0 or m.proto not in ("RTP/AVP", "RTP/AVPF"):
            continue
        pts = [int(f) for f in m.formats if f.isdigit() and int(f) < 128]
        codec = next((pt for pt in pts if _encoding(m, pt) in ("PCMU/8000", "PCMA/8000")), None)
        if codec is None:
            continue
        te = next((pt for pt in pts if _encoding(m, pt) == "TELEPHONE-EVENT/8000"), None)
        addr = m.conn or offer.conn
        if addr is None:
            raise SdpError("no c= line for the audio stream")
        ptime = m.ptime if m.ptime and 10 <= m.ptime <= 200 and m.ptime % 10 == 0 else 20
        direction = m.direction or offer.direction
        on_hold = direction in ("sendonly", "inactive") or addr in ("0.0.0.0", "::")
        return index, Media(
            _encoding(m, codec).split("/")[0], codec, te, ptime, (addr, m.port), direction, on_hold
        )
    raise NoCommonCodec("no audio stream with PCMU or PCMA in the offer")


def answer(
    offer: Session, local_ip: str, rtp_port: int, session_id: int, version: int
) -> tuple[bytes, Media]:
    r"""Build the answer to an offer: our stream on ``rtp_port``, other ``m=`` lines
    refused (port 0).

    Parameters
    ----------
    offer : Session
        The parsed offer.
    local_ip : str
        Our address for ``o=`` and ``c=``.
    rtp_port : int
        Where we receive RTP.
    session_id, version : int
        The ``o=`` line's session id and version.

    Returns
    -------
    tuple of (bytes, Media)
        The SDP body and what was negotiated.

    Raises
    ------
    NoCommonCodec
        Nothing in the offer can be recorded (answer 488).
    SdpError
        The chosen stream has no connection address.

    Examples
    --------
    >>> from recorder.sip import sdp
    >>> offer = sdp.parse(b"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n")
    >>> body, media = sdp.answer(offer, "192.0.2.9", 40000, 1, 1)
    >>> b"m=audio 40000 RTP/AVP 0" in body, b"a=recvonly" in body
    (True, True)
    """
    index, media = negotiate(offer)
    lines = _head(local_ip, session_id, version)
    for i, m in enumerate(offer.media):
        if i != index:
            lines.append(f"m={m.media} 0 {m.proto} {m.formats[0]}")
            continue
        pts = [media.payload_type] + (
            [media.telephone_event] if media.telephone_event is not None else []
        )
        lines.append(f"m=audio {rtp_port} {m.proto} {' '.join(map(str, pts))}")
        lines.append(f"a=rtpmap:{media.payload_type} {media.codec}/8000")
        if media.telephone_event is not None:
            lines.append(f"a=rtpmap:{media.telephone_event} telephone-event/8000")
            lines.append(
                f"a=fmtp:{media.telephone_event} " f"{m.fmtp.get(media.telephone_event, '0-16')}"
            )
        lines.append(f"a=ptime:{media.ptime}")
        lines.append(f"a={ANSWER_DIRECTION.get(media.direction, 'recvonly')}")
    return ("\r\n".join(lines) + "\r\n").encode(), media


def offer(local_ip: str, rtp_port: int, session_id: int, version: int, ptime: int = 20) -> bytes:
    """Our offer, for an INVITE without SDP (late offer: the answer comes in the ACK).

    Parameters
    ----------
    local_ip : str
        Our address for ``o=`` and ``c=``.
    rtp_port : int
        Where we receive RTP.
    session_id, version : int
        The ``o=`` line's session id and version.
    ptime : int, optional
        The packet duration we ask for, in ms.

    Returns
    -------
    bytes
        An SDP body offering PCMU, PCMA and telephone-event, receive-only.
    """
    lines = [
        *_head(local_ip, session_id, version),
        f"m=audio {rtp_port} RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        f"a=ptime:{ptime}",
        "a=recvonly",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def _head(local_ip: str, session_id: int, version: int) -> list[str]:
    fam = "IP6" if ":" in local_ip else "IP4"
    return [
        "v=0",
        f"o=- {session_id} {version} IN {fam} {local_ip}",
        "s=-",
        f"c=IN {fam} {local_ip}",
        "t=0 0",
    ]


def accept_answer(answer_sdp: Session) -> Media:
    """Read the far end's answer to our late offer (the SDP in the ACK).

    Parameters
    ----------
    answer_sdp : Session
        The parsed answer.

    Returns
    -------
    Media
        What was negotiated; ``on_hold`` when the far end will send nothing.

    Raises
    ------
    NoCommonCodec
        The answer has no usable stream (the call then ends with "bad-sdp").
    SdpError
        The answer's stream has no connection address.
    """
    _, media = negotiate(answer_sdp)
    # "sendonly" is the normal answer to our "recvonly" offer.
    on_hold = media.direction in ("recvonly", "inactive") or media.remote_rtp[0] in (
        "0.0.0.0",
        "::",
    )
    return dataclasses.replace(media, on_hold=on_hold)
