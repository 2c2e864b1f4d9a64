"""IMA ADPCM and OKI ADPCM (Dialogic VOX): streaming encoders and decoders, one-shot
functions and multi-channel (2-D) entry points.  Also reachable as
``recorder.codecs.ImaEncoder`` etc. and through ``codecs.get_encoder('ima' | 'oki')``.

Both codecs turn each int16 sample into a 4-bit code; two codes make a byte, the first
sample in the **high** nibble (raw IMA as ``audioop.lin2adpcm`` writes it, and raw
Dialogic ``.vox``).  A stream starts from the state (predictor 0, step index 0).

**IMA ADPCM** (``'ima'``, IMA/DVI): 16-bit predictor, 89 step sizes.  Encoding and
decoding are bit-exact with ``audioop.lin2adpcm`` / ``audioop.adpcm2lin``, state tuple
included: ``ImaEncoder(state=s).encode(pcm)`` gives the bytes of
``audioop.lin2adpcm(pcm, 2, s)`` and ``.state`` its returned state.  32 kbit/s at
8000 Hz.  (WAV IMA ADPCM, with its blocks and low-nibble-first order, is handled by
:mod:`recorder.wav` with ``fmt='ima'``.)

**OKI ADPCM** (``'oki'``, Dialogic VOX): 12-bit samples (the encoder takes ``x >> 4``,
the decoder returns ``p << 4``), 49 step sizes 16 ... 1552, step index clamped to 0..48.
The decoder adds ``((2d + 1) * step) >> 3`` and clamps to 12 bits: bit-exact with
FFmpeg's ``adpcm_ima_oki``, and with sox (``-t vox``) and libsndfile, which round the same
way; the encoder's output also decodes well with spandsp, which rounds differently (see
the design notes in the documentation).  The code of a sample depends on the next two
samples, so :class:`OkiEncoder` holds the last two back until the next call (``encode``
output is chunking-independent all the same).  32 kbit/s at 8000 Hz, 24 kbit/s at
6000 Hz (resample first: the codec itself does not care about the rate).

States are ``(predictor, step_index)`` tuples of ints: predictor in -32768..32767 for
IMA, in 12-bit units (-2048..2047) for OKI (anything else: TypeError / ValueError).

``out=`` may overlap the input (the input is then read from a copy, so the result is
what a separate buffer gets); the ``*_rows`` state array must not share memory with the
input or ``out`` (ValueError).

Every function takes any C-contiguous buffer (bytes, bytearray, memoryview,
array.array, numpy array) and returns numpy arrays; loops run in compiled code with the
GIL released.  Every byte value is a valid pair of codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._buffers import MAX_CHANNELS, as_int16, as_uint8, disjoint, integer, out_array, unaliased
from ._codecs import adpcm as _adpcm

if TYPE_CHECKING:
    from .types import BufferLike

__all__ = [
    "ImaDecoder",
    "ImaEncoder",
    "OkiDecoder",
    "OkiEncoder",
    "ima_decode",
    "ima_decode_rows",
    "ima_encode",
    "ima_encode_rows",
    "oki_decode",
    "oki_decode_rows",
    "oki_encode",
    "oki_encode_rows",
    "row_states",
]


def _state_tuple(state, name: str = "state") -> tuple:
    """The two items of a (predictor, step_index) pair (their type and range are checked
    by set_state: ints only, no OverflowError for huge ones)."""
    try:
        p, index = state
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a (predictor, step_index) pair or None, got {state!r}"
        ) from None
    return p, index


def _one_d(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one stream); for many channels at once use the *_rows functions"
        )
    return x


class _Stream:
    """Base of the ADPCM stream classes, which follow :class:`recorder.types.StreamEncoder`
    / :class:`recorder.types.StreamDecoder`: holds the compiled coder and its state."""

    format = ""
    bits_per_sample = 4
    _coder_type: type = _adpcm.Coder

    def __init__(self, state: tuple[int, int] | None = None):
        self._coder = self._coder_type()
        if state is not None:
            self.state = state

    @property
    def state(self) -> tuple[int, int]:
        """``(predictor, step_index)`` after the last sample coded.  Settable (for an
        encoder, samples held back, see ``encode``, are kept)."""
        return (self._coder.predictor, self._coder.index)

    @state.setter
    def state(self, state: tuple[int, int] | None) -> None:
        if state is None:
            self._coder.set_state(0, 0)
        else:
            self._coder.set_state(*_state_tuple(state))

    @property
    def predictor(self) -> int:
        """The predictor after the last sample coded (``state[0]``)."""
        return self._coder.predictor

    @property
    def index(self) -> int:
        """The step index after the last sample coded (``state[1]``)."""
        return self._coder.index

    def set_state(self, predictor: int, step_index: int) -> None:
        """Set the state, as ``self.state = (predictor, step_index)`` does.

        Parameters
        ----------
        predictor : int
            -32768..32767 for IMA, -2048..2047 (12-bit units) for OKI.
        step_index : int
            0..88 for IMA, 0..48 for OKI.

        Raises
        ------
        TypeError
            If either is not an int.
        ValueError
            If either is out of range.
        """
        self._coder.set_state(predictor, step_index)

    def reset(self) -> None:
        """Back to the initial state (0, 0), dropping anything held back."""
        self._coder.reset()


class _Encoder(_Stream):
    def encode(self, pcm: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
        """Code int16 samples.

        Two samples make a byte, so after an odd total the last sample's code is held
        back until the next call (or :meth:`flush`); the OKI encoder also holds back
        its two lookahead samples.  Chunked encoding therefore gives exactly the bytes
        of one-shot encoding, whatever the chunk sizes.

        Parameters
        ----------
        pcm : BufferLike
            1-D int16 samples, any length.
        out : writable buffer, optional
            Exactly ``self.nbytes(len(pcm))`` bytes; it may overlap ``pcm`` (the samples
            are then read from a copy).

        Returns
        -------
        numpy.ndarray
            The completed bytes (uint8), high nibble first; ``out`` when given.

        Raises
        ------
        TypeError
            If ``pcm`` is not a buffer of int16 samples.
        ValueError
            If ``pcm`` is not 1-D, or ``out`` has the wrong size.

        Examples
        --------
        >>> from recorder import adpcm
        >>> enc = adpcm.ImaEncoder()
        >>> enc.encode(bytes(6)).size, enc.held
        (1, 0)
        >>> enc.flush().tolist()
        [0]
        """
        x = _one_d(as_int16(pcm, "pcm"), "pcm")
        coder = self._coder
        dst = out_array(out, (coder.nbytes(x.size),), np.uint8)
        if out is not None:
            x = unaliased(x, dst)
        coder.encode_into(x, dst)
        return dst

    def flush(self) -> np.ndarray:
        """End of stream: the bytes of everything held back.

        That is the OKI encoder's lookahead samples, then an odd last code completed
        with a zero low nibble, or nothing.  The state then moves on as a decoder's does
        over that zero code, so encoder and decoder stay in step if encoding continues.
        A decoder returns one extra sample for a pad nibble (WAV files trim it with
        their ``fact`` chunk).

        Returns
        -------
        numpy.ndarray
            0, 1 or 2 bytes (uint8).
        """
        return np.frombuffer(self._coder.flush_bytes(), np.uint8).copy()

    def nbytes(self, nsamples: int) -> int:
        """Bytes :meth:`encode` returns for ``nsamples`` more samples.

        Parameters
        ----------
        nsamples : int
            0 to 2**48.

        Returns
        -------
        int
            The byte count, given what is held back now.

        Raises
        ------
        TypeError
            If ``nsamples`` is not an int.
        ValueError
            If it is out of range.
        """
        return self._coder.nbytes(nsamples)

    @property
    def held(self) -> int | None:
        """The code (0..15) of a sample whose byte is not complete yet, or None.
        Settable (TypeError / ValueError for anything but None or 0..15)."""
        return self._coder.held

    @held.setter
    def held(self, code: int | None) -> None:
        self._coder.held = code

    @property
    def lookahead(self) -> tuple[int, ...]:
        """Samples received but not coded yet (the OKI encoder: up to two)."""
        return self._coder.lookahead

    def __repr__(self) -> str:
        held = "" if self.held is None else f", held={self.held}"
        return f"{type(self).__name__}(state={self.state}{held})"


class _Decoder(_Stream):
    def decode(self, data: BufferLike, /, *, out: BufferLike | None = None) -> np.ndarray:
        """Decode bytes to int16 samples.

        Parameters
        ----------
        data : BufferLike
            1-D bytes, two codes each, high nibble first; every byte value is valid.
        out : writable buffer, optional
            Exactly ``2 * len(data)`` int16 samples; it may overlap ``data`` (the bytes
            are then read from a copy).

        Returns
        -------
        numpy.ndarray
            ``2 * len(data)`` int16 samples; ``out`` when given.

        Raises
        ------
        TypeError
            If ``data`` is not a buffer.
        ValueError
            If ``data`` is not 1-D, or ``out`` has the wrong size.

        Examples
        --------
        >>> from recorder import adpcm
        >>> adpcm.ImaDecoder().decode(b"\\x77").tolist()
        [11, 41]
        """
        src = _one_d(as_uint8(data, "data"), "data")
        dst = out_array(out, (2 * src.size,), np.int16)
        if out is not None:
            src = unaliased(src, dst)
        self._coder.decode_into(src, dst)
        return dst

    def flush(self) -> np.ndarray:
        """Nothing is ever held back by a decoder: an empty int16 array."""
        return np.empty(0, np.int16)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(state={self.state})"


class ImaEncoder(_Encoder):
    """Streaming IMA ADPCM encoder (raw, high nibble first), bit-exact with
    ``audioop.lin2adpcm``.

    Follows :class:`recorder.types.StreamEncoder`.

    Parameters
    ----------
    state : (int, int), optional
        ``(predictor, step_index)`` to resume a stream from (default (0, 0)); ``.state``
        is the tuple audioop returns.

    Raises
    ------
    TypeError, ValueError
        If ``state`` is not a pair of ints in range.

    Examples
    --------
    >>> from recorder import adpcm
    >>> enc = adpcm.ImaEncoder()
    >>> enc.encode(bytes(8)).tolist(), enc.state
    ([0, 0], (0, 0))
    """

    format = "ima"
    _coder_type = _adpcm.ImaCoder


class ImaDecoder(_Decoder):
    """Streaming IMA ADPCM decoder (raw, high nibble first), bit-exact with
    ``audioop.adpcm2lin``, state tuple included.

    Follows :class:`recorder.types.StreamDecoder`.

    Parameters
    ----------
    state : (int, int), optional
        ``(predictor, step_index)`` to resume a stream from (default (0, 0)).

    Raises
    ------
    TypeError, ValueError
        If ``state`` is not a pair of ints in range.

    Examples
    --------
    >>> from recorder import adpcm
    >>> dec = adpcm.ImaDecoder()
    >>> dec.decode(b"\\x77").tolist(), dec.state
    ([11, 41], (41, 16))
    """

    format = "ima"
    _coder_type = _adpcm.ImaCoder


class OkiEncoder(_Encoder):
    """Streaming OKI / Dialogic VOX ADPCM encoder (high nibble first).

    ``encode(pcm)`` returns the bytes of every sample but the last two, which wait for
    the samples after them (``.lookahead``); ``flush()`` codes them as the end of the
    stream (the last sample standing in for the ones that never come).  The output of
    ``encode`` calls + ``flush`` is the same however the samples are split.  Follows
    :class:`recorder.types.StreamEncoder`.

    Parameters
    ----------
    state : (int, int), optional
        ``(predictor, step_index)`` after the last coded sample, the predictor in 12-bit
        units (-2048..2047), default (0, 0).  ``.shadow`` is the predictor a
        spandsp-style decoder has reached (setting ``.state`` sets it to the predictor).

    Raises
    ------
    TypeError, ValueError
        If ``state`` is not a pair of ints in range.

    Examples
    --------
    >>> from recorder import adpcm
    >>> enc = adpcm.OkiEncoder()
    >>> enc.encode(bytes(8)).size, len(enc.lookahead)
    (1, 2)
    >>> enc.flush().size
    1
    """

    format = "oki"
    _coder_type = _adpcm.OkiCoder

    @property
    def shadow(self) -> int:
        """The predictor a shift-sum decoder (spandsp) has reached, in 12-bit units."""
        return self._coder.shadow

    def encode_codes_into(self, pcm: BufferLike, out: BufferLike, /) -> None:
        """As :meth:`encode`, one code per byte (0..15) rather than two per byte.

        For interleaving streams (stereo OKI in WAV files): the codes of every sample
        but the lookahead are written, none are held back as half a byte.  Don't mix
        with :meth:`encode` in one stream.

        Parameters
        ----------
        pcm : BufferLike
            1-D int16 samples, any length.
        out : writable buffer
            Exactly ``max(0, len(self.lookahead) + len(pcm) - 2)`` bytes, for the codes
            of the samples coded now; it may overlap ``pcm``.

        Raises
        ------
        TypeError
            If ``pcm`` is not a buffer of int16 samples, or ``out`` not a writable buffer.
        ValueError
            If ``pcm`` is not 1-D, or ``out`` has the wrong size.

        Examples
        --------
        >>> import numpy as np
        >>> from recorder import adpcm
        >>> enc, codes = adpcm.OkiEncoder(), np.empty(3, np.uint8)
        >>> enc.encode_codes_into(np.zeros(5, np.int16), codes)
        >>> codes.tolist(), enc.flush_codes().tolist()
        ([0, 8, 0], [8, 0])
        """
        x = _one_d(as_int16(pcm, "pcm"), "pcm")
        coder = self._coder
        dst = out_array(out, (max(0, len(coder.lookahead) + x.size - 2),), np.uint8)
        coder.encode_codes_into(unaliased(x, dst), dst)

    def flush_codes(self) -> np.ndarray:
        """End of a stream coded by :meth:`encode_codes_into`: the codes of the lookahead
        samples (uint8, one per byte, 0 to 2 of them)."""
        return np.frombuffer(self._coder.flush_codes(), np.uint8).copy()


class OkiDecoder(_Decoder):
    """Streaming OKI / Dialogic VOX ADPCM decoder, bit-exact with FFmpeg's
    ``adpcm_ima_oki``; returns 16-bit samples (the 12-bit predictor << 4).

    Follows :class:`recorder.types.StreamDecoder`.

    Parameters
    ----------
    state : (int, int), optional
        ``(predictor, step_index)``, the predictor in 12-bit units (default (0, 0)).

    Raises
    ------
    TypeError, ValueError
        If ``state`` is not a pair of ints in range.

    Examples
    --------
    >>> from recorder import adpcm
    >>> adpcm.OkiDecoder().decode(b"\\x08").tolist()
    [32, 0]
    """

    format = "oki"
    _coder_type = _adpcm.OkiCoder


# --- one-shot ------------------------------------------------------------------------------


def _encode_once(cls, pcm, state, out):
    coder = cls(state)._coder
    x = _one_d(as_int16(pcm, "pcm"), "pcm")
    dst = out_array(out, ((x.size + 1) // 2,), np.uint8)
    if out is not None:
        x = unaliased(x, dst)
    k = coder.nbytes(x.size)
    coder.encode_into(x, dst[:k])
    dst[k:] = np.frombuffer(coder.flush_bytes(), np.uint8)
    return dst


def _decode_once(cls, data, state, out):
    return cls(state).decode(data, out=out)


def ima_encode(
    pcm: BufferLike, /, *, state: tuple[int, int] | None = None, out: BufferLike | None = None
) -> np.ndarray:
    """IMA ADPCM bytes of int16 samples: a whole stream (encode + flush).

    An odd count ends with a byte whose low nibble is a zero pad code
    (``audioop.lin2adpcm`` drops that last sample instead).

    Parameters
    ----------
    pcm : BufferLike
        1-D int16 samples.
    state : (int, int), optional
        ``(predictor, step_index)`` to start from (default (0, 0)).
    out : writable buffer, optional
        Exactly ``(len(pcm) + 1) // 2`` bytes; may overlap ``pcm``.

    Returns
    -------
    numpy.ndarray
        ``(len(pcm) + 1) // 2`` bytes (uint8), high nibble first; ``out`` when given.

    Raises
    ------
    TypeError
        If ``pcm`` is not a buffer of int16 samples, or ``state`` not a pair of ints.
    ValueError
        If ``pcm`` is not 1-D, ``state`` is out of range or ``out`` has the wrong size.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import adpcm
    >>> adpcm.ima_encode(np.zeros(5, np.int16)).size
    3
    """
    return _encode_once(ImaEncoder, pcm, state, out)


def ima_decode(
    data: BufferLike, /, *, state: tuple[int, int] | None = None, out: BufferLike | None = None
) -> np.ndarray:
    """int16 samples of IMA ADPCM bytes (two per byte, high nibble first).

    Parameters
    ----------
    data : BufferLike
        1-D bytes, two codes each, high nibble first.
    state : (int, int), optional
        ``(predictor, step_index)`` to start from (default (0, 0)).
    out : writable buffer, optional
        Exactly ``2 * len(data)`` int16 samples; may overlap ``data``.

    Returns
    -------
    numpy.ndarray
        ``2 * len(data)`` int16 samples; ``out`` when given.

    Raises
    ------
    TypeError
        If ``data`` is not a buffer, or ``state`` not a pair of ints.
    ValueError
        If ``data`` is not 1-D, ``state`` is out of range or ``out`` has the wrong size.

    Examples
    --------
    >>> from recorder import adpcm
    >>> adpcm.ima_decode(bytes(3)).size
    6
    """
    return _decode_once(ImaDecoder, data, state, out)


def oki_encode(
    pcm: BufferLike, /, *, state: tuple[int, int] | None = None, out: BufferLike | None = None
) -> np.ndarray:
    """OKI ADPCM bytes of int16 samples: a whole stream (encode + flush).

    An odd count ends with a zero pad nibble.

    Parameters
    ----------
    pcm : BufferLike
        1-D int16 samples.
    state : (int, int), optional
        ``(predictor, step_index)`` to start from (default (0, 0)), the predictor in 12-bit units.
    out : writable buffer, optional
        Exactly ``(len(pcm) + 1) // 2`` bytes; may overlap ``pcm``.

    Returns
    -------
    numpy.ndarray
        ``(len(pcm) + 1) // 2`` bytes (uint8), high nibble first; ``out`` when given.

    Raises
    ------
    TypeError
        If ``pcm`` is not a buffer of int16 samples, or ``state`` not a pair of ints.
    ValueError
        If ``pcm`` is not 1-D, ``state`` is out of range or ``out`` has the wrong size.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import adpcm
    >>> adpcm.oki_encode(np.zeros(5, np.int16)).size
    3
    """
    return _encode_once(OkiEncoder, pcm, state, out)


def oki_decode(
    data: BufferLike, /, *, state: tuple[int, int] | None = None, out: BufferLike | None = None
) -> np.ndarray:
    """int16 samples of OKI ADPCM bytes (two per byte, high nibble first).

    Parameters
    ----------
    data : BufferLike
        1-D bytes, two codes each, high nibble first.
    state : (int, int), optional
        ``(predictor, step_index)`` to start from (default (0, 0)), the predictor in 12-bit units.
    out : writable buffer, optional
        Exactly ``2 * len(data)`` int16 samples; may overlap ``data``.

    Returns
    -------
    numpy.ndarray
        ``2 * len(data)`` int16 samples; ``out`` when given.

    Raises
    ------
    TypeError
        If ``data`` is not a buffer, or ``state`` not a pair of ints.
    ValueError
        If ``data`` is not 1-D, ``state`` is out of range or ``out`` has the wrong size.

    Examples
    --------
    >>> from recorder import adpcm
    >>> adpcm.oki_decode(bytes(3)).size
    6
    """
    return _decode_once(OkiDecoder, data, state, out)


# --- many channels at once -----------------------------------------------------------------


def row_states(rows: int) -> np.ndarray:
    """Initial states for ``rows`` independent streams (the ``*_rows`` functions).

    Each row is ``(predictor, step_index, shadow)`` = (0, 0, 0); ``shadow`` is the OKI
    encoder's copy of a shift-sum decoder's predictor (see :class:`OkiEncoder`), unused
    otherwise.  One array serves one direction of one codec (a decoder's states are not
    an encoder's).

    Parameters
    ----------
    rows : int
        0 to 1,000,000.

    Returns
    -------
    numpy.ndarray
        int32 zeros of shape ``(rows, 3)``.

    Raises
    ------
    TypeError, ValueError
        If ``rows`` is not an int in range.

    Examples
    --------
    >>> from recorder import adpcm
    >>> adpcm.row_states(2).tolist()
    [[0, 0, 0], [0, 0, 0]]
    """
    return np.zeros((integer(rows, "rows", 0, MAX_CHANNELS), 3), dtype=np.int32)


def _check_state_array(state, rows: int) -> np.ndarray:
    if (
        not isinstance(state, np.ndarray)
        or state.dtype != np.int32
        or not state.flags.c_contiguous
        or not state.flags.writeable
    ):
        raise TypeError(
            "state must be a writable C-contiguous int32 numpy array of shape (rows, 3) "
            "(see row_states)"
        )
    if state.shape != (rows, 3):
        raise ValueError(
            f"state has shape {state.shape}, expected ({rows}, 3): one row per channel"
        )
    return state


def _rows(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (one channel per row), got {x.ndim} dimension(s)")
    return x


def _encode_rows(oki: bool, pcm, state, out):
    x = _rows(as_int16(pcm, "pcm"), "pcm")
    st = _check_state_array(state, x.shape[0])
    if x.shape[1] % 2:
        raise ValueError(
            f"rows of {x.shape[1]} samples: an even number is needed (two samples per byte)"
        )
    dst = out_array(out, (x.shape[0], x.shape[1] // 2), np.uint8)
    disjoint(st, dst, "state and out")
    disjoint(st, x, "state and pcm")
    if out is not None:
        x = unaliased(x, dst)
    _adpcm.encode_rows(oki, x, st, dst)
    return dst


def _decode_rows(oki: bool, data, state, out):
    src = _rows(as_uint8(data, "data"), "data")
    st = _check_state_array(state, src.shape[0])
    dst = out_array(out, (src.shape[0], 2 * src.shape[1]), np.int16)
    disjoint(st, dst, "state and out")
    disjoint(st, src, "state and data")
    if out is not None:
        src = unaliased(src, dst)
    _adpcm.decode_rows(oki, src, st, dst)
    return dst


def ima_encode_rows(
    pcm: BufferLike, state: np.ndarray, /, *, out: BufferLike | None = None
) -> np.ndarray:
    """Encode many independent IMA streams in one call.

    Row r of the result is exactly what an :class:`ImaEncoder` in state ``state[r]``
    returns.  The kernel runs four channels in lockstep (independent dependency chains),
    which is what makes a server with thousands of calls cheap per channel.

    Parameters
    ----------
    pcm : BufferLike
        int16, shape ``(channels, n)``, ``n`` even.
    state : numpy.ndarray
        int32, shape ``(channels, 3)`` (see :func:`row_states`), updated in place.
    out : writable buffer, optional
        ``(channels, n // 2)`` bytes.

    Returns
    -------
    numpy.ndarray
        uint8, shape ``(channels, n // 2)``; ``out`` when given.

    Raises
    ------
    TypeError
        If an input is not a buffer of the right type, or ``state`` not a writable
        C-contiguous int32 array.
    ValueError
        If shapes do not match, a state is out of range, or ``state`` shares memory
        with the input or ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import adpcm
    >>> st = adpcm.row_states(3)
    >>> adpcm.ima_encode_rows(np.zeros((3, 160), np.int16), st).shape
    (3, 80)
    """
    return _encode_rows(False, pcm, state, out)


def ima_decode_rows(
    data: BufferLike, state: np.ndarray, /, *, out: BufferLike | None = None
) -> np.ndarray:
    """Decode many independent IMA streams in one call.

    Parameters
    ----------
    data : BufferLike
        Bytes, shape ``(channels, nbytes)``.
    state : numpy.ndarray
        int32, shape ``(channels, 3)`` (see :func:`row_states`), updated in place.
    out : writable buffer, optional
        ``(channels, 2 * nbytes)`` int16 samples.

    Returns
    -------
    numpy.ndarray
        int16, shape ``(channels, 2 * nbytes)``; ``out`` when given.

    Raises
    ------
    TypeError
        If an input is not a buffer of the right type, or ``state`` not a writable
        C-contiguous int32 array.
    ValueError
        If shapes do not match, a state is out of range, or ``state`` shares memory
        with the input or ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import adpcm
    >>> adpcm.ima_decode_rows(np.zeros((3, 80), np.uint8), adpcm.row_states(3)).shape
    (3, 160)
    """
    return _decode_rows(False, data, state, out)


def oki_encode_rows(
    pcm: BufferLike, state: np.ndarray, /, *, out: BufferLike | None = None
) -> np.ndarray:
    """As :func:`ima_encode_rows`, for OKI (predictors in 12-bit units).

    Each call codes its block completely: the last two samples of a row are decided
    without the next block's samples (as at the end of a stream), so unlike
    :class:`OkiEncoder` the bytes depend on the block size (every decoder still reads
    them alike); this keeps exactly ``n // 2`` bytes per row and call.

    Parameters
    ----------
    pcm : BufferLike
        int16, shape ``(channels, n)``, ``n`` even.
    state : numpy.ndarray
        int32, shape ``(channels, 3)`` (see :func:`row_states`), updated in place.
    out : writable buffer, optional
        ``(channels, n // 2)`` bytes.

    Returns
    -------
    numpy.ndarray
        uint8, shape ``(channels, n // 2)``; ``out`` when given.

    Raises
    ------
    TypeError
        If an input is not a buffer of the right type, or ``state`` not a writable
        C-contiguous int32 array.
    ValueError
        If shapes do not match, a state is out of range, or ``state`` shares memory
        with the input or ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import adpcm
    >>> adpcm.oki_encode_rows(np.zeros((2, 160), np.int16), adpcm.row_states(2)).shape
    (2, 80)
    """
    return _encode_rows(True, pcm, state, out)


def oki_decode_rows(
    data: BufferLike, state: np.ndarray, /, *, out: BufferLike | None = None
) -> np.ndarray:
    """As :func:`ima_decode_rows`, for OKI.

    Parameters
    ----------
    data : BufferLike
        Bytes, shape ``(channels, nbytes)``.
    state : numpy.ndarray
        int32, shape ``(channels, 3)`` (see :func:`row_states`), updated in place.
    out : writable buffer, optional
        ``(channels, 2 * nbytes)`` int16 samples.

    Returns
    -------
    numpy.ndarray
        int16, shape ``(channels, 2 * nbytes)``; ``out`` when given.

    Raises
    ------
    TypeError
        If an input is not a buffer of the right type, or ``state`` not a writable
        C-contiguous int32 array.
    ValueError
        If shapes do not match, a state is out of range, or ``state`` shares memory
        with the input or ``out``.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder import adpcm
    >>> adpcm.oki_decode_rows(np.zeros((2, 80), np.uint8), adpcm.row_states(2)).shape
    (2, 160)
    """
    return _decode_rows(True, data, state, out)
