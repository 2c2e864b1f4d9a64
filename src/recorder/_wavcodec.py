"""The WAV format types: how a codec sits in a WAV file.

:class:`WavCodec` describes one codec's layout in a WAV file (format tag, bits, block
size, fact chunk) and codes its data; :class:`Fmt` is a parsed ``fmt `` chunk;
:class:`WavError` is what every malformed file raises.  This module imports nothing
else of the package: :mod:`recorder.codecs` builds the format registry from these types
(the sample codecs here, the ADPCM ones in ``_wav_adpcm``), and :mod:`recorder.wav` reads
and writes files with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["READ_ONLY", "Fmt", "WavCodec", "WavError"]


class WavError(ValueError):
    """A WAV file that is malformed, truncated or in a format this package cannot read.

    A subclass of ValueError; its message names the problem.
    """


@dataclass(frozen=True)
class Fmt:
    """The parsed ``fmt `` chunk (``tag`` resolved through WAVE_FORMAT_EXTENSIBLE).

    Attributes
    ----------
    tag : int
        Format tag (1 PCM, 3 IEEE float, 6 A-law, 7 mu-law, 0x11 IMA ADPCM, ...).
    channels, rate, byte_rate, block_align, bits : int
        The header fields of the same names.
    extra : bytes
        The bytes after ``cbSize`` (empty when there are none).
    """

    tag: int
    channels: int
    rate: int
    byte_rate: int
    block_align: int
    bits: int
    extra: bytes = b""


class WavCodec:
    """How a format is laid out in a WAV file, and how its data is coded.

    Sample codecs (one code per sample and channel) use this class as is; block codecs
    (ADPCM) subclass it.

    Parameters
    ----------
    name : str
        The format name (``Info.format`` of the files it reads).
    tag : int
        The format tag it writes.
    bits : int
        Bits per sample in the ``fmt`` chunk.
    bytes_per_sample : int
        Bytes of one sample of one channel (0 for block codecs).
    has_fact : bool
        Whether files carry a ``fact`` chunk (every non-PCM format does).
    fmt_extra : bytes or None
        None: a 16-byte PCM ``fmt`` chunk; bytes: WAVEFORMATEX with these extra bytes.
    tags : tuple of int, optional
        The format tags it reads (default: ``(tag,)``).
    by_bits : bool
        True: it reads only files of its own ``bits`` (PCM and float share tags).
    stream : callable, optional
        ``stream()`` returns a fresh streaming encoder (``encode``/``flush``); None for a
        read-only codec.
    decode : callable, optional
        ``decode(uint8 array)`` returns the int16 samples of whole coded samples.
    """

    name = ""
    tag = 0
    bits = 8
    bytes_per_sample = 1
    has_fact = True  # non-PCM formats carry a fact chunk
    validates_data = False  # True: check_data can reject coded bytes
    fmt_extra: bytes | None = b""  # None: 16-byte PCM fmt; b"": WAVEFORMATEX with cbSize 0

    def __init__(
        self,
        name: str,
        tag: int,
        bits: int,
        bytes_per_sample: int,
        *,
        has_fact: bool = True,
        fmt_extra: bytes | None = b"",
        tags: tuple[int, ...] | None = None,
        by_bits: bool = False,
        stream: Callable[[], Any] | None = None,
        decode: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.name, self.tag, self.bits = name, tag, bits
        self.bytes_per_sample = bytes_per_sample
        self.has_fact, self.fmt_extra = has_fact, fmt_extra
        self.tags = tuple(tags) if tags else (tag,)
        self.by_bits = by_bits
        self._stream = stream
        self._decode = decode

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} tag 0x{self.tag:04X}>"

    def reads(self, fmt: Fmt) -> bool:
        """Whether this codec is the one that reads a file with this ``fmt`` chunk."""
        return fmt.tag in self.tags and (not self.by_bits or fmt.bits == self.bits)

    # layout (``rate`` matters only to formats whose block size depends on it: IMA ADPCM)
    def block_align(self, channels: int, rate: int = 8000) -> int:
        """``block_align`` of a file with ``channels`` channels at ``rate`` Hz."""
        return self.bytes_per_sample * channels

    def samples_per_block(self, channels: int, rate: int = 8000) -> int:
        """Frames in one block (1 for sample codecs)."""
        return 1

    def extra_for(self, channels: int, rate: int = 8000) -> bytes | None:
        """The ``fmt`` chunk's extra bytes (None: a 16-byte PCM ``fmt`` chunk)."""
        return self.fmt_extra

    def data_bytes(self, frames: int, channels: int, rate: int = 8000) -> int:
        """Size of the data chunk holding ``frames`` frames (blocks rounded up), exactly
        what :class:`recorder.wav.Writer` writes for them."""
        spb = self.samples_per_block(channels, rate)
        return -(-frames // spb) * self.block_align(channels, rate)

    def max_frames(self, nbytes: int, channels: int, rate: int = 8000) -> int:
        """The most frames whose data chunk fits in ``nbytes`` (whole blocks only)."""
        spb = self.samples_per_block(channels, rate)
        return max(nbytes, 0) // self.block_align(channels, rate) * spb

    # writing
    def encoder(self, channels: int, rate: int) -> Any:
        """Streaming encoder of interleaved int16 samples: ``encode(pcm)`` and
        ``flush()`` return uint8 arrays of whole blocks.  ValueError for a codec this
        package only reads."""
        if self._stream is None:
            raise ValueError(f"{self.name} WAV files are read, not written")
        return self._stream()

    # reading
    def check(self, fmt: Fmt) -> None:
        """Raise :class:`WavError` when ``fmt`` is not a layout this codec reads."""
        want = self.block_align(fmt.channels)
        if fmt.block_align != want:
            raise WavError(
                f"{self.name}: block_align is {fmt.block_align}, expected {want} "
                f"for {fmt.channels} channel(s)"
            )

    # The frame rule, used by the reader and by repair alike: ``whole_bytes`` is the part
    # of a data chunk made of whole frames (blocks), ``frames`` how many frames it holds.
    def whole_bytes(self, nbytes: int, fmt: Fmt) -> int:
        """The longest prefix of ``nbytes`` data bytes that holds whole frames only: what
        the reader decodes and what :func:`recorder.wav.repair` keeps of a file cut short."""
        return nbytes - nbytes % fmt.block_align

    def frames(self, nbytes: int, fmt: Fmt) -> int:
        """Frames in the whole frames of ``nbytes`` data bytes (before a fact chunk trims
        the padding of a last block)."""
        return nbytes // fmt.block_align

    def frames_per_block(self, fmt: Fmt) -> int:
        """Frames in one block of this file (1 for sample codecs)."""
        return 1

    def check_data(self, data: np.ndarray, fmt: Fmt) -> None:
        """Raise :class:`WavError` for coded bytes this codec cannot decode (sample codecs
        decode any byte)."""

    def decode(self, data: np.ndarray, fmt: Fmt) -> np.ndarray:
        """Interleaved int16 samples of ``data`` (whole frames only)."""
        if self._decode is None:
            raise ValueError(f"{self.name}: no decoder")
        return self._decode(data[: self.whole_bytes(data.size, fmt)])


class _WidePcm(WavCodec):
    """24/32-bit integer PCM: read only, top 16 bits kept."""

    def decode(self, data: np.ndarray, fmt: Fmt) -> np.ndarray:
        n = self.frames(data.size, fmt) * fmt.channels
        width = self.bytes_per_sample
        samples = data[: n * width].reshape(n, width)
        return (
            samples[:, width - 2].astype(np.uint16) | (samples[:, width - 1].astype(np.uint16) << 8)
        ).view(np.int16)


class _Float(WavCodec):
    """IEEE float: read only, scaled by 32768, rounded and clipped to int16."""

    def decode(self, data: np.ndarray, fmt: Fmt) -> np.ndarray:
        n = self.frames(data.size, fmt) * fmt.channels
        x = np.frombuffer(
            data[: n * self.bytes_per_sample].tobytes(), dtype=f"<f{self.bytes_per_sample}"
        )
        with np.errstate(invalid="ignore"):
            y = np.rint(np.nan_to_num(x.astype(np.float64)) * 32768.0)
        return np.clip(y, -32768, 32767).astype(np.int16)


#: Codecs this package reads but does not write (they have no format name to write).
READ_ONLY: tuple[WavCodec, ...] = (
    _WidePcm("pcm24", 1, 24, 3, has_fact=False, fmt_extra=None, by_bits=True),
    _WidePcm("pcm32", 1, 32, 4, has_fact=False, fmt_extra=None, by_bits=True),
    _Float("float32", 3, 32, 4, by_bits=True),
    _Float("float64", 3, 64, 8, by_bits=True),
)
