"""callrecorder: record telephone-call audio to files.

* :mod:`recorder.codecs` - G.711 A-law/mu-law, 16-bit and unsigned 8-bit PCM (and ADPCM),
  bit-exact, compiled, GIL released.
* :mod:`recorder.adpcm` - IMA ADPCM and OKI ADPCM (Dialogic VOX): streaming, one-shot and
  many channels at once.
* :mod:`recorder.wav` - WAV files in every recorder format: read, write, stream, repair.
* :mod:`recorder.vox` - raw headerless ADPCM files (Dialogic ``.vox``, raw IMA).
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import adpcm, codecs, vox, wav

try:
    __version__ = _version("callrecorder")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["adpcm", "codecs", "vox", "wav", "__version__"]
