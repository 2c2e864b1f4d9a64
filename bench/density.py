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

The throughput run also times the engine's ticks alone (``engine.process()``: detectors,
record-job decisions, resampling and coding, the Python per event; the pushes excluded),
in CPU time of the thread running them: the engine's own cost per channel-second, and
its stages (``Engine.cpu_ns``): detectors, coding, file writes; of the writes, the part
the compiled core does itself (pwrite and header refresh, ``Bank.write_ns``; 0 on a build
without it) and the rest, the Python per event (drain, write, header refresh).
With ``--core``, also the compiled record jobs alone (``Bank.feed``: resampling and
coding for every row, the termination decisions; no detectors, no file writes).

Memory per active recording: RSS growth divided by N after the recordings started and
ran (file buffers, detector state, rings included).

``--format`` and ``--rate`` take comma-separated lists (``all``: every recording format or
rate): one throughput run per combination, e.g. the whole sweep without the real-time
phase::

    python bench/density.py --format all --rate all --channels 2000 --seconds 2 \
        --realtime-seconds 0

    python bench/density.py [--channels N] [--seconds T] [--format F --rate R]
                            [--push channel|batch|both] [--profile] [--core] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(HERE)]

import numpy as np  # noqa: E402
from _common import emit, raise_nofile  # noqa: E402

from recorder import CallChannel, ChannelBatch, Engine, codecs  # noqa: E402
from recorder.filerecorder import RECORD_FORMATS, RECORD_RATES  # noqa: E402

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
    tick_cpu = 0.0
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    for s in range(steps):
        feeder.push(s)
        clock.t += 0.02
        t0 = time.thread_time()
        with engine.lock:
            engine.process()
        tick_cpu += time.thread_time() - t0
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    if prof is not None:
        import pstats

        prof.disable()
        print(f"-- cProfile, {mode} push, {n} channels x {seconds} s --", file=sys.stderr)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(14)
    rss1 = rss_kib()
    stages = {k: ns / 1e3 / (n * seconds) for k, ns in engine.cpu_ns.items()}
    core_write = getattr(engine.bank, "write_ns", 0) / 1e3 / (n * seconds)
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
        "tick_us_per_channel_second": tick_cpu / (n * seconds) * 1e6,
        "tick_channels_per_core": n * seconds / tick_cpu,
        "detect_us_per_channel_second": stages["detect"],
        "code_us_per_channel_second": stages["code"],
        "write_us_per_channel_second": stages["write"],
        "core_write_us_per_channel_second": core_write,
        "python_event_us_per_channel_second": stages["write"] - core_write,
        "kib_per_recording": (rss1 - rss0) / n,
        "causes": sorted(causes),
    }


