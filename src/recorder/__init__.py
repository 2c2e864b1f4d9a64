"""callrecorder: record telephone-call audio to files.

* :mod:`recorder.codecs` - G.711 A-law/mu-law, 16-bit and unsigned 8-bit PCM (and ADPCM),
  bit-exact, compiled, GIL released.
* :mod:`recorder.wav` - WAV files in every recorder format: read, write, stream, repair.
* :mod:`recorder.dsp` - DTMF and silence detection, streaming, one channel or thousands.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import codecs, dsp, wav

try:
    __version__ = _version("callrecorder")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["codecs", "dsp", "wav", "__version__"]
