"""G.711 / PCM codec throughput: ours vs audioop vs a numpy table lookup, same run,
same 8-million-sample buffer, median of 5.

    python bench/codecs.py [--json] [--samples N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path = [
    p
    for p in sys.path
    if os.path.abspath(p) != os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
]

import numpy as np  # noqa: E402
from _common import emit, import_audioop, median_time  # noqa: E402

from recorder import codecs  # noqa: E402
from recorder._codecs import g711 as _g711  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--samples", type=int, default=8_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    audioop = import_audioop()
    rng = np.random.default_rng(0)
    # speech-like amplitudes (Laplacian, RMS about -20 dBm0) rather than uniform noise
    pcm = np.clip(rng.laplace(0, 1200, args.samples), -32768, 32767).astype(np.int16)
    raw = pcm.tobytes()
    alaw = codecs.alaw_encode(pcm)
    ulaw = codecs.ulaw_encode(pcm)
    u8 = codecs.u8_encode(pcm)
    s16 = codecs.s16_encode(pcm)
    t = _g711.tables()
    tab = {
        k: np.frombuffer(v, np.uint8 if "enc" in k or "_to_" in k else np.int16)
        for k, v in t.items()
    }
    pcm_u16 = pcm.view(np.uint16)

    out8 = np.empty(args.samples, np.uint8)
    out16 = np.empty(args.samples, np.int16)
    cases = [
        # name, ours, audioop, numpy
        (
            "alaw encode",
            lambda: codecs.alaw_encode(pcm, out=out8),
            audioop and (lambda: audioop.lin2alaw(raw, 2)),
            lambda: tab["alaw_enc"][pcm_u16 >> 4],
        ),
        (
            "ulaw encode",
            lambda: codecs.ulaw_encode(pcm, out=out8),
            audioop and (lambda: audioop.lin2ulaw(raw, 2)),
            lambda: tab["ulaw_enc"][pcm_u16 >> 2],
        ),
        (
            "alaw decode",
            lambda: codecs.alaw_decode(alaw, out=out16),
            audioop and (lambda: audioop.alaw2lin(alaw.tobytes(), 2)),
            lambda: tab["alaw_dec"][alaw],
        ),
        (
            "ulaw decode",
            lambda: codecs.ulaw_decode(ulaw, out=out16),
            audioop and (lambda: audioop.ulaw2lin(ulaw.tobytes(), 2)),
            lambda: tab["ulaw_dec"][ulaw],
        ),
        (
            "alaw->ulaw",
            lambda: codecs.alaw_to_ulaw(alaw, out=out8),
            None,
            lambda: tab["alaw_to_ulaw"][alaw],
        ),
        (
            "u8 encode",
            lambda: codecs.u8_encode(pcm, out=out8),
            audioop and (lambda: audioop.bias(audioop.lin2lin(raw, 2, 1), 1, 128)),
            lambda: (np.clip((pcm.astype(np.int32) + 128) >> 8, -128, 127) + 128).astype(np.uint8),
        ),
        (
            "u8 decode",
            lambda: codecs.u8_decode(u8, out=out16),
            audioop and (lambda: audioop.lin2lin(audioop.bias(u8.tobytes(), 1, -128), 1, 2)),
            lambda: ((u8.astype(np.int16) - 128) << 8),
        ),
        (
            "s16 encode",
            lambda: codecs.s16_encode(pcm),
            None,
            lambda: pcm.astype("<i2").view(np.uint8),
        ),
        (
            "s16 decode",
            lambda: codecs.s16_decode(s16, out=out16),
            None,
            lambda: s16.view("<i2").astype(np.int16),
        ),
    ]
    rows = []
    n = args.samples / 1e6
    for name, ours, peer, numpy_fn in cases:
        t_ours = median_time(ours, args.repeat)
        t_peer = median_time(peer, args.repeat) if peer else None
        t_np = median_time(numpy_fn, args.repeat)
        rows.append(
            {
                "case": name,
                "ours_msps": n / t_ours,
                "audioop_msps": n / t_peer if t_peer else None,
                "numpy_msps": n / t_np,
                "ratio_vs_audioop": t_peer / t_ours if t_peer else None,
            }
        )
    emit(
        rows,
        args.json,
        f"codecs: Msamples/s on {args.samples:,} samples, median of {args.repeat}",
        [
            ("case", "case", "s"),
            ("ours_msps", "ours", ".0f"),
            ("audioop_msps", "audioop", ".0f"),
            ("numpy_msps", "numpy LUT", ".0f"),
            ("ratio_vs_audioop", "ours/audioop", ".1f"),
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
