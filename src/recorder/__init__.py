"""callrecorder: record telephone-call audio to files.

* :mod:`recorder.codecs` - G.711 A-law/mu-law, 16-bit and unsigned 8-bit PCM (and ADPCM),
  bit-exact, compiled, GIL released.
* :mod:`recorder.wav` - WAV files in every recorder format: read, write, stream, repair.
* :class:`recorder.CallChannel` - a call whose ``FileRecorder`` records it (the spec's API).
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import codecs, files, wav
from .channel import CallChannel, CallState, Error, Hangup
from .cipher import AesCbcCipher
from .engine import Engine
from .filerecorder import FileRecorder, RecordResult

try:
    __version__ = _version("callrecorder")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "codecs", "wav", "files", "CallChannel", "CallState", "Hangup", "Error", "AesCbcCipher",
    "Engine", "FileRecorder", "RecordResult", "__version__",
]