def core(n: int, seconds: float) -> dict:
    """The compiled core's record jobs alone (``Bank.feed`` and ``take_out``: resampling,
    coding, the termination decisions; no detectors, no files, no Python per event):
    thread CPU per channel-second."""
    from recorder._codecs.engine import Bank
    from recorder.engine import CoreFormat

    fmt = {"s16bit": "S16", "u8bit": "U8"}.get(FORMAT, FORMAT.upper())
    bank = Bank(n)
    slots = np.arange(n, dtype=np.int64)
    for i in range(n):
        bank.open(i)
        bank.start_job(i, int(CoreFormat[fmt]), -1, -1, 0, 0, False, 0, RATE, -1)
    audio = np.stack([codecs.alaw_decode(call_audio(seconds, i % 16)) for i in range(min(n, 16))])
    rows = audio[np.arange(n) % len(audio)]
    zeros64, seen = np.zeros(n, np.int64), np.ones(n, np.uint8)
    none64, digit = np.full(n, -1, np.int64), np.zeros(n, np.int32)
    steps = int(seconds * 50)
    t0 = time.thread_time()
    for s in range(steps):
        block = np.ascontiguousarray(rows[:, s * FRAME : (s + 1) * FRAME])
        events = bank.feed(slots, block, zeros64, seen, none64, digit, none64)
        for i in np.flatnonzero(events):
            bank.take_out(int(i))
    cpu = time.thread_time() - t0
    return {
        "channels": n,
        "core_us_per_channel_second": cpu / (n * seconds) * 1e6,
        "core_channels_per_core": n * seconds / cpu,
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


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """argv without the given options (and their values)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in options:
            skip = a != "--json"
        elif not a.startswith(tuple(o + "=" for o in options)):
            out.append(a)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--realtime-seconds", type=float, default=5.0)
    ap.add_argument(
        "--push",
        choices=("channel", "batch", "both"),
        default="both",
        help="CallChannel.push per frame, ChannelBatch.push per 20 ms, or both (default)",
    )
    ap.add_argument("--profile", action="store_true", help="cProfile the throughput runs")
    ap.add_argument(
        "--format", default="alaw", help="recording formats, comma-separated or all (default alaw)"
    )
    ap.add_argument(
        "--rate", default="8000", help="recording rates, comma-separated or all (default 8000)"
    )
    ap.add_argument(
        "--core",
        action="store_true",
        help="also time the compiled record jobs alone (resampling + coding)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    global FORMAT, RATE
    hard = raise_nofile()
    if hard < 2 * args.channels + 64:  # a recording holds its folder and its file open
        ap.error(f"need {2 * args.channels + 64} open files, the hard limit is {hard}")
    formats = RECORD_FORMATS if args.format == "all" else tuple(args.format.split(","))
    rates = RECORD_RATES if args.rate == "all" else tuple(int(r) for r in args.rate.split(","))
    rows = []
    combos = [(f, r) for f in formats for r in rates]
    for fmt, rate in combos:
        if len(combos) > 1:  # each in a fresh process: its memory growth is its own
            argv1 = list(argv if argv is not None else sys.argv[1:])
            cmd = [sys.executable, __file__, *_without(argv1, ("--format", "--rate", "--json"))]
            out = subprocess.run(
                [*cmd, "--format", fmt, "--rate", str(rate), "--json"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rows.extend(json.loads(out)["results"])
            continue
        FORMAT, RATE = fmt, rate
        what = f"{fmt} {rate}"
        modes = ("channel", "batch") if args.push == "both" else (args.push,)
        with tempfile.TemporaryDirectory(prefix="density-") as root:
            first = len(rows)
            for mode in modes:
                tp = throughput(args.channels, args.seconds, root, mode, args.profile)
                rows.append({"case": f"throughput {what} {args.channels} ch, {mode} push", **tp})
            if len(modes) == 2:
                ratio = rows[first + 1]["channels_per_core"] / rows[first]["channels_per_core"]
                rows[first + 1]["batch_over_channel"] = ratio
            if args.core:
                rows.append({"case": f"core only {what}", **core(args.channels, args.seconds)})
            if args.realtime_seconds:
                for mode in modes:
                    rt = realtime(args.channels, args.realtime_seconds, root, mode)
                    rows.append({"case": f"real time {what} {args.channels} ch, {mode} push", **rt})
    emit(
        rows,
        args.json,
        "density: recordings with silence + DTMF detection, 20 ms push frames "
        "(tick: the engine's ticks alone, pushes excluded)",
        [
            ("case", "case", "s"),
            ("channels_per_core", "ch/core", ".0f"),
            ("cpu_us_per_channel_second", "us CPU/ch-s", ".1f"),
            ("batch_over_channel", "batch/channel", ".2f"),
            ("tick_channels_per_core", "tick ch/core", ".0f"),
            ("tick_us_per_channel_second", "tick us/ch-s", ".1f"),
            ("detect_us_per_channel_second", "detect", ".1f"),
            ("code_us_per_channel_second", "code", ".1f"),
            ("core_write_us_per_channel_second", "core write", ".1f"),
            ("python_event_us_per_channel_second", "py/event", ".1f"),
            ("core_us_per_channel_second", "core us/ch-s", ".1f"),
            ("kib_per_recording", "KiB/rec", ".0f"),
            ("cpu_share", "CPU share", ".2f"),
            ("kept_up", "kept up", ""),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
