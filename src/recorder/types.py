"""Types for annotating code that uses callrecorder.

``BufferLike`` is what every function taking audio accepts: bytes, bytearray, memoryview,
array.array or a numpy array (C-contiguous or not: copied when needed).
:class:`StreamEncoder` and :class:`StreamDecoder` are the interface every streaming codec
object has (what :func:`recorder.codecs.get_encoder` and
:func:`recorder.codecs.get_decoder` return): a function written against them takes any
format.  :class:`FileCipher` is what a ``cipher=`` argument must provide
(:class:`recorder.AesCbcCipher` and :class:`recorder.AesGcmCipher` do).

This module imports nothing heavy (no numpy at run time), so annotating with it is free.

Examples
--------
>>> from recorder import codecs
>>> from recorder.types import StreamDecoder, StreamEncoder
>>> def encode_frames(enc: StreamEncoder, frames) -> bytes:
...     return b"".join(enc.encode(f).tobytes() for f in frames) + enc.flush().tobytes()
>>> len(encode_frames(codecs.get_encoder("ulaw"), [bytes(320), bytes(320)]))
320
>>> isinstance(codecs.get_decoder("oki"), StreamDecoder)
True
"""

from __future__ import annotations

import array
import io
from typing import IO, TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover - numpy is only needed by the type checker
    import numpy as np
    import numpy.typing as npt

__all__ = ["BinaryFile", "BufferLike", "FileCipher", "StreamDecoder", "StreamEncoder"]

#: What audio parameters accept: any object with the buffer protocol.  Samples (``pcm``)
#: are int16 (a numpy array must have an int16 dtype; other buffers hold int16 items or
#: raw native-endian bytes); coded data (``data``) is bytes.
BufferLike = Union[bytes, bytearray, memoryview, "array.array[Any]", "npt.NDArray[Any]"]

#: A binary file object: what ``open(..., "rb")`` / ``"wb"`` returns, an
#: ``io.BytesIO``, or a raw file such as :class:`recorder.cipher.SealedPart`.
BinaryFile = IO[bytes] | io.RawIOBase


@runtime_checkable
class StreamEncoder(Protocol):
    """A streaming encoder: int16 samples in, coded bytes out, state kept between calls.

    Encoding a stream in chunks of any size, then calling :meth:`flush`, gives exactly
    the bytes of encoding it in one call.
    """

    def encode(self, pcm: BufferLike, /) -> np.ndarray:
        """Code the samples ``pcm``.

        Parameters
        ----------
        pcm : BufferLike
            int16 samples, any length.

        Returns
        -------
        numpy.ndarray
            The completed bytes (uint8).  A codec that packs two samples in a byte, or
            looks ahead, may hold some samples back until the next call or :meth:`flush`.

        Raises
        ------
        TypeError
            ``pcm`` is not a buffer of int16 samples.
        """
        ...

    def flush(self) -> np.ndarray:
        """End of stream: the bytes of everything held back (uint8), possibly empty."""
        ...

    def reset(self) -> None:
        """Forget the state and anything held back: the next call starts a new stream."""
        ...


@runtime_checkable
class StreamDecoder(Protocol):
    """A streaming decoder: coded bytes in, int16 samples out, state kept between calls."""

    def decode(self, data: BufferLike, /) -> np.ndarray:
        """Decode the bytes ``data``.

        Parameters
        ----------
        data : BufferLike
            Coded bytes, split anywhere.

        Returns
        -------
        numpy.ndarray
            The decoded samples (int16).

        Raises
        ------
        TypeError
            ``data`` is not a buffer.
        """
        ...

    def flush(self) -> np.ndarray:
        """End of stream: any samples still held back (int16), possibly empty."""
        ...

    def reset(self) -> None:
        """Forget the state: the next call starts a new stream."""
        ...


@runtime_checkable
class FileCipher(Protocol):
    """What a ``cipher=`` argument provides (:class:`recorder.AesCbcCipher`,
    :class:`recorder.AesGcmCipher`).

    Every failure to decrypt raises :class:`recorder.CipherError`.
    """

    key: bytes

    def encrypt(self, data: BufferLike) -> bytes:
        """Encrypt a whole file's bytes in memory.

        Parameters
        ----------
        data : BufferLike
            The plaintext.

        Returns
        -------
        bytes
            The ciphertext.
        """
        ...

    def decrypt(self, data: BufferLike) -> bytes:
        """Decrypt a whole file's bytes in memory.

        Parameters
        ----------
        data : BufferLike
            The ciphertext.

        Returns
        -------
        bytes
            The plaintext.

        Raises
        ------
        recorder.CipherError
            It does not decrypt.
        """
        ...

    def encrypt_file(self, src: BinaryFile, dst: BinaryFile) -> int:
        """Encrypt a file.

        Parameters
        ----------
        src : BinaryFile
            Read from where it stands to its end.
        dst : BinaryFile
            Receives the ciphertext.

        Returns
        -------
        int
            The bytes written.
        """
        ...

    def decrypt_file(self, src: BinaryFile, dst: BinaryFile) -> int:
        """Decrypt a file.

        Parameters
        ----------
        src : BinaryFile
            The ciphertext.
        dst : BinaryFile
            Receives the plaintext.

        Returns
        -------
        int
            The plaintext bytes written.

        Raises
        ------
        recorder.CipherError
            It does not decrypt.
        """
        ...

    def encrypted_size(self, plain_size: int) -> int:
        """The size of the ciphertext of a plaintext.

        Parameters
        ----------
        plain_size : int
            Plaintext bytes.

        Returns
        -------
        int
            Ciphertext bytes.
        """
        ...

    def max_plain_size(self, limit: int) -> int:
        """The largest plaintext whose ciphertext fits in a limit.

        Parameters
        ----------
        limit : int
            Bytes available.

        Returns
        -------
        int
            Plaintext bytes.
        """
        ...
