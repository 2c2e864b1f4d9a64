"""The measurements behind the silence detector's default threshold (-42 dBm0), and its
speed.

For each candidate threshold it prints:
  * the loudest 10 ms window of 60 s of steady line noise at -50 dBm0 (white 300-3400 Hz,
    white 0-4000 Hz, pink) and whether that noise ever counts as audio;
  * how many prompts of speech scaled to -35 dBm0 active level in -55 dBm0 noise are heard;
  * how the boundaries of the pauses in 80 real prompts (asterisk-core-sounds) agree with
    ffmpeg's silencedetect (an independent, peak-based measurement at threshold + 3 dB).

    python bench/silence.py [--json]
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(HERE)]

import dsp_signals as S  # noqa: E402
import numpy as np  # noqa: E402
from _common import emit, median_time  # noqa: E402
from dsp_signals import boundary_errors, silences  # noqa: E402

from recorder import dsp  # noqa: E402

MS = 8


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(11)
    n = 8000 * 60
    noises = {
        "white 300-3400": S.band_noise(n, -50, rng),
        "white 0-4000": S.band_noise(n, -50, rng, 0, 4000),
        "pink": S.pink_noise(n, -50, rng),
    }
    noise_max = {}
    for name, x in noises.items():
        fr = dsp.SilenceDetector(threshold_dbm0=0).process(S.to_int16(x))
        noise_max[name] = float(fr["level"].max())
    # the loudest window over ten more 60 s runs of each noise
    for seed in range(10):
        r2 = np.random.default_rng(100 + seed)
        for name, x in (
            ("white 300-3400", S.band_noise(n, -50, r2)),
            ("white 0-4000", S.band_noise(n, -50, r2, 0, 4000)),
            ("pink", S.pink_noise(n, -50, r2)),
        ):
            fr = dsp.SilenceDetector(threshold_dbm0=0).process(S.to_int16(x))
            noise_max[name] = max(noise_max[name], float(fr["level"].max()))

    files = S.speech_files()
    pick_rng = np.random.default_rng(7)
    pick = [files[i] for i in pick_rng.choice(len(files), min(80, len(files)), replace=False)]
    speech = S.corpus(pick, gap_ms=300)
    soft = []
    for f in files[:40]:
        x = S.read_wav8k(f).astype(np.float64)
        x *= 10 ** ((-35 - S.active_level_dbm0(x)) / 20)
        sig = np.concatenate([S.silence(500), x, S.silence(800)])
        soft.append(S.to_int16(sig + S.band_noise(len(sig), -55, rng)))

    rows = []
    for t in (-50, -47, -45, -44, -43, -42, -41, -39, -36):
        row = {"threshold": t}
        for name, x in noises.items():
            det = dsp.SilenceDetector(threshold_dbm0=t)
            det.process(S.to_int16(x))
            row[f"noise_{name}"] = "audio" if det.audio_detected else "silence"
        row["noise_margin_db"] = t - max(noise_max.values())
        heard = sum(1 for y in soft if len(dsp.audio_segments(y, threshold_dbm0=t)) > 0)
        row["soft_speech_heard"] = f"{heard}/{len(soft)}"
        ref = S.ffmpeg_silences(speech, t - 6.15 + 3.0, 100)
        ours = silences(
            dsp.audio_segments(speech, threshold_dbm0=t).tolist(), len(speech), 100 * MS
        )
        e = (
            np.abs(np.array([v for v in boundary_errors(ref, ours, len(speech)) if v is not None]))
            / MS
        )
        row["ffmpeg_within_20ms"] = 100.0 * float(np.mean(e <= 20))
        row["ffmpeg_median_ms"] = float(np.median(e))
        row["ffmpeg_p95_ms"] = float(np.percentile(e, 95))
        rows.append(row)

    print(
        "loudest 10 ms window in 11 x 60 s of -50 dBm0 noise: "
        + ", ".join(f"{k} {v:.1f} dBm0" for k, v in noise_max.items())
    )
    emit(
        rows,
        args.json,
        "silence threshold (dBm0): noise, soft speech, pause boundaries vs ffmpeg",
        [
            ("threshold", "threshold", "d"),
            ("noise_margin_db", "noise margin dB", ".1f"),
            ("noise_pink", "pink -50", ""),
            ("soft_speech_heard", "-35 in -55 heard", ""),
            ("ffmpeg_within_20ms", "% within 20 ms", ".1f"),
            ("ffmpeg_median_ms", "median ms", ".1f"),
            ("ffmpeg_p95_ms", "p95 ms", ".1f"),
        ],
    )

    # speed: one channel, one buffer
    x = np.ascontiguousarray(np.resize(speech, 8_000_000))
    t1 = median_time(lambda: dsp.SilenceDetector().process(x), args.repeat)
    print(f"\nspeed, one channel: {len(x) / t1 / 1e6:.0f} Msamples/s (with per-window records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
