"""wav.repair: what a crash leaves is made whole, anything else is left byte-identical."""

from __future__ import annotations

import io

import numpy as np
import pytest

from recorder import wav

PCM = (np.sin(np.arange(16000) * 0.05) * 8000).astype(np.int16)


def _crashed(fmt="alaw", synced=4000, total=7001) -> bytes:
    """A recording whose process died after writing ``total`` frames, the header last
    refreshed at ``synced``."""
    buf = io.BytesIO()
    w = wav.Writer(buf, fmt, 8000)
    w.write(PCM[:synced])
    w.sync()
    w.write(PCM[synced:total])
    return buf.getvalue()


def test_repair_accepts_a_bytesio_and_an_open_file(tmp_path):
    blob = _crashed()
    buf = io.BytesIO(blob)
    meta = wav.repair(buf)
    assert meta.frames == 7001 and not buf.closed
    assert wav.read(io.BytesIO(buf.getvalue()))[1].frames == 7001
    p = tmp_path / "c.wav"
    p.write_bytes(blob)
    with open(p, "r+b") as f:
        assert wav.repair(f).frames == 7001
        assert not f.closed
    assert p.read_bytes() == buf.getvalue()


def test_repair_rejects_file_objects_it_cannot_rewrite(tmp_path):
    p = tmp_path / "c.wav"
    p.write_bytes(_crashed())
    with open(p, "rb") as f, pytest.raises(ValueError, match="writable"):
        wav.repair(f)
    with pytest.raises(TypeError, match="not bytes"):
        wav.repair(_crashed())
    assert wav.info(p).frames == 4000
