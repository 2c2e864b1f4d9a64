"""ChannelBatch: one push for many channels, and the engine under overload.

A batch push must record exactly what per-channel pushes record (same files, byte for
byte), drop rows of channels that are not answered, refuse closed channels, and keep the
engine bounded when it cannot keep up: a full ring makes the pusher process just enough
to make room, the gap watchdog queues silence in one step, and ``Engine.behind`` says
when the worker is late and clears when it has caught up.
"""

from __future__ import annotations

import os
import resource
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from signals import dtmf, join, silence, speechlike

import recorder
from recorder import CallChannel, ChannelBatch, Engine, codecs, engine
from recorder._codecs import engine as core
from recorder.filerecorder import Cause

FRAME = 160


class ManualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def answered(n, root, eng, clock, codec="alaw"):
    chans = []
    for _ in range(n):
        ch = CallChannel(media_root=root, engine=eng, clock=clock, codec=codec)
        ch.ring()
        ch.answer()
        chans.append(ch)
    return chans


def signals(seconds):
    """Three different calls: speech, a DTMF digit inside speech, silence then speech."""
    return [
        speechlike(seconds, seed=1),
        join(speechlike(0.5, seed=2), dtmf("5", 0.1), speechlike(seconds - 0.6, seed=3)),
        join(silence(0.4), speechlike(seconds - 0.4, seed=4)),
    ]


def coded(x, codec):
    if codec == "alaw":
        return codecs.alaw_encode(x)
    if codec == "ulaw":
        return codecs.ulaw_encode(x)
    return x


@pytest.mark.parametrize("codec", ["alaw", "ulaw", "s16"])
@pytest.mark.parametrize(
    "fmt, rate", [("alaw", 8000), ("ulaw", 8000), ("s16bit", 8000), ("ima", 8000), ("oki", 6000)]
)
def test_batch_push_records_the_same_files_as_per_channel_push(tmp_path, codec, fmt, rate):
    eng = Engine(tick=3600.0)  # no worker rounds: both sides are processed by poll()
    clock = ManualClock()
    xs = [coded(x, codec) for x in signals(1.5)]
    one = answered(3, tmp_path, eng, clock, codec)
    many = answered(3, tmp_path, eng, clock, codec)
    batch = ChannelBatch(many)
    for i, ch in enumerate(one + many):
        ch.FileRecorder.start(
            f"{i}.wav", file_format=fmt, rate=rate, barge_in=True, milliseconds_max_silence=300
        )
    block = np.stack(xs)
    for lo in range(0, block.shape[1], FRAME):
        for ch, x in zip(one, xs, strict=True):
            ch.push(x[lo : lo + FRAME])
        batch.push(block[:, lo : lo + FRAME])
        clock.t += 0.02
        for ch in one + many:
            ch.poll()
    causes = []
    for ch in one + many:
        ch.FileRecorder.stop()
        causes.append(ch.FileRecorder.cause())
        ch.close()
    assert causes[:3] == causes[3:]
    assert Cause.BARGEIN in causes  # the digit ended call 1 in both
    for i in range(3):
        a = (tmp_path / f"{i}.wav").read_bytes()
        b = (tmp_path / f"{i + 3}.wav").read_bytes()
        assert len(a) > 200
        assert a == b, f"call {i}: batch push recorded a different file"
    eng.stop()


def test_rows_of_channels_not_answered_are_dropped_and_a_closed_channel_is_an_error(tmp_path):
    eng = Engine(tick=3600.0)
    clock = ManualClock()
    ringing = CallChannel(media_root=tmp_path, engine=eng, clock=clock)
    ringing.ring()
    up = answered(1, tmp_path, eng, clock)[0]
    gone = answered(1, tmp_path, eng, clock)[0]
    gone.hangup()
    idle = CallChannel(media_root=tmp_path, engine=eng, clock=clock)
    batch = ChannelBatch([ringing, up, gone, idle])
    batch.push(np.full((4, FRAME), 0xD5, np.uint8))
    assert [ch.pending_samples() for ch in batch.channels] == [0, FRAME, 0, 0]
    ringing.answer()  # answered later: its rows count from now on
    batch.push(np.full((2, 80), 0xD5, np.uint8), rows=[0, 1])
    assert [ch.pending_samples() for ch in batch.channels] == [80, FRAME + 80, 0, 0]
    idle.close()
    with pytest.raises(recorder.Error, match=r"channels\[3\] is closed"):
        batch.push(np.full((4, FRAME), 0xD5, np.uint8))
    # its slot given to a new channel: the batch still refuses, the new call gets nothing
    newcomer = answered(1, tmp_path, eng, clock)[0]
    with pytest.raises(recorder.Error, match="closed"):
        batch.push(np.full((4, FRAME), 0xD5, np.uint8))
    assert newcomer.pending_samples() == 0
    for ch in (ringing, up, gone, newcomer):
        ch.close()
    eng.stop()


