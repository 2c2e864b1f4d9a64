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
* :class:`recorder.CallChannel` - a call whose ``FileRecorder`` records it (the spec's API).
* :mod:`recorder.cipher` - :class:`recorder.AesCbcCipher` (the spec's, openssl-compatible,
  no integrity), :class:`recorder.AesGcmCipher` (authenticated), sealed temporary files.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import adpcm, codecs, dsp, files, resampling, vox, wav
from .channel import CallChannel, CallState, Error, Hangup
from .cipher import AesCbcCipher, AesGcmCipher, CipherError
from .engine import Engine
from .filerecorder import FileRecorder, RecordResult
from .resampling import MultiResampler, Resampler, resample

try:
    __version__ = _version("callrecorder")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "adpcm", "codecs", "dsp", "vox", "wav", "files", "resampling", "resample", "Resampler",
    "MultiResampler", "CallChannel", "CallState", "Hangup", "Error", "AesCbcCipher",
    "AesGcmCipher", "CipherError", "Engine",
    "FileRecorder", "RecordResult", "__version__",
]
