"""The one SIMD switch (recorder.simd): every kernel follows it, bad names are refused."""

from __future__ import annotations

import numpy as np
import pytest

import recorder
from recorder import codecs, dsp, simd


def test_levels_are_ordered_and_capped_to_the_cpu():
    best = recorder.simd_level()
    assert best in simd.LEVELS
    try:
        for level in simd.LEVELS:
            got = recorder.set_simd_level(level)
            assert got == recorder.simd_level()
            # a cap: the level asked for, or the CPU's best when that is lower
            assert simd.LEVELS.index(got) == min(simd.LEVELS.index(level), simd.LEVELS.index(best))
        assert recorder.set_simd_level("c") == "c"  # portable code runs everywhere
    finally:
        assert recorder.set_simd_level(None) == best


@pytest.mark.parametrize("bad", ["AVX2", "neon", "", 2, 1.0, b"avx2", ["c"]])
def test_unknown_level_is_a_value_error_naming_the_levels(bad):
    before = recorder.simd_level()
    with pytest.raises(ValueError, match="c, sse2, ssse3, avx, avx2"):
        recorder.set_simd_level(bad)
    assert recorder.simd_level() == before


def test_every_public_kernel_gives_the_same_bits_at_every_level():
    """One call switches them all: the G.711, ADPCM, resampler and DTMF results at each
    level equal those at the CPU's best."""
    rng = np.random.default_rng(5)
    pcm = np.clip(rng.laplace(0, 3000, 8003), -32768, 32767).astype(np.int16)
    tone = (
        8000 * np.sin(2 * np.pi * 697 * np.arange(1600) / 8000)
        + 8000 * np.sin(2 * np.pi * 1209 * np.arange(1600) / 8000)
    ).astype(np.int16)
    sig = np.concatenate([np.zeros(800, np.int16), tone, np.zeros(800, np.int16)])

    def run():
        return (
            codecs.alaw_encode(pcm).tobytes(),
            codecs.ulaw_decode(pcm.view(np.uint8)).tobytes(),
            codecs.oki_encode(pcm).tobytes(),
            recorder.resample(pcm, 8000, 11025).tobytes(),
            [tuple(d) for d in dsp.detect_dtmf(sig)],
        )

    want = run()
    assert want[-1] and want[-1][0][0] == "1"
    try:
        for level in simd.LEVELS:
            recorder.set_simd_level(level)
            assert run() == want, level
    finally:
        recorder.set_simd_level(None)


@pytest.mark.parametrize("fmt", ["alaw", "ulaw"])
def test_the_engine_follows_the_switch(tmp_path, fmt):
    """The recorder engine codes G.711 in its own compiled module: a call recorded at each
    level gives the same file, whose codes are the codec library's."""
    from recorder import CallChannel, wav

    rng = np.random.default_rng(9)
    x = np.clip(rng.laplace(0, 2500, 12_345), -32768, 32767).astype(np.int16)
    call = tmp_path / "call.wav"
    wav.write(call, x, fmt=fmt, rate=8000)  # replayed as G.711 codes
    heard, _ = wav.read(call)
    files = []
    try:
        for level in simd.LEVELS:
            recorder.set_simd_level(level)
            ch = CallChannel.replay(call, media_root=tmp_path / "media")
            ch.FileRecorder.record(f"{level}.wav", file_format=fmt)
            files.append((tmp_path / "media" / f"{level}.wav").read_bytes())
    finally:
        recorder.set_simd_level(None)
    assert all(f == files[0] for f in files)
    got, info = wav.read(tmp_path / "media" / "c.wav")
    assert info.format == fmt
    np.testing.assert_array_equal(got, heard)
