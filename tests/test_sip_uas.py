"""The UAS core on a real asyncio loop: transactions, dialogs, the Call interface."""

from __future__ import annotations

import asyncio

import pytest
from sip_helpers import FAST, Harness, offer, request

from recorder.sip import Peer, PortsExhausted, RtpPorts, Timers, sdp
from recorder.sip.message import Request, Response


@pytest.fixture
def h():
    harness = Harness()
    yield harness
    harness.close()


def test_invite_answered_ack_bye(h):
    out = h.feed(request("INVITE", body=offer()))
    assert h.statuses(out) == [100, 200]
    call = h.calls[0]
    assert (call.call_id, call.from_uri, call.from_name) == ("c1", "sip:alice@127.0.0.1", "Alice A")
    assert call.to_uri == "sip:rec@127.0.0.1" and call.remote == Peer("udp", "127.0.0.1", 5099)
    assert ("Call-ID", "c1") in call.headers and len(call.id) == 32
    assert call.media == sdp.Media("PCMA", 8, 101, 30, ("127.0.0.1", 6000), "sendrecv", False)
    ok = out[1]
    answer = sdp.parse(ok.body)
    m = answer.media[0]
    assert (m.port, m.formats, m.ptime, m.direction) == (40000, ["8", "101"], 30, "recvonly")
    assert m.fmtp[101] == "0-15" and ok.get("Contact")
    tag = ok.get("To").split("tag=")[1]
    assert call.state == "answered"
    h.feed(request("ACK", to_tag=tag))
    assert call.state == "confirmed"
    ended = []
    call.on_end = lambda c, reason: ended.append(reason)
    out = h.feed(request("BYE", to_tag=tag, cseq=2))
    assert h.statuses(out) == [200]
    assert ended == ["bye"] and call.ended.is_set() and h.core.active_calls == 0
    # A retransmitted BYE gets the same answer; a BYE in no dialog gets 481.
    assert h.statuses(h.feed(request("BYE", to_tag="nope", cseq=3))) == [481]


def test_ringing_until_the_app_answers_then_200_retransmitted_until_ack():
    h = Harness(answer_port=None, timers=Timers(t1=0.2, t2=0.4))
    try:
        out = h.feed(request("INVITE", body=offer(), branch="z9hG4bKr1"))
        assert h.statuses(out) == [100, 180]
        call = h.calls[0]
        assert call.state == "ringing"
        # A retransmitted INVITE gets the last provisional response again.
        assert h.statuses(h.feed(request("INVITE", body=offer(), branch="z9hG4bKr1"))) == [180]
        call.answer(40002)
        h.loop.run_until_complete(asyncio.sleep(0))
        n = sum(1 for m, _ in h.sent if isinstance(m, Response) and m.status == 200)
        assert n == 1
        # Timer G: the 200 goes out again (at T1, 2T1, ...) while no ACK comes.
        h.wait_sent(
            lambda m: isinstance(m, Response)
            and m.status == 200
            and sum(1 for x, _ in h.sent if isinstance(x, Response) and x.status == 200) >= 3
        )
    finally:
        h.close()


def test_no_ack_ends_the_call_with_bye_after_timer_h():
    h = Harness(timers=FAST)
    h.feed(request("INVITE", body=offer()))
    call = h.calls[0]
    bye = h.wait_sent(lambda m: isinstance(m, Request) and m.method == "BYE")
    assert call.end_reason == "timeout" and call.ended.is_set()
    assert bye.uri == "sip:alice@127.0.0.1:5099" and bye.get("Call-ID") == "c1"
    assert "tag=ft1" in bye.get("To") and h.core.active_calls == 0
    h.close()


