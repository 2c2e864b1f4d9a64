"""The wheel holds the compiled modules, stubs and py.typed, and no sources (slow: it
builds the wheel from this checkout with pip, under build isolation)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = ("g711", "adpcm", "resample", "detect", "engine")


@pytest.mark.slow
def test_wheel_contents(tmp_path):
    if not os.path.exists(os.path.join(ROOT, "setup.py")):
        pytest.skip("not running from a source checkout")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), ROOT],
        check=True,
        capture_output=True,
        timeout=900,
    )
    (wheel,) = [p for p in os.listdir(tmp_path) if p.endswith(".whl")]
    names = zipfile.ZipFile(tmp_path / wheel).namelist()
    for mod in MODULES:
        assert any(
            n.startswith(f"recorder/_codecs/{mod}.") and n.endswith(".so") for n in names
        ), mod
        assert f"recorder/_codecs/{mod}.pyi" in names
    assert "recorder/py.typed" in names
    assert not [n for n in names if n.endswith((".pyx", ".pxd", ".c", ".h"))]
    assert not [n for n in names if n.startswith(("_codecs/", "tests/", "bench/"))]
