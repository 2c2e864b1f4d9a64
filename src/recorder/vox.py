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

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from . import codecs
from ._buffers import as_int16, open_binary

__all__ = ["FORMATS", "Writer", "read", "write"]

#: The raw formats: name -> (encoder factory, decoder factory), a read-only view of the
#: registry's formats with ``raw`` set (:data:`recorder.codecs.REGISTRY`).
FORMATS: Mapping[str, tuple[Callable[[], Any], Callable[[], Any]]] = MappingProxyType(
    {
        name: (codecs.REGISTRY[name].encoder, codecs.REGISTRY[name].decoder)
        for name in codecs.names("raw")
    }
)


def read(path: Any, fmt: str = "oki") -> np.ndarray:
    """Decode a raw ADPCM file to int16 samples.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The file (a file object is read from where it stands, and left open).
    fmt : {'oki', 'ima'}
        The codec (the file cannot say).

    Returns
    -------
    numpy.ndarray
        int16 samples (an odd-length stream ends with the pad nibble's sample).

    Raises
    ------
    ValueError
        For a format that is not a raw format, or a directory.
    TypeError
        For bytes (wrap them in ``io.BytesIO``) or a text file.

    Examples
    --------
    >>> import io, numpy as np
    >>> from recorder import vox
    >>> buf = io.BytesIO()
    >>> vox.write(buf, np.zeros(160, np.int16))
    80
    >>> vox.read(io.BytesIO(buf.getvalue())).size
    160
    """
    dec = codecs.lookup(fmt, need="raw").decoder()
    f, owned = open_binary(path, "rb")
    try:
        data = f.read()
    finally:
        if owned:
            f.close()
    return dec.decode(data)


def write(path: Any, pcm: Any, fmt: str = "oki") -> int:
    """Encode int16 samples (1-D, mono) to a raw ADPCM file.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        Where to write (a file object is written from where it stands, and left open).
    pcm : buffer
        int16 samples, one channel.
    fmt : {'oki', 'ima'}
        The codec.

    Returns
    -------
    int
        The bytes written.

    Raises
    ------
    ValueError
        For a format that is not a raw format, or ``pcm`` that is not 1-D.
    TypeError
        For samples that are not int16.
    """
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
    how the samples are split between calls.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        Where to write: a path is created (or truncated) and closed by :meth:`close`; a
        file object is written from where it stands and left open.
    fmt : {'oki', 'ima'}
        The codec.

    Raises
    ------
    ValueError
        For a format that is not a raw format, or a directory.
    TypeError
        For bytes or a text file.

    Examples
    --------
    >>> import io, numpy as np
    >>> from recorder import vox
    >>> buf = io.BytesIO()
    >>> with vox.Writer(buf, "ima") as w:
    ...     _ = w.write(np.zeros(160, np.int16))
    >>> w.frames, w.bytes_written
    (160, 80)
    """

    def __init__(self, path: Any, fmt: str = "oki") -> None:
        entry = codecs.lookup(fmt, need="raw")
        self.format = entry.name
        self._enc = entry.encoder()
        self._f, self._own = open_binary(path, "wb")
        self.path = getattr(self._f, "name", None)  # the path, or the file object's name
        self.frames = 0
        self.bytes_written = 0
        self.closed = False

    def write(self, pcm: Any) -> int:
        """Append samples.

        Parameters
        ----------
        pcm : buffer
            int16 samples, one channel (1-D).

        Returns
        -------
        int
            The number of samples taken.

        Raises
        ------
        ValueError
            After :meth:`close`, or for ``pcm`` that is not 1-D.
        TypeError
            For samples that are not int16.
        """
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
        """Write the held-back samples and flush; closes the file if it was opened from a
        path.  A second call does nothing."""
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

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
