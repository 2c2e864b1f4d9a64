"""Sample codecs for telephony audio: G.711 A-law and mu-law, signed 16-bit and unsigned
8-bit PCM, and the streaming ADPCM codecs (IMA, OKI / Dialogic VOX: see
:mod:`recorder.adpcm`, whose names are re-exported here).

All functions take any C-contiguous buffer (bytes, bytearray, memoryview, array.array,
numpy array) and return numpy arrays.  numpy inputs keep their shape, so a 2-D array of
``channels x samples`` is coded in one call.  ``out=`` takes a writable buffer of exactly
the right size and is returned (as a numpy view); it may be the input itself or overlap
it (the input is then read from a copy), so in-place transcoding works.  The loops run in compiled code with
the GIL released.

G.711 follows ITU-T G.191 (the STL ``g711.c`` reference) bit for bit for all 65,536
inputs and all 256 codes.  Note that the stdlib ``audioop.lin2ulaw`` differs from G.191
on 508 negative inputs (it rounds the magnitude of negative samples differently): our
mu-law encoder follows G.191, so ``ulaw_encode`` and ``audioop.lin2ulaw`` disagree on
exactly those inputs, and agree everywhere else.

A-law <-> mu-law transcoding uses ITU-T G.711 Tables 3 and 4 (the tables also found in
Sun's reference ``g711.c``), not decode-then-encode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _wav_adpcm
from ._buffers import as_int16, as_uint8, out_array, unaliased
from ._codecs import g711 as _g711
from ._wavcodec import WavCodec
from .adpcm import (
    ImaDecoder,
    ImaEncoder,
    OkiDecoder,
    OkiEncoder,
    ima_decode,
    ima_decode_rows,
    ima_encode,
    ima_encode_rows,
    oki_decode,
    oki_decode_rows,
    oki_encode,
    oki_encode_rows,
    row_states,
)

if TYPE_CHECKING:
    from .types import BufferLike, StreamDecoder, StreamEncoder

__all__ = [
    "ALIASES",
    "FORMATS",
    "RECORD_RATES",
    "REGISTRY",
    "Format",
    "ImaDecoder",
    "ImaEncoder",
    "OkiDecoder",
    "OkiEncoder",
    "SampleDecoder",
    "SampleEncoder",
    "alaw_decode",
    "alaw_encode",
    "alaw_to_ulaw",
    "get_decoder",
    "get_encoder",
    "ima_decode",
    "ima_decode_rows",
    "ima_encode",
    "ima_encode_rows",
    "lookup",
    "names",
    "oki_decode",
    "oki_decode_rows",
    "oki_encode",
    "oki_encode_rows",
    "row_states",
    "s16_decode",
    "s16_encode",
    "u8_decode",
    "u8_encode",
    "ulaw_decode",
    "ulaw_encode",
    "ulaw_to_alaw",
]


# out= overlapping the input (the same buffer, or a shifted view of it) is handled, not
# refused: the input is copied first (_buffers.unaliased), so in-place calls give the
# same result as with a separate buffer.


def _encode(kernel, pcm, out, per_sample: int):
    src = as_int16(pcm, "pcm")
    shape = (*src.shape[:-1], src.shape[-1] * per_sample)
    dst = out_array(out, shape, np.uint8)
    if out is not None:
        src = unaliased(src, dst)
    kernel(src.reshape(-1), dst.reshape(-1))
    return dst


def _decode(kernel, data, out, per_sample: int):
    src = as_uint8(data, "data")
    if per_sample == 2:
        if src.shape[-1] % 2:
            raise ValueError(f"data holds {src.shape[-1]} bytes: 16-bit samples need an even count")
        shape = (*src.shape[:-1], src.shape[-1] // 2)
    else:
        shape = src.shape
    dst = out_array(out, shape, np.int16)
    if out is not None:
        src = unaliased(src, dst)
    kernel(src.reshape(-1), dst.reshape(-1))
    return dst


def alaw_encode(pcm: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """Encode int16 samples to G.711 A-law codes, bit-exact with ITU-T G.191.

    Parameters
    ----------
    pcm : BufferLike
        int16 samples, any shape (numpy keeps it; the last axis is time).
    out : writable buffer, optional
        As many bytes as ``pcm`` has samples; may overlap ``pcm``.

    Returns
    -------
    numpy.ndarray
        uint8, the shape of ``pcm``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``pcm`` is not a buffer of int16 samples, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import codecs
    >>> codecs.alaw_encode(np.array([0, 1000, -1000], np.int16)).tolist()
    [213, 250, 122]
    """
    return _encode(_g711.alaw_encode, pcm, out, 1)


def alaw_decode(data: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """Decode G.711 A-law codes to int16 samples (every byte value is a valid code).

    Parameters
    ----------
    data : BufferLike
        A-law codes (bytes), any shape (numpy keeps it).
    out : writable buffer, optional
        As many int16 samples as ``data`` has bytes; may overlap ``data``.

    Returns
    -------
    numpy.ndarray
        int16 samples, the shape of ``data``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``data`` is not a buffer, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.alaw_decode(b"\\xd5\\x55").tolist()
    [8, -8]
    """
    return _decode(_g711.alaw_decode, data, out, 1)


def ulaw_encode(pcm: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """Encode int16 samples to G.711 mu-law codes, bit-exact with ITU-T G.191.

    Parameters
    ----------
    pcm : BufferLike
        int16 samples, any shape (numpy keeps it; the last axis is time).
    out : writable buffer, optional
        As many bytes as ``pcm`` has samples; may overlap ``pcm``.

    Returns
    -------
    numpy.ndarray
        uint8, the shape of ``pcm``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``pcm`` is not a buffer of int16 samples, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import codecs
    >>> codecs.ulaw_encode(np.array([0, 1000, -1000], np.int16)).tolist()
    [255, 206, 78]
    """
    return _encode(_g711.ulaw_encode, pcm, out, 1)


def ulaw_decode(data: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """Decode G.711 mu-law codes to int16 samples (every byte value is a valid code).

    Parameters
    ----------
    data : BufferLike
        mu-law codes (bytes), any shape (numpy keeps it).
    out : writable buffer, optional
        As many int16 samples as ``data`` has bytes; may overlap ``data``.

    Returns
    -------
    numpy.ndarray
        int16 samples, the shape of ``data``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``data`` is not a buffer, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.ulaw_decode(b"\\xff\\x7f").tolist()
    [0, 0]
    """
    return _decode(_g711.ulaw_decode, data, out, 1)


def s16_encode(pcm: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """Signed 16-bit little-endian bytes of int16 samples (two per sample).

    Parameters
    ----------
    pcm : BufferLike
        int16 samples, any shape (numpy keeps it; the last axis is time).
    out : writable buffer, optional
        Two bytes per sample of ``pcm``; may overlap ``pcm``.

    Returns
    -------
    numpy.ndarray
        uint8, the last axis twice as long as ``pcm``'s; ``out`` when given.

    Raises
    ------
    TypeError
        If ``pcm`` is not a buffer of int16 samples, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import codecs
    >>> codecs.s16_encode(np.array([0, 1000, -1000], np.int16)).tolist()
    [0, 0, 232, 3, 24, 252]
    """
    return _encode(_g711.s16_encode, pcm, out, 2)


def s16_decode(data: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """int16 samples from signed 16-bit little-endian bytes.

    Parameters
    ----------
    data : BufferLike
        An even number of bytes on the last axis, any shape (numpy keeps it).
    out : writable buffer, optional
        Half as many int16 samples as ``data`` has bytes; may overlap ``data``.

    Returns
    -------
    numpy.ndarray
        int16 samples, the last axis half as long as ``data``'s; ``out`` when given.

    Raises
    ------
    TypeError
        If ``data`` is not a buffer, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size, or ``data`` has an odd number of bytes.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.s16_decode(b"\\x01\\x00\\xff\\xff").tolist()
    [1, -1]
    """
    return _decode(_g711.s16_decode, data, out, 2)


def u8_encode(pcm: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """WAV unsigned 8-bit samples (128 = zero) of int16 samples.

    Each sample is rounded half up to a multiple of 256, saturating at 255 (so
    32640..32767 all give 255).

    Parameters
    ----------
    pcm : BufferLike
        int16 samples, any shape (numpy keeps it; the last axis is time).
    out : writable buffer, optional
        As many bytes as ``pcm`` has samples; may overlap ``pcm``.

    Returns
    -------
    numpy.ndarray
        uint8, the shape of ``pcm``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``pcm`` is not a buffer of int16 samples, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import codecs
    >>> codecs.u8_encode(np.array([0, 1000, -1000], np.int16)).tolist()
    [128, 132, 124]
    """
    return _encode(_g711.u8_encode, pcm, out, 1)


def u8_decode(data: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """int16 samples from WAV unsigned 8-bit samples: ``(u - 128) << 8``.

    Parameters
    ----------
    data : BufferLike
        Unsigned 8-bit samples (bytes), any shape (numpy keeps it).
    out : writable buffer, optional
        As many int16 samples as ``data`` has bytes; may overlap ``data``.

    Returns
    -------
    numpy.ndarray
        int16 samples, the shape of ``data``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``data`` is not a buffer, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.u8_decode(b"\\x80\\xff").tolist()
    [0, 32512]
    """
    return _decode(_g711.u8_decode, data, out, 1)


def alaw_to_ulaw(data: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """Transcode A-law codes to mu-law codes by G.711 Table 4 (not decode-then-encode).

    Parameters
    ----------
    data : BufferLike
        A-law codes (bytes), any shape (numpy keeps it).
    out : writable buffer, optional
        As many bytes as ``data``; may be ``data`` itself (in-place transcoding).

    Returns
    -------
    numpy.ndarray
        mu-law codes (uint8), the shape of ``data``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``data`` is not a buffer, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.alaw_to_ulaw(b"\\xd5\\x55").tolist()
    [254, 126]
    """
    src = as_uint8(data, "data")
    dst = out_array(out, src.shape, np.uint8)
    if out is not None:
        src = unaliased(src, dst)
    _g711.alaw_to_ulaw(src.reshape(-1), dst.reshape(-1))
    return dst


def ulaw_to_alaw(data: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
    """Transcode mu-law codes to A-law codes by G.711 Table 3 (not decode-then-encode).

    Parameters
    ----------
    data : BufferLike
        mu-law codes (bytes), any shape (numpy keeps it).
    out : writable buffer, optional
        As many bytes as ``data``; may be ``data`` itself (in-place transcoding).

    Returns
    -------
    numpy.ndarray
        A-law codes (uint8), the shape of ``data``; ``out`` when given.

    Raises
    ------
    TypeError
        If ``data`` is not a buffer, or ``out`` not a writable buffer.
    ValueError
        If ``out`` has the wrong size.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.ulaw_to_alaw(b"\\xff\\x7f").tolist()
    [213, 85]
    """
    src = as_uint8(data, "data")
    dst = out_array(out, src.shape, np.uint8)
    if out is not None:
        src = unaliased(src, dst)
    _g711.ulaw_to_alaw(src.reshape(-1), dst.reshape(-1))
    return dst


# --- streaming objects -------------------------------------------------------------------

_SAMPLE_CODECS = {
    # name: (encode, decode, bytes per sample)
    "alaw": (alaw_encode, alaw_decode, 1),
    "ulaw": (ulaw_encode, ulaw_decode, 1),
    "s16bit": (s16_encode, s16_decode, 2),
    "u8bit": (u8_encode, u8_decode, 1),
}


class SampleEncoder:
    """Streaming encoder for a sample-by-sample format.

    Follows :class:`recorder.types.StreamEncoder`, as the ADPCM encoders do; nothing is
    ever held back, so :meth:`flush` is always empty.

    Parameters
    ----------
    fmt : str
        ``'alaw'``, ``'ulaw'``, ``'s16bit'`` or ``'u8bit'``.

    Attributes
    ----------
    format : str
        ``fmt``.
    bytes_per_sample : int
        2 for ``'s16bit'``, else 1.

    Raises
    ------
    ValueError
        If ``fmt`` is not one of those names.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.SampleEncoder("alaw").encode(bytes(4)).tolist()
    [213, 213]
    """

    def __init__(self, fmt: str):
        if not isinstance(fmt, str) or fmt not in _SAMPLE_CODECS:
            raise ValueError(
                f"not a sample codec: {fmt!r}; expected one of {sorted(_SAMPLE_CODECS)}"
            )
        self.format = fmt
        self._encode, _, self.bytes_per_sample = _SAMPLE_CODECS[fmt]

    def encode(self, pcm: BufferLike, /) -> np.ndarray:
        """Code int16 samples, as the format's one-shot encoder does.

        Parameters
        ----------
        pcm : BufferLike
            int16 samples, any shape.

        Returns
        -------
        numpy.ndarray
            The bytes (uint8) of every sample: nothing is held back.

        Raises
        ------
        TypeError
            ``pcm`` is not a buffer of int16 samples.

        Examples
        --------
        >>> from recorder import codecs
        >>> codecs.SampleEncoder("ulaw").encode(bytes(4)).tolist()
        [255, 255]
        """
        return self._encode(pcm)

    def flush(self) -> np.ndarray:
        """End of stream: nothing is held back, an empty uint8 array."""
        return np.empty(0, dtype=np.uint8)

    def reset(self) -> None:
        """Nothing to forget: there is no state."""

    def __repr__(self) -> str:
        return f"SampleEncoder({self.format!r})"


class SampleDecoder:
    """Streaming decoder for a sample-by-sample format.

    Follows :class:`recorder.types.StreamDecoder`.  16-bit input may be split anywhere:
    an odd trailing byte is kept for the next call.

    Parameters
    ----------
    fmt : str
        ``'alaw'``, ``'ulaw'``, ``'s16bit'`` or ``'u8bit'``.

    Attributes
    ----------
    format : str
        ``fmt``.
    bytes_per_sample : int
        2 for ``'s16bit'``, else 1.

    Raises
    ------
    ValueError
        If ``fmt`` is not one of those names.

    Examples
    --------
    >>> from recorder import codecs
    >>> dec = codecs.SampleDecoder("s16bit")
    >>> dec.decode(b"\\x01\\x00\\x02").tolist(), dec.decode(b"\\x00").tolist()
    ([1], [2])
    """

    def __init__(self, fmt: str):
        if not isinstance(fmt, str) or fmt not in _SAMPLE_CODECS:
            raise ValueError(
                f"not a sample codec: {fmt!r}; expected one of {sorted(_SAMPLE_CODECS)}"
            )
        self.format = fmt
        _, self._decode, self.bytes_per_sample = _SAMPLE_CODECS[fmt]
        self._carry = b""

    def decode(self, data: BufferLike, /) -> np.ndarray:
        """Decode bytes to int16 samples.

        Parameters
        ----------
        data : BufferLike
            Coded bytes, any length (flattened).  For ``'s16bit'`` an odd trailing byte
            is kept for the next call.

        Returns
        -------
        numpy.ndarray
            The int16 samples of any byte kept from the last call and of ``data``.

        Raises
        ------
        TypeError
            ``data`` is not a buffer.

        Examples
        --------
        >>> from recorder import codecs
        >>> codecs.SampleDecoder("alaw").decode(bytes([213, 85])).tolist()
        [8, -8]
        """
        src = as_uint8(data, "data").reshape(-1)
        if self.bytes_per_sample == 1:
            return self._decode(src)
        if self._carry:
            src = np.concatenate([np.frombuffer(self._carry, np.uint8), src])
        whole = src.size - src.size % 2
        self._carry = src[whole:].tobytes()
        return self._decode(src[:whole])

    def flush(self) -> np.ndarray:
        """End of stream: an empty int16 array (a kept odd byte is dropped)."""
        self._carry = b""
        return np.empty(0, dtype=np.int16)

    def reset(self) -> None:
        """Drop a kept odd byte: the next call starts a new stream."""
        self._carry = b""

    def __repr__(self) -> str:
        return f"SampleDecoder({self.format!r})"


# --- the format registry ------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """One audio format of the package: everything the codec library, the WAV and raw
    containers and the recorder need to know about it, in one record.

    Attributes
    ----------
    name : str
        The canonical name (the spec's ``file_format`` value), e.g. ``'s16bit'``.
    aliases : tuple of str
        Other names accepted for it everywhere a format name is taken (``'s16'``).
    description : str
        What it is, in a few words.
    encoder, decoder : callable
        ``encoder()`` / ``decoder()`` return a fresh streaming object (``encode`` or
        ``decode``, ``flush``, ``reset``): what :func:`get_encoder` and
        :func:`get_decoder` return.
    wav : WavCodec
        How it sits in a WAV file (tag, bits, blocks): what :mod:`recorder.wav` writes.
    record : bool
        :class:`recorder.FileRecorder` records it (``file_format``).
    raw : bool
        :mod:`recorder.vox` writes it as a headerless file.
    push : bool
        :meth:`recorder.CallChannel.push` takes media coded in it.
    """

    name: str
    aliases: tuple[str, ...]
    description: str
    encoder: Callable[[], Any]
    decoder: Callable[[], Any]
    wav: WavCodec
    record: bool = True
    raw: bool = False
    push: bool = False


def _sample(
    name: str, aliases: tuple[str, ...], description: str, tag: int, bits: int, push: bool
) -> Format:
    _, decode, width = _SAMPLE_CODECS[name]
    pcm = tag == 1
    wav = WavCodec(
        name,
        tag,
        bits,
        width,
        has_fact=not pcm,
        fmt_extra=None if pcm else b"",
        by_bits=pcm,
        stream=partial(SampleEncoder, name),
        decode=decode,
    )
    return Format(
        name,
        aliases,
        description,
        partial(SampleEncoder, name),
        partial(SampleDecoder, name),
        wav,
        push=push,
    )


#: Every format name -> its :class:`Format`, in the spec's order.  The one place that
#: says which formats exist and what each supports; ``FORMATS``, ``wav.WRITE_FORMATS``,
#: ``vox.FORMATS`` and ``filerecorder.RECORD_FORMATS`` are views of it.
REGISTRY: Mapping[str, Format] = MappingProxyType(
    {
        f.name: f
        for f in (
            _sample("alaw", (), "G.711 A-law", 6, 8, push=True),
            _sample("ulaw", (), "G.711 mu-law", 7, 8, push=True),
            Format(
                "oki",
                (),
                "OKI / Dialogic ADPCM (VOX)",
                OkiEncoder,
                OkiDecoder,
                _wav_adpcm.OKI,
                raw=True,
            ),
            Format("ima", (), "IMA ADPCM", ImaEncoder, ImaDecoder, _wav_adpcm.IMA, raw=True),
            _sample("s16bit", ("s16",), "signed 16-bit little-endian PCM", 1, 16, push=True),
            _sample("u8bit", ("u8",), "unsigned 8-bit PCM", 1, 8, push=False),
        )
    }
)

#: Alias -> canonical name (``'s16'`` is :meth:`recorder.CallChannel.push`'s name for
#: ``'s16bit'``; both are accepted everywhere).
ALIASES: Mapping[str, str] = MappingProxyType(
    {a: f.name for f in REGISTRY.values() for a in f.aliases}
)

#: The recorder's format names (the spec's ``file_format`` values).
FORMATS: tuple[str, ...] = tuple(REGISTRY)

#: The rates (Hz) :class:`recorder.FileRecorder` records at (media arrives at 8000 Hz).
RECORD_RATES: tuple[int, ...] = (8000, 6000, 11000, 11025)

_USES = {"record": "recorded", "raw": "written as raw files", "push": "pushed as call media"}


def lookup(fmt: str, *, need: str | None = None) -> Format:
    """The :class:`Format` of a format name or alias.

    Parameters
    ----------
    fmt : str
        A canonical name (``'alaw'``, ``'ulaw'``, ``'oki'``, ``'ima'``, ``'s16bit'``,
        ``'u8bit'``) or an alias (``'s16'``, ``'u8'``).
    need : {None, 'record', 'raw', 'push'}
        Accept only formats with this :class:`Format` flag set.

    Returns
    -------
    Format
        The registry entry (its ``name`` is the canonical name).

    Raises
    ------
    ValueError
        For an unknown name, or a format without the ``need`` flag; the message lists
        the names allowed.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.lookup("s16").name
    's16bit'
    >>> codecs.lookup("ima", need="raw").wav.tag
    17
    """
    allowed = names(need)
    entry = REGISTRY.get(ALIASES.get(fmt, fmt)) if isinstance(fmt, str) else None
    if entry is None or entry.name not in allowed:
        listed = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
        what = (
            f"unknown format {fmt!r}"
            if entry is None
            else f"format {fmt!r} cannot be {_USES[str(need)]}"
        )
        raise ValueError(f"{what}; expected {'' if len(allowed) == 2 else 'one of '}{listed}")
    return entry


def names(need: str | None = None) -> tuple[str, ...]:
    """The canonical format names, in the spec's order.

    Parameters
    ----------
    need : {None, 'record', 'raw', 'push'}, optional
        Only the formats with that :class:`Format` flag; None (the default): all.

    Returns
    -------
    tuple of str
        The canonical names (aliases aside), in :data:`REGISTRY` order.

    Raises
    ------
    ValueError
        If ``need`` is not None or one of the flag names.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.names("raw")
    ('oki', 'ima')
    """
    if need is not None and need not in _USES:
        raise ValueError(f"need must be None or one of {', '.join(_USES)}, got {need!r}")
    return tuple(f.name for f in REGISTRY.values() if need is None or getattr(f, need))


def available_formats() -> tuple[str, ...]:
    """The format names :func:`get_encoder` and :func:`get_decoder` accept (aliases
    aside): the canonical names of :data:`REGISTRY`."""
    return FORMATS


def get_encoder(fmt: str) -> StreamEncoder:
    """A fresh streaming encoder for a format.

    Parameters
    ----------
    fmt : str
        A format name or alias (see :func:`lookup`).

    Returns
    -------
    recorder.types.StreamEncoder
        ``encode(pcm)`` returns the bytes (uint8 array) for the samples, ``flush()`` what
        is held back at the end, ``reset()`` starts afresh.

    Raises
    ------
    ValueError
        For an unknown format name.

    Examples
    --------
    >>> from recorder import codecs
    >>> enc = codecs.get_encoder("alaw")
    >>> enc.encode(bytes(4)).tolist()
    [213, 213]
    """
    return lookup(fmt).encoder()


def get_decoder(fmt: str) -> StreamDecoder:
    """A fresh streaming decoder for a format.

    Parameters
    ----------
    fmt : str
        A format name or alias (see :func:`lookup`).

    Returns
    -------
    recorder.types.StreamDecoder
        ``decode(data)`` returns the int16 samples of the bytes, ``flush()`` what is held
        back at the end, ``reset()`` starts afresh.

    Raises
    ------
    ValueError
        For an unknown format name.

    Examples
    --------
    >>> from recorder import codecs
    >>> codecs.get_decoder("s16").decode(b"\\x01\\x00\\xff\\xff").tolist()
    [1, -1]
    """
    return lookup(fmt).decoder()
