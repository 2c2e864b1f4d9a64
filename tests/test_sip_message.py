"""SIP message parsing, RFC 4475-style torture messages, and fuzzing of the parser and
of the whole UAS core (every malformed input gets 400 or is dropped; nothing crashes,
nothing grows)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sip_helpers import DATA, Harness, load, offer, request

from recorder.sip import Peer, Timers
from recorder.sip.message import (
    MAX_HEADERS,
    MAX_MESSAGE,
    Request,
    Response,
    SipParseError,
    StreamFramer,
    check_request,
    parse,
    parse_name_addr,
)

VALID = sorted(p.name for p in DATA.glob("valid_*.sip"))
INVALID = sorted(p.name for p in DATA.glob("invalid_*.sip"))


def test_parse_roundtrip_and_compact_forms():
    raw = request("INVITE", body=offer())
    msg = parse(raw)
    assert isinstance(msg, Request) and msg.method == "INVITE" and msg.body == offer()
    assert parse(msg.to_bytes()).headers == msg.headers
    compact = raw.replace(b"Call-ID:", b"i:").replace(b"Content-Length:", b"l:")
    assert parse(compact).get("call-id") == "c1"
    info = check_request(msg)
    assert (info.cseq, info.from_.tag, info.via[0].branch) == (1, "ft1", info.via[0].branch)


def test_folding_and_torture_valid_messages_parse():
    msg = parse(load("valid_folded.sip"))
    info = check_request(msg)
    assert [v.branch for v in info.via] == ["z9hG4bKfold1", "z9hG4bKfold0", "z9hG4bKfold00"]
    assert info.from_.display == 'Folded  "Name"' and info.from_.tag == "99aa"
    assert (info.cseq, info.cseq_method) == (7, "INVITE")
    assert msg.get("Another-Header") == "first part second part"


@pytest.mark.parametrize("name", VALID)
def test_valid_torture_messages_are_served(name):
    h = Harness()
    try:
        out = h.feed(load(name))
        statuses = h.statuses(out)
        assert statuses and 400 not in statuses, statuses
        assert statuses[-1] in (200, 405, 481)
    finally:
        h.close()


@pytest.mark.parametrize("name", INVALID)
def test_invalid_torture_messages_get_400_or_are_dropped(name):
    h = Harness()
    try:
        out = h.feed(load(name))
        assert h.statuses(out) in ([], [400]), h.statuses(out)
        assert h.calls == [] and h.core.active_calls == 0
    finally:
        h.close()


def test_name_addr_forms():
    a = parse_name_addr('"A \\"B\\"" <sip:a@h;lr>;tag=1;x')
    assert (a.display, a.uri, a.tag, a.params["x"]) == ('A "B"', "sip:a@h;lr", "1", "")
    b = parse_name_addr("sip:b@h;tag=2")
    assert (b.display, b.uri, b.tag) == ("", "sip:b@h", "2")
    for bad in ('"open <sip:a@h>', "<sip:a@h", "Bell, A <sip:a@h>", "< sip:a@h >", "nouri"):
        with pytest.raises(SipParseError):
            parse_name_addr(bad)


def test_size_caps():
    with pytest.raises(SipParseError, match="larger than"):
        parse(request("OPTIONS") + b"x" * MAX_MESSAGE)
    many = request("OPTIONS").replace(
        b"Content-Length", b"X: 1\r\n" * (MAX_HEADERS + 1) + b"Content-Length"
    )
    with pytest.raises(SipParseError, match="header"):
        parse(many)
    with pytest.raises(TypeError):
        parse("text")  # type: ignore[arg-type]


def test_stream_framer_splits_and_caps():
    a, b = request("OPTIONS"), request("INVITE", body=offer())
    f = StreamFramer()
    stream = b"\r\n\r\n" + a + b
    out = []
    for i in range(0, len(stream), 7):  # byte dribbles
        out += f.feed(stream[i : i + 7])
    assert out == [a, b]
    with pytest.raises(SipParseError):
        StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 20000)
    with pytest.raises(SipParseError):
        StreamFramer().feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999999\r\n\r\n")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_parse_raises_only_sip_parse_error(data):
    try:
        msg = parse(data)
    except SipParseError:
        return
    assert isinstance(msg, (Request, Response))
    if isinstance(msg, Request):
        try:
            check_request(msg)
        except SipParseError:
            pass


def _mutations():
    base = request("INVITE", body=offer())
    lines = base.split(b"\r\n")
    return st.one_of(
        # a line dropped, duplicated or garbled
        st.integers(0, len(lines) - 1).map(lambda i: b"\r\n".join(lines[:i] + lines[i + 1 :])),
        st.tuples(st.integers(0, len(lines) - 1), st.binary(max_size=40)).map(
            lambda t: b"\r\n".join(lines[: t[0]] + [t[1]] + lines[t[0] + 1 :])
        ),
        st.tuples(st.integers(0, len(base)), st.binary(min_size=1, max_size=8)).map(
            lambda t: base[: t[0]] + t[1] + base[t[0] :]
        ),
        st.integers(0, len(base)).map(lambda i: base[:i]),
        st.binary(max_size=500),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutations(), min_size=1, max_size=5))
def test_fuzz_core_answers_400_or_drops_and_stays_bounded(datas):
    h = Harness(max_calls=3, timers=Timers(t1=0.001, t2=0.004), ring_timeout=0.05)
    try:
        for i, data in enumerate(datas):
            out = h.feed(data, Peer("udp", "127.0.0.1", 5000 + i))
            for m in out:
                assert isinstance(m, Response)
                assert m.status in (100, 180, 200, 400, 405, 415, 420, 481, 488, 500, 503), m.status
        assert h.core.active_calls <= 3
        assert h.core.transaction_count <= h.core.config.max_transactions
        # Every entry has a timer: once the timers ran out, nothing is left.
        assert h.run_until(lambda: h.core.transaction_count == h.core.active_calls == 0, timeout=10)
    finally:
        h.close()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from([request("OPTIONS"), request("INVITE", body=offer()), b"\r\n\r\n"]),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.integers(1, 300), min_size=1, max_size=50),
)
def test_fuzz_stream_framer_any_chunking(messages, cuts):
    stream = b"".join(messages)
    framer, out, pos, i = StreamFramer(), [], 0, 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        out += framer.feed(stream[pos : pos + n])
        pos, i = pos + n, i + 1
    assert out == [m for m in messages if m != b"\r\n\r\n"]
