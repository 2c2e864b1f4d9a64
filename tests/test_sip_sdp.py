"""SDP offer/answer (RFC 3264) for the recording endpoint."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sip_helpers import offer

from recorder.sip import sdp


def test_answer_picks_first_g711_echoes_telephone_event_and_ptime():
    body, media = sdp.answer(sdp.parse(offer()), "127.0.0.1", 40000, 7, 2)
    assert media == sdp.Media("PCMA", 8, 101, 30, ("127.0.0.1", 6000), "sendrecv", False)
    text = body.decode()
    assert "o=- 7 2 IN IP4 127.0.0.1" in text and "c=IN IP4 127.0.0.1" in text
    assert "m=audio 40000 RTP/AVP 8 101\r\n" in text
    assert "a=rtpmap:101 telephone-event/8000" in text and "a=fmtp:101 0-15" in text
    assert "a=ptime:30" in text and text.endswith("a=recvonly\r\n")


def test_pcmu_static_without_rtpmap_and_no_telephone_event():
    o = (
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"
        b"m=audio 5004 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\n"
    )
    body, media = sdp.answer(sdp.parse(o), "127.0.0.1", 40000, 1, 1)
    assert (media.codec, media.payload_type, media.telephone_event, media.ptime) == (
        "PCMU",
        0,
        None,
        20,
    )
    assert media.remote_rtp == ("192.0.2.9", 5004)
    assert b"telephone-event" not in body and b"a=ptime:20" in body


def test_dynamic_pcma_and_refused_streams_keep_m_line_count():
    o = (
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        b"m=audio 5004 RTP/AVP 97 96\r\na=rtpmap:97 pcma/8000\r\n"
        b"a=rtpmap:96 telephone-event/8000\r\n"
    )
    body, media = sdp.answer(sdp.parse(o), "127.0.0.1", 40000, 1, 1)
    ans = sdp.parse(body)
    assert [(m.media, m.port) for m in ans.media] == [("video", 0), ("audio", 40000)]
    assert (media.codec, media.payload_type, media.telephone_event) == ("PCMA", 97, 96)


@pytest.mark.parametrize(
    "direction,answered,held",
    [
        ("sendrecv", "recvonly", False),
        ("sendonly", "recvonly", True),
        ("recvonly", "inactive", False),
        ("inactive", "inactive", True),
    ],
)
def test_hold_directions(direction, answered, held):
    body, media = sdp.answer(sdp.parse(offer(direction)), "127.0.0.1", 40000, 1, 1)
    assert sdp.parse(body).media[0].direction == answered and media.on_hold is held


def test_errors():
    with pytest.raises(sdp.NoCommonCodec):
        sdp.negotiate(sdp.parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 18\r\n"))
    with pytest.raises(sdp.NoCommonCodec):  # SRTP profile: not ours
        sdp.negotiate(sdp.parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/SAVP 0\r\n"))
    for bad in (
        b"",
        b"v=1\r\n",
        b"v=0\r\nc=IN IP4 nope\r\n",
        b"v=0\r\nm=audio x RTP/AVP 0",
        b"v=0\r\nbroken\r\n",
        b"v=0\r\n" + b"a=x\r\n" * 5000,
        b"\xff\xfe",
    ):
        with pytest.raises(sdp.SdpError):
            sdp.parse(bad)
    with pytest.raises(sdp.SdpError, match="c="):
        sdp.negotiate(sdp.parse(b"v=0\r\nm=audio 5 RTP/AVP 0\r\n"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_sdp_raises_only_sdp_error(data):
    try:
        sdp.answer(sdp.parse(b"v=0\r\n" + data), "127.0.0.1", 40000, 1, 1)
    except sdp.SdpError:
        pass
