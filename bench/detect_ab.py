"""The multi-channel detectors (DTMF, silence, both) of this build against another build
of ``recorder._codecs.detect``, in the same process, timed alternately in CPU time.

The other build is a compiled ``detect`` module file, e.g. one built from an older
commit (``git worktree add /tmp/old <commit>`` and ``python setup.py build_ext --inplace``
there).  Both run ``MultiState.process`` on the same K channels x 20 ms blocks of
speech-like noise; the table gives microseconds of CPU per channel-second (best of R)
and the ratio.

    python bench/detect_ab.py OTHER_DETECT_SO [--channels K] [--repeat R] [--simd LEVELS]
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np

import recorder
from recorder._codecs import detect as ours


def _load(path: str):
    spec = importlib.util.spec_from_file_location("other_build.detect", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a module file")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _bank(mod, k: int, src: np.ndarray, dtmf: bool, silence: bool):
    dconf = mod.DtmfConfig(8000, -36.0, 8.0, 8.0, 6.0, 0.02, 0.6, 0.4) if dtmf else None
    sconf = mod.SilenceConfig(8000, -42.0, 20.0) if silence else None
    m = mod.MultiState(k, dconf, sconf)
    rows = np.arange(k, dtype=np.int64)
    ev = np.empty(m.max_events(k, src.shape[2]), mod.EVENT_DTYPE)
    sil, flags, level = np.empty(k, np.int64), np.empty(k, np.uint8), np.empty(k, np.float32)

    def run():
        for block in src:
            m.process(block, rows, ev, sil, flags, level)

    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", help="path of the other build's detect module (.so)")
    ap.add_argument("--channels", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--simd", default="best", help="comma list of levels (recorder.simd)")
    args = ap.parse_args(argv)
    other = _load(args.other)
    k, n, ticks = args.channels, 160, 10
    rng = np.random.default_rng(1)
    noise = (rng.laplace(0, 1500, 1 << 18)).clip(-32768, 32767).astype(np.int16)
    src = np.resize(noise, k * n * ticks).reshape(ticks, k, n)
    per = k * n * ticks / 8000  # channel-seconds per run
    print(f"{k} channels x 20 ms x {ticks}, us CPU per channel-second (best of {args.repeat})")
    print(f"{'simd':6s} {'case':15s} {'other':>8s} {'this':>8s} {'ratio':>6s}")
    for level in args.simd.split(","):
        lvl = recorder.set_simd_level(None if level == "best" else level)
        other.set_isa(ours.isa())
        for name, d, s in (("DTMF", 1, 0), ("silence", 0, 1), ("DTMF + silence", 1, 1)):
            runs = {"other": _bank(other, k, src, d, s), "this": _bank(ours, k, src, d, s)}
            best = dict.fromkeys(runs, float("inf"))
            for _ in range(args.repeat):
                for key, fn in runs.items():
                    t0 = time.process_time()
                    fn()
                    best[key] = min(best[key], time.process_time() - t0)
            o, t = best["other"] / per * 1e6, best["this"] / per * 1e6
            print(f"{lvl:6s} {name:15s} {o:8.2f} {t:8.2f} {o / t:6.2f}")
    recorder.set_simd_level(None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
