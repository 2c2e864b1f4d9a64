"""Raw headerless ADPCM files: Dialogic ``.vox`` (OKI ADPCM, what ``sox -t vox`` and
libsndfile's RAW/VOX_ADPCM read) and raw IMA (``audioop.lin2adpcm`` layout).

A raw file is just the nibble stream of one mono channel, two samples per byte, the
first in the high nibble, coded from the state (0, 0).  It carries no rate: Dialogic
files are 8000 Hz (32 kbit/s) or 6000 Hz (24 kbit/s) by convention, and the caller has
to know which.  An odd sample count ends with a zero pad nibble, which a reader decodes
as one extra sample (the format cannot say otherwise).

    from recorder import vox
    vox.write("prompt.vox", pcm)                 # OKI, the default
    pcm = vox.read("prompt.vox")
    with vox.Writer("call.vox") as w:            # streaming, e.g. 20 ms at a time
        w.write(frame)

For WAV files in these codecs use :mod:`recorder.wav` with ``fmt='oki'`` / ``'ima'``.
"""

from __future__ import annotations

import os

import numpy as np

from . import adpcm
from ._buffers import as_int16

__all__ = ["read", "write", "Writer", "FORMATS"]

#: The raw formats: name -> (encoder class, decoder class).
FORMATS = {"oki": (adpcm.OkiEncoder, adpcm.OkiDecoder), "ima": (adpcm.ImaEncoder, adpcm.ImaDecoder)}


def _codec(fmt):
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ValueError(f"unknown raw ADPCM format {fmt!r}; expected 'oki' or 'ima'")
    return FORMATS[fmt]


def read(path, fmt: str = "oki") -> np.ndarray:
    """Decode a raw ADPCM file (a path or a binary file object) to int16 samples."""
    dec = _codec(fmt)[1]()
    if hasattr(path, "read"):
        data = path.read()
    else:
        with open(os.fspath(path), "rb") as f:
            data = f.read()
    return dec.decode(data)


def write(path, pcm, fmt: str = "oki") -> int:
    """Encode int16 samples (1-D, mono) to a raw ADPCM file; returns the bytes written."""
    x = as_int16(pcm, "pcm")
    if x.ndim != 1:
        raise ValueError("raw ADPCM files are mono: pcm must be 1-D")
    with Writer(path, fmt) as w:
        w.write(x)
    return w.bytes_written


class Writer:
    """Streaming raw ADPCM writer: ``write(pcm)`` appends samples (held-back samples,
    see :class:`recorder.adpcm.OkiEncoder`, are written by the next call or by
    ``close()``), ``close()`` flushes.  A context manager.  The bytes never depend on
    how the samples are split between calls."""

    def __init__(self, path, fmt: str = "oki"):
        self.format = fmt
        self._enc = _codec(fmt)[0]()
        if hasattr(path, "write"):
            self._f, self._own, self.path = path, False, getattr(path, "name", None)
        else:
            self.path = os.fspath(path)
            self._f, self._own = open(self.path, "wb"), True
        self.frames = 0
        self.bytes_written = 0
        self.closed = False

    def write(self, pcm) -> int:
        if self.closed:
            raise ValueError("write to a closed raw ADPCM writer")
        x = as_int16(pcm, "pcm")
        if x.ndim != 1:
            raise ValueError("raw ADPCM files are mono: pcm must be 1-D")
        coded = self._enc.encode(x)
        self._f.write(memoryview(coded))
        self.bytes_written += coded.size
        self.frames += x.size
        return x.size

    def close(self) -> None:
        if self.closed:
            return
        try:
            tail = self._enc.flush()
            self._f.write(memoryview(tail))
            self.bytes_written += tail.size
            self._f.flush()
        finally:
            self.closed = True
            if self._own:
                self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
