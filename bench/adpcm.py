"""IMA / OKI ADPCM throughput: ours vs audioop (raw IMA), OKI encode vs spandsp's
oki_adpcm_encode (single stream, and our 1000 channels x 160 samples per sample against
it), WAV IMA blocks, the other multi-channel entry points, same run, same 8-million-sample
buffer, median of 5; then the quality (spandsp's gain error and residual) of our OKI
encoder and spandsp's in both kinds of OKI decoder.

    python bench/adpcm.py [--json] [--samples N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path = [
    p
    for p in sys.path
    if os.path.abspath(p) != os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
]
# the tests' ctypes binding of libspandsp, their quality measure and speech-like signal
sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

import numpy as np  # noqa: E402
from _common import emit, import_audioop, median_time  # noqa: E402

from recorder import adpcm, simd  # noqa: E402
from recorder._codecs import adpcm as _adpcm  # noqa: E402
from recorder._wav_adpcm import IMA, ImaWavEncoder  # noqa: E402


def load_spandsp():
    """tests/spandsp_adpcm.Spandsp over libspandsp, or None when it is missing."""
    import ctypes
    import ctypes.util

    from spandsp_adpcm import Spandsp

    for name in filter(None, (ctypes.util.find_library("spandsp"), "libspandsp.so.2")):
        try:
            return Spandsp(ctypes.CDLL(name))
        except OSError:
            continue
    return None


def oki_quality(sp, signals):
    """Gain error and residual (spandsp's measures, in %) of our OKI encoder and spandsp's,
    each decoded by a multiply-rounding decoder (ours = FFmpeg, sox, libsndfile) and by
    spandsp's shift-sum decoder, over the signals concatenated (each coded alone)."""
    from speech import quality

    x = np.concatenate(signals)
    coders = {"ours": adpcm.oki_encode, "spandsp": sp.oki_encode}
    out = []
    for coder, enc in coders.items():
        coded = [enc(s) for s in signals]
        for dec_name, dec in (
            ("multiply (FFmpeg)", adpcm.oki_decode),
            ("shift-sum (spandsp)", sp.oki_decode),
        ):
            y = np.concatenate([dec(c)[: s.size] for c, s in zip(coded, signals, strict=True)])
            g, r = quality(x, y)
            out.append(
                {
                    "encoder": coder,
                    "decoder": dec_name,
                    "gain_pct": 100 * g,
                    "residual_pct": 100 * r,
                }
            )
    return out


def cpu_time(fn):
    """Seconds of this thread's CPU time fn takes (every kernel here runs in the calling
    thread): other processes on a shared machine then count only through the caches."""
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def paired_median(ours, peer, repeat, clock="wall"):
    """Median times of ours and the peer, timed alternately (ours, peer, ours, ...) after
    a warm-up of each: on a shared machine whose speed drifts, both see the same drift.
    clock: "wall" (elapsed time) or "cpu" (this thread's CPU time)."""
    one = (lambda fn: median_time(fn, 1, warmup=0)) if clock == "wall" else cpu_time
    if peer is None:
        ours()
        return statistics.median(one(ours) for _ in range(repeat)), None
    t_ours, t_peer = [], []
    ours()
    peer()
    for _ in range(repeat):
        t_ours.append(one(ours))
        t_peer.append(one(peer))
    return statistics.median(t_ours), statistics.median(t_peer)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--samples", type=int, default=8_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--channels", type=int, default=1000)
    ap.add_argument("--frame", type=int, default=160)
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time by elapsed time or by this thread's CPU time (steadier on a busy machine)",
    )
    ap.add_argument(
        "--isa",
        choices=simd.LEVELS,
        default=None,
        help="cap every kernel's SIMD level (default: the best this CPU runs)",
    )
    args = ap.parse_args(argv)

    audioop = import_audioop()
    sp = load_spandsp()
    isa = simd.set_simd_level(args.isa)
    rng = np.random.default_rng(0)
    n = args.samples
    # speech-like amplitudes (Laplacian, RMS about -20 dBm0), as bench/codecs.py
    pcm = np.clip(rng.laplace(0, 1200, n), -32768, 32767).astype(np.int16)
    raw = pcm.tobytes()
    ima = adpcm.ima_encode(pcm)
    oki = adpcm.oki_encode(pcm)
    ima_bytes = ima.tobytes()
    out8 = np.empty(n // 2, np.uint8)
    out16 = np.empty(n, np.int16)

    ba = IMA.block_align(1, 8000)
    spb = IMA.samples_per_block(1, 8000)
    whole = n // spb * spb
    wav_blocks = ImaWavEncoder(1, ba).encode(pcm[:whole])
    wav_out = np.empty(whole, np.int16)

    rows, frame = args.channels, args.frame
    multi = pcm[: rows * frame].reshape(rows, frame).copy()
    st_ima, st_oki = adpcm.row_states(rows), adpcm.row_states(rows)
    st_dima, st_doki = adpcm.row_states(rows), adpcm.row_states(rows)
    mout8 = np.empty((rows, frame // 2), np.uint8)
    mout16 = np.empty((rows, frame), np.int16)
    mima = adpcm.ima_encode_rows(multi, adpcm.row_states(rows))
    moki = adpcm.oki_encode_rows(multi, adpcm.row_states(rows))
    multi_bytes = [r.tobytes() for r in multi]

    # number of calls per timing for the small multi-channel cases (about n samples)
    reps = max(1, n // (rows * frame))

    def loop(fn):
        def run():
            for _ in range(reps):
                fn()

        return run

    # successive frames of the same calls (each row continues its stream), as a recorder
    # codes them: the repeated block above makes the two predictors the encoder follows
    # drift apart call after call (the state ends each block where the block starts again),
    # which leaves more samples uncertain for the search
    frames = pcm[: reps * rows * frame].reshape(reps, rows, frame)
    st_oki2 = adpcm.row_states(rows)

    def oki_successive():
        st_oki2[:] = 0
        for f in frames:
            adpcm.oki_encode_rows(f, st_oki2, out=mout8)

    # the same on speech: each channel a different stretch of the speech-like signals
    # (tests/speech.py), as one call's successive frames
    st_oki3 = adpcm.row_states(rows)
    talk_frames = []

    def oki_speech_successive():
        if not talk_frames:  # built on first use (the warm-up call)
            from speech import speechlike

            talk = np.concatenate([speechlike(k) for k in range(3)]).astype(np.int16)
            start = (np.arange(rows) * 7919) % talk.size
            for k in range(reps):
                idx = (start[:, None] + k * frame + np.arange(frame)[None, :]) % talk.size
                talk_frames.append(talk[idx])
        st_oki3[:] = 0
        for f in talk_frames:
            adpcm.oki_encode_rows(f, st_oki3, out=mout8)

    def audioop_per_channel():
        for r in multi_bytes:
            audioop.lin2adpcm(r, 2, None)

    m = reps * rows * frame

    def ima_enc():
        return adpcm.ima_encode(pcm, out=out8)

    def ima_dec():
        return adpcm.ima_decode(ima, out=out16)

    lin2adpcm = audioop and (lambda: audioop.lin2adpcm(raw, 2, None))
    adpcm2lin = audioop and (lambda: audioop.adpcm2lin(ima_bytes, 2, None))
    sp_oki_enc = sp and (lambda: sp.oki_encode(pcm))
    cases = [
        # name, samples, ours, peer name, peer samples, peer
        ("IMA encode", n, ima_enc, "audioop.lin2adpcm", n, lin2adpcm),
        ("IMA decode", n, ima_dec, "audioop.adpcm2lin", n, adpcm2lin),
        (
            "OKI encode",
            n,
            lambda: adpcm.oki_encode(pcm, out=out8),
            "spandsp oki_adpcm_encode",
            n,
            sp_oki_enc,
        ),
        ("OKI decode", n, lambda: adpcm.oki_decode(oki, out=out16), "our IMA decode", n, ima_dec),
        (
            "WAV IMA encode",
            whole,
            lambda: ImaWavEncoder(1, ba).encode(pcm[:whole]),
            "our IMA encode",
            n,
            ima_enc,
        ),
        (
            "WAV IMA decode",
            whole,
            lambda: _adpcm.ima_wav_decode(wav_blocks, 1, ba, wav_out),
            "our IMA decode",
            n,
            ima_dec,
        ),
        (
            f"IMA enc {rows}x{frame}",
            m,
            loop(lambda: adpcm.ima_encode_rows(multi, st_ima, out=mout8)),
            "audioop.lin2adpcm",
            n,
            lin2adpcm,
        ),
        (
            f"IMA enc {rows}x{frame}",
            m,
            loop(lambda: adpcm.ima_encode_rows(multi, st_ima, out=mout8)),
            "audioop per channel",
            m,
            audioop and loop(audioop_per_channel),
        ),
        (
            f"IMA dec {rows}x{frame}",
            m,
            loop(lambda: adpcm.ima_decode_rows(mima, st_dima, out=mout16)),
            "audioop.adpcm2lin",
            n,
            adpcm2lin,
        ),
        (
            f"OKI enc {rows}x{frame}",
            m,
            loop(lambda: adpcm.oki_encode_rows(multi, st_oki, out=mout8)),
            "spandsp oki_adpcm_encode",
            n,
            sp_oki_enc,
        ),
        (
            f"OKI enc {rows}x{frame} succ.",
            m,
            oki_successive,
            "spandsp oki_adpcm_encode",
            n,
            sp_oki_enc,
        ),
        (
            f"OKI enc {rows}x{frame} speech succ.",
            m,
            oki_speech_successive,
            "spandsp oki_adpcm_encode",
            n,
            sp_oki_enc,
        ),
        (
            f"OKI dec {rows}x{frame}",
            m,
            loop(lambda: adpcm.oki_decode_rows(moki, st_doki, out=mout16)),
            "audioop.adpcm2lin",
            n,
            adpcm2lin,
        ),
    ]
    rows_out = []
    for name, count, ours, peer_name, peer_count, peer in cases:
        if args.only not in name:
            continue
        t_ours, t_peer = paired_median(ours, peer, args.repeat, args.clock)
        ours_msps = count / t_ours / 1e6
        peer_msps = peer_count / t_peer / 1e6 if t_peer else None
        rows_out.append(
            {
                "case": name,
                "peer": peer_name,
                "ours_msps": ours_msps,
                "peer_msps": peer_msps,
                "ratio": ours_msps / peer_msps if peer_msps else None,
            }
        )
    emit(
        rows_out,
        args.json,
        f"adpcm: Msamples/s on {n:,} samples ({rows}x{frame} for the rows cases), median of {args.repeat} "
        f"({args.clock} clock), SIMD level {isa}",
        [
            ("case", "case", "s"),
            ("ours_msps", "ours", ".0f"),
            ("peer", "peer", "s"),
            ("peer_msps", "peer Ms/s", ".0f"),
            ("ratio", "ours/peer", ".2f"),
        ],
    )
    if sp is not None:
        from speech import speechlike

        for what, signals in (
            ("speech-like signals (tests/speech.py, seeds 0-2)", [speechlike(k) for k in range(3)]),
        ):
            emit(
                oki_quality(sp, signals),
                args.json,
                f"OKI quality on {what}, %",
                [
                    ("encoder", "encoder", "s"),
                    ("decoder", "decoder", "s"),
                    ("gain_pct", "gain err", "+.2f"),
                    ("residual_pct", "residual", ".2f"),
                ],
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
