"""The ``recorder`` command line (also ``python -m recorder``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

from . import __version__, wav
from .wav import WavError


class CliError(Exception):
    """An error reported as one line on stderr with exit status 2."""


def _signal(rate: int = 8000, seconds: float = 2.0, seed: int = 1) -> np.ndarray:
    """A speech-like test signal: a voiced buzz with a moving pitch and a syllable
    envelope, then a pause, at about -20 dBm0."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5
    x = voiced * envelope + 0.02 * rng.standard_normal(t.size)
    x[int(0.7 * t.size):] = 0.0                                   # a pause at the end
    x *= 1600 / (np.sqrt(np.mean(x[: int(0.7 * t.size)] ** 2)) + 1e-9)  # RMS 1600 = -20 dBm0
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def _snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    err = got.astype(np.float64)[: ref.size] - ref
    p_err = float(np.mean(err ** 2))
    return float("inf") if p_err == 0 else 10 * np.log10(float(np.mean(ref ** 2)) / p_err)


def cmd_demo(args) -> int:
    out = args.out or tempfile.mkdtemp(prefix="recorder-demo-")
    os.makedirs(out, exist_ok=True)
    pcm = _signal()
    rows = []
    for fmt in wav.WRITE_FORMATS:
        path = os.path.join(out, f"demo-{fmt}.wav")
        meta = wav.write(path, pcm, fmt=fmt, rate=8000)
        back, _ = wav.read(path)
        rows.append((fmt, meta.rate, os.path.getsize(path), meta.duration, _snr_db(pcm, back), path))
    if args.json:
        print(json.dumps([dict(zip(("format", "rate", "bytes", "duration", "snr_db", "path"), r))
                          for r in rows]))
        return 0
    print(f"{'format':<8} {'rate':>6} {'bytes':>7} {'seconds':>8} {'SNR dB':>7}  file")
    for fmt, rate, size, dur, snr, path in rows:
        print(f"{fmt:<8} {rate:>6} {size:>7} {dur:>8.3f} {snr:>7.1f}  {path}")
    print(f"wrote {len(rows)} files to {out}")
    return 0


def cmd_info(args) -> int:
    results = []
    for path in args.files:
        try:
            meta = wav.info(path)
        except FileNotFoundError:
            raise CliError(f"{path}: no such file") from None
        except WavError as e:
            raise CliError(f"{path}: not a readable WAV file: {e}") from None
        results.append({"file": path, "format": meta.format, "rate": meta.rate,
                        "channels": meta.channels, "frames": meta.frames,
                        "duration": round(meta.duration, 6)})
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0]))
    else:
        for r in results:
            print(f"{r['file']}: {r['format']} {r['rate']} Hz {r['channels']} ch "
                  f"{r['frames']} frames {r['duration']:.3f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recorder", description="Record telephone-call audio to files.")
    p.add_argument("--version", action="version", version=f"callrecorder {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    d = sub.add_parser("demo", help="write a generated call in every format and show what was written")
    d.add_argument("--out", metavar="DIR", help="where to write (default: a new temporary directory)")
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("info", help="format, rate, channels and duration of WAV files")
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as e:
        print(f"recorder: error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"recorder: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
