"""A small ctypes harness for spandsp's ADPCM codecs (Debian libspandsp-dev):
oki_adpcm_init/encode/decode and ima_adpcm_init/encode/decode, as declared in
/usr/include/spandsp/oki_adpcm.h and ima_adpcm.h."""

from __future__ import annotations

import ctypes

import numpy as np

IMA_ADPCM_DVI4 = 1  # enum in ima_adpcm.h: IMA4 = 0, DVI4 = 1, VDVI = 2


class Spandsp:
    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        vp, ci = ctypes.c_void_p, ctypes.c_int
        lib.oki_adpcm_init.restype = vp
        lib.oki_adpcm_init.argtypes = [vp, ci]
        lib.oki_adpcm_encode.argtypes = [vp, vp, vp, ci]
        lib.oki_adpcm_decode.argtypes = [vp, vp, vp, ci]
        lib.oki_adpcm_free.argtypes = [vp]
        lib.ima_adpcm_init.restype = vp
        lib.ima_adpcm_init.argtypes = [vp, ci, ci]
        lib.ima_adpcm_encode.argtypes = [vp, vp, vp, ci]
        lib.ima_adpcm_decode.argtypes = [vp, vp, vp, ci]
        lib.ima_adpcm_free.argtypes = [vp]

    def oki_decode(self, data) -> np.ndarray:
        """OKI ADPCM at 32 kbit/s (no resampling), high nibble first."""
        src = np.ascontiguousarray(np.frombuffer(bytes(data), np.uint8))
        out = np.zeros(2 * src.size, np.int16)
        s = self.lib.oki_adpcm_init(None, 32000)
        try:
            n = self.lib.oki_adpcm_decode(s, out.ctypes.data, src.ctypes.data, src.size)
        finally:
            self.lib.oki_adpcm_free(s)
        return out[:n]

    def oki_encode(self, pcm) -> np.ndarray:
        x = np.ascontiguousarray(pcm, np.int16)
        out = np.zeros(x.size // 2 + 2, np.uint8)
        s = self.lib.oki_adpcm_init(None, 32000)
        try:
            n = self.lib.oki_adpcm_encode(s, out.ctypes.data, x.ctypes.data, x.size)
        finally:
            self.lib.oki_adpcm_free(s)
        return out[:n]

    def dvi4_decode(self, data) -> np.ndarray:
        """Raw IMA (high nibble first, from state (0, 0)) through spandsp's DVI4 variant,
        which expects the RFC 3551 4-byte header (predictor, index, reserved) first."""
        src = np.frombuffer(b"\0\0\0\0" + bytes(data), np.uint8).copy()
        out = np.zeros(2 * src.size, np.int16)
        s = self.lib.ima_adpcm_init(None, IMA_ADPCM_DVI4, 0)
        try:
            n = self.lib.ima_adpcm_decode(s, out.ctypes.data, src.ctypes.data, src.size)
        finally:
            self.lib.ima_adpcm_free(s)
        return out[:n]

    def dvi4_encode(self, pcm) -> np.ndarray:
        """Raw IMA bytes from spandsp's DVI4 encoder (its 4-byte header removed)."""
        x = np.ascontiguousarray(pcm, np.int16)
        out = np.zeros(x.size // 2 + 8, np.uint8)
        s = self.lib.ima_adpcm_init(None, IMA_ADPCM_DVI4, 0)
        try:
            n = self.lib.ima_adpcm_encode(s, out.ctypes.data, x.ctypes.data, x.size)
        finally:
            self.lib.ima_adpcm_free(s)
        return out[4:n]