def test_channels_of_different_engines_or_defaults_are_refused(tmp_path):
    a, b = Engine(tick=3600.0), Engine(tick=3600.0)
    x = CallChannel(media_root=tmp_path, engine=a)
    y = CallChannel(media_root=tmp_path, engine=b)
    z = CallChannel(media_root=tmp_path, engine=a, codec="ulaw")
    with pytest.raises(ValueError, match="share one Engine"):
        ChannelBatch([x, y])
    with pytest.raises(ValueError, match="codec="):
        ChannelBatch([x, z])
    assert len(ChannelBatch([x, z], codec="s16")) == 2
    for ch in (x, y, z):
        ch.close()
    a.stop()
    b.stop()


@settings(max_examples=25, deadline=None)
@given(
    k=st.integers(1, 5),
    n=st.integers(0, 700),
    codec=st.sampled_from(["alaw", "ulaw", "s16"]),
    pick=st.lists(st.integers(0, 4), min_size=1, max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_shape_queues_what_per_channel_pushes_queue(tmp_path_factory, k, n, codec, pick, seed):
    root = tmp_path_factory.mktemp("h")
    eng = Engine(tick=3600.0)
    clock = ManualClock()
    one = answered(k, root, eng, clock, codec)
    many = answered(k, root, eng, clock, codec)
    rows = [p % k for p in pick]
    rng = np.random.default_rng(seed)
    if codec == "s16":
        block = rng.integers(-32768, 32768, (len(rows), n), dtype=np.int16)
    else:
        block = rng.integers(0, 256, (len(rows), n), dtype=np.uint8)
    for r, i in enumerate(rows):
        one[i].push(block[r], codec)
    ChannelBatch(many).push(block, codec, rows=rows)
    assert [c.pending_samples() for c in one] == [c.pending_samples() for c in many]
    assert [c.media_samples() for c in one] == [c.media_samples() for c in many]
    for ch in one + many:
        ch.close()
    eng.stop()


# --- bounded under overload -------------------------------------------------------------


def test_a_full_ring_makes_the_pusher_process_one_round_not_the_whole_backlog(tmp_path):
    eng = Engine(tick=3600.0)  # the worker never runs: every push lands on a full ring
    clock = ManualClock()
    chans = answered(3, tmp_path, eng, clock, "s16")
    for i, ch in enumerate(chans):
        ch.FileRecorder.start(f"{i}.wav", file_format="s16bit", milliseconds_max_silence=0)
    batch = ChannelBatch(chans)
    x = np.stack(signals(3.0))
    for lo in range(0, x.shape[1], FRAME):
        batch.push(x[:, lo : lo + FRAME])
        clock.t += 0.02
        # nothing is processed until the ring is full; then one round per push, so the
        # backlog stays within a round of the ring
        pending = {ch.pending_samples() for ch in chans}
        if lo + FRAME <= engine.PIECE:
            assert pending == {lo + FRAME}
        else:
            assert all(engine.PIECE - FRAME <= p <= engine.PIECE for p in pending), pending
    pushed = x.shape[1]
    for ch in chans:
        assert ch.media_samples() + ch.pending_samples() == pushed  # nothing dropped
        ch.FileRecorder.stop()
        assert ch.FileRecorder.result().frames == pushed
        ch.close()
    eng.stop()


def test_gap_filling_is_one_bounded_step_whatever_the_lag(tmp_path):
    eng = Engine(tick=3600.0)
    clock = ManualClock()
    ch = answered(1, tmp_path, eng, clock, "s16")[0]
    ch.FileRecorder.start("gap.wav", milliseconds_max_silence=0, max_bytes=0)
    clock.t += 600.0  # ten minutes without media (a stalled process)
    with ch.lock:
        queued = ch.watchdog()
        assert queued == engine.PIECE  # one ring of silence, nothing processed here
        assert ch.media_samples() == 0
    ch.poll()  # a hand-driven poll catches up, a ring at a time
    assert ch.media_samples() >= 600 * 8000 - 480
    ch.FileRecorder.stop()
    assert abs(ch.FileRecorder.result().duration - 600.0) < 0.1
    ch.close()
    eng.stop()


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def capacity(root) -> float:
    """Channel-seconds of A-law media the engine processes per CPU second here."""
    eng = Engine(tick=3600.0)
    clock = ManualClock()
    chans = answered(400, root, eng, clock)
    for i, ch in enumerate(chans):
        ch.FileRecorder.start(f"cap/{i}.wav", barge_in=True, milliseconds_max_silence=0)
    batch = ChannelBatch(chans)
    frames = np.full((len(chans), FRAME), 0x55, np.uint8)
    t0 = time.process_time()
    for _ in range(50):
        batch.push(frames)
        clock.t += 0.02
        with eng.lock:
            eng.process()
    cpu = time.process_time() - t0
    for ch in chans:
        ch.close()
    eng.stop()
    return len(chans) * 1.0 / cpu


@pytest.mark.slow
def test_twice_the_capacity_degrades_and_recovers_on_its_own(tmp_path):
    """About 2x the measured capacity for 10 s, then a quarter of it: the backlog stays
    within the ring, memory stays flat, ``behind`` is raised and then clears by itself
    within seconds, and every recording holds every sample pushed into it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cap = capacity(tmp_path)
    k = int(min(max(cap / 4, 200), 2000, hard - 200))  # channels (files open at once)
    heavy = max(FRAME, int(round(2 * cap / k * FRAME)))  # samples per channel per 20 ms
    light = max(8, int(round(0.25 * cap / k * FRAME)))
    eng = Engine()
    clock = ManualClock()  # the channels' media clock: what was pushed (no gap filling)
    chans = answered(k, tmp_path, eng, clock)
    for i, ch in enumerate(chans):
        ch.FileRecorder.start(f"o/{i}.wav", barge_in=True, milliseconds_max_silence=0)
    batch = ChannelBatch(chans)
    pushed = 0
    was_behind = False
    most_pending = 0
    rng = np.random.default_rng(1)
    noise = codecs.alaw_encode((rng.standard_normal(heavy) * 2000).astype(np.int16))
    heavy_block = np.tile(noise, (k, 1))
    light_block = np.ascontiguousarray(heavy_block[:, :light])
    eng.ensure_running()
    rss = []
    start = time.monotonic()
    step = 0
    while time.monotonic() - start < 10.0:  # overload
        batch.push(heavy_block)
        pushed += heavy
        clock.t += heavy / 8000
        was_behind |= eng.behind
        step += 1
        if step % 10 == 0:
            most_pending = max(most_pending, max(ch.pending_samples() for ch in chans))
            rss.append(rss_mib())
        delay = start + step * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    assert was_behind, f"{k} channels x {heavy} samples per 20 ms did not overload the engine"
    assert most_pending <= engine.PIECE
    assert rss[-1] - rss[len(rss) // 3] < 64, f"memory grew under overload: {rss}"
    recovered_after = None
    t1 = time.monotonic()
    step = 0
    while time.monotonic() - t1 < 15.0:  # normal load: it must catch up by itself
        batch.push(light_block)
        pushed += light
        clock.t += light / 8000
        step += 1
        if not eng.behind and recovered_after is None:
            recovered_after = time.monotonic() - t1
        if recovered_after is not None and time.monotonic() - t1 > recovered_after + 1.0:
            break
        delay = t1 + step * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    assert recovered_after is not None and recovered_after < 10.0, "the engine did not recover"
    assert not eng.behind
    for ch in chans:
        ch.FileRecorder.stop()
    for i, ch in enumerate(chans):
        fr = ch.FileRecorder
        assert fr.cause() is Cause.ABORTED, (i, fr.cause(), fr.last_error())
        assert fr.result().frames == pushed, f"recording {i} lost media"
        assert os.path.exists(tmp_path / "o" / f"{i}.wav")
        ch.close()
    eng.stop()


# --- the server refuses calls while its engine is behind -------------------------------


def _invite(port: int, call_id: str) -> bytes:
    from sip_helpers import offer, request

    msg = request("INVITE", call_id=call_id, body=offer())
    return msg.replace(b"127.0.0.1:5099", f"127.0.0.1:{port}".encode())


def _final_status(sock, call_id: str) -> int:
    while True:
        data, _ = sock.recvfrom(65536)
        head = data.split(b"\r\n", 1)[0].decode()
        if f"Call-ID: {call_id}".encode() in data and head.startswith("SIP/2.0 "):
            status = int(head.split()[1])
            if status >= 200:
                return status


def test_server_answers_503_while_the_engine_is_behind_and_says_so_once(tmp_path, caplog):
    import logging
    import socket
    import threading

    prometheus_client = pytest.importorskip("prometheus_client")
    from recorder.serve import Metrics, Server

    eng = Engine(tick=0.002)
    clock = ManualClock()
    load = answered(200, tmp_path, eng, clock, "s16")
    for i, ch in enumerate(load):
        ch.FileRecorder.start(f"load/{i}.wav", milliseconds_max_silence=0, max_bytes=0)
    loaded = ChannelBatch(load)
    stop = threading.Event()

    def overload() -> None:  # far more media than the engine takes, without pause
        block = np.zeros((len(load), 4000), np.int16)
        while not stop.is_set():
            loaded.push(block)
            clock.t += 0.5

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        metrics_port = s.getsockname()[1]
    metrics = Metrics("127.0.0.1", metrics_port)
    server = Server(
        lambda ch: ch.hangup(),
        media_root=tmp_path,
        sip_port=0,
        tcp=False,
        rtp_ports=(41000, 41999),
        metrics=metrics,
        engine=eng,
    )
    server.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(30)
    me = sock.getsockname()[1]
    caplog.set_level(logging.WARNING, logger="recorder.serve")
    loader = threading.Thread(target=overload, daemon=True)
    loader.start()
    try:
        deadline = time.monotonic() + 30
        while not eng.behind and time.monotonic() < deadline:
            time.sleep(0.01)
        assert eng.behind, "the load did not put the engine behind"
        statuses = []
        for i in range(2):
            sock.sendto(_invite(me, f"busy{i}"), ("127.0.0.1", server.port))
            statuses.append(_final_status(sock, f"busy{i}"))
        assert statuses == [503, 503]
        text = prometheus_client.generate_latest(metrics.registry).decode()
        assert 'recorder_calls_refused_total{reason="overload"} 2.0' in text
        assert "recorder_engine_behind 1.0" in text
    finally:
        stop.set()
        loader.join(30)
    deadline = time.monotonic() + 30
    while eng.behind and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not eng.behind, "the engine did not catch up once the load stopped"
    sock.sendto(_invite(me, "calm"), ("127.0.0.1", server.port))
    assert _final_status(sock, "calm") == 480  # taken: the app hung up before answering
    refusals = [r for r in caplog.records if "refusing new calls" in r.getMessage()]
    assert len(refusals) == 1  # once per episode, not per call
    assert any("taking new calls again" in r.getMessage() for r in caplog.records)
    sock.close()
    server.shutdown()
    metrics.close()
    for ch in load:
        ch.close()
    eng.stop()


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 1700), min_size=1, max_size=40), end=st.booleans())
def test_held_back_media_comes_out_whole_for_any_push_sizes(tmp_path_factory, sizes, end):
    """Barge-in holds the last 200 ms back (a ring in the core): whatever the push sizes,
    the file holds the pushed samples exactly, up to the digit's start (or the stop)."""
    root = tmp_path_factory.mktemp("held")
    x = join(speechlike(1.2, seed=5), dtmf("9", 0.12), speechlike(0.5, seed=6))
    if end:  # no digit: stop() commits what is held
        x = speechlike(1.7, seed=7)
    eng = Engine(tick=3600.0)
    clock = ManualClock()
    ch = answered(1, root, eng, clock, "s16")[0]
    ch.FileRecorder.start("h.wav", file_format="s16bit", barge_in=True, milliseconds_max_silence=0)
    pos = i = 0
    while pos < x.size and ch.FileRecorder.state().name == "RECORDING":
        n = sizes[i % len(sizes)]
        ch.push(x[pos : pos + n])
        pos += n
        i += 1
        clock.t = min(pos, x.size) / 8000
        ch.poll()
    ch.FileRecorder.stop()
    got, _ = recorder.wav.read(root / "h.wav")
    if end:
        np.testing.assert_array_equal(got, x[: got.size])
        assert got.size == min(pos, x.size)
    else:
        assert ch.FileRecorder.cause() is Cause.BARGEIN
        assert abs(got.size - 9600) <= 8 * 40  # cut at the digit's start (1.2 s)
        np.testing.assert_array_equal(got, x[: got.size])
    ch.close()
    eng.stop()


class CountingChannel(CallChannel):
    """A channel that counts how often the engine wakes its waiting threads and calls
    its Python gap watchdog."""

    wakes = 0
    watchdogs = 0

    def wake_waiters(self) -> None:
        self.wakes += 1  # the engine lock is held
        super().wake_waiters()

    def watchdog(self) -> int:
        self.watchdogs += 1
        return super().watchdog()


def test_a_blocked_record_is_woken_by_its_job_not_every_tick(tmp_path):
    """A thread blocked in record() on a live call is woken when its job has something
    to report (file advanced, job ended), not on every 20 ms tick: at a thousand calls
    waking every waiter every tick cost more than recording them."""
    eng = Engine()
    ch = CountingChannel(media_root=tmp_path, engine=eng, clock=ManualClock(), codec="s16")
    ch.ring()
    ch.answer()
    causes = []
    t = threading.Thread(
        target=lambda: causes.append(
            ch.FileRecorder.record("w.wav", seconds_timeout=1, milliseconds_max_silence=0)
        )
    )
    t.start()
    frame = speechlike(0.02, seed=3)
    sent = 0
    while t.is_alive() and sent < 250:  # a real-time sender: one frame every 20 ms
        ch.push(frame)
        sent += 1
        time.sleep(0.02)
    t.join(10)
    assert causes == [Cause.TIMEOUT]
    assert recorder.wav.info(tmp_path / "w.wav").frames == 8000
    # about 50 ticks passed while it waited; its job reported a few events
    assert sent >= 50 and ch.wakes <= 12, (sent, ch.wakes)
    ch.close()
    eng.stop()


def test_a_slot_is_idle_only_after_ticks_without_media():
    """The gap watchdog looks at a channel only after QUIET_TICKS ticks without media:
    packets that come every 40 ms (two frames at once) are not a gap every other tick."""
    from recorder._codecs.engine import Bank

    bank = Bank(4)
    bank.open(2)
    assert [bank.idle(3).tolist() for _ in range(4)] == [[], [], [2], [2]]
    bank.push_s16(2, np.zeros(FRAME, np.int16))  # media arrived
    assert bank.idle(3).tolist() == [] and bank.idle(1).tolist() == [2]
    bank.push_zeros(2, FRAME)  # the watchdog's silence is not media arriving
    assert bank.idle(3).tolist() == [2]  # the third call without media since the push
    assert engine.QUIET_TICKS * engine.FRAME <= recorder.channel.GAP_SAMPLES


@pytest.mark.parametrize("seed", range(4))
def test_the_ring_gives_back_what_was_queued_in_order_whatever_the_push_and_take_sizes(seed):
    """A slot's ring (pushes of every kind, takes of any size, emptied now and then, full
    at times) hands back exactly the queued samples in order: the ring starting over
    when it empties and wrapping when it does not are invisible from outside."""
    rng = np.random.default_rng(seed)
    ring = core.CONSTANTS["RING_SIZE"]
    bank = core.Bank(4)
    bank.open(2)
    bank.set_accept(2, True)
    slots, gens = np.array([2], np.int64), np.array([bank.generation(2)], np.int64)
    queued: list[int] = []
    for _ in range(300):
        kind = rng.integers(6)
        n = int(rng.choice([0, 1, 7, 160, 161, 1000, ring]))
        if kind == 0:
            x = rng.integers(-32768, 32768, n).astype(np.int16)
            got = bank.push_s16(2, x)
            queued += x[:got].tolist()
        elif kind == 1:
            codes = rng.integers(0, 256, n).astype(np.uint8)
            ulaw = bool(rng.integers(2))
            got = bank.push_g711(2, codes, ulaw)
            decode = codecs.ulaw_decode if ulaw else codecs.alaw_decode
            queued += decode(codes[:got]).tolist()
        elif kind == 2:
            x = rng.integers(-32768, 32768, (1, n)).astype(np.int16)
            got = int(bank.push_rows(slots, gens, x, 0)[0])
            queued += x[0, :got].tolist()
        elif kind == 3:
            got = bank.push_zeros(2, n)
            queued += [0] * got
        else:
            k = min(int(rng.integers(0, 400)) if kind == 4 else len(queued), len(queued))
            block = bank.take(slots, k)
            assert block.shape == (1, k)
            assert block[0].tolist() == queued[:k]
            del queued[:k]
        assert bank.pending(2) == len(queued) <= ring


def test_slots_opened_and_closed_across_many_chunks_keep_their_own_media():
    """Slot records live in shared chunks (chunk_mem.h), reused through a free list:
    hundreds of slots (several chunks) each filled with a whole ring of its own samples,
    half of them closed and others opened in their place, hand back exactly their own
    samples; a reopened slot starts empty, whatever the cell held before."""
    rng = np.random.default_rng(7)
    ring = core.CONSTANTS["RING_SIZE"]
    bank = core.Bank(4)
    data = {}

    def fill(slot):
        bank.open(slot)
        assert bank.pending(slot) == 0 and bank.media(slot) == 0
        data[slot] = rng.integers(-32768, 32768, ring).astype(np.int16)
        assert bank.push_s16(slot, data[slot]) == ring

    for slot in range(350):
        fill(slot)
    for slot in rng.permutation(350)[:175].tolist():
        bank.close(slot)
        del data[slot]
    for slot in range(350, 500):  # new slots take the freed cells first, then a new chunk
        fill(slot)
    for slot in sorted(data):
        got = bank.take(np.array([slot], np.int64), ring)[0]
        assert np.array_equal(got, data[slot]), slot
        assert bank.pending(slot) == 0


@pytest.mark.parametrize("hold", [1600, 1601, 5000])
def test_held_back_media_reaches_the_file_in_order_whatever_the_hold(hold):
    """A job's barge-in hold-back lives in the slot's record up to 1600 samples (the
    channels' 200 ms) and in a buffer of its own beyond: either way the file gets the
    media in order, ``hold`` samples late, and all of it when the job ends."""
    from recorder.engine import CoreFormat

    bank = core.Bank(4)
    bank.open(1)
    bank.start_job(1, int(CoreFormat.S16), -1, -1, 0, 0, True, hold)
    x = np.arange(-20000, 20000, 7, dtype=np.int16)[: 60 * FRAME]
    one = np.array([1], np.int64)
    quiet = (np.zeros(1, np.int64), np.ones(1, np.uint8), np.full(1, -1, np.int64))
    coded = []
    for i in range(0, x.size, FRAME):
        bank.feed(one, x[None, i : i + FRAME], *quiet, np.zeros(1, np.int32), quiet[2])
        coded.append(bank.take_out(1))
    out = np.frombuffer(b"".join(coded), np.int16)
    assert np.array_equal(out, x[: x.size - hold])
    bank.end_job(1, int(engine.EndCause.HANGUP), True)
    rest = np.frombuffer(bank.take_out(1), np.int16)
    assert np.array_equal(np.concatenate([out, rest]), x)


def test_the_core_fills_gaps_with_the_channels_watchdog_arithmetic():
    """``Bank.fill_gaps`` is the watchdog of every watched slot at once: media is due up
    to int((max(floor, now - slack) - origin) * 8000) samples; a slot more than ``gap``
    samples behind gets silence up to that count (at most what its ring takes), but only
    once it has been idle ``ticks`` calls of ``idle()`` and while its call is answered.
    Watched slots are not among ``idle()``'s (the Python watchdog's) candidates."""
    ring = core.CONSTANTS["RING_SIZE"]
    gap = engine.GAP_SAMPLES
    bank = core.Bank(8)
    for slot in range(7):
        bank.open(slot)
        bank.set_accept(slot, True)
    bank.set_accept(5, False)  # not answered (any more)
    cases = {  # slot: (origin, floor, slack), media pushed
        0: ((100.0, -float("inf"), 0.0), 0),
        1: ((100.0, -float("inf"), 0.0), 400),
        2: ((100.25, 100.25, 1.5), 160),  # the SIP channel's late clock, not due yet
        6: ((99.5, 99.5, 0.2), 0),  # the same, due: now - slack is past the floor
        3: ((99.0, -float("inf"), 0.0), 0),  # ten seconds behind: one ring at most
        5: ((100.0, -float("inf"), 0.0), 0),
    }
    for slot, (clock, pushed) in cases.items():
        bank.watch_gaps(slot, *clock)
        bank.push_s16(slot, np.ones(pushed, np.int16))
    now = 100.0 + 1.0 / 3
    assert bank.idle(3).tolist() == []
    assert bank.fill_gaps(now, 3, gap) == 0  # one idle() call so far: not yet idle
    assert bank.idle(3).tolist() == []
    assert bank.idle(3).tolist() == [4]  # slot 4 is left to the Python watchdog

    def due(origin, floor, slack):
        return int((max(floor, now - slack) - origin) * 8000)

    queued = bank.fill_gaps(now, 3, gap)
    want = {0: due(*cases[0][0]), 1: due(*cases[1][0]), 2: 160, 3: ring, 4: 0, 5: 0}
    want[6] = due(*cases[6][0])
    assert want[0] == 2666 and want[1] - 400 > gap and due(*cases[2][0]) <= 0
    assert want[6] == int((now - 0.2 - 99.5) * 8000) == 5066
    assert {s: bank.pending(s) for s in range(7)} == want
    assert queued == sum(want.values()) - 400 - 160
    assert not bank.take(np.array([0], np.int64), want[0]).any()  # silence
    assert bank.fill_gaps(now, 3, gap) == 0  # nothing more is due
    bank.open(0)  # a slot opened again is no longer watched
    assert 0 in bank.idle(1).tolist()
    for bad in (
        lambda: bank.watch_gaps(1, float("nan"), 0.0, 0.0),
        lambda: bank.watch_gaps(1, 0.0, 0.0, -1.0),
        lambda: bank.fill_gaps(float("nan"), 3, gap),
        lambda: bank.fill_gaps(now, 0, gap),
    ):
        with pytest.raises(ValueError):
            bad()


def test_a_live_call_on_the_wall_clock_gets_its_gaps_filled_by_the_engine_itself(tmp_path):
    """A call on the default clock (time.monotonic) whose media stops for 0.6 s, as a
    phone on hold or with silence suppression does: the engine's worker fills the gap
    with silence in its compiled pass, in real time, and never calls the channel's
    Python watchdog."""
    eng = Engine()
    ch = CountingChannel(media_root=tmp_path, engine=eng, codec="s16")
    ch.ring()
    ch.answer()
    t0 = time.monotonic()
    ch.FileRecorder.start("held.wav", "s16bit", milliseconds_max_silence=0, max_bytes=0)
    x = speechlike(0.2, seed=5)
    ch.push(x)
    deadline = time.monotonic() + 30  # however slowly a loaded machine runs the worker
    while ch.media_samples() < 0.6 * 8000 and time.monotonic() < deadline:
        time.sleep(0.02)
    wall = time.monotonic() - t0
    ch.push(x)
    ch.FileRecorder.stop()
    duration = ch.FileRecorder.result().duration
    # 0.4 s or more of silence that only the gap filler can have queued, never more
    # than the wall clock had reached
    assert 0.6 + 0.2 <= duration <= wall + 0.2 + 0.05, (duration, wall)
    assert ch.watchdogs == 0
    ch.close()
    eng.stop()
