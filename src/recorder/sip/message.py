"""SIP message parsing and serialization (the RFC 3261 subset a recording UAS needs).

Own parser, small on purpose: the ``sipmessage`` package was evaluated and rejected
because it refuses valid folded header lines (RFC 3261 §7.3.1, RFC 4475 "wsinv") and
ignores Content-Length (needed to frame messages on TCP and to detect truncated UDP
bodies).

Everything malformed raises :class:`SipParseError` (a ``ValueError``); nothing else.
Sizes are capped: a message above :data:`MAX_MESSAGE` bytes or with more than
:data:`MAX_HEADERS` header fields is refused before any work proportional to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_MESSAGE = 65535
MAX_HEADERS = 128

COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
}
CANONICAL = {
    n.lower(): n
    for n in (
        "Call-ID",
        "Contact",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "From",
        "Subject",
        "Supported",
        "To",
        "Via",
        "CSeq",
        "Max-Forwards",
        "Route",
        "Record-Route",
        "Allow",
        "Accept",
        "Require",
        "Server",
        "User-Agent",
        "Retry-After",
        "Unsupported",
    )
}
# Headers whose value is a comma-separated list (RFC 3261 §7.3.1).
LIST_HEADERS = {"via", "contact", "route", "record-route", "allow", "supported", "require"}
# List headers whose grammar allows an empty value (RFC 3261 §25.1: ``Allow`` and
# ``Supported`` are ``HCOLON [ element *(COMMA element) ]``): an empty one lists nothing.
EMPTY_LIST_HEADERS = {"allow", "supported"}
# Headers that must appear at most once in a request (RFC 4475 §3.1.2.19 style).
SINGLE_HEADERS = {"call-id", "cseq", "from", "to", "content-length", "max-forwards"}

_TOKEN = r"[A-Za-z0-9.!%*_+`'~-]+"
_TOKEN_RE = re.compile(_TOKEN + r"\Z")
_REQUEST_LINE = re.compile(rf"({_TOKEN}) (\S+) SIP/2\.0\Z")
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) (.*)\Z", re.DOTALL)
_HEADER_NAME = re.compile(rf"({_TOKEN})[ \t]*:[ \t]*(.*)\Z", re.DOTALL)
_VIA = re.compile(
    rf"SIP\s*/\s*2\.0\s*/\s*({_TOKEN})\s+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?:\s*:\s*([0-9]{{1,5}}))?\s*(;.*)?\Z",
    re.DOTALL,
)
_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):[^\s<>\"]+\Z")
_SPACE = re.compile(r"\s")  # what str.isspace() calls white space


class SipParseError(ValueError):
    """A SIP message (or one of its header values) is malformed; the message names the
    fault.  A ``ValueError``."""


def split_commas(value: str) -> list[str]:
    """Split a header value on the commas outside quotes and angle brackets.

    Parameters
    ----------
    value : str
        A list header's value (Via, Contact, Route, ...).

    Returns
    -------
    list of str
        The elements, stripped.

    Raises
    ------
    SipParseError
        An unterminated quoted string, or an empty element.

    Examples
    --------
    >>> from recorder.sip.message import split_commas
    >>> split_commas('"A, B" <sip:a@x>, <sip:b@y;x=1,2>')
    ['"A, B" <sip:a@x>', '<sip:b@y;x=1,2>']
    """
    if '"' not in value and "<" not in value:  # the common case: nothing to skip over
        parts = [p.strip() for p in value.split(",")]
        if any(not p for p in parts):
            raise SipParseError("empty element in comma-separated header value")
        return parts
    parts, start, quoted, angle, i = [], 0, False, False, 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    if quoted:
        raise SipParseError("unterminated quoted string in header value")
    parts.append(value[start:].strip())
    if any(not p for p in parts):
        raise SipParseError("empty element in comma-separated header value")
    return parts


def _values(key: str, values: list[str]) -> list[str]:
    """The values of header ``key`` (lower case) from its lines' ``values``: list headers
    split on their commas, an empty line of a header that may be empty dropped."""
    if key in LIST_HEADERS:
        out: list[str] = []
        for v in values:
            if key not in EMPTY_LIST_HEADERS or v.strip():
                out.extend(split_commas(v))
        return out
    return values


def parse_params(text: str) -> dict[str, str]:
    """Parse header parameters.

    Parameters
    ----------
    text : str
        ``;name=value;flag`` (the leading ``;`` is optional).

    Returns
    -------
    dict of str to str
        Names lower-cased; a flag maps to "".

    Raises
    ------
    SipParseError
        An empty parameter or a name that is not a token.

    Examples
    --------
    >>> from recorder.sip.message import parse_params
    >>> parse_params(";Branch=z9hG4bK1;rport")
    {'branch': 'z9hG4bK1', 'rport': ''}
    """
    params: dict[str, str] = {}
    if not text.strip():
        return params
    for item in text.split(";")[1:] if text.startswith(";") else text.split(";"):
        item = item.strip()
        if not item:
            raise SipParseError("empty parameter")
        name, _, value = item.partition("=")
        name = name.strip()
        if not _TOKEN_RE.match(name):
            raise SipParseError(f"bad parameter name {name!r}")
        params[name.lower()] = value.strip()
    return params


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact value.

    Parameters
    ----------
    display : str
        The display name ("" when absent).
    uri : str
        The URI.
    params : dict of str to str
        The header parameters (``tag``, ...).
    """

    display: str
    uri: str
    params: dict[str, str]

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter, or None when absent or empty."""
        return self.params.get("tag") or None


def parse_name_addr(value: str) -> NameAddr:
    """Parse a From, To or Contact value.

    Parameters
    ----------
    value : str
        ``"Name" <sip:u@h>;tag=x``, ``Name <sip:u@h>`` or ``sip:u@h;tag=x``.

    Returns
    -------
    NameAddr
        Display name, URI and parameters.

    Raises
    ------
    SipParseError
        An unterminated or unquoted display name with separators, a missing ``>``,
        junk after the URI, or a bad URI.

    Examples
    --------
    >>> from recorder.sip.message import parse_name_addr
    >>> a = parse_name_addr('"Alice" <sip:alice@example.com>;tag=1928')
    >>> a.display, a.uri, a.tag
    ('Alice', 'sip:alice@example.com', '1928')
    """
    value = value.strip()
    display = ""
    if value.startswith('"'):
        i, out = 1, []
        while i < len(value) and value[i] != '"':
            if value[i] == "\\" and i + 1 < len(value):
                i += 1
            out.append(value[i])
            i += 1
        if i >= len(value):
            raise SipParseError("unterminated display name")
        display, rest = "".join(out), value[i + 1 :].lstrip()
        if not rest.startswith("<"):
            raise SipParseError("quoted display name not followed by <URI>")
    elif "<" in value:
        display, _, rest = value.partition("<")
        display, rest = display.strip(), "<" + rest
        if display and not all(_TOKEN_RE.match(w) for w in display.split()):
            raise SipParseError("display name with separators must be quoted")
    else:
        rest = value
    if rest.startswith("<"):
        uri, sep, params = rest[1:].partition(">")
        if not sep:
            raise SipParseError("missing '>' after URI")
        params = params.strip()
        if params and not params.startswith(";"):
            raise SipParseError("junk after URI")
    else:
        uri, _, params = rest.partition(";")
        uri, params = uri.rstrip(), ";" + params if params else ""
    if not _URI.match(uri):  # no blanks inside <...> (RFC 4475 §3.1.2.14)
        raise SipParseError(f"bad URI {uri!r}")
    return NameAddr(display, uri, parse_params(params) if params else {})


@dataclass(frozen=True)
class Via:
    """One Via value.

    Parameters
    ----------
    transport : str
        "UDP", "TCP", ... (upper case).
    host : str
        The sent-by host (an IPv6 address keeps its brackets).
    port : int or None
        The sent-by port, None when absent.
    params : dict of str to str
        The parameters (``branch``, ``received``, ``rport``, ...).
    """

    transport: str
    host: str
    port: int | None
    params: dict[str, str]

    @property
    def branch(self) -> str:
        """The ``branch`` parameter ("" when absent)."""
        return self.params.get("branch", "")


def parse_via(value: str) -> Via:
    """Parse one Via value.

    Parameters
    ----------
    value : str
        ``SIP/2.0/UDP host:port;branch=...`` (one element of the Via list).

    Returns
    -------
    Via
        Transport, sent-by and parameters.

    Raises
    ------
    SipParseError
        Not a Via value, or a port out of range.

    Examples
    --------
    >>> from recorder.sip.message import parse_via
    >>> v = parse_via("SIP/2.0/udp 192.0.2.1:5060;branch=z9hG4bK776")
    >>> v.transport, v.host, v.port, v.branch
    ('UDP', '192.0.2.1', 5060, 'z9hG4bK776')
    """
    m = _VIA.match(value.strip())
    if not m:
        raise SipParseError(f"bad Via {value[:80]!r}")
    port = int(m.group(3)) if m.group(3) else None
    if port is not None and not 0 < port < 65536:
        raise SipParseError("Via port out of range")
    return Via(m.group(1).upper(), m.group(2), port, parse_params(m.group(4) or ""))


@dataclass
class Message:
    """A parsed request or response.

    Parameters
    ----------
    headers : list of (str, str), optional
        The header fields in order, names in canonical form (compact forms expanded).
    body : bytes, optional
        The body.
    """

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def get(self, name: str) -> str | None:
        """The first value of a header.

        Parameters
        ----------
        name : str
            The header name (case-insensitive).

        Returns
        -------
        str or None
            Its first value, or None when absent.
        """
        key = name.lower()
        size = len(key)
        for n, v in self.headers:
            if len(n) == size and n.lower() == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of a header.

        Parameters
        ----------
        name : str
            The header name (case-insensitive).

        Returns
        -------
        list of str
            The values in order; list headers (Via, Contact, Route, ...) are split on
            their commas.

        Raises
        ------
        SipParseError
            A list header does not split cleanly.
        """
        key = name.lower()
        size = len(key)
        return _values(key, [v for n, v in self.headers if len(n) == size and n.lower() == key])

    def _head_bytes(self, start: str) -> bytes:
        lines = [start]
        lines += [f"{n}: {v}" for n, v in self.headers if n.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Request(Message):
    """A SIP request: :class:`Message` plus ``method`` and ``uri`` (the Request-URI)."""

    method: str = ""
    uri: str = ""

    def to_bytes(self) -> bytes:
        """The request on the wire (Content-Length set from the body)."""
        return self._head_bytes(f"{self.method} {self.uri} SIP/2.0")


@dataclass
class Response(Message):
    """A SIP response: :class:`Message` plus ``status`` and ``reason``."""

    status: int = 0
    reason: str = ""

    def to_bytes(self) -> bytes:
        """The response on the wire (Content-Length set from the body)."""
        return self._head_bytes(f"SIP/2.0 {self.status} {self.reason}")


def parse(data: bytes, *, stream: bool = False) -> Request | Response:
    r"""Parse one SIP message.

    Parameters
    ----------
    data : bytes
        The message, at most :data:`MAX_MESSAGE` bytes.
    stream : bool, optional
        False (UDP): the datagram is the message; a Content-Length larger than the
        body is an error, a shorter one truncates the body.  True (TCP): the caller
        framed the message with :class:`StreamFramer`, so the body must be exact.

    Returns
    -------
    Request or Response
        The message.

    Raises
    ------
    TypeError
        ``data`` is not bytes.
    SipParseError
        The message is too large, has too many headers, or is malformed.

    Examples
    --------
    >>> from recorder.sip.message import parse
    >>> m = parse(b"OPTIONS sip:x@192.0.2.1 SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
    ...           b"Content-Length: 0\r\n\r\n")
    >>> m.method, m.get("via")
    ('OPTIONS', 'SIP/2.0/UDP h;branch=z9hG4bK1')
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("SIP message must be bytes")
    data = bytes(data)
    if len(data) > MAX_MESSAGE:
        raise SipParseError(f"message larger than {MAX_MESSAGE} bytes")
    data = data.lstrip(b"\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipParseError("no empty line after the headers")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("headers are not UTF-8") from None
    raw_lines = text.split("\r\n")
    if len(raw_lines) > 4 * MAX_HEADERS:
        raise SipParseError("too many header lines")
    start = raw_lines[0]
    lines: list[str] = []
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t"):  # folded continuation (RFC 3261 §7.3.1)
            if not lines:
                raise SipParseError("continuation line before any header")
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    if len(lines) > MAX_HEADERS:
        raise SipParseError(f"more than {MAX_HEADERS} header fields")
    msg: Request | Response
    if m := _REQUEST_LINE.match(start):
        if not _URI.match(m.group(2)):
            raise SipParseError("bad Request-URI")
        msg = Request(method=m.group(1), uri=m.group(2))
    elif m := _STATUS_LINE.match(start):
        msg = Response(status=int(m.group(1)), reason=m.group(2))
    else:
        raise SipParseError("bad start line")
    for line in lines:
        hm = _HEADER_NAME.match(line)
        if not hm:
            raise SipParseError(f"bad header line {line[:40]!r}")
        name = hm.group(1)
        name = COMPACT.get(name.lower(), CANONICAL.get(name.lower(), name))
        msg.headers.append((name, hm.group(2).strip()))
    clen = msg.get_all("Content-Length")
    if len(clen) > 1:
        raise SipParseError("more than one Content-Length")
    if clen:
        if not clen[0].isdigit() or len(clen[0]) > 9:
            raise SipParseError("bad Content-Length")
        n = int(clen[0])
        if n > len(body) or (stream and n != len(body)):
            raise SipParseError("Content-Length larger than the body received")
        body = body[:n]
    msg.body = body
    return msg


@dataclass(frozen=True)
class RequestInfo:
    """The mandatory fields of a request, checked (RFC 3261 §8.1.1); made by
    :func:`check_request`.

    Parameters
    ----------
    via : list of Via
        The Via values, top first.
    call_id : str
        The Call-ID.
    cseq : int
        The CSeq number.
    cseq_method : str
        The CSeq method.
    from_, to : NameAddr
        The From and To values.
    """

    via: list[Via]
    call_id: str
    cseq: int
    cseq_method: str
    from_: NameAddr
    to: NameAddr


def check_request(req: Request) -> RequestInfo:
    """Check the headers a UAS relies on.

    Parameters
    ----------
    req : Request
        A parsed request.

    Returns
    -------
    RequestInfo
        The mandatory fields, parsed.

    Raises
    ------
    SipParseError
        Naming the fault: a repeated single header, a list header that does not split,
        no Via, a bad Call-ID, CSeq or Max-Forwards, or a missing From or To.
    """
    by_name: dict[str, list[str]] = {}  # one pass over the headers, names lower-cased
    for n, v in req.headers:
        by_name.setdefault(n.lower(), []).append(v)
    for name in SINGLE_HEADERS:
        if len(by_name.get(name, ())) > 1:
            raise SipParseError(f"more than one {name} header")
    for name in LIST_HEADERS:  # every list header splits cleanly (checked once, here)
        _values(name, by_name.get(name, []))
    vias = [parse_via(v) for v in _values("via", by_name.get("via", []))]
    if not vias:
        raise SipParseError("no Via header")
    call_id = req.get("Call-ID")
    if not call_id or len(call_id) > 256 or _SPACE.search(call_id):
        raise SipParseError("missing or bad Call-ID")
    cseq = (req.get("CSeq") or "").split()
    if len(cseq) != 2 or not cseq[0].isdigit() or int(cseq[0]) >= 2**31:
        raise SipParseError("missing or bad CSeq")
    if cseq[1] != req.method:
        raise SipParseError("CSeq method does not match the request method")
    mf = req.get("Max-Forwards")
    if mf is not None and (not mf.isdigit() or int(mf) > 255):
        raise SipParseError("bad Max-Forwards")
    f, t = req.get("From"), req.get("To")
    if f is None or t is None:
        raise SipParseError("missing From or To")
    return RequestInfo(vias, call_id, int(cseq[0]), cseq[1], parse_name_addr(f), parse_name_addr(t))


class StreamFramer:
    r"""Split a TCP byte stream into SIP messages using Content-Length.

    The buffer never grows past :data:`MAX_MESSAGE`.

    Examples
    --------
    >>> from recorder.sip.message import StreamFramer
    >>> framer = StreamFramer()
    >>> framer.feed(b"\r\nOPTIONS sip:x@h SIP/2.0\r\nContent-Length: 2\r\n\r\nhi")
    [b'OPTIONS sip:x@h SIP/2.0\r\nContent-Length: 2\r\n\r\nhi']
    >>> framer.feed(b"BYE sip:x@h SIP/2.0\r\n")    # incomplete: kept for later
    []
    """

    _CLEN = re.compile(rb"\r\n(?:content-length|l)[ \t]*:[ \t]*([0-9]+)", re.IGNORECASE)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; take the messages they complete.

        Parameters
        ----------
        data : bytes
            The next bytes of the stream, split anywhere.

        Returns
        -------
        list of bytes
            The complete messages, in order (keep-alive CRLFs dropped).

        Raises
        ------
        SipParseError
            A header block or message would exceed :data:`MAX_MESSAGE`: close the
            connection.
        """
        self._buf += data
        out: list[bytes] = []
        while True:
            while self._buf[:2] == b"\r\n":  # keep-alive CRLFs (RFC 5626)
                del self._buf[:2]
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_MESSAGE:
                    raise SipParseError("header block too large")
                return out
            m = self._CLEN.search(self._buf, 0, end + 2)
            n = int(m.group(1)) if m and len(m.group(1)) <= 9 else (0 if not m else -1)
            total = end + 4 + n
            if n < 0 or total > MAX_MESSAGE:
                raise SipParseError("message too large")
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]


