"""``recorder serve`` against real peers and real media senders, end to end.

* baresip (Debian ``baresip-core``) places a call playing a WAV file (``aufile``);
* SIPp places 200 calls at 40 calls per second with ``rtp_stream``;
* ffmpeg sends paced 20 ms A-law RTP to the port in our 200's SDP;
* a test sender (tests/rtp_helpers.py) injects loss, reordering, duplicates, a stall and
  a burst, an SSRC change and sequence/timestamp wraparound through the whole server;
* a late offer (SDP in the ACK), a re-INVITE from PCMA to PCMU, and ``--advertise``.

The server runs as a subprocess (``test_serve.Serve``); calls without SIPp or baresip
use the small UDP caller ``sip_helpers.Uac``.  Every process is stopped by its PID and
every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from rtp_helpers import ffmpeg_alaw, ffmpeg_rtp_sender, packet
from signals import speechlike
from sip_helpers import Uac, sdp_of, sdp_offer
from test_serve import (
    Serve,
    alaw_file,
    assert_whole_call,
    audio_bytes,
    free_rtp_range,
    free_udp_port,
    published,
    run_sipp,
    sipp_cmd,
)

from recorder import codecs, wav

FRAME = 160


@pytest.fixture(scope="module")
def sipp():
    from conftest import need_exe

    return need_exe("sipp")


@pytest.fixture(scope="module")
def baresip():
    from conftest import need_exe

    return need_exe("baresip")


@pytest.fixture
def serve(tmp_path):
    started: list[Serve] = []

    def start(*args: str) -> Serve:
        s = Serve(tmp_path, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


def stop(proc: subprocess.Popen) -> None:
    """Stop a process this test started, by its PID (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- a recording app that tells the test where to send RTP ---------------------------------

RECORD_APP = """\
import logging
log = logging.getLogger("test-app")
def app(channel):
    channel.answer()
    channel.FileRecorder.start(channel.call.id + ".wav", milliseconds_max_silence=0,
                               max_bytes=0)
    log.info("recording", extra={"fields": {"call_id": channel.call.call_id}})
    channel.FileRecorder.wait_until_finished(None)
"""


def record_server(serve, tmp_path: Path, *args: str) -> Serve:
    app = tmp_path / "rec_app.py"
    app.write_text(RECORD_APP)
    return serve(f"{app}:app", *args)


def rtp_sender() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def paced(sock: socket.socket, port: int, datagrams, start: float | None = None) -> float:
    """Send ``(due_seconds, datagram)`` pairs at their due times after ``start`` (a real
    sender's pacing); returns ``start``."""
    start = time.monotonic() if start is None else start
    for due, d in datagrams:
        delay = start + due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendto(d, ("127.0.0.1", port))
    return start


def call_with(srv: Serve, offer: bytes, call_id: str) -> tuple[Uac, int]:
    """INVITE with ``offer``, ACK the 200: (the caller, our RTP port from the SDP)."""
    uac = Uac(srv.port, call_id=call_id)
    ok = uac.invite(offer)
    assert ok.status == 200, ok.status
    uac.ack()
    return uac, int(sdp_of(ok)["port"])


def hang_up(srv: Serve, uac: Uac) -> dict:
    """BYE once the app's recording runs; the call's end, checked."""
    srv.wait_for(lambda e: e.get("msg") == "recording" and e["call_id"] == uac.call_id)
    assert uac.bye().status == 200
    uac.close()
    end = srv.wait_for(lambda e: e.get("msg") == "call end")
    assert srv.terminate() == 0
    assert end["cause"] == "HANGUP" and end["end"] == "bye"
    assert [str(f) for f in published(srv.media)] == [end["file"]]
    return end


# -- baresip -------------------------------------------------------------------------------


def alaw_rank(codes: np.ndarray) -> np.ndarray:
    """The A-law quantisation level (0..255 in signal order) of each code."""
    levels = codecs.alaw_decode(np.arange(256, dtype=np.uint8)).astype(np.int32)
    order = np.unique(levels)
    return np.searchsorted(order, levels)[codes]


def test_baresip_call_playing_a_wav_file_is_recorded(baresip, serve, tmp_path):
    """A real softphone: baresip dials the server (no registration, 127.0.0.1, PCMA
    only), its ``aufile`` source plays a WAV file; the server's built-in app records 2 s
    and hangs up.  The recording is the file, after baresip's start latency, within one
    A-law step per sample (baresip encodes the file to PCMA itself and rounds some
    samples differently), and mostly exact."""
    pcm = speechlike(4.0, dbm0=-12, seed=21)
    wav.write(tmp_path / "play.wav", pcm, fmt="s16bit", rate=8000)
    conf = tmp_path / "baresip"
    conf.mkdir()
    (conf / "config").write_text(
        "poll_method epoll\n"
        "call_local_timeout 30\n"
        f"audio_source aufile,{tmp_path / 'play.wav'}\n"
        "sip_listen 127.0.0.1:0\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule_tmp account.so\nmodule_app menu.so\n"
    )
    (conf / "accounts").write_text("<sip:tester@127.0.0.1>;regint=0;audio_codecs=PCMA/8000/1\n")
    srv = serve("--timeout", "2", "--max-silence-ms", "0")
    phone = subprocess.Popen(
        [
            baresip,
            "-f",
            str(conf),
            "-n",
            "127.0.0.1",
            "-e",
            f"/dial sip:rec@127.0.0.1:{srv.port}",
            "-t",
            "60",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        end = srv.wait_for(lambda e: e.get("msg") == "call end", timeout=60)
    finally:
        stop(phone)
    assert srv.terminate() == 0
    start = next(e for e in srv.lines if e.get("msg") == "call start")
    assert start["codec"] == "PCMA"  # the account allows PCMA only
    assert end["cause"] == "TIMEOUT" and end["end"] == "hangup", end
    assert end["lost"] == 0
    got = np.frombuffer(audio_bytes(end["file"]), np.uint8)
    assert got.size == 2 * 8000  # --timeout 2, at the sample
    expected = codecs.alaw_encode(pcm)  # baresip encodes the file with its own G.711
    # align (baresip's start latency): recording[i] is file[i - d]
    rec = codecs.alaw_decode(got).astype(np.float64)
    ref = pcm.astype(np.float64)
    d_max = 4000
    window = rec[d_max : d_max + 8000]
    scores = [
        float(np.dot(window, ref[d_max - d : d_max - d + 8000])) for d in range(-d_max, d_max + 1)
    ]
    d = int(np.argmax(scores)) - d_max
    body = np.arange(max(d, 0), got.size)
    assert body.size >= 8000, d  # at least 1 s of the file, after any leading silence
    assert set(got[: max(d, 0)].tolist()) <= {0xD5, 0x55}
    step = np.abs(alaw_rank(got[body]) - alaw_rank(expected[body - d]))
    assert step.max() <= 1, (d, int(step.max()), int((step > 1).sum()))
    assert (step == 0).mean() > 0.9, (d, float((step == 0).mean()))


# -- 200 calls at 40 calls per second --------------------------------------------------------


def test_200_calls_at_40_per_second_are_all_recorded_exactly(sipp, serve, tmp_path):
    """SIPp places 200 calls at 40 per second (up to 200 at once), each streaming 1 s of
    A-law with ``rtp_stream``: every call is recorded, byte for byte (about 10 s)."""
    audio = alaw_file(tmp_path, speechlike(1.0, dbm0=-15, seed=23))
    lo, hi = free_rtp_range(640)
    srv = serve("--max-calls", "300", "--rtp-ports", f"{lo}-{hi}")
    cmd = sipp_cmd(sipp, tmp_path, srv.port, pause_ms=1500, calls=200, rate=40, limit=200)
    p = run_sipp(cmd, tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    deadline = time.monotonic() + 60
    while len(srv.ends()) < 200:
        assert time.monotonic() < deadline, f"{len(srv.ends())} of 200 calls ended"
        time.sleep(0.1)
    assert srv.terminate() == 0
    ends = srv.ends()
    assert len({e["call_id"] for e in ends}) == 200
    assert all(e["cause"] == "HANGUP" and e["end"] == "bye" for e in ends)
    assert all((e["packets"], e["lost"], e["late"]) == (len(audio) // FRAME, 0, 0) for e in ends)
    files = published(srv.media)
    assert sorted(str(f) for f in files) == sorted(e["file"] for e in ends)
    for f in files:
        assert_whole_call(audio_bytes(str(f)), audio)


# -- ffmpeg and the impairment sender through the whole server ------------------------------


def test_ffmpeg_rtp_through_sip_is_recorded_sample_by_sample(ffmpeg, serve, tmp_path):
    """SIP by our caller, media by ``ffmpeg -re ... -f rtp`` (20 ms A-law packets, paced)
    to the port of our 200's SDP: the recording is what ffmpeg sent, byte for byte
    (ffmpeg's own A-law of the file: its encoder rounds some samples differently from
    G.191's, so the expected bytes come from ffmpeg too)."""
    pcm = speechlike(2.0, dbm0=-15, seed=25)
    wav.write(tmp_path / "talk.wav", pcm, fmt="s16bit", rate=8000)
    srv = record_server(serve, tmp_path)
    sender_port = free_udp_port(even=True)
    uac, port = call_with(srv, sdp_offer(sender_port, "8"), "ffmpeg-1")
    p = subprocess.run(
        ffmpeg_rtp_sender(ffmpeg, tmp_path / "talk.wav", port, sender_port),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    end = hang_up(srv, uac)
    assert (end["packets"], end["lost"], end["late"]) == (pcm.size // FRAME, 0, 0)
    sent = ffmpeg_alaw(ffmpeg, tmp_path / "talk.wav")
    assert len(sent) == pcm.size
    assert_whole_call(audio_bytes(end["file"]), sent)


def test_impaired_rtp_through_the_whole_server_is_placed_by_timestamp(serve, tmp_path):
    """Loss, reordering, duplicates, a 200 ms stall then a burst, an SSRC change, and
    sequence number and timestamp wraparound, sent to the server over a real SIP call:
    the recording is what was sent, a lost packet is exactly its 20 ms of silence, and
    the stall adds nothing."""
    pcm = speechlike(3.0, dbm0=-15, seed=27)
    frames = [codecs.alaw_encode(pcm[i : i + FRAME]).tobytes() for i in range(0, pcm.size, FRAME)]
    lost = {12}
    srv = record_server(serve, tmp_path)
    tx = rtp_sender()
    uac, port = call_with(srv, sdp_offer(tx.getsockname()[1], "8 101"), "impaired-1")
    seq0, ts0 = 65530, 2**32 - 5 * FRAME  # both wrap within the first frames
    sends: list[tuple[float, bytes]] = []
    for i, payload in enumerate(frames):
        if i < 100:
            pkt = packet(seq0 + i, ts0 + i * FRAME, 0x1111, payload, marker=i == 0)
        else:  # a new source: its own sequence and clock
            pkt = packet(7 + i, 90000 + i * FRAME, 0x2222, payload, marker=i == 100)
        due = i * 0.02
        if 40 <= i < 50:
            due = 50 * 0.02  # a 200 ms stall, then the held packets in a burst
        if i in lost:
            continue
        sends.append((due, pkt))
        if i == 30:
            sends.append((due, pkt))  # a duplicate
    sends[20], sends[21] = sends[21], sends[20]  # reordered
    paced(tx, port, sends)
    tx.close()
    end = hang_up(srv, uac)
    assert (end["packets"], end["lost"]) == (len(sends), len(lost))  # the duplicate counts
    expected = b"".join(b"\xd5" * FRAME if i in lost else f for i, f in enumerate(frames))
    assert_whole_call(audio_bytes(end["file"]), expected)


# -- late offer, codec change, --advertise ---------------------------------------------------


def test_late_offer_answered_in_the_ack_is_recorded(serve, tmp_path):
    """INVITE without SDP: our 200 carries the offer, the ACK the answer (PCMA), and the
    RTP sent right after the ACK is recorded from its first sample."""
    pcm = speechlike(1.0, dbm0=-15, seed=29)
    frames = codecs.alaw_encode(pcm).tobytes()
    srv = record_server(serve, tmp_path)
    tx = rtp_sender()
    uac = Uac(srv.port, call_id="late-1")
    ok = uac.invite(b"")
    assert ok.status == 200 and sdp_of(ok)["pts"] == "0 8 101"
    port = int(sdp_of(ok)["port"])
    uac.ack(sdp_offer(tx.getsockname()[1], "8 101", "sendonly"))
    paced(
        tx,
        port,
        [
            (i / 50, packet(100 + i, 1000 + i * FRAME, 0x33, frames[i * FRAME : (i + 1) * FRAME]))
            for i in range(len(frames) // FRAME)
        ],
    )
    tx.close()
    end = hang_up(srv, uac)
    start = next(e for e in srv.lines if e.get("msg") == "call start")
    assert start["codec"] is None  # not known until the ACK
    assert (end["packets"], end["lost"]) == (len(frames) // FRAME, 0)
    assert_whole_call(audio_bytes(end["file"]), frames)


def test_reinvite_from_pcma_to_pcmu_switches_the_decoder(serve, tmp_path):
    """A call in PCMA, then a re-INVITE offering only PCMU: we answer PCMU and decode
    the μ-law packets that follow (same SSRC, sequence and clock): the recording is the
    A-law first second, then the μ-law second second, without a gap."""
    first = speechlike(1.0, dbm0=-15, seed=31)
    second = speechlike(1.0, dbm0=-15, seed=33)
    srv = record_server(serve, tmp_path)
    tx = rtp_sender()
    me = tx.getsockname()[1]
    uac, port = call_with(srv, sdp_offer(me, "8 101"), "reinvite-1")
    alaw = codecs.alaw_encode(first).tobytes()
    ulaw = codecs.ulaw_encode(second).tobytes()
    n = len(alaw) // FRAME

    def pkt(i: int, pt: int, data: bytes) -> bytes:
        return packet(500 + i, 8000 + i * FRAME, 0x44, data[(i % n) * FRAME :][:FRAME], pt=pt)

    start = paced(tx, port, [(i / 50, pkt(i, 8, alaw)) for i in range(n)])
    ok = uac.invite(sdp_offer(me, "0 101"))
    assert ok.status == 200 and sdp_of(ok)["pts"] == "0 101"
    uac.ack()
    paced(tx, port, [(i / 50, pkt(i, 0, ulaw)) for i in range(n, 2 * n)], start)
    tx.close()
    end = hang_up(srv, uac)
    assert (end["packets"], end["lost"]) == (2 * n, 0)
    via_ulaw = codecs.alaw_encode(codecs.ulaw_decode(ulaw)).tobytes()
    assert_whole_call(audio_bytes(end["file"]), alaw + via_ulaw)


def test_advertise_puts_its_address_in_the_sdp_and_contact(serve, tmp_path):
    srv = record_server(serve, tmp_path, "--advertise", "192.0.2.7")
    assert srv.wait_for(lambda e: e.get("msg") == "listening")["advertise"] == "192.0.2.7"
    uac = Uac(srv.port, call_id="advertise-1")
    ok = uac.invite(sdp_offer(free_udp_port(even=True), "8"))
    assert ok.status == 200
    assert sdp_of(ok)["c"] == sdp_of(ok)["o"] == "192.0.2.7"
    assert "@192.0.2.7:" in (ok.get("Contact") or "")
    uac.ack()
    hang_up(srv, uac)


def test_metrics_break_the_cpu_down_by_stage(serve, tmp_path):
    """``--metrics`` serves ``recorder_cpu_seconds_total{stage}`` for the RTP receive
    thread, the engine thread, and the tick's detectors, coding and writes (what
    bench/serve.py reads)."""
    pytest.importorskip("prometheus_client")
    import urllib.request

    mport = free_udp_port()
    srv = record_server(serve, tmp_path, "--metrics", f"127.0.0.1:{mport}")
    tx = rtp_sender()
    uac, port = call_with(srv, sdp_offer(tx.getsockname()[1], "8"), "metrics-1")
    frames = codecs.alaw_encode(speechlike(0.6, dbm0=-15, seed=35)).tobytes()
    paced(
        tx,
        port,
        [(i / 50, packet(i, i * FRAME, 0x55, frames[i * FRAME :][:FRAME])) for i in range(30)],
    )
    tx.close()
    srv.wait_for(lambda e: e.get("msg") == "recording")
    assert uac.bye().status == 200
    srv.wait_for(lambda e: e.get("msg") == "call end")
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as r:
        text = r.read().decode()
    uac.close()
    assert srv.terminate() == 0
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("recorder_cpu_seconds_total")
    }
    stages = {k.split('"')[1] for k in values}
    assert stages == {"receive", "tick", "detect", "code", "write"}, values
    assert all(v >= 0 for v in values.values())
    assert values['recorder_cpu_seconds_total{stage="receive"}'] > 0
    assert values['recorder_cpu_seconds_total{stage="detect"}'] > 0
    tick = values['recorder_cpu_seconds_total{stage="tick"}']
    assert tick >= sum(
        values[f'recorder_cpu_seconds_total{{stage="{s}"}}'] for s in ("detect", "code", "write")
    )


def test_call_end_log_has_the_recording_when_the_caller_hangs_up_first(serve, tmp_path):
    """An app that starts a recording and waits for the caller's BYE: the BYE ends the
    recording on the server's own thread while the app returns; the "call end" line is
    written after that recording's file is published, so it names the file and cause
    (it said cause NONE and no file when the app's thread got there first)."""
    app = tmp_path / "start_app.py"
    app.write_text(
        "def app(channel):\n"
        "    channel.answer()\n"
        "    channel.FileRecorder.start(channel.call.id + '.wav')\n"
        "    channel.wait_for_hangup()\n"
    )
    pcm = speechlike(0.4, dbm0=-15, seed=37)
    frames = codecs.alaw_encode(pcm).tobytes()
    srv = serve(f"{app}:app")
    for n in range(5):  # a race: several calls
        tx = rtp_sender()
        uac, port = call_with(srv, sdp_offer(tx.getsockname()[1], "8"), f"start-{n}")
        paced(
            tx,
            port,
            [(i / 50, packet(i, i * FRAME, 0x66, frames[i * FRAME :][:FRAME])) for i in range(20)],
        )
        tx.close()
        assert uac.bye().status == 200
        uac.close()
        srv.wait_for(lambda e, n=n: e.get("msg") == "call end" and e["call_id"] == f"start-{n}")
    assert srv.terminate() == 0
    ends = srv.ends()
    assert [e["cause"] for e in ends] == ["HANGUP"] * 5, ends
    assert sorted(e["file"] for e in ends) == sorted(str(f) for f in published(srv.media))
    for e in ends:
        assert_whole_call(audio_bytes(e["file"]), frames)
