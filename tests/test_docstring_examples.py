"""The Examples sections of the codec, ADPCM, resampler, detector, SIMD, files and
publish modules run as written (doctest), so the documentation cannot drift from the
code."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name", ["codecs", "adpcm", "resampling", "dsp", "simd", "files", "publish"]
)
def test_examples_run(name):
    module = importlib.import_module(f"recorder.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, raise_on_error=False)
    assert result.attempted > 0, f"recorder.{name} has no examples"
    assert result.failed == 0