def make_response(
    req: Request,
    status: int,
    *,
    reason: str | None = None,
    to_tag: str | None = None,
    body: bytes = b"",
    extra: list[tuple[str, str]] | tuple = (),
    server: str = "",
) -> Response:
    """The response to a request (RFC 3261 §8.2.6.2).

    Parameters
    ----------
    req : Request
        The request answered: its Via, From, Call-ID and CSeq are copied.
    status : int
        The status code.
    reason : str or None, optional
        The reason phrase ("Unknown" unless given).
    to_tag : str or None, optional
        Added to the request's To when it has no tag.
    body : bytes, optional
        An SDP body (sets Content-Type).
    extra : list of (str, str), optional
        More header fields, appended.
    server : str, optional
        The Server header ("" for none).

    Returns
    -------
    Response
        The response, ready for :meth:`Response.to_bytes`.
    """
    headers = [(n, v) for n, v in req.headers if n.lower() in ("via", "from", "call-id", "cseq")]
    to = req.get("To") or ""
    if to_tag and ";tag=" not in to.replace(" ", "").lower():
        to += f";tag={to_tag}"
    headers.insert(sum(1 for n, _ in headers if n.lower() == "via") + 1, ("To", to))
    headers += ([("Server", server)] if server else []) + list(extra)
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return Response(headers=headers, body=body, status=status, reason=reason or "Unknown")