def test_cancel_before_answer_gives_200_and_487():
    h = Harness(answer_port=None)
    try:
        h.feed(request("INVITE", body=offer(), branch="z9hG4bKc1"))
        call = h.calls[0]
        out = h.feed(request("CANCEL", branch="z9hG4bKc1"))
        assert h.statuses(out) == [200, 487]
        assert out[0].get("CSeq") == "1 CANCEL" and out[1].get("CSeq") == "1 INVITE"
        assert out[0].get("To") == out[1].get("To")  # the same To tag (RFC 3261 9.2)
        assert call.end_reason == "cancel" and h.core.active_calls == 0
        call.answer(40000)  # too late: nothing more is sent
        h.loop.run_until_complete(asyncio.sleep(0))
        assert not any(
            isinstance(m, Response) and m.status == 200 and "INVITE" in m.get("CSeq")
            for m, _ in h.sent
        )
        # The ACK for the 487 stops its retransmission.
        h.feed(request("ACK", branch="z9hG4bKc1", to_tag=out[1].get("To").split("tag=")[1]))
        # CANCEL for no transaction: 481.
        assert h.statuses(h.feed(request("CANCEL", branch="z9hG4bKother"))) == [481]
    finally:
        h.close()


def test_reinvite_hold_and_resume(h):
    out = h.feed(request("INVITE", body=offer()))
    tag = out[-1].get("To").split("tag=")[1]
    h.feed(request("ACK", to_tag=tag))
    call = h.calls[0]
    updates = []
    call.on_update = lambda c: updates.append(c.media.direction)
    for direction, answered in (
        ("sendonly", "recvonly"),
        ("inactive", "inactive"),
        ("sendrecv", "recvonly"),
    ):
        out = h.feed(request("INVITE", to_tag=tag, cseq=len(updates) + 2, body=offer(direction)))
        assert h.statuses(out) == [200]
        assert sdp.parse(out[0].body).media[0].direction == answered
        assert sdp.parse(out[0].body).media[0].port == 40000
        h.feed(request("ACK", to_tag=tag, cseq=len(updates) + 2))
    assert updates == ["sendonly", "inactive", "sendrecv"]
    assert call.state == "confirmed" and call.end_reason is None


def test_late_offer_answer_in_ack(h):
    out = h.feed(request("INVITE"))
    call = h.calls[0]
    assert call.media is None
    ours = sdp.parse(out[-1].body).media[0]
    assert ours.formats == ["0", "8", "101"] and ours.direction == "recvonly"
    tag = out[-1].get("To").split("tag=")[1]
    answer = offer("sendonly").replace(b"8 0 101", b"0 101")
    h.feed(request("ACK", to_tag=tag, body=answer))
    assert call.state == "confirmed" and call.media.codec == "PCMU"
    assert call.media.telephone_event == 101 and not call.media.on_hold


def test_no_common_codec_488_and_bad_sdp_400(h):
    g729 = (
        offer()
        .replace(b"8 0 101", b"18")
        .replace(b"a=rtpmap:8", b"a=x:8")
        .replace(b"a=rtpmap:0", b"a=x:0")
    )
    assert h.statuses(h.feed(request("INVITE", body=g729, call_id="x1"))) == [488]
    assert h.statuses(h.feed(request("INVITE", body=b"v=1\r\n", call_id="x2"))) == [400]
    assert h.calls == [] and h.core.active_calls == 0


def test_max_calls_gives_503():
    h = Harness(max_calls=2)
    try:
        for i in range(5):
            h.feed(request("INVITE", body=offer(), call_id=f"m{i}"))
        finals = [m.status for m, _ in h.sent if isinstance(m, Response) and m.status >= 200]
        assert finals == [200, 200, 503, 503, 503]
        assert h.core.active_calls == 2
    finally:
        h.close()


def test_source_outside_allow_gets_403(h):
    h2 = Harness(allow=("10.0.0.0/8",))
    try:
        assert h2.statuses(h2.feed(request("INVITE", body=offer()))) == [403]
        assert h2.calls == []
        # Inside the allowed networks: served.
        out = h2.feed(request("OPTIONS"), Peer("udp", "10.1.2.3", 5060))
        assert h2.statuses(out) == [200]
    finally:
        h2.close()


def test_options_and_unknown_method(h):
    out = h.feed(request("OPTIONS"))
    assert h.statuses(out) == [200] and "INVITE" in out[0].get("Allow")
    assert h.statuses(h.feed(request("REGISTER"))) == [405]
    assert h.statuses(h.feed(request("BYE", to_tag="zz"))) == [481]


