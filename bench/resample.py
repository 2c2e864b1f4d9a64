"""Resampling speed, ours vs soxr ('MQ') and scipy.signal.resample_poly, same run, same
machine, with the quality of every entry printed next to its speed.

    python bench/resample.py [--json] [--quick] [--repeat R] [--isa c|sse2|avx2]

Three tables:

* stream: one channel, 20 ms chunks (160 samples at 8000 Hz), int16, microseconds per
  chunk: ``Resampler.process`` vs ``soxr.ResampleStream(quality='MQ').resample_chunk``;
* multi: 1000 channels x 160 samples per call (the recorder's case), int16, ns per
  channel-sample: ``MultiResampler.process`` vs 1000 single soxr streams (each call on
  a server starts at its own time, so its stream is its own); soxr's 1000-channel
  interleaved stream (all channels in lockstep, which calls are not) for reference;
* one-shot: 8,000,000 int16 samples, ms: ``resample`` vs ``soxr.resample(quality='MQ')``
  and ``resample_poly`` (float64, its default Kaiser filter).

Quality (measured here with float32 sines, tests/resample_measure.py): ``ripple`` is
the largest passband gain error in dB from 50 Hz to the passband edge (3400 Hz; 2700 Hz
for 6000 Hz), ``reject`` the weakest attenuation of any alias or image in dB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(os.path.dirname(HERE), "tests"))
sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(HERE)]

# the imports below need the sys.path set up above (bench/ and tests/ helpers)
import numpy as np  # noqa: E402
import resample_measure as rm  # noqa: E402
import scipy.signal as ss  # noqa: E402
import soxr  # noqa: E402
from _common import emit, machine, median_time  # noqa: E402

import recorder  # noqa: E402
from recorder import resampling  # noqa: E402

TARGETS = (6000, 11000, 11025)


def quality_of(engine: str, fi: int, fo: int, quick: bool) -> dict:
    p, q = resampling.ratio(fi, fo)

    def fn(x):
        if engine == "ours":
            return recorder.resample(x, fi, fo)
        if engine == "soxr":
            return soxr.resample(x, fi, fo, quality="MQ")
        return ss.resample_poly(x.astype(np.float64), p, q)

    n = (8, 12) if quick else (24, 40)
    return rm.quality(fn, fi, fo, resampling.passband_edge(fi, fo), n_pass=n[0], n_stop=n[1])


def paired(fa, fb, repeat):
    """Median times of fa and fb, run alternately (the machine is shared: load comes
    and goes, and this way it hits both alike)."""
    fa(), fb()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, ts in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return statistics.median(ta), statistics.median(tb)


def chunk_loop(fn, chunks):
    def run():
        for c in chunks:
            fn(c)

    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true", help="fewer samples and sines")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--channels", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=8_000_000)
    ap.add_argument(
        "--isa",
        choices=recorder.simd.LEVELS,
        help="cap every kernel's SIMD level (default: the best this CPU runs)",
    )
    args = ap.parse_args(argv)
    recorder.set_simd_level(args.isa)
    if args.quick:
        args.samples = min(args.samples, 1_000_000)

    rng = np.random.default_rng(0)
    x = np.clip(rng.laplace(0, 1200, args.samples), -32768, 32767).astype(np.int16)
    n_chunks = 500 if args.quick else 2500
    chunks = list(x[: 160 * n_chunks].reshape(-1, 160))
    block = x[: 160 * args.channels].reshape(args.channels, 160).copy()

    quality = {}
    for fo in TARGETS:
        for eng in ("ours", "soxr", "resample_poly"):
            quality[eng, 8000, fo] = quality_of(eng, 8000, fo, args.quick)
    for fi in TARGETS:  # the WAV reader's direction
        for eng in ("ours", "soxr"):
            quality[eng, fi, 8000] = quality_of(eng, fi, 8000, args.quick)

    def qcols(eng, fi, fo, prefix):
        qd = quality[eng, fi, fo]
        return {f"{prefix}ripple_db": qd["ripple_db"], f"{prefix}reject_db": qd["rejection_db"]}

    stream_rows = []
    for fi, fo, size in [(8000, fo, 160) for fo in TARGETS] + [
        (fi, 8000, fi // 50) for fi in TARGETS
    ]:
        cs = chunks if size == 160 else list(x[: size * n_chunks].reshape(-1, size))
        ours = recorder.Resampler(fi, fo)
        peer = soxr.ResampleStream(fi, fo, 1, dtype="int16", quality="MQ")
        t_ours, t_peer = paired(
            chunk_loop(ours.process, cs), chunk_loop(peer.resample_chunk, cs), args.repeat
        )
        t_ours, t_peer = t_ours / len(cs), t_peer / len(cs)
        stream_rows.append(
            {
                "case": f"{fi}->{fo} x{size}",
                "ours_us": t_ours * 1e6,
                "soxr_us": t_peer * 1e6,
                "speedup": t_peer / t_ours,
                **qcols("ours", fi, fo, ""),
                **qcols("soxr", fi, fo, "soxr_"),
            }
        )

    multi_rows = []
    for fo in TARGETS:
        bank = recorder.MultiResampler(args.channels, 8000, fo)
        streams = [
            soxr.ResampleStream(8000, fo, 1, dtype="int16", quality="MQ")
            for _ in range(args.channels)
        ]
        rows = list(block)

        def soxr_streams(streams=streams, rows=rows):
            for s, r in zip(streams, rows, strict=True):
                s.resample_chunk(r)

        t_ours, t_soxr = paired(lambda bank=bank: bank.process(block), soxr_streams, args.repeat)
        inter = np.ascontiguousarray(block.T)
        lock = soxr.ResampleStream(8000, fo, args.channels, dtype="int16", quality="MQ")
        lock.resample_chunk(inter)
        t_lock = median_time(lambda lock=lock, inter=inter: lock.resample_chunk(inter), args.repeat)
        per = 1e9 / (args.channels * 160)
        ours_ns = t_ours * per
        soxr_ns = t_soxr * per
        multi_rows.append(
            {
                "case": f"8000->{fo} {args.channels}x160",
                "ours_ns": ours_ns,
                "soxr_streams_ns": soxr_ns,
                "speedup": soxr_ns / ours_ns,
                "soxr_lockstep_ns": t_lock * per,
                "vs_lockstep": t_lock * per / ours_ns,
                "ours_ms_per_call": t_ours * 1e3,
                **qcols("ours", 8000, fo, ""),
            }
        )

    one_rows = []
    xf = x.astype(np.float64)
    for fi, fo in [(8000, fo) for fo in TARGETS] + [(fi, 8000) for fi in TARGETS]:
        p, q = resampling.ratio(fi, fo)
        t_ours, t_soxr = paired(
            lambda fi=fi, fo=fo: recorder.resample(x, fi, fo),
            lambda fi=fi, fo=fo: soxr.resample(x, fi, fo, quality="MQ"),
            args.repeat,
        )
        t_poly = None
        if fi == 8000:
            t_poly = median_time(
                lambda p=p, q=q: ss.resample_poly(xf, p, q), max(1, args.repeat // 2), 0
            )
        one_rows.append(
            {
                "case": f"{fi}->{fo}",
                "ours_ms": t_ours * 1e3,
                "soxr_ms": t_soxr * 1e3,
                "poly_ms": t_poly and t_poly * 1e3,
                "vs_soxr": t_soxr / t_ours,
                "vs_poly": t_poly and t_poly / t_ours,
                **qcols("ours", fi, fo, ""),
                **qcols("soxr", fi, fo, "soxr_"),
                **(qcols("resample_poly", fi, fo, "poly_") if fi == 8000 else {}),
            }
        )

    if args.json:
        import json

        print(
            json.dumps(
                {
                    "benchmark": "resample",
                    "machine": machine(),
                    "isa": recorder.simd_level(),
                    "stream": stream_rows,
                    "multi": multi_rows,
                    "oneshot": one_rows,
                },
                indent=1,
            )
        )
        return 0
    print(
        f"SIMD level: {recorder.simd_level()}; median of {args.repeat}; quality measured with float32 sines"
    )
    emit(
        stream_rows,
        False,
        "stream: one channel, 20 ms int16 chunks, us per chunk",
        [
            ("case", "case", "s"),
            ("ours_us", "ours", ".2f"),
            ("soxr_us", "soxr MQ", ".2f"),
            ("speedup", "ours/soxr", ".2f"),
            ("ripple_db", "ripple", ".4f"),
            ("reject_db", "reject", ".1f"),
            ("soxr_ripple_db", "soxr ripple", ".4f"),
            ("soxr_reject_db", "soxr reject", ".1f"),
        ],
    )
    print()
    emit(
        multi_rows,
        False,
        "multi: channels x 160 int16 samples per call, ns per channel-sample",
        [
            ("case", "case", "s"),
            ("ours_ns", "ours", ".2f"),
            ("soxr_streams_ns", "soxr streams", ".2f"),
            ("speedup", "ours/soxr", ".2f"),
            ("soxr_lockstep_ns", "soxr lockstep", ".2f"),
            ("vs_lockstep", "ours/lockstep", ".2f"),
            ("ripple_db", "ripple", ".4f"),
            ("reject_db", "reject", ".1f"),
        ],
    )
    print()
    emit(
        one_rows,
        False,
        f"one-shot: {args.samples:,} int16 samples, ms",
        [
            ("case", "case", "s"),
            ("ours_ms", "ours", ".1f"),
            ("soxr_ms", "soxr MQ", ".1f"),
            ("poly_ms", "resample_poly", ".1f"),
            ("vs_soxr", "ours/soxr", ".2f"),
            ("vs_poly", "ours/poly", ".2f"),
            ("ripple_db", "ripple", ".4f"),
            ("reject_db", "reject", ".1f"),
            ("soxr_ripple_db", "soxr ripple", ".4f"),
            ("soxr_reject_db", "soxr reject", ".1f"),
            ("poly_ripple_db", "poly ripple", ".3f"),
            ("poly_reject_db", "poly reject", ".1f"),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