_RAW_HEADER = re.compile(
    rb"^(via|v|from|f|to|t|call-id|i|cseq)[ \t]*:[^\r\n]*", re.IGNORECASE | re.MULTILINE
)


def salvage_request(data: bytes) -> Request | None:
    """Recover enough of a refused request to answer it 400.

    Parameters
    ----------
    data : bytes
        A message :func:`parse` refused.

    Returns
    -------
    Request or None
        A request holding the headers a response copies, or None when there is nothing
        to answer (a response, an ACK, no usable Via).
    """
    head = bytes(data[:MAX_MESSAGE]).split(b"\r\n\r\n", 1)[0]
    first = head.split(b"\r\n", 1)[0]
    if not re.match(rb"[A-Za-z]+ \S+ SIP/2\.0$", first) or first.startswith(b"ACK "):
        return None
    req = Request(method="X", uri="sip:x")
    for m in list(_RAW_HEADER.finditer(head))[:MAX_HEADERS]:
        name, _, value = m.group(0).decode("utf-8", "replace").partition(":")
        name = name.strip().lower()
        req.headers.append((COMPACT.get(name, CANONICAL.get(name, name)), value.strip()))
    try:
        vias = req.get_all("Via")
        if not vias:
            return None
        parse_via(vias[0])
    except SipParseError:
        return None
    return req


def stamp_via(req: Request, host: str, port: int) -> None:
    """Mark where a request really came from, in its top Via (changed in place).

    Adds ``received`` (RFC 3261 §18.2.1) when the sent-by host differs from ``host``,
    and fills an empty ``rport`` (RFC 3581) with ``port``.

    Parameters
    ----------
    req : Request
        The received request.
    host : str
        The source address of the packet.
    port : int
        The source port of the packet.
    """
    for i, (name, value) in enumerate(req.headers):
        if name.lower() != "via":
            continue
        first, *others = split_commas(value)
        via = parse_via(first)
        if via.host.strip("[]") != host:
            first += f";received={host}"
        if "rport" in via.params and not via.params["rport"]:
            first = re.sub(r";\s*rport\s*(?=;|$)", f";rport={port}", first, count=1)
        req.headers[i] = (name, ", ".join([first, *others]))
        return
