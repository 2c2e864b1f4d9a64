"""recorder.rtp: the compiled RTP receive path, over real UDP sockets on 127.0.0.1.

Every test sends real datagrams with the packer in rtp_helpers and checks the received
media sample by sample against what was sent.  Timing never decides a result: ``take`` is
given the time explicitly (``now``), relative to the receiver's own arrival stamps."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtp_helpers import (
    FRAME,
    Link,
    alaw_frames,
    event_payload,
    ffmpeg_alaw,
    ffmpeg_rtp_sender,
    packet,
    speechlike,
)

from recorder import codecs, rtp

MS = 1_000_000


@pytest.fixture
def link():
    lk = Link()
    yield lk
    lk.close()


def whole(lk: Link, now: int, slot: int = 0) -> np.ndarray:
    """The whole call: everything released at ``now`` plus what remove() hands back."""
    return np.concatenate([lk.take_all(now, slot), lk.rx.remove(slot)])


def stream(n_frames: int, seed: int = 1):
    pcm = speechlike(n_frames * FRAME, seed)
    return pcm, alaw_frames(pcm)


def expected(pcm):
    return codecs.alaw_decode(codecs.alaw_encode(pcm))


def test_in_order_exact(link):
    pcm, frames = stream(50)
    link.send(packet(100 + i, 9000 + FRAME * i, payload=f) for i, f in enumerate(frames))
    t = link.receive()
    out = whole(link, t)
    assert np.array_equal(out, expected(pcm))
    c = link.rx.counters()[0]
    assert c["packets"] == 50 and c["lost"] == 0 and c["late"] == 0


def test_lost_packets_are_exact_silence(link):
    pcm, frames = stream(40)
    lost = {3, 4, 17, 30}
    link.send(packet(i, FRAME * i, payload=f) for i, f in enumerate(frames) if i not in lost)
    out = whole(link, link.receive())
    want = expected(pcm)
    for i in lost:
        want[i * FRAME : (i + 1) * FRAME] = 0
    assert len(out) == len(pcm)
    assert np.array_equal(out, want)
    assert link.rx.counters()[0]["lost"] == len(lost)


def test_reordered_and_duplicated_packets(link):
    pcm, frames = stream(60)
    order = list(range(60))
    for i in range(0, 58, 3):  # swap neighbours, 20..40 ms late
        order[i], order[i + 2] = order[i + 2], order[i]
    dups = [5, 6, 6, 40]
    link.send(packet(i, FRAME * i, payload=frames[i]) for i in order + dups)
    out = whole(link, link.receive())
    assert np.array_equal(out, expected(pcm))
    c = link.rx.counters()[0]
    assert c["duplicates"] == len(dups) and c["late"] == 0 and c["lost"] == 0


def test_packet_later_than_window_is_dropped_as_late():
    lk = Link(window_ms=20)  # 160 samples
    pcm, frames = stream(30)
    lk.send(packet(i, FRAME * i, payload=frames[i]) for i in range(30) if i != 2)
    t = lk.receive()
    first = lk.take_all(t)  # all but the last window released
    assert len(first) == 29 * FRAME
    lk.send([packet(2, 2 * FRAME, payload=frames[2])])  # packet 2 comes 27 frames late
    out = np.concatenate([first, whole(lk, lk.receive())])
    want = expected(pcm)
    want[2 * FRAME : 3 * FRAME] = 0
    assert np.array_equal(out, want)
    c = lk.rx.counters()[0]
    assert c["late"] == 1 and c["lost"] == 0  # it arrived: not lost, but too late
    lk.close()


def test_stall_then_burst_adds_no_silence(link):
    """3.00 s sent with a 200 ms network stall in the middle: 3.00 s recorded, every
    sample in place (the old gap filler made it 3.16 s)."""
    pcm, frames = stream(150)
    link.send(packet(i, FRAME * i, payload=frames[i]) for i in range(75))
    t1 = link.receive()
    # the engine keeps taking during the stall, 200 ms after the last packet
    first = [link.take_all(t1 + k * 20 * MS) for k in range(1, 11)]
    link.send(packet(i, FRAME * i, payload=frames[i]) for i in range(75, 150))  # the burst
    t2 = link.receive()
    out = np.concatenate([*first, whole(link, t2)])
    assert len(out) == 3 * 8000
    assert np.array_equal(out, expected(pcm))


@pytest.mark.parametrize("clock_ran_on", [True, False])
def test_media_stops_clock_runs_on_as_silence(clock_ran_on):
    lk = Link(hold_ms=1000)
    pcm, frames = stream(100)
    lk.send(packet(i, FRAME * i, payload=frames[i]) for i in range(50))
    lk.receive()
    last = lk.rx.position(0)["last_arrival"]
    held = lk.take_all(last + 3000 * MS)  # 3 s without packets
    assert len(held) == 8000 + 3 * 8000  # media + 3 s of silence
    assert np.array_equal(held[:8000], expected(pcm[:8000]))
    assert not held[8000:].any()
    # the far end comes back: with its clock run on (3.1 s later) or stopped
    gap = 3 * 8000 + 800 if clock_ran_on else 0
    lk.send(packet(i, FRAME * i + gap, payload=frames[i]) for i in range(50, 100))
    t = lk.receive()
    rest = whole(lk, t)
    tail = expected(pcm[8000:])
    if clock_ran_on:  # placed at its own timestamp
        assert len(rest) == 800 + len(tail)
        assert not rest[:800].any() and np.array_equal(rest[800:], tail)
    else:  # continues where the silence ended
        assert np.array_equal(rest, tail)
        assert lk.rx.counters()[0]["reanchors"] == 1
    lk.close()


def test_sequence_and_timestamp_wraparound(link):
    pcm, frames = stream(80)
    seq0, ts0 = 65500, 2**32 - 30 * FRAME
    order = list(range(80))
    order[35], order[37] = order[37], order[35]  # reordered right after the seq wrap
    lost = {32}  # lost just before the ts wrap
    link.send(packet(seq0 + i, ts0 + FRAME * i, payload=frames[i]) for i in order if i not in lost)
    out = whole(link, link.receive())
    want = expected(pcm)
    want[32 * FRAME : 33 * FRAME] = 0
    assert np.array_equal(out, want)
    assert link.rx.counters()[0]["lost"] == 1


def test_ssrc_change_continues_at_current_position(link):
    pcm, frames = stream(60)
    link.send(packet(1000 + i, 5000 + FRAME * i, 0xAAAA, frames[i]) for i in range(30))
    link.send(packet(7 + i - 30, 123456789 + FRAME * i, 0xBBBB, frames[i]) for i in range(30, 60))
    out = whole(link, link.receive())
    assert np.array_equal(out, expected(pcm))
    c = link.rx.counters()[0]
    assert c["ssrc_changes"] == 1 and c["lost"] == 0 and c["reanchors"] == 0


def test_ssrc_change_straggler_of_old_source_is_late(link):
    """A packet of the old SSRC reordered behind the new one's first does not flip the
    stream back: it is late, the new stream goes on undisturbed."""
    pcm, frames = stream(60)
    pkts = [packet(i, FRAME * i, 0xAAAA, frames[i]) for i in range(29)]
    pkts += [packet(500, 70000, 0xBBBB, frames[30]), packet(29, 29 * FRAME, 0xAAAA, frames[29])]
    pkts += [
        packet(500 + i - 30, 70000 + FRAME * (i - 30), 0xBBBB, frames[i]) for i in range(31, 60)
    ]
    link.send(pkts)
    out = whole(link, link.receive())
    keep = np.r_[0 : 29 * FRAME, 30 * FRAME : 60 * FRAME]
    assert np.array_equal(out, expected(pcm)[keep])
    c = link.rx.counters()[0]
    assert c["ssrc_changes"] == 1 and c["late"] == 1


def test_padding_csrcs_extension_marker(link):
    pcm, frames = stream(24)
    pkts = []
    for i, f in enumerate(frames):
        kw = {}
        if i % 2:
            kw["padding"] = 1 + i % 7
        if i % 3 == 1:
            kw["csrcs"] = list(range(i % 16))
        if i % 4 == 2:
            kw["ext"] = bytes(range(i))
        pkts.append(packet(i, FRAME * i, payload=f, marker=(i % 5 == 0), **kw))
    link.send(pkts)
    out = whole(link, link.receive())
    assert np.array_equal(out, expected(pcm))
    assert link.rx.counters()[0]["garbage"] == 0


def test_ulaw_and_dynamic_payload_type():
    lk = Link(codec="PCMU", event_pt=None)
    lk.rx.remove(0)
    port = lk.rx.add(0, codec="PCMU", payload_type=96, source=lk.tx.getsockname())
    lk.ports[0] = port
    pcm = speechlike(20 * FRAME)
    data = codecs.ulaw_encode(pcm).tobytes()
    lk.send(
        packet(i, FRAME * i, payload=data[i * FRAME : (i + 1) * FRAME], pt=96) for i in range(20)
    )
    lk.send([packet(20, 20 * FRAME, payload=b"\x55" * FRAME, pt=0)])  # not this call's PT
    out = whole(lk, lk.receive())
    assert np.array_equal(out, codecs.ulaw_decode(codecs.ulaw_encode(pcm)))
    assert lk.rx.counters()[0]["other_pt"] == 1
    lk.close()


def test_remove_reads_what_is_still_queued_on_the_socket(link):
    """A call ended (BYE) before the receiver polled: the packets the caller sent before
    hanging up are still recorded (remove reads the socket first)."""
    pcm, frames = stream(10)
    link.send(packet(100 + i, 9000 + FRAME * i, payload=f) for i, f in enumerate(frames))
    out = link.rx.remove(0)  # no poll in between
    assert np.array_equal(out, expected(pcm))
    assert link.rx.counters()[0]["packets"] == 10


def test_codec_change_decodes_new_and_in_flight_old_packets(link):
    """set_codec (a re-INVITE from PCMA to PCMU): μ-law packets are decoded from then on,
    A-law packets still on their way keep their codec, placed by timestamp; a payload
    type of neither is still dropped."""
    a, b = speechlike(10 * FRAME, seed=3), speechlike(10 * FRAME, seed=4)
    alaw, ulaw = codecs.alaw_encode(a).tobytes(), codecs.ulaw_encode(b).tobytes()
    link.send(packet(i, FRAME * i, payload=alaw[i * FRAME :][:FRAME]) for i in range(9))
    link.receive()
    link.rx.set_codec(0, codec="PCMU", event_payload_type=101)
    link.send(
        packet(i + 10, FRAME * (i + 10), payload=ulaw[i * FRAME :][:FRAME], pt=0) for i in range(10)
    )
    link.send([packet(9, FRAME * 9, payload=alaw[9 * FRAME :])])  # the last A-law one, late
    link.send([packet(20, FRAME * 20, payload=b"\x55" * FRAME, pt=18)])  # G.729: not ours
    out = whole(link, link.receive())
    want = np.concatenate([expected(a), codecs.ulaw_decode(codecs.ulaw_encode(b))])
    assert np.array_equal(out, want)
    c = link.rx.counters()[0]
    assert (c["packets"], c["lost"], c["other_pt"]) == (20, 0, 1)


def test_set_codec_bad_arguments(link):
    with pytest.raises(ValueError, match="codec must be one of"):
        link.rx.set_codec(0, codec="G729")
    with pytest.raises(ValueError, match="must differ"):
        link.rx.set_codec(0, codec="PCMU", event_payload_type=0)
    with pytest.raises(ValueError, match="not in use"):
        link.rx.set_codec(1, codec="PCMU")
    with pytest.raises(ValueError, match="slot"):
        link.rx.set_codec(99, codec="PCMU")


def test_wrong_source_dropped_and_counted(link):
    pcm, frames = stream(20)
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind(("127.0.0.1", 0))
    for i, f in enumerate(frames):
        link.send([packet(i, FRAME * i, payload=f)])
        link.send([packet(i, FRAME * i, payload=b"\x00" * FRAME)], sender=intruder)
    out = whole(link, link.receive())
    intruder.close()
    assert np.array_equal(out, expected(pcm))
    c = link.rx.counters()[0]
    assert c["wrong_source"] == 20 and c["packets"] == 20


def test_latches_to_first_source():
    lk = Link(source_from_sender=False)
    pcm, frames = stream(20)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    lk.send([b"\x00garbage"], sender=other)  # garbage does not latch
    lk.send(packet(i, FRAME * i, payload=f) for i, f in enumerate(frames))
    lk.send([packet(20, 20 * FRAME, payload=b"\x00" * FRAME)], sender=other)
    out = whole(lk, lk.receive())
    other.close()
    assert np.array_equal(out, expected(pcm))
    c = lk.rx.counters()[0]
    assert (c["garbage"], c["wrong_source"], c["packets"]) == (1, 1, 20)
    lk.close()


def test_latches_only_to_the_sdp_address():
    """source=(host, 0): the port is learnt from the first packet from the SDP's host; a
    packet from another address, even first, neither latches nor is placed."""
    lk = Link(slots=())
    lk.ports[0] = lk.rx.add(0, codec="PCMA", event_payload_type=101, source=("127.0.0.1", 0))
    pcm, frames = stream(20)
    elsewhere = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    elsewhere.bind(("127.0.0.2", 0))  # another address (all of 127/8 is loopback)
    same_host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    same_host.bind(("127.0.0.1", 0))
    lk.send([packet(0, 0, payload=b"\x00" * FRAME)], sender=elsewhere)  # first, yet refused
    lk.send(packet(i, FRAME * i, payload=f) for i, f in enumerate(frames))
    lk.send([packet(20, 20 * FRAME, payload=b"\x00" * FRAME)], sender=same_host)  # latched
    out = whole(lk, lk.receive())
    elsewhere.close()
    same_host.close()
    assert np.array_equal(out, expected(pcm))
    c = lk.rx.counters()[0]
    assert (c["wrong_source"], c["packets"]) == (2, 20)
    lk.close()


def test_malformed_datagrams_counted_audio_intact(link):
    pcm, frames = stream(20)
    good = packet(0, 0, payload=b"\x55" * 4)
    bad = [
        b"",
        b"\x80",
        good[:11],  # too short
        bytes([0x40]) + good[1:],  # version 1
        good[:-1] + bytes([200])
        if False
        else bytes([good[0] | 0x20]) + good[1:-1] + bytes([200]),  # padding longer than packet
        bytes([good[0] | 0x20]) + good[1:-1] + bytes([0]),  # padding count 0
        bytes([0x8F]) + good[1:],  # 15 CSRCs, none there
        bytes([0x90]) + good[1:12] + b"\xbe\xde\xff\xff" + b"\x55" * 4,  # extension too long
        packet(0, 0, payload=b""),  # no payload
        packet(0, 0, payload=event_payload(1, False, 10, 0)[:3], pt=101),  # short event
        b"\x80\x08" + os.urandom(2000),  # larger than any RTP here
    ]
    for i, f in enumerate(frames):
        link.send([packet(i, FRAME * i, payload=f)])
        link.send([bad[i % len(bad)]])
    out = whole(link, link.receive())
    assert np.array_equal(out, expected(pcm))
    c = link.rx.counters()[0]
    assert c["garbage"] == 20 and c["packets"] == 20


header_byte = st.sampled_from([0x80, 0x90, 0xA0, 0xB0, 0x8F, 0x81, 0x40, 0x00, 0xFF])
fuzz_datagram = st.one_of(
    st.binary(max_size=400),
    st.builds(
        lambda b0, pt, rest: bytes([b0, pt]) + rest,
        header_byte,
        st.sampled_from([8, 0x88, 101, 0xE5, 0, 72, 200]),
        st.binary(max_size=300),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk=st.lists(fuzz_datagram, max_size=40))
def test_fuzz_garbage_never_crashes_counters_add_up(junk):
    lk = Link(source_from_sender=False)
    try:
        pcm, frames = stream(10)
        lk.send([packet(i, FRAME * i, payload=f) for i, f in enumerate(frames)] + junk)
        t = lk.receive()  # every datagram read, none stalls it
        c = lk.rx.counters()[0]
        assert sum(int(c[k]) for k in ("packets", "wrong_source", "garbage", "other_pt")) == lk.sent
        out = whole(lk, t + 5000 * MS)
        assert out.dtype == np.int16
        # audio sent before the junk is in place unless junk passed as this call's RTP
        if c["packets"] == 10:
            assert np.array_equal(out[: len(pcm)], expected(pcm))
    finally:
        lk.close()


def test_rfc4733_one_digit_true_start_redundant_ends(link):
    pcm, frames = stream(30)
    pkts = [packet(i, FRAME * i, payload=frames[i]) for i in range(10)]
    ts_ev = 10 * FRAME
    seq = 10
    for k, dur in enumerate((160, 320, 480, 640)):
        if k == 0:
            seq += 1  # the first event packet is lost
            continue
        pkts.append(
            packet(seq, ts_ev, payload=event_payload(5, False, 12, dur), pt=101, marker=(k == 0))
        )
        seq += 1
    ends = [
        packet(seq + j, ts_ev, payload=event_payload(5, True, 12, 800), pt=101) for j in range(3)
    ]
    pkts += [ends[1], ends[0], ends[2], ends[2]]  # reordered and duplicated ends
    seq += 3
    for i in range(15, 30):  # audio resumes after the digit
        pkts.append(packet(seq + i - 15, FRAME * i, payload=frames[i]))
    # a second digit '#', then its end
    pkts.append(packet(seq + 15, 30 * FRAME, payload=event_payload(11, False, 7, 160), pt=101))
    pkts.append(packet(seq + 16, 30 * FRAME, payload=event_payload(11, True, 7, 320), pt=101))
    link.send(pkts)
    out = whole(link, link.receive())
    ev = link.rx.events()
    assert ev.dtype == rtp.EVENT_DTYPE
    got = [
        (int(e["kind"]), chr(e["digit"]), int(e["row"]), int(e["start"]), int(e["end"])) for e in ev
    ]
    assert got == [
        (rtp.DIGIT_START, "5", 0, 1600, -1),
        (rtp.DIGIT_END, "5", 0, 1600, 2400),
        (rtp.DIGIT_START, "#", 0, 4800, -1),
        (rtp.DIGIT_END, "#", 0, 4800, 5120),
    ]
    assert ev["level"][0] == -12
    want = expected(pcm)
    want[10 * FRAME : 15 * FRAME] = 0  # the digit's time is silence
    assert np.array_equal(out[: len(want)], want)
    assert not out[len(want) :].any()
    assert link.rx.counters()[0]["events"] == 2
    assert len(link.rx.events()) == 0  # drained


def test_many_calls_one_block():
    lk = Link(slots=(0, 2, 3), max_calls=5)
    sent = {}
    for slot in (0, 2, 3):
        pcm, frames = stream(12, seed=slot + 5)
        sent[slot] = expected(pcm)
        lk.send(
            (packet(i, 777 * slot + FRAME * i, payload=f) for i, f in enumerate(frames)), slot=slot
        )
    t = lk.receive()
    got = {0: [], 2: [], 3: []}
    while True:
        block, slots = lk.rx.take(FRAME, now=t)
        if not len(slots):
            break
        assert block.shape == (len(slots), FRAME) and block.dtype == np.int16
        assert len(set(slots.tolist())) == len(slots) == 3
        for row, s in zip(block, slots, strict=True):
            got[int(s)].append(row)
    for slot in (0, 2, 3):
        out = np.concatenate(got[slot] + [lk.rx.remove(slot)])
        assert np.array_equal(out, sent[slot])
    lk.close()


def test_rtp_timeout_and_silence_before_first_packet(link):
    added = link.rx.position(0)["last_arrival"]
    assert list(link.rx.timed_out(60, now=added + 59_000 * MS)) == []
    assert list(link.rx.timed_out(60, now=added + 61_000 * MS)) == [0]
    assert len(link.take_all(added + 500 * MS)) == 0  # waiting for the first packet
    silent = link.take_all(added + 2000 * MS)  # nothing came: clock runs
    assert len(silent) == 16000 and not silent.any()


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_calls"):
        rtp.RtpReceiver(0)
    with pytest.raises(TypeError, match="max_calls"):
        rtp.RtpReceiver(2.0)
    with pytest.raises(ValueError, match="hold_ms"):
        rtp.RtpReceiver(2, window_ms=100, hold_ms=50)
    with rtp.RtpReceiver(2) as rx:
        with pytest.raises(ValueError, match="slot"):
            rx.add(2)
        with pytest.raises(ValueError, match="codec"):
            rx.add(0, codec="G729")
        with pytest.raises(ValueError, match="payload_type"):
            rx.add(0, payload_type=128)
        with pytest.raises(ValueError, match="differ"):
            rx.add(0, payload_type=101, event_payload_type=101)
        with pytest.raises(ValueError, match="IPv4"):
            rx.add(0, source=("::1", 5000))
        with pytest.raises(TypeError, match="source"):
            rx.add(0, source="127.0.0.1:5000")
        rx.add(0)
        with pytest.raises(ValueError, match="in use"):
            rx.add(0)
        with pytest.raises(ValueError, match="not in use"):
            rx.remove(1)
        with pytest.raises(ValueError, match="n must"):
            rx.take(0)
        with pytest.raises(ValueError, match="timeout_ms"):
            rx.poll(-2)
        with pytest.raises(ValueError, match="timeout_s"):
            rx.timed_out(0)


def test_add_media_from_sdp():
    from recorder.sip.sdp import Media

    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    media = Media(
        codec="PCMU",
        payload_type=0,
        telephone_event=101,
        ptime=20,
        remote_rtp=tx.getsockname(),
        direction="sendrecv",
    )
    with rtp.RtpReceiver(1) as rx:
        port = rx.add_media(0, media)
        pcm = speechlike(FRAME * 5)
        data = codecs.ulaw_encode(pcm).tobytes()
        for i in range(5):
            tx.sendto(
                packet(i, FRAME * i, payload=data[i * FRAME : (i + 1) * FRAME], pt=0),
                ("127.0.0.1", port),
            )
        while rx.counters()[0]["packets"] < 5:
            rx.poll(50)
        assert np.array_equal(rx.remove(0), codecs.ulaw_decode(codecs.ulaw_encode(pcm)))
    tx.close()


def test_ffmpeg_rtp_sender(ffmpeg, tmp_path):
    """A real sender: ffmpeg paced at 20 ms frames, A-law RTP; the recording equals the
    A-law decode of the file from the first packet on."""
    from recorder import wav

    pcm = speechlike(8000)  # 1 s
    src = tmp_path / "in.wav"
    wav.write(src, pcm, fmt="s16bit")
    alaw = ffmpeg_alaw(ffmpeg, src)
    with rtp.RtpReceiver(1, buffer_ms=4000) as rx:
        port = rx.add(0, codec="PCMA")  # latch: ffmpeg's port is random
        proc = subprocess.Popen(
            ffmpeg_rtp_sender(ffmpeg, src, port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.returncode == 0, err
        while rx.poll(0):
            pass
        c = rx.counters()[0]
        assert c["packets"] == 50 and c["garbage"] == 0 and c["lost"] == 0
        out = rx.remove(0)
    assert np.array_equal(out, codecs.alaw_decode(alaw))


def test_feed_replay_same_rules_as_socket():
    """Packets handed over from memory (a capture replay) follow the same rules: loss,
    reordering, duplicates; both input forms give the same result."""
    pcm, frames = stream(30)
    order = [1, 0, 2, 3, 3, 5, 4, *range(7, 30)]  # 6 lost, 3 duplicated
    pkts = [packet(i, 4000 + FRAME * i, payload=frames[i]) for i in order]
    want = expected(pcm)
    want[6 * FRAME : 7 * FRAME] = 0
    with rtp.RtpReceiver(2, buffer_ms=8000) as rx:
        rx.add(0)
        rx.add(1)
        rx.feed(0, pkts)
        rx.feed(1, b"".join(pkts), lengths=[len(p) for p in pkts])
        rx.feed(1, [b"\x01\x02"])  # garbage is counted
        c = rx.counters()
        assert c["duplicates"][0] == c["duplicates"][1] == 1
        assert c["lost"][0] == 1 and c["garbage"][1] == 1
        assert np.array_equal(rx.remove(0), want)
        assert np.array_equal(rx.remove(1), want)
        rx.add(0)
        with pytest.raises(TypeError, match="sequence"):
            rx.feed(0, b"\x80\x08")
        with pytest.raises(ValueError, match="lengths"):
            rx.feed(0, b"\x80\x08", lengths=[3])
        with pytest.raises(ValueError, match="not in use"):
            rx.feed(1, [b""])


def test_feed_takes_any_bytes_like_packets_and_names_bad_ones():
    """Each packet may be any contiguous bytes-like object, given one by one or in any
    iterable; anything else is a TypeError naming the datagrams, and lengths that do not
    add up to the buffer a ValueError."""
    pcm, frames = stream(6)
    pkts = [packet(i, FRAME * i, payload=frames[i]) for i in range(6)]
    kinds = [
        bytes,
        bytearray,
        memoryview,
        lambda p: np.frombuffer(p, np.uint8),
        lambda p: np.frombuffer(p, np.uint16),  # any buffer: its bytes (172: even)
    ]
    with rtp.RtpReceiver(len(kinds) + 1, buffer_ms=2000) as rx:
        for slot, kind in enumerate(kinds):
            rx.add(slot)
            rx.feed(slot, (kind(p) for p in pkts[:-1]))  # a generator, one type each
            rx.feed(slot, [kind(pkts[-1])])
        for slot in range(len(kinds)):
            assert np.array_equal(rx.remove(slot), expected(pcm)), slot
        rx.add(0)
        good = pkts[0]
        for bad in ([1], ["\x80\x08"], [None], 5, None, [good, None], itertools.count()):
            with pytest.raises(TypeError, match="datagrams"):
                rx.feed(0, bad)
        with pytest.raises(ValueError, match="lengths"):
            rx.feed(0, b"".join(pkts), lengths=[len(p) for p in pkts[:-1]])
        assert rx.counters()[0]["packets"] == 0  # nothing of a refused call was placed


def test_threads_feeding_and_taking_at_once_do_not_deadlock():
    """feed, take, events and counters from several threads at once: the receiver's lock
    is never waited for with the GIL held (a thread holding the lock may need the GIL),
    so every thread finishes.  Run in a child process, so a deadlock fails the test
    instead of hanging the suite."""
    script = textwrap.dedent(
        """
        import struct, threading, time
        from recorder import rtp
        rx = rtp.RtpReceiver(64, buffer_ms=2000)
        for i in range(64):
            rx.add(i, codec="PCMA")
        pkts = [struct.pack("!BBHII", 0x80, 8, i, i * 160, 7) + bytes(160) for i in range(50)]
        stop = time.monotonic() + 1.5
        def feeder():
            i = 0
            while time.monotonic() < stop:
                rx.feed(i % 64, pkts[i % 50 : i % 50 + 1])
                i += 1
        def taker():
            while time.monotonic() < stop:
                rx.take(160)
                rx.events()
                rx.counters()
        threads = [threading.Thread(target=f) for f in (feeder, taker, feeder, taker)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("finished", int(rx.counters()["packets"].sum()) > 0)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["finished", "True"]


def test_inband_dtmf_survives_the_receive_path(link):
    """In-band digits still work: the received audio, with a lost packet and reordering
    around the digit, gives the same digit at the same sample as the audio sent."""
    from recorder import dsp

    n = 40 * FRAME
    t = np.arange(n)
    amp = 16139 * np.sqrt(2) * 10 ** (-10 / 20)  # -10 dBm0 per tone
    pcm = np.zeros(n, np.int16)
    tone = slice(12 * FRAME + 37, 24 * FRAME + 37)  # '5', 96 ms, not frame aligned
    pcm[tone] = (
        amp * (np.sin(2 * np.pi * 770 * t[tone] / 8000) + np.sin(2 * np.pi * 1336 * t[tone] / 8000))
    ).astype(np.int16)
    frames = alaw_frames(pcm)
    order = [i for i in range(40) if i != 30]
    order[14], order[15] = order[15], order[14]
    link.send(packet(i, FRAME * i, payload=frames[i]) for i in order)
    out = whole(link, link.receive())
    sent = dsp.detect_dtmf(expected(pcm))
    got = dsp.detect_dtmf(out)
    assert [d.digit for d in got] == ["5"]
    assert got == sent


def test_ring_overrun_and_event_queue_overflow_are_counted():
    lk = Link(buffer_ms=200, max_events=16)  # ring of 2048 samples
    pcm, frames = stream(20)
    lk.send(packet(i, FRAME * i, payload=f) for i, f in enumerate(frames))
    lk.send(
        packet(20 + k, FRAME * (20 + k), payload=event_payload(k % 16, False, 10, 160), pt=101)
        for k in range(20)
    )
    out = whole(lk, lk.receive())
    c = lk.rx.counters()[0]
    kept = 2048 // FRAME  # whole frames that fit the ring
    assert c["overrun"] == 20 - kept
    assert np.array_equal(out[: kept * FRAME], expected(pcm[: kept * FRAME]))
    assert len(lk.rx.events()) == 16 and lk.rx.lost_events > 0
    lk.close()


def test_poll_in_a_thread_while_calls_come_and_go():
    """A poller thread (as the engine would run) while another thread adds and removes
    calls and sends to them: nothing crashes, every call gets exactly its packets."""
    import threading

    rx = rtp.RtpReceiver(8, buffer_ms=4000)
    stop = threading.Event()

    def poller():
        while not stop.is_set():
            rx.poll(5)

    th = threading.Thread(target=poller)
    th.start()
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    try:
        for rnd in range(30):
            slot = rnd % 8
            port = rx.add(slot, source=tx.getsockname())
            pcm, frames = stream(5, seed=rnd)
            for i, f in enumerate(frames):
                tx.sendto(packet(i, FRAME * i, payload=f), ("127.0.0.1", port))
            while rx.counters()[slot]["packets"] < 5:
                rx.poll(20)
            assert np.array_equal(rx.remove(slot), expected(pcm))
    finally:
        stop.set()
        th.join()
        rx.close()
        tx.close()


HUGE = (2**31, 2**63, 2**64 - 1, 2**70, -(2**70))


def test_compiled_core_refuses_hostile_arguments():
    """The compiled module is the last check before code without bounds checks: it is
    safe on its own (ValueError/TypeError, never OverflowError or a crash)."""
    from recorder._codecs import rtp as k

    for bad in (*HUGE, -1):
        with pytest.raises(ValueError):
            k.RtpCore(bad, 4096, 640, 10**9, 64)
    with pytest.raises(ValueError, match="power of two"):
        k.RtpCore(2, 3000, 640, 10**9, 64)
    with pytest.raises(TypeError):
        k.RtpCore(2.5, 4096, 640, 10**9, 64)
    core = k.RtpCore(2, 4096, 640, 10**9, 64)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        for bad in (*HUGE, -1, 2):
            for call in (
                lambda bad=bad: core.add(bad, s.fileno(), 0, 8, -1, 0, 0),
                lambda bad=bad: core.remove(bad),
                lambda bad=bad: core.state(bad),
                lambda bad=bad: core.active(bad),
                lambda bad=bad: core.feed(bad, np.zeros(0, np.uint8), np.zeros(0, np.int64), 0),
                lambda bad=bad: core.take(bad if bad != 2 else 4096, 0, 1),
                lambda bad=bad: core.take(160, 0, bad if bad != 2 else 3),
                lambda bad=bad: core.poll(bad if bad not in (-1, 2) else -2),
            ):
                with pytest.raises(ValueError):
                    call()
        with pytest.raises(ValueError, match="codec"):
            core.add(0, s.fileno(), 2, 8, -1, 0, 0)
        with pytest.raises(ValueError, match="src_port"):
            core.add(0, s.fileno(), 0, 8, -1, 0, 70000)
        with pytest.raises(TypeError):
            core.add("0", s.fileno(), 0, 8, -1, 0, 0)
        core.add(0, s.fileno(), 0, 8, -1, 0, 0)
        with pytest.raises(ValueError, match="lengths"):
            core.feed(0, np.zeros(10, np.uint8), np.array([4, 7], np.int64), 0)
        with pytest.raises(ValueError, match="lengths"):
            core.feed(0, np.zeros(10, np.uint8), np.array([-1], np.int64), 0)
        with pytest.raises(ValueError, match="now"):
            core.idle(-1, 5)
        core.feed(0, np.zeros(10, np.uint8), np.array([4, 6], np.int64), 0)
        assert core.counters()[0, list(k.COUNTER_NAMES).index("garbage")] == 2
        core.remove(0)
    finally:
        s.close()
