"""callrecorder: record telephone-call audio to files.

* :mod:`recorder.codecs` - G.711 A-law/mu-law, 16-bit and unsigned 8-bit PCM (and ADPCM),
  bit-exact, compiled, GIL released.
* :mod:`recorder.wav` - WAV files in every recorder format: read, write, stream, repair.
* :func:`recorder.resample`, :class:`recorder.Resampler`, :class:`recorder.MultiResampler` -
  polyphase resampling 8000 <-> 6000 / 11000 / 11025 Hz (any p/q <= 1000), streaming.
* :mod:`recorder.dsp` - DTMF and silence detection, streaming, one channel or thousands.
* :class:`recorder.CallChannel` - a call whose ``FileRecorder`` records it (the spec's API).
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import codecs, dsp, files, resampling, wav
from .channel import CallChannel, CallState, Error, Hangup
from .cipher import AesCbcCipher
from .engine import Engine
from .filerecorder import FileRecorder, RecordResult
from .resampling import MultiResampler, Resampler, resample

try:
    __version__ = _version("callrecorder")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "codecs", "dsp", "wav", "files", "resampling", "resample", "Resampler", "MultiResampler",
    "CallChannel", "CallState", "Hangup", "Error", "AesCbcCipher", "Engine", "FileRecorder",
    "RecordResult", "__version__",
]
