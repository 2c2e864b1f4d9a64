"""How many calls one core records in real time.

N channels record A-law at 8000 Hz with silence detection and DTMF barge-in on, fed
20 ms A-law frames through the push API (as a telephony stack would): one
``CallChannel.push`` per channel and frame (``--push channel``), or one
``ChannelBatch.push`` per 20 ms for all channels (``--push batch``); the default runs
both in the same run and prints them side by side.  Two measurements:

* **throughput**: push T seconds of media into every channel as fast as possible and let
  the engine process it; CPU seconds used (this process, all threads) per second of
  media gives channels per core = N * T / cpu_seconds.
* **real time**: a pacer pushes every channel's frame each 20 ms of wall clock for a few
  seconds while the engine's worker runs; reports the CPU share used and whether the
  engine kept up (no media waiting at the end).

Memory per active recording: RSS growth divided by N after the recordings started and
ran (file buffers, detector state, rings included).

    python bench/density.py [--channels N] [--seconds T] [--format F --rate R]
                            [--push channel|batch|both] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(HERE)]

import numpy as np  # noqa: E402
from _common import emit  # noqa: E402

from recorder import CallChannel, ChannelBatch, Engine, codecs  # noqa: E402

FRAME = 160


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def call_audio(seconds: float, seed: int) -> np.ndarray:
    """Speech-like bursts with pauses (so the silence detector has work), A-law coded."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 8000)
    t = np.arange(n) / 8000
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / 8000
    x = sum(np.sin(k * phase) / k for k in range(1, 16))
    talk = (np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 6)) > -0.3).astype(float)
    x = x * talk * 1500 + rng.standard_normal(n) * 20
    return codecs.alaw_encode(np.clip(x, -32768, 32767).astype(np.int16))


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


FORMAT, RATE = "alaw", 8000


def start_channels(n: int, root: str, engine: Engine, clock=None):
    chans = []
    for i in range(n):
        ch = CallChannel(media_root=root, engine=engine, clock=clock)
        ch.ring()
        ch.answer()
        ok = ch.FileRecorder.start(
            f"c{i:05d}.wav",
            file_format=FORMAT,
            rate=RATE,
            barge_in=True,
            milliseconds_max_silence=0,
            max_bytes=0,
        )
        assert ok
        chans.append(ch)
    return chans


class Feeder:
    """The media of every channel, 20 ms at a time, pushed the way ``mode`` says."""

    def __init__(self, chans, seconds: float, mode: str):
        audio = [call_audio(seconds, i % 16) for i in range(min(len(chans), 16))]
        self.stack = np.stack(audio)
        self.pattern = np.arange(len(chans)) % len(audio)
        self.chans = chans
        self.batch = ChannelBatch(chans) if mode == "batch" else None

    def push(self, step: int) -> None:
        lo = step * FRAME
        if self.batch is not None:  # one call for every channel's frame
            self.batch.push(np.take(self.stack[:, lo : lo + FRAME], self.pattern, axis=0))
        else:
            for i, ch in enumerate(self.chans):
                ch.push(self.stack[self.pattern[i], lo : lo + FRAME])


def throughput(n: int, seconds: float, root: str, mode: str, profile: bool = False) -> dict:
    engine = Engine()
    clock = Clock()
    rss0 = rss_kib()
    chans = start_channels(n, root, engine, clock)
    feeder = Feeder(chans, seconds, mode)
    steps = int(seconds * 50)
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for s in range(steps):
        feeder.push(s)
        clock.t += 0.02
        with engine.lock:
            engine.process()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    if prof is not None:
        import pstats

        prof.disable()
        print(f"-- cProfile, {mode} push, {n} channels x {seconds} s --", file=sys.stderr)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(14)
    rss1 = rss_kib()
    for ch in chans:
        ch.FileRecorder.stop()
    causes = {ch.FileRecorder.cause().name for ch in chans}
    for ch in chans:
        ch.close()
    engine.stop()
    return {
        "push": mode,
        "channels": n,
        "media_seconds": seconds,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "channels_per_core": n * seconds / cpu,
        "cpu_us_per_channel_second": cpu / (n * seconds) * 1e6,
        "kib_per_recording": (rss1 - rss0) / n,
        "causes": sorted(causes),
    }


def realtime(n: int, seconds: float, root: str, mode: str) -> dict:
    engine = Engine()
    chans = start_channels(n, root, engine)
    feeder = Feeder(chans, seconds, mode)
    engine.ensure_running()
    steps = int(seconds * 50)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    late = 0
    behind = 0
    for s in range(steps):
        feeder.push(s)
        behind += engine.behind
        delay = t0 + (s + 1) * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            late += 1
    time.sleep(0.1)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - t0
    with engine.lock:
        backlog = int(sum(ch.pending_samples() for ch in chans))
    for ch in chans:
        ch.FileRecorder.stop()
    engine.stop()
    for ch in chans:
        ch.close()
    return {
        "push": mode,
        "channels": n,
        "seconds": seconds,
        "cpu_share": cpu / wall,
        "late_steps": late,
        "behind_steps": behind,
        "backlog_samples": backlog,
        "kept_up": backlog < 2 * FRAME * n and late < steps // 10,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--realtime-seconds", type=float, default=5.0)
    ap.add_argument("--format", default="alaw", help="recording format (default alaw)")
    ap.add_argument("--rate", type=int, default=8000, help="recording rate (default 8000)")
    ap.add_argument(
        "--push",
        choices=("channel", "batch", "both"),
        default="both",
        help="CallChannel.push per frame, ChannelBatch.push per 20 ms, or both (default)",
    )
    ap.add_argument("--profile", action="store_true", help="cProfile the throughput runs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    global FORMAT, RATE
    FORMAT, RATE = args.format, args.rate
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.channels + 64:
        ap.error(f"need {args.channels + 64} open files, the hard limit is {hard}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="density-") as root:
        modes = ("channel", "batch") if args.push == "both" else (args.push,)
        for mode in modes:
            tp = throughput(args.channels, args.seconds, root, mode, args.profile)
            rows.append({"case": f"throughput {args.channels} ch, {mode} push", **tp})
        if len(modes) == 2:
            ratio = rows[1]["channels_per_core"] / rows[0]["channels_per_core"]
            rows[1]["batch_over_channel"] = ratio
        if args.realtime_seconds:
            for mode in modes:
                rt = realtime(args.channels, args.realtime_seconds, root, mode)
                rows.append({"case": f"real time {args.channels} ch, {mode} push", **rt})
    emit(
        rows,
        args.json,
        f"density: {FORMAT} {RATE} Hz recordings with silence + DTMF detection, 20 ms push frames",
        [
            ("case", "case", "s"),
            ("channels_per_core", "ch/core", ".0f"),
            ("cpu_us_per_channel_second", "us CPU/ch-s", ".1f"),
            ("batch_over_channel", "batch/channel", ".2f"),
            ("kib_per_recording", "KiB/rec", ".0f"),
            ("cpu_share", "CPU share", ".2f"),
            ("kept_up", "kept up", ""),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
