"""Running the real decoders/encoders (ffmpeg, sox) from tests and benchmarks."""

from __future__ import annotations

import subprocess

import numpy as np


def run(cmd: list[str], input: bytes | None = None) -> bytes:
    proc = subprocess.run(cmd, input=input, capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(
            f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-800:]}"
        )
    return proc.stdout


def ffmpeg_decode(path, channels: int = 1) -> np.ndarray:
    out = run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-i",
            str(path),
            "-f",
            "s16le",
            "-acodec",
            "pcm_s16le",
            "-",
        ]
    )
    x = np.frombuffer(out, "<i2").astype(np.int16)
    return x.reshape(-1, channels) if channels > 1 else x


def sox_decode(path, channels: int = 1, *extra: str) -> np.ndarray:
    out = run(
        ["sox", "-V1", *extra, str(path), "-t", "raw", "-e", "signed", "-b", "16", "-L", "-D", "-"]
    )
    x = np.frombuffer(out, "<i2").astype(np.int16)
    return x.reshape(-1, channels) if channels > 1 else x


def ffmpeg_encode(
    pcm: np.ndarray, rate: int, path, codec: str, channels: int = 1, *extra: str
) -> None:
    run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "s16le",
            "-ar",
            str(rate),
            "-ac",
            str(channels),
            "-i",
            "-",
            "-c:a",
            codec,
            *extra,
            str(path),
        ],
        input=pcm.astype("<i2").tobytes(),
    )


def sox_encode(pcm: np.ndarray, rate: int, path, *fmt: str, channels: int = 1) -> None:
    run(
        [
            "sox",
            "-V1",
            "-t",
            "raw",
            "-r",
            str(rate),
            "-c",
            str(channels),
            "-e",
            "signed",
            "-b",
            "16",
            "-L",
            "-",
            *fmt,
            str(path),
        ],
        input=pcm.astype("<i2").tobytes(),
    )
