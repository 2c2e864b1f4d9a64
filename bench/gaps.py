"""Calls that send no media: what the engine's gap watchdog costs.

A phone put on hold (SDP ``a=inactive`` or ``sendonly``) or a trunk with silence
suppression sends no RTP for seconds; the engine then fills the recording's gap with
silence, so the file keeps the call's timing.  N answered calls record A-law while none
of them gets media for S seconds of wall time, and the engine's worker thread runs as in
a server: its CPU per idle call-second, in the same run, for

* **core**: channels on the wall clock (``time.monotonic``, as the server's are): the
  compiled pass over every watched slot per tick (``Bank.fill_gaps``);
* **python**: the same channels with a clock of their own (any callable), which the
  engine cannot read: it calls each idle channel's ``watchdog()`` every tick (how every
  channel was served before the compiled pass).

Both fill the same gaps (``tests/test_batch.py`` checks the arithmetic and the files).

    python bench/gaps.py [--calls N] [--seconds S] [--json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(HERE)]

from _common import emit, raise_nofile  # noqa: E402

from recorder import CallChannel, Engine  # noqa: E402


def wall_clock() -> float:
    """time.monotonic behind a callable of our own: the engine cannot see through it."""
    return time.monotonic()


def run(calls: int, seconds: float, root: str, clock) -> dict:
    engine = Engine()
    chans = []
    for i in range(calls):
        ch = CallChannel(media_root=root, engine=engine, clock=clock, codec="alaw")
        ch.ring()
        ch.answer()
        ch.FileRecorder.start(f"c{i:05d}.wav", "alaw", milliseconds_max_silence=0, max_bytes=0)
        chans.append(ch)
    time.sleep(0.2)  # every call idle for QUIET_TICKS ticks
    cpu0, t0 = engine.thread_cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = engine.thread_cpu_seconds() - cpu0, time.monotonic() - t0
    frames = [ch.media_samples() for ch in chans]
    for ch in chans:
        ch.close()
    engine.stop()
    return {
        "calls": calls,
        "wall_seconds": wall,
        "engine_cpu_share": cpu / wall,
        "us_per_idle_call_second": cpu / (calls * wall) * 1e6,
        "media_seconds_filled_min": min(frames) / 8000,
        "behind": bool(engine.behind),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    raise_nofile()
    rows = []
    for name, clock in (("core", time.monotonic), ("python", wall_clock)):
        with tempfile.TemporaryDirectory(prefix="gaps-") as root:
            rows.append(
                {
                    "case": f"{name}: {args.calls} idle calls",
                    **run(args.calls, args.seconds, root, clock),
                }
            )
    rows[0]["python_over_core"] = (
        rows[1]["us_per_idle_call_second"] / rows[0]["us_per_idle_call_second"]
    )
    emit(
        rows,
        args.json,
        "gap watchdog: the engine's CPU for calls that send no media",
        [
            ("case", "case", "s"),
            ("engine_cpu_share", "engine CPU share", ".3f"),
            ("us_per_idle_call_second", "us/idle call-s", ".2f"),
            ("python_over_core", "python/core", ".1f"),
            ("media_seconds_filled_min", "filled s (min)", ".2f"),
            ("behind", "behind", ""),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