def test_malformed_requests_get_400_and_no_call(h):
    assert h.statuses(h.feed(request("INVITE", cseq_method="BYE"))) == [400]
    bad_clen = request("INVITE", body=offer()).replace(b"Content-Length: ", b"Content-Length: 9")
    assert h.statuses(h.feed(bad_clen)) == [400]
    assert h.feed(b"garbage\r\n\r\n") == []
    assert h.calls == []


def test_app_hangup_and_reject(h):
    out = h.feed(request("INVITE", body=offer()))
    tag = out[-1].get("To").split("tag=")[1]
    h.feed(request("ACK", to_tag=tag))
    call = h.calls[0]
    call.hangup()
    bye = [m for m, _ in h.sent if isinstance(m, Request) and m.method == "BYE"]
    assert len(bye) == 1 and call.end_reason == "hangup"
    via = bye[0].get("Via")
    resp = (
        f"SIP/2.0 200 OK\r\nVia: {via}\r\nFrom: {bye[0].get('From')}\r\n"
        f"To: {bye[0].get('To')}\r\nCall-ID: c1\r\nCSeq: 1 BYE\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    before = h.core.transaction_count
    h.feed(resp)
    assert h.core.transaction_count == before - 1  # the BYE client transaction is gone
    h2 = Harness(answer_port=None)
    try:
        h2.feed(request("INVITE", body=offer()))
        h2.calls[0].reject(486)
        h2.loop.run_until_complete(asyncio.sleep(0))
        assert h2.statuses([m for m, _ in h2.sent]) == [100, 180, 486]
        assert h2.calls[0].end_reason == "rejected"
        with pytest.raises(ValueError, match="300..699"):
            h2.calls[0].reject(200)
        with pytest.raises(ValueError, match="local_rtp_port"):
            h2.calls[0].answer(70000)
    finally:
        h2.close()


def test_tables_drain_after_timers():
    """Every transaction is removed by its timer: nothing is kept for ever."""
    h = Harness(timers=Timers(t1=0.05, t2=0.2))
    for i in range(20):
        h.feed(request("OPTIONS", call_id=f"o{i}"))
        h.feed(request("BYE", call_id=f"b{i}", to_tag="x"))
    assert h.core.transaction_count == 40
    assert h.run_until(lambda: h.core.transaction_count == 0, timeout=20)
    h.close()


def test_cancel_after_answer_only_answers_the_cancel(h):
    h.feed(request("INVITE", body=offer(), branch="z9hG4bKca"))
    out = h.feed(request("CANCEL", branch="z9hG4bKca"))
    assert h.statuses(out) == [200]
    assert h.calls[0].state == "answered" and h.core.active_calls == 1
    # A retransmitted INVITE gets the 200 again.
    assert h.statuses(h.feed(request("INVITE", body=offer(), branch="z9hG4bKca"))) == [200]


def test_hangup_before_ack_sends_bye_after_the_ack(h):
    out = h.feed(request("INVITE", body=offer()))
    tag = out[-1].get("To").split("tag=")[1]
    call = h.calls[0]
    call.hangup()
    assert not any(isinstance(m, Request) for m, _ in h.sent)
    out = h.feed(request("ACK", to_tag=tag))
    assert [m.method for m in out if isinstance(m, Request)] == ["BYE"]
    assert call.end_reason == "hangup"


def test_app_exception_rejects_with_500():
    h = Harness(answer_port=None)
    h.core.on_call = lambda call: 1 / 0
    try:
        out = h.feed(request("INVITE", body=offer()))
        assert h.statuses(out) == [100, 500] and h.core.active_calls == 0
    finally:
        h.close()


def test_transaction_flood_is_capped_with_503():
    h = Harness(max_calls=1, max_transactions=10, timers=Timers(t1=0.05, t2=0.2))
    try:
        statuses = []
        for i in range(30):
            statuses += h.statuses(h.feed(request("OPTIONS", call_id=f"f{i}")))
        assert statuses == [200] * 10 + [503] * 20
        assert h.core.transaction_count == 10
        assert h.run_until(lambda: h.core.transaction_count == 0, timeout=20)
        assert h.statuses(h.feed(request("OPTIONS", call_id="later"))) == [200]
    finally:
        h.close()


def test_rtp_ports_one_even_port_per_call_until_exhausted():
    ports = RtpPorts(40001, 40005)
    got = [ports.acquire(), ports.acquire()]
    assert got == [40002, 40004] and ports.in_use == 2
    with pytest.raises(PortsExhausted):
        ports.acquire()
    ports.release(40002)
    assert ports.acquire() == 40002
    with pytest.raises(ValueError, match="not in use"):
        ports.release(40006)
    # a port given back comes again only after every port free before it (so one that
    # another process holds is not handed to call after call)
    ports = RtpPorts(40000, 40008)
    first = ports.acquire()
    ports.release(first)
    assert [ports.acquire() for _ in range(5)] == [40002, 40004, 40006, 40008, 40000]
    for bad in ((5, 10), (40000, 39000), (40001, 40001), ("a", 5)):
        with pytest.raises(ValueError):
            RtpPorts(*bad)


def test_failing_callbacks_and_shutdown_end_calls():
    h = Harness()
    out = h.feed(request("INVITE", body=offer()))
    call = h.calls[0]
    call.on_update = lambda c: 1 / 0  # an application bug: logged, never the server's
    call.on_end = lambda c, reason: 1 / 0
    tag = out[-1].get("To").split("tag=")[1]
    h.feed(request("ACK", to_tag=tag))
    out = h.feed(request("INVITE", to_tag=tag, cseq=2, body=offer("sendonly")))
    assert h.statuses(out) == [200] and call.media.on_hold
    h.close()
    assert call.end_reason == "shutdown" and call.ended.is_set()


def test_require_content_type_and_cseq_order(h):
    out = h.feed(request("INVITE", body=offer(), extra="Require: 100rel, timer\r\n"))
    assert h.statuses(out) == [420] and out[0].get("Unsupported") == "100rel, timer"
    text = request("INVITE", body=b"hello", call_id="ct").replace(b"application/sdp", b"text/plain")
    out = h.feed(text)
    assert h.statuses(out) == [415] and out[0].get("Accept") == "application/sdp"
    assert h.calls == []
    out = h.feed(request("INVITE", body=offer(), cseq=5))
    tag = out[-1].get("To").split("tag=")[1]
    h.feed(request("ACK", to_tag=tag, cseq=5))
    # An in-dialog request with a lower CSeq than the last: 500 (RFC 3261 12.2.2).
    assert h.statuses(h.feed(request("BYE", to_tag=tag, cseq=4))) == [500]
    assert h.calls[0].state == "confirmed"
    assert h.statuses(h.feed(request("BYE", to_tag=tag, cseq=6))) == [200]


def test_call_left_ringing_times_out_with_480():
    h = Harness(answer_port=None, ring_timeout=0.05)
    try:
        h.feed(request("INVITE", body=offer()))
        final = h.wait_sent(lambda m: isinstance(m, Response) and m.status >= 200)
        assert final.status == 480 and h.calls[0].end_reason == "timeout"
        assert h.core.active_calls == 0
    finally:
        h.close()


def test_bad_list_header_in_invite_leaves_no_transaction(h):
    out = h.feed(request("INVITE", body=offer(), extra='Record-Route: <sip:p@h>, "open\r\n'))
    assert h.statuses(out) == [400]
    assert h.core.transaction_count == 0 and h.calls == []


def test_reinvite_without_sdp_and_with_no_common_codec(h):
    out = h.feed(request("INVITE", body=offer()))
    tag = out[-1].get("To").split("tag=")[1]
    h.feed(request("ACK", to_tag=tag))
    call = h.calls[0]
    g729 = (
        offer()
        .replace(b"8 0 101", b"18")
        .replace(b"a=rtpmap:8", b"a=x:8")
        .replace(b"a=rtpmap:0", b"a=x:0")
    )
    out = h.feed(request("INVITE", to_tag=tag, cseq=2, body=g729))
    assert h.statuses(out) == [488] and call.state == "confirmed"
    h.feed(request("ACK", to_tag=tag, cseq=2, branch=out[0].get("Via").split("branch=")[1]))
    # No SDP: our offer goes in the 200, the far end's answer (new address) in the ACK.
    out = h.feed(request("INVITE", to_tag=tag, cseq=3))
    ours = sdp.parse(out[0].body)
    assert h.statuses(out) == [200] and ours.media[0].port == 40000
    moved = offer().replace(b"m=audio 6000", b"m=audio 6100")
    h.feed(request("ACK", to_tag=tag, cseq=3, body=moved))
    assert call.media.remote_rtp == ("127.0.0.1", 6100) and call.state == "confirmed"


def test_late_offer_without_answer_in_ack_ends_with_bye(h):
    out = h.feed(request("INVITE"))
    tag = out[-1].get("To").split("tag=")[1]
    out = h.feed(request("ACK", to_tag=tag))
    assert [m.method for m in out if isinstance(m, Request)] == ["BYE"]
    assert h.calls[0].end_reason == "bad-sdp" and h.core.active_calls == 0


def test_responses_show_received_and_rport(h):
    raw = request("OPTIONS").replace(
        b"Via: SIP/2.0/UDP 127.0.0.1:5099;", b"Via: SIP/2.0/UDP 192.0.2.9:5099;rport;"
    )
    out = h.feed(raw, Peer("udp", "127.0.0.1", 6123))
    via = out[0].get("Via")
    assert via.startswith("SIP/2.0/UDP 192.0.2.9:5099;rport=6123;branch=")
    assert via.endswith(";received=127.0.0.1")


def test_bye_from_us_follows_the_record_route_set():
    """RFC 3261 §12.1.1 / §12.2.1.1: the route set is the INVITE's Record-Route in order;
    our BYE carries it as Route headers, keeps the Contact as Request-URI (loose
    routers) and goes to the first route's address, not to where the INVITE came from."""
    h = Harness()
    try:
        rr = "Record-Route: <sip:192.0.2.7:5070;lr;r2=on>, <sip:198.51.100.8;lr>\r\n"
        out = h.feed(request("INVITE", body=offer(), extra=rr))
        ok = out[-1]
        assert ok.status == 200
        assert ok.get_all("Record-Route") == [
            "<sip:192.0.2.7:5070;lr;r2=on>",
            "<sip:198.51.100.8;lr>",
        ]
        tag = ok.get("To").split("tag=")[1]
        h.feed(request("ACK", to_tag=tag))
        h.calls[0].hangup()
        bye = h.wait_sent(lambda m: isinstance(m, Request) and m.method == "BYE")
        peer = next(p for m, p in h.sent if m is bye)
        assert peer == Peer("udp", "192.0.2.7", 5070)
        assert bye.uri == "sip:alice@127.0.0.1:5099"
        assert bye.get_all("Route") == ["<sip:192.0.2.7:5070;lr;r2=on>", "<sip:198.51.100.8;lr>"]
    finally:
        h.close()


def test_bye_from_us_through_a_strict_router():
    """A first route without ``lr`` is a strict router: it becomes the Request-URI and
    the remote target goes last in the Route set (RFC 3261 §12.2.1.1)."""
    h = Harness()
    try:
        out = h.feed(request("INVITE", body=offer(), extra="Record-Route: <sip:192.0.2.9>\r\n"))
        tag = out[-1].get("To").split("tag=")[1]
        h.feed(request("ACK", to_tag=tag))
        h.calls[0].hangup()
        bye = h.wait_sent(lambda m: isinstance(m, Request) and m.method == "BYE")
        peer = next(p for m, p in h.sent if m is bye)
        assert peer == Peer("udp", "192.0.2.9", 5060)
        assert bye.uri == "sip:192.0.2.9"
        assert bye.get_all("Route") == ["<sip:alice@127.0.0.1:5099>"]
    finally:
        h.close()
