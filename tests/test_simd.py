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
        assert recorder.set_simd_level("c") == "c"      # portable code runs everywhere
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
    tone = (8000 * np.sin(2 * np.pi * 697 * np.arange(1600) / 8000)
            + 8000 * np.sin(2 * np.pi * 1209 * np.arange(1600) / 8000)).astype(np.int16)
    sig = np.concatenate([np.zeros(800, np.int16), tone, np.zeros(800, np.int16)])

    def run():
        return (codecs.alaw_encode(pcm).tobytes(), codecs.ulaw_decode(pcm.view(np.uint8)).tobytes(),
                codecs.oki_encode(pcm).tobytes(), recorder.resample(pcm, 8000, 11025).tobytes(),
                [tuple(d) for d in dsp.detect_dtmf(sig)])

    want = run()
    assert want[-1] and want[-1][0][0] == "1"
    try:
        for level in simd.LEVELS:
            recorder.set_simd_level(level)
            assert run() == want, level
    finally:
        recorder.set_simd_level(None)
