"""callrecorder: record telephone-call audio to files.

* :mod:`recorder.codecs` - G.711 A-law/mu-law, 16-bit and unsigned 8-bit PCM (and ADPCM),
  bit-exact, compiled, GIL released.
* :mod:`recorder.adpcm` - IMA ADPCM and OKI ADPCM (Dialogic VOX): streaming, one-shot and
  many channels at once.
* :mod:`recorder.wav` - WAV files in every recorder format: read, write, stream, repair.
* :mod:`recorder.vox` - raw headerless ADPCM files (Dialogic ``.vox``, raw IMA).
* :func:`recorder.resample`, :class:`recorder.Resampler`, :class:`recorder.MultiResampler` -
  polyphase resampling 8000 <-> 6000 / 11000 / 11025 Hz (any p/q <= 1000), streaming.
* :mod:`recorder.dsp` - DTMF and silence detection, streaming, one channel or thousands.
* :class:`recorder.CallChannel` - a call whose ``FileRecorder`` records it (the spec's API);
  :mod:`recorder.files` - where recordings go (the media root).
* :class:`recorder.AesGcmCipher`, :class:`recorder.AesCbcCipher` - encryption of
  recordings (:mod:`recorder.cipher`).
* :mod:`recorder.sip` - SIP signalling for the recording server (UAS over UDP and TCP).
* :mod:`recorder.types` - ``BufferLike`` and the streaming codec protocols, for
  annotations.

``import recorder`` itself is cheap: each submodule (and what it needs: the compiled
kernels, ``cryptography``, the engine) is imported the first time one of its names is
used.

Examples
--------
>>> import numpy as np
>>> import recorder
>>> pcm = np.zeros(160, np.int16)
>>> recorder.codecs.alaw_encode(pcm)[:4]
array([213, 213, 213, 213], dtype=uint8)
>>> len(recorder.resample(pcm, 8000, 6000))
120
"""

from __future__ import annotations

import importlib

from ._version import __version__

# public name -> the submodule that defines it (None: the name is the submodule itself)
_LAZY = {
    "adpcm": None,
    "codecs": None,
    "dsp": None,
    "files": None,
    "resampling": None,
    "vox": None,
    "wav": None,
    "CallChannel": "channel",
    "CallState": "channel",
    "ChannelBatch": "channel",
    "Error": "channel",
    "Hangup": "channel",
    "AesCbcCipher": "cipher",
    "AesGcmCipher": "cipher",
    "CipherError": "cipher",
    "Engine": "engine",
    "FileRecorder": "filerecorder",
    "RecordResult": "filerecorder",
    "MultiResampler": "resampling",
    "Resampler": "resampling",
    "resample": "resampling",
    "simd": None,
    "set_simd_level": "simd",
    "simd_level": "simd",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    try:
        home = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'recorder' has no attribute {name!r}") from None
    if home is None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
