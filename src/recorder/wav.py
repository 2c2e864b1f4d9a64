"""WAV files: read, write, inspect and repair.

Writes every format of the registry (:data:`recorder.codecs.REGISTRY`): ``alaw`` (tag 6),
``ulaw`` (tag 7), ``s16bit`` and ``u8bit`` (tag 1), ``ima`` (tag 0x11) and ``oki`` (tag
0x10).  Non-PCM files carry a ``fact`` chunk with the true sample count.

Reads what real files contain: chunks in any order, LIST/INFO and unknown chunks
skipped, odd-sized chunks padded, WAVE_FORMAT_EXTENSIBLE, RF64, PCM of 8/16/24/32 bits
and IEEE float (converted to int16: 24/32-bit keep their top 16 bits, float is scaled by
32768, rounded and clipped), and a data size of 0 or a streaming placeholder (0xFFFFFFFF, 0x7FFFF000 from
espeak-ng, 0x7FFFFFFF) left by a writer that never finished or wrote to a pipe (the data
then runs to the end of the file).  A trailing partial frame is
dropped.  Anything malformed raises :class:`WavError` (a ValueError) naming the problem;
sizes in a header are checked against the real file size before anything is allocated.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Union

import numpy as np

from . import codecs
from ._buffers import MAX_SAMPLES, as_int16, integer, open_binary, sample_rate
from ._wavcodec import READ_ONLY, Fmt, WavCodec, WavError

if TYPE_CHECKING:
    from .types import FileCipher

__all__ = [
    "WRITE_FORMATS",
    "AppendTarget",
    "Fmt",
    "HeaderField",
    "Info",
    "Repaired",
    "WavCodec",
    "WavError",
    "Writer",
    "info",
    "read",
    "recover",
    "repair",
    "write",
]

MAX_CHANNELS = 64
#: What the functions that take a file take: a path or a binary file object (a raw one
#: such as cipher.SealedPart too).
PathOrFile = Union[str, "os.PathLike[str]", IO[bytes], io.RawIOBase]
_U32 = 0xFFFFFFFF
# data sizes that writers streaming to a pipe put in the header (they cannot seek back):
# 0xFFFFFFFF (sox, ffmpeg to a pipe), 0x7FFFF000 (espeak-ng --stdout), 0x7FFFFFFF.
_STREAMING_SIZES = frozenset((_U32, 0x7FFFF000, 0x7FFFFFFF))
_KSDATAFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def max_file_bytes() -> int:
    """The largest WAV file :class:`Writer` writes (RIFF sizes are 32-bit).

    Returns
    -------
    int
        ``2**32 - 2`` bytes.

    Examples
    --------
    >>> from recorder import wav
    >>> wav.max_file_bytes()
    4294967294
    """
    return _U32 - 1


@dataclass(frozen=True)
class Info:
    """What a WAV file holds.

    Attributes
    ----------
    format : str
        The format name (a :data:`recorder.codecs.FORMATS` name, or ``'pcm24'``,
        ``'pcm32'``, ``'float32'``, ``'float64'`` for files this package only reads).
    rate : int
        Sample rate in Hz.
    channels : int
        Interleaved channels.
    frames : int
        Samples per channel.
    duration : float
        ``frames / rate`` seconds.
    format_tag, bits_per_sample, block_align : int
        The ``fmt`` chunk's fields.
    data_offset, data_bytes : int
        Where the audio starts in the file, and its size in bytes.
    """

    format: str
    rate: int
    channels: int
    frames: int
    duration: float
    format_tag: int = 0
    bits_per_sample: int = 0
    block_align: int = 0
    data_offset: int = 0
    data_bytes: int = 0


#: format name -> its WAV codec, for writing: a read-only view of the format registry
#: (:data:`recorder.codecs.REGISTRY`, where aliases such as ``'s16'`` are listed too).
WRITE_FORMATS: Mapping[str, WavCodec] = MappingProxyType(
    {n: f.wav for n, f in codecs.REGISTRY.items()}
)

# the codecs that read files, tried in order: every registered format, then the PCM and
# float layouts this package reads but does not write
_READ_CODECS: tuple[WavCodec, ...] = (*WRITE_FORMATS.values(), *READ_ONLY)
_TAG_NAMES = {
    0x0002: "MS ADPCM",
    0x0011: "IMA ADPCM",
    0x0010: "OKI ADPCM",
    0x0017: "Dialogic OKI ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MP3",
    0x0064: "G.726",
    0x0161: "WMA",
}


# --- parsing -------------------------------------------------------------------------------


def _parse_fmt(body: bytes) -> Fmt:
    if len(body) < 14:
        raise WavError(f"fmt chunk too short ({len(body)} bytes, need at least 14)")
    tag, channels, rate, byte_rate, block_align = struct.unpack_from("<HHIIH", body)
    bits = struct.unpack_from("<H", body, 14)[0] if len(body) >= 16 else 8
    extra = b""
    if len(body) >= 18:
        cb = struct.unpack_from("<H", body, 16)[0]
        extra = body[18 : 18 + cb]
    if tag == 0xFFFE:
        if len(extra) < 22:
            raise WavError("WAVE_FORMAT_EXTENSIBLE fmt chunk is missing its 22 extension bytes")
        tag = struct.unpack_from("<H", extra, 6)[0]
        if extra[8:22] != _KSDATAFORMAT_TAIL:
            raise WavError("WAVE_FORMAT_EXTENSIBLE sub-format is not a standard format GUID")
    if channels < 1 or channels > MAX_CHANNELS:
        raise WavError(f"fmt chunk says {channels} channels (allowed: 1 to {MAX_CHANNELS})")
    if rate < 1:
        raise WavError("fmt chunk says a sample rate of 0 Hz")
    if block_align < 1:
        raise WavError("fmt chunk says a block_align of 0")
    return Fmt(tag, channels, rate, byte_rate, block_align, bits, bytes(extra))


def _looks_like_chunk(head: bytes, remaining: int) -> bool:
    if len(head) < 8:
        return False
    cid, size = struct.unpack("<4sI", head)
    return all(32 <= b < 127 for b in cid) and size <= remaining - 8


@dataclass
class _Layout:
    fmt: Fmt
    codec: WavCodec
    data_offset: int
    data_bytes: int
    fact: int | None
    unbounded: bool


def _parse(f, size: int) -> _Layout:
    f.seek(0)
    head = f.read(12)
    if len(head) < 12:
        raise WavError(f"file too short for a RIFF/WAVE header ({len(head)} bytes)")
    riff, _riff_size, wave = struct.unpack("<4sI4s", head)
    if riff not in (b"RIFF", b"RF64"):
        raise WavError(f"not a WAV file: starts with {riff!r}, expected b'RIFF'")
    if wave != b"WAVE":
        raise WavError(f"RIFF file of type {wave!r}, expected b'WAVE'")
    rf64 = riff == b"RF64"
    fmt = fact = data = None
    ds64_data = None
    unbounded = False
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        cid, csize = struct.unpack("<4sI", f.read(8))
        body = pos + 8
        remaining = size - body
        if cid == b"data":
            if data is not None:
                raise WavError("file has two data chunks")
            if rf64 and csize == _U32 and ds64_data is not None:
                csize = ds64_data
            if csize in _STREAMING_SIZES or (
                csize == 0 and remaining > 0 and not _looks_like_chunk(f.read(8), remaining)
            ):
                # the audio runs on to the end of the file, or to chunks that follow it
                after = _trailing_chunks(f, body, size)
                csize, unbounded = (size if after is None else after) - body, True
            elif csize > remaining:
                raise WavError(
                    f"data chunk truncated: header says {csize} bytes, the file holds {remaining}"
                )
            data = (body, csize)
            if unbounded:
                break
        elif csize > remaining:
            if data is not None and fmt is not None:
                break  # trailing junk after the audio: ignore it
            raise WavError(
                f"{cid!r} chunk truncated: header says {csize} bytes, the file holds {remaining}"
            )
        elif cid == b"fmt ":
            if fmt is not None:
                raise WavError("file has two fmt chunks")
            if csize > 4096:
                raise WavError(f"fmt chunk of {csize} bytes is implausibly large")
            fmt = _parse_fmt(f.read(csize))
        elif cid == b"fact" and csize >= 4:
            fact = struct.unpack("<I", f.read(4))[0]
        elif cid == b"ds64" and csize >= 24:
            ds64_data = struct.unpack("<8xQ", f.read(16))[0]
        pos = body + csize + (csize & 1)
    if fmt is None:
        raise WavError("no fmt chunk" + (" before the data" if unbounded else ""))
    if data is None:
        raise WavError("no data chunk")
    return _Layout(fmt, _codec_for(fmt), data[0], data[1], fact, unbounded)


def _codec_for(fmt: Fmt) -> WavCodec:
    """The codec that reads ``fmt``, checked against it; WavError when there is none."""
    codec = next((c for c in _READ_CODECS if c.reads(fmt)), None)
    if codec is None:
        name = _TAG_NAMES.get(fmt.tag, "unknown")
        raise WavError(
            f"unsupported WAV format: tag 0x{fmt.tag:04X} ({name}), {fmt.bits} bits per sample"
        )
    codec.check(fmt)
    return codec


class _Source:
    """A path or a binary file object, opened for reading, with its size."""

    def __init__(self, src, cipher=None):
        self._own = self._view = None
        if cipher is not None:
            from .cipher import SealedPart, check_cipher, is_sealed_part  # cryptography: when used

            check_cipher(cipher)
        f, owned = open_binary(src, "rb", WavError)
        if owned:
            self._own = f
        if cipher is not None:
            try:
                seekable = getattr(f, "seekable", lambda: True)()
                if seekable and is_sealed_part(f):  # a recording in progress (or crashed)
                    f = self._view = SealedPart.open(f, cipher)
                else:
                    f = io.BytesIO(cipher.decrypt(f.read()))
            except BaseException:
                self.close()
                raise
        self.f = f
        f.seek(0, io.SEEK_END)
        self.size = f.tell()

    def close(self):
        if self._view is not None:
            self._view.close()
        if self._own is not None:
            self._own.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _frames(layout: _Layout) -> int:
    n = layout.codec.frames(layout.data_bytes, layout.fmt)
    fpb = layout.codec.frames_per_block(layout.fmt)
    if layout.fact is not None and layout.codec.has_fact and fpb > 1 and n - fpb < layout.fact <= n:
        # block codecs: the fact chunk trims the padding of the last block.  A fact that
        # says more, or a block or more less (libsndfile writes half the frame count for
        # stereo IMA ADPCM; a crash leaves the count of the last header refresh), is not
        # about padding, and the data decides.
        n = layout.fact
    return n


def _info(layout: _Layout) -> Info:
    fmt = layout.fmt
    frames = _frames(layout)
    return Info(
        format=layout.codec.name,
        rate=fmt.rate,
        channels=fmt.channels,
        frames=frames,
        duration=frames / fmt.rate,
        format_tag=fmt.tag,
        bits_per_sample=fmt.bits,
        block_align=fmt.block_align,
        data_offset=layout.data_offset,
        data_bytes=layout.data_bytes,
    )


def _opaque(cipher, fn, *args):
    """``fn(*args)``; with a cipher, every failure to decrypt and parse becomes the one
    :class:`recorder.cipher.CipherError` with its one message, chained to nothing: which
    step failed, and any byte of what was decrypted, would tell an attacker about the
    plaintext."""
    try:
        return fn(*args)
    except ValueError:  # WavError, CipherError, a codec's complaint
        if cipher is None:
            raise
    from .cipher import CipherError

    raise CipherError()  # outside the except: no chained original


def info(path: PathOrFile, *, cipher: FileCipher | None = None) -> Info:
    """Format, rate, channels, frames and duration of a WAV file, without decoding it.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The file (a file object is left open).
    cipher : AesCbcCipher or AesGcmCipher, optional
        As for :func:`read`.

    Returns
    -------
    Info

    Raises
    ------
    WavError
        For a malformed or unsupported file (without a cipher).
    recorder.cipher.CipherError
        With a cipher, for anything that goes wrong.

    Examples
    --------
    >>> import io, numpy as np
    >>> from recorder import wav
    >>> buf = io.BytesIO()
    >>> _ = wav.write(buf, np.zeros(8000, np.int16), fmt="ulaw")
    >>> wav.info(buf).duration
    1.0
    """
    return _opaque(cipher, _info_of, path, cipher)


def _info_of(path, cipher) -> Info:
    with _Source(path, cipher) as src:
        return _info(_parse(src.f, src.size))


def read(path: PathOrFile, *, cipher: FileCipher | None = None) -> tuple[np.ndarray, Info]:
    """Decode a WAV file to int16 samples.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The file (a file object is left open).
    cipher : AesCbcCipher or AesGcmCipher, optional
        Decrypts an encrypted recording first, or reads a
        :class:`recorder.cipher.SealedPart` (a recording in progress) made with the
        same key.

    Returns
    -------
    samples : numpy.ndarray
        int16: 1-D for mono, ``(frames, channels)`` otherwise.
    info : Info
        What the file holds.

    Raises
    ------
    WavError
        For a malformed, truncated or unsupported file (without a cipher).
    recorder.cipher.CipherError
        With a cipher, for anything that goes wrong in decrypting or parsing: one fixed
        message (a ``ValueError``, not a :class:`WavError`).
    TypeError
        For bytes (wrap them in ``io.BytesIO``), a text file, or a cipher argument that
        is not a cipher.
    FileNotFoundError
        For a path that does not exist.

    Examples
    --------
    >>> import io, numpy as np
    >>> from recorder import wav
    >>> buf = io.BytesIO()
    >>> _ = wav.write(buf, np.array([0, 1000, -1000], np.int16), fmt="s16bit")
    >>> pcm, meta = wav.read(buf)
    >>> pcm.tolist(), meta.format
    ([0, 1000, -1000], 's16bit')
    """
    return _opaque(cipher, _read, path, cipher)


def _read(path, cipher) -> tuple[np.ndarray, Info]:
    with _Source(path, cipher) as src:
        layout = _parse(src.f, src.size)
        src.f.seek(layout.data_offset)
        raw = src.f.read(layout.data_bytes)
        data = np.frombuffer(raw, dtype=np.uint8)
        pcm = layout.codec.decode(data, layout.fmt)
    meta = _info(layout)
    pcm = pcm[: meta.frames * meta.channels]
    if meta.channels > 1:
        pcm = pcm.reshape(meta.frames, meta.channels)
    return pcm, meta


# --- writing -------------------------------------------------------------------------------


class HeaderField(NamedTuple):
    """A field of a WAV header that counts the data (:class:`AppendTarget`)."""

    at: int  #: its offset in the header
    width: int  #: bytes, little-endian; the value saturates at the largest that fits
    counts: str  #: ``'bytes'``: coded bytes in the data; ``'frames'``: frames in them
    plus: int  #: a constant added to the count


class AppendTarget(NamedTuple):
    """What another writer needs to append coded audio to a :class:`Writer`'s file itself
    and keep its header current (:meth:`Writer.lend`): the engine's compiled core does
    so with ``pwrite``, the GIL released."""

    fd: int  #: the file's descriptor (open until :meth:`Writer.take_back`)
    data_at: int  #: file offset of the next coded byte
    header_at: int  #: file offset of the header
    header: bytes  #: the header for what the file holds now
    fields: tuple[HeaderField, ...]  #: where the counts go in it
    block_align: int  #: bytes per block of the data
    #: frames per block: the frames in the data are the whole blocks' frames, at most the
    #: frames coded (a block padded at the end holds fewer); with 1, the whole blocks'
    frames_per_block: int


class Writer:
    """Streaming WAV writer: ``write(pcm)`` appends int16 samples, ``close()`` finishes the
    header.  A context manager.

    ``sync()`` rewrites the header for what has been written so far and flushes it, so a
    process killed afterwards leaves a playable file (call it about once a second while
    recording; ``fsync=True`` also forces it to disk).  Block formats (ADPCM) hold back a
    partial block until the next ``write`` or ``close``.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        Where to write: a path is created (or truncated) and closed by :meth:`close`; a
        file object (readable, writable, seekable) is written from where it stands and
        left open.
    fmt : str
        A format name or alias of :data:`recorder.codecs.REGISTRY`; ``format`` holds the
        canonical name.
    rate : int
        Sample rate in Hz, 1 to 1,000,000.
    channels : int
        Interleaved channels, 1 to 64 (OKI: 1 or 2).
    buffering : int
        Buffer size for a file opened from a path.

    Raises
    ------
    ValueError
        For an unknown format, a rate or channel count out of range, or a directory
        (:class:`WavError`).
    TypeError
        For a rate or channel count that is not an int, bytes or a text file.

    Examples
    --------
    >>> import io, numpy as np
    >>> from recorder import wav
    >>> buf = io.BytesIO()
    >>> with wav.Writer(buf, "ima", 8000) as w:
    ...     for _ in range(5):
    ...         _ = w.write(np.zeros(160, np.int16))
    >>> w.info().frames
    800
    """

    def __init__(
        self,
        path: PathOrFile,
        fmt: str = "alaw",
        rate: int = 8000,
        channels: int = 1,
        *,
        buffering: int = 64 * 1024,
    ) -> None:
        entry = codecs.lookup(fmt)
        self.codec = entry.wav
        self.format = entry.name
        self.rate = sample_rate(rate, "rate")
        self.channels = integer(channels, "channels", 1, MAX_CHANNELS)
        self._encoder = self.codec.encoder(self.channels, self.rate)
        self._f, self._own = open_binary(path, "w+b", WavError, buffering)
        self.path = getattr(self._f, "name", None)  # the path, or the file object's name
        self.frames = 0  # frames handed to write()
        self.data_bytes = 0  # bytes of coded audio in the data chunk
        self.closed = False
        self._start = self._f.tell()
        # an unbuffered OS file refreshes its header in place with one pwrite (no seeks)
        self._fd = self._f.fileno() if type(self._f) is io.FileIO else None
        self._fmt_chunk = self._make_fmt_chunk()
        self._header_len = 0
        self._lent = False  # another writer appends to the file (lend / take_back)
        self._write_header()

    # header
    def _make_fmt_chunk(self) -> bytes:
        c, ch = self.codec, self.channels
        block_align = c.block_align(ch, self.rate)
        spb = c.samples_per_block(ch, self.rate)
        byte_rate = (self.rate * block_align + spb // 2) // spb
        extra = c.extra_for(ch, self.rate)
        fmt = struct.pack("<HHIIHH", c.tag, ch, self.rate, byte_rate, block_align, c.bits)
        if extra is not None:
            fmt += struct.pack("<H", len(extra)) + extra
        return b"fmt " + struct.pack("<I", len(fmt)) + fmt

    def _header(self) -> bytes:
        chunks = self._fmt_chunk
        if self.codec.has_fact:
            chunks += b"fact" + struct.pack("<II", 4, min(self.frames_written, _U32))
        pad = self.data_bytes & 1 if self.closed else 0
        riff_size = 4 + len(chunks) + 8 + self.data_bytes + pad
        return (
            b"RIFF"
            + struct.pack("<I", min(riff_size, _U32))
            + b"WAVE"
            + chunks
            + b"data"
            + struct.pack("<I", min(self.data_bytes, _U32))
        )

    @property
    def frames_written(self) -> int:
        """Frames whose coded bytes are in the file (a partial ADPCM block is not)."""
        spb = self.codec.samples_per_block(self.channels, self.rate)
        block_align = self.codec.block_align(self.channels, self.rate)
        if spb == 1:
            return self.data_bytes // block_align
        return min(self.frames, self.data_bytes // block_align * spb)

    def _write_header(self) -> None:
        head = self._header()
        if self._fd is not None and self._header_len == len(head):
            # the file position stays at the end of the data: nothing to seek back to
            view = memoryview(head)
            pos = self._start
            while view.nbytes:
                k = os.pwrite(self._fd, view, pos)
                pos += k
                view = view[k:]
            return
        self._f.seek(self._start)
        self._f.write(head)
        self._header_len = len(head)
        self._f.seek(self._start + self._header_len + self.data_bytes)

    def _append(self, coded) -> None:
        n = len(coded)
        if n == 0:
            return
        if self._header_len + self.data_bytes + n + 1 > _U32:
            raise WavError("WAV file would exceed 4 GiB; start a new file")
        view = memoryview(coded).cast("B")
        while view.nbytes:  # an unbuffered file may take part of it
            k = self._f.write(view)
            k = view.nbytes if k is None else k
            self.data_bytes += k
            view = view[k:]

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("write to a closed WAV writer")
        if self._lent:
            raise ValueError("the WAV writer's file is lent (take_back() first)")

    def lend(self) -> AppendTarget | None:
        """Lend the file to another writer that appends coded bytes and refreshes the
        header itself (the engine's compiled core, for a recording): what it needs to
        know.  Until :meth:`take_back`, this writer neither writes nor closes the file.

        Returns
        -------
        AppendTarget or None
            None when the file is not an unbuffered OS file (e.g. an enciphered one, or
            one opened from a path with buffering): then only this writer writes it.

        Raises
        ------
        ValueError
            After :meth:`close`, when lent already, or while a partial block waits in
            this writer's encoder.
        """
        self._check_open()
        if self._fd is None:
            return None
        if self.frames != self.frames_written:
            raise ValueError("a partial block waits in the encoder: lend before writing")
        head = self._header()
        chunks = len(self._fmt_chunk)
        fields = [HeaderField(4, 4, "bytes", len(head) - 8)]  # RIFF size
        if self.codec.has_fact:
            fields.append(HeaderField(12 + chunks + 8, 4, "frames", 0))
        fields.append(HeaderField(len(head) - 4, 4, "bytes", 0))  # data size
        self._lent = True
        return AppendTarget(
            fd=self._fd,
            data_at=self._start + self._header_len + self.data_bytes,
            header_at=self._start,
            header=head,
            fields=tuple(fields),
            block_align=self.codec.block_align(self.channels, self.rate),
            frames_per_block=self.codec.samples_per_block(self.channels, self.rate),
        )

    @property
    def lent(self) -> bool:
        """Whether the file is lent (:meth:`lend`) and not yet taken back."""
        return self._lent

    def take_back(self, nbytes: int, frames: int) -> None:
        """The file is back from :meth:`lend`: the other writer appended ``nbytes``
        coded bytes to the data, and the stream has ``frames`` frames (as in
        :meth:`write_coded`).  This writer's counts, :meth:`close`, :meth:`sync` and
        :meth:`info` go on from there.

        Raises
        ------
        ValueError
            The file is not lent, or a count out of range.
        TypeError
            A count that is not an int.
        """
        if not self._lent:
            raise ValueError("the WAV writer's file is not lent")
        nbytes = integer(nbytes, "nbytes", 0, _U32)
        frames = integer(frames, "frames", 0, MAX_SAMPLES)
        self._lent = False
        self.data_bytes += nbytes
        self.frames = frames
        self._f.seek(self._start + self._header_len + self.data_bytes)

    def write(self, pcm: Any) -> int:
        """Append samples.

        Parameters
        ----------
        pcm : buffer
            int16 samples: 1-D for mono; ``(frames, channels)`` or interleaved 1-D
            otherwise.

        Returns
        -------
        int
            The number of frames taken.

        Raises
        ------
        ValueError
            After :meth:`close`, for a partial frame, or when the file would pass 4 GiB
            (:class:`WavError`).
        TypeError
            For samples that are not int16.
        """
        self._check_open()
        x = as_int16(pcm, "pcm").reshape(-1)
        if x.size % self.channels:
            raise ValueError(
                f"{x.size} samples is not a whole number of {self.channels}-channel frames"
            )
        self._append(self._encoder.encode(x))
        self.frames += x.size // self.channels
        return x.size // self.channels

    def write_coded(self, coded: Any, *, frames: int | None = None) -> None:
        """Append bytes already coded in this writer's format (whole samples or blocks).

        Parameters
        ----------
        coded : buffer
            Coded bytes, e.g. from the format's encoder.
        frames : int, optional
            The frames of the stream so far, these bytes included, when the coder holds
            some back or pads (an ADPCM block being filled or padded at the end, OKI's
            lookahead and pad nibble): the ``fact`` chunk then counts exactly these.
            Default: the frames of the whole samples and blocks written.

        Raises
        ------
        ValueError
            After :meth:`close`, for a negative ``frames``, or when the file would pass
            4 GiB (:class:`WavError`).
        TypeError
            For ``frames`` that is not an int.
        """
        self._check_open()
        if frames is not None:
            frames = integer(frames, "frames", 0, MAX_SAMPLES)
        self._append(coded)
        self.frames = self.frames_written if frames is None else frames

    def sync(self, fsync: bool = False) -> None:
        """Make the file on disk a valid WAV of everything written so far.

        Parameters
        ----------
        fsync : bool
            Also force it to disk (a file opened from a path only).
        """
        if self._lent:
            raise ValueError("the WAV writer's file is lent (take_back() first)")
        self._write_header()
        self._f.flush()
        if fsync and self._own:
            os.fsync(self._f.fileno())

    def close(self, fsync: bool = False) -> None:
        """Flush the last block and finish the header; closes the file if it was opened
        from a path.  A second call does nothing.

        Parameters
        ----------
        fsync : bool
            Force the file to disk before closing it (a file opened from a path only).
        """
        if self.closed:
            return
        if self._lent:
            raise ValueError("the WAV writer's file is lent (take_back() first)")
        try:
            self._append(self._encoder.flush())
            if self.data_bytes & 1:
                self._f.write(b"\0")
            self.closed = True
            self._write_header()
            self._f.flush()
            if fsync and self._own:
                os.fsync(self._f.fileno())
        finally:
            self.closed = True
            if self._own:
                self._f.close()

    @property
    def duration(self) -> float:
        """Seconds of audio handed to :meth:`write`."""
        return self.frames / self.rate

    def info(self) -> Info:
        """The :class:`Info` of what is in the file now (after :meth:`close`: what
        :func:`info` reads back from it)."""
        c, frames = self.codec, self.frames_written
        return Info(
            format=self.format,
            rate=self.rate,
            channels=self.channels,
            frames=frames,
            duration=frames / self.rate,
            format_tag=c.tag,
            bits_per_sample=c.bits,
            block_align=c.block_align(self.channels, self.rate),
            data_offset=self._header_len,
            data_bytes=self.data_bytes,
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return (
            f"Writer({self.path!r}, fmt={self.format!r}, rate={self.rate}, "
            f"channels={self.channels}, frames={self.frames})"
        )


def write(path: PathOrFile, pcm: Any, fmt: str = "alaw", rate: int = 8000) -> Info:
    """Write int16 samples to a WAV file in one of the registry's formats.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        As for :class:`Writer`.
    pcm : buffer
        int16 samples: 1-D (mono) or ``(frames, channels)``.
    fmt : str
        A format name or alias (:data:`recorder.codecs.REGISTRY`).
    rate : int
        Sample rate in Hz.

    Returns
    -------
    Info
        What the file holds: what :func:`info` reads back from it.

    Raises
    ------
    ValueError, TypeError
        As for :class:`Writer`, and for ``pcm`` of more than two dimensions.

    Examples
    --------
    >>> import io, numpy as np
    >>> from recorder import wav
    >>> wav.write(io.BytesIO(), np.zeros((400, 2), np.int16), fmt="alaw").channels
    2
    """
    x = as_int16(pcm, "pcm")
    if x.ndim > 2:
        raise ValueError(f"pcm must be 1-D or (frames, channels), got {x.ndim} dimensions")
    channels = x.shape[1] if x.ndim == 2 else 1
    with Writer(path, fmt, rate, channels) as w:
        w.write(x)
    return w.info()


# --- repair --------------------------------------------------------------------------------

# Chunks that real files put after the audio.  After a stale data size, the first run of
# well-formed chunks that starts with one of these and fills the rest of the file marks
# where the audio ends; such a run never holds a header chunk.
_TRAILING_IDS = (
    b"LIST",
    b"id3 ",
    b"ID3 ",
    b"bext",
    b"cue ",
    b"smpl",
    b"inst",
    b"acid",
    b"JUNK",
    b"junk",
    b"PAD ",
    b"iXML",
    b"_PMX",
    b"DISP",
    b"cart",
    b"afsp",
    b"umid",
    b"plst",
    b"labl",
    b"note",
    b"ltxt",
    b"fact",
    b"slnt",
    b"minf",
    b"elm1",
    b"regn",
    b"ovwf",
)
_HEADER_IDS = frozenset((b"fmt ", b"data", b"ds64"))
_SCAN = 1 << 20
_TRAILING_WORDS = np.frombuffer(b"".join(_TRAILING_IDS), "<u4")
_FIRST_TWO = np.zeros((2, 256), bool)  # bytes that start the ids, second bytes
_FIRST_TWO[0, [cid[0] for cid in _TRAILING_IDS]] = True
_FIRST_TWO[1, [cid[1] for cid in _TRAILING_IDS]] = True


def _id_offsets(block: bytes, limit: int) -> list[int]:
    """Offsets below ``limit`` in ``block`` where one of ``_TRAILING_IDS`` starts, in order
    (vectorized: a two-byte filter, then whole ids compared)."""
    a = np.frombuffer(block, np.uint8)
    n = min(limit, a.size - 3)
    if n <= 0:
        return []
    at = np.flatnonzero(_FIRST_TWO[0, a[:n]] & _FIRST_TWO[1, a[1 : n + 1]])
    words = (
        a[at].astype(np.uint32)
        | a[at + 1].astype(np.uint32) << 8
        | a[at + 2].astype(np.uint32) << 16
        | a[at + 3].astype(np.uint32) << 24
    )
    return at[np.isin(words, _TRAILING_WORDS)].tolist()


@dataclass(frozen=True)
class Repaired(Info):
    """What :func:`repair` did: the file's :class:`Info` after it, plus three fields.

    Attributes
    ----------
    changed : bool
        False: the file was left byte-identical.
    note : str
        What was done, or why nothing was.
    before : Info or None
        What :func:`info` gave before (None when the file was unreadable).
    """

    changed: bool = False
    note: str = ""
    before: Info | None = None


class _CannotRepair(Exception):
    """The file holds something repair does not fully understand (the message says what)."""


def _chunk_head(f, pos: int, size: int):
    """``(id, size)`` of the chunk header at ``pos``; None when fewer than 8 bytes remain
    or the id is not printable ASCII."""
    if pos + 8 > size:
        return None
    f.seek(pos)
    cid, csize = struct.unpack("<4sI", f.read(8))
    return (cid, csize) if all(32 <= b < 127 for b in cid) else None


def _chunks_fill(f, pos: int, size: int) -> bool:
    """True when well-formed chunks (no fmt/data/ds64 among them) run exactly from ``pos``
    to the end of the file (the last one may lack its pad byte)."""
    while pos + 8 <= size:
        head = _chunk_head(f, pos, size)
        if head is None or head[0] in _HEADER_IDS or pos + 8 + head[1] > size:
            return False
        pos += 8 + head[1] + (head[1] & 1)
    return pos in (size, size + 1)


def _trailing_chunks(f, start: int, size: int) -> int | None:
    """Offset of the first run of trailing chunks (see ``_TRAILING_IDS``) at or after
    ``start`` that fills the file to its end; None when there is none."""
    pos = start
    while pos < size:
        f.seek(pos)
        block = f.read(_SCAN + 3)
        for at in _id_offsets(block, _SCAN):
            if _chunks_fill(f, pos + at, size):
                return pos + at
        pos += _SCAN
    return None


_CUT_CHUNK_MAX = 1 << 20  # a metadata chunk cut by the end of the file is at most this big


def _cut_trailing_chunk(f, start: int, size: int) -> int | None:
    """Offset of a metadata chunk (one of ``_TRAILING_IDS``, at most 1 MiB) at or after
    ``start`` whose body the end of the file cuts: a file cut inside a LIST after its
    audio.  Only the last ``_CUT_CHUNK_MAX`` bytes are searched, so audio that happens to
    spell an id and a size almost never looks like one.  None when there is none."""
    pos = max(start, size - _CUT_CHUNK_MAX - 8)
    f.seek(pos)
    block = f.read(size - pos)
    for at in _id_offsets(block, len(block)):
        if pos + at + 8 > size:  # the id, then the end within its size field
            return pos + at
        head = _chunk_head(f, pos + at, size)
        if head is not None and pos + at + 8 + head[1] > size and head[1] <= _CUT_CHUNK_MAX:
            return pos + at
    return None


def _looks_like_a_chunk(f, pos: int, size: int) -> bytes | None:
    """The id of what looks like the start of a chunk at ``pos`` (a known id, even with
    its size cut off, or a printable id whose size fits in the file), else None."""
    f.seek(pos)
    cid = f.read(4)
    if cid in _TRAILING_IDS or cid in _HEADER_IDS:
        return cid
    head = _chunk_head(f, pos, size)
    return cid if head is not None and pos + 8 + head[1] <= size else None


def _describe(n: int) -> str:
    return f"0x{n:08X}" if n in _STREAMING_SIZES else str(n)


def _repair_plan(f, size: int):
    """What repair would write: ``(writes, new_size, note)``, ``writes`` a list of
    ``(offset, uint32)`` size fields.  Raises _CannotRepair for anything it does not
    fully understand."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12:
        raise _CannotRepair(f"file too short for a RIFF/WAVE header ({len(head)} bytes)")
    riff, riff_size, wave = struct.unpack("<4sI4s", head)
    if riff == b"RF64":
        raise _CannotRepair("RF64 files are not repaired")
    if riff != b"RIFF" or wave != b"WAVE":
        raise _CannotRepair(f"not a WAV file (starts with {head[:4]!r}, type {head[8:12]!r})")
    fmt = fact = fact_at = None
    pos = 12
    while True:  # the chunks before the data
        head = _chunk_head(f, pos, size)
        if head is None:
            raise _CannotRepair(
                "no data chunk" if pos + 8 > size else f"unreadable chunk header at byte {pos}"
            )
        cid, csize = head
        body = pos + 8
        if cid == b"data":
            break
        if body + csize > size:
            raise _CannotRepair(
                f"{cid!r} chunk at byte {pos} is truncated and no data chunk precedes it"
            )
        if cid == b"fmt ":
            if fmt is not None:
                raise _CannotRepair("file has two fmt chunks")
            if csize > 4096:
                raise _CannotRepair(f"fmt chunk of {csize} bytes is implausibly large")
            try:
                fmt = _parse_fmt(f.read(csize))
            except WavError as e:
                raise _CannotRepair(str(e)) from None
        elif cid == b"fact" and csize >= 4:
            fact_at, fact = body, struct.unpack("<I", f.read(4))[0]
        pos = body + csize + (csize & 1)
    if fmt is None:
        raise _CannotRepair("the data chunk comes before the fmt chunk")
    try:
        codec = _codec_for(fmt)
    except WavError as e:
        raise _CannotRepair(str(e)) from None

    declared, data_at = csize, body
    end = data_at + declared
    runs_from: int | None = data_at  # where the audio may run on from
    if declared not in _STREAMING_SIZES and declared <= size - data_at:
        # one byte after odd-sized data at the end of the file: the pad byte when the
        # RIFF size counts it; else audio written after the last header refresh
        stale_pad = declared & 1 and end + 1 == size and riff_size + 8 < size
        if not stale_pad and (
            _chunks_fill(f, end + (declared & 1), size)
            or (declared & 1 and _chunks_fill(f, end, size))
        ):
            runs_from = None  # a whole data chunk, last or followed by chunks
        else:
            cid = _looks_like_a_chunk(f, end + (declared & 1), size)
            if cid is not None:
                raise _CannotRepair(f"the {cid!r} chunk after the data is malformed or truncated")
            runs_from = end  # a stale size: more audio follows
    if runs_from is None:
        nbytes, last = declared, end + (declared & 1) >= size
    else:
        chunks_at = _trailing_chunks(f, data_at, size)
        if chunks_at is not None and chunks_at < runs_from:
            raise _CannotRepair(
                f"the data size ({_describe(declared)}) runs over a chunk at byte {chunks_at}"
            )
        if chunks_at is None:
            cut = _cut_trailing_chunk(f, runs_from, size)
            if cut is not None:
                raise _CannotRepair(
                    f"the chunk at byte {cut} after the audio is cut short by "
                    "the end of the file"
                )
        last = chunks_at is None
        nbytes = (size if chunks_at is None else chunks_at) - data_at
    keep = codec.whole_bytes(nbytes, fmt)
    if keep != nbytes and not last:
        raise _CannotRepair(
            f"the data chunk ({nbytes} bytes) ends inside a frame or block and other chunks "
            "follow it: they would have to move"
        )
    new_size = data_at + keep + (keep & 1) if last else size
    writes, notes = [], []
    if keep != declared:
        writes.append((data_at - 4, min(keep, _U32)))
        notes.append(f"data size {_describe(declared)} -> {keep} bytes")
        if fact_at is not None:
            # the fact chunk of a crashed file counts the frames of the last header
            # refresh; after a crash every frame present is audio (no padding)
            frames = codec.frames(keep, fmt)
            if frames != fact:
                writes.append((fact_at, min(frames, _U32)))
                notes.append(f"fact {fact} -> {frames} frames")
    if new_size < size:
        notes.append(f"{size - new_size} trailing byte(s) of a partial frame cut")
    elif new_size > size:
        notes.append("pad byte added")
    if min(new_size - 8, _U32) != riff_size:
        writes.append((4, min(new_size - 8, _U32)))
        notes.append(f"RIFF size {riff_size} -> {new_size - 8}")
    if (writes or new_size != size) and codec.validates_data:
        f.seek(data_at)
        try:
            codec.check_data(np.frombuffer(f.read(keep), np.uint8), fmt)
        except WavError as e:
            raise _CannotRepair(f"the audio itself is damaged: {e}") from None
    return writes, new_size, ", ".join(notes)


def _open_for_repair(path_or_file):
    """``(file, owned)``: a binary file object that can be read, written, seeked and
    truncated (used as is), or a path opened ``r+b``."""
    f, owned = open_binary(path_or_file, "r+b", WavError)
    if not owned:
        for what in ("write", "seek", "tell", "truncate"):
            if not callable(getattr(f, what, None)):
                raise TypeError(
                    f"repair needs a file object that can {what}, got {type(f).__name__}"
                )
        for what in ("readable", "writable", "seekable"):
            check = getattr(f, what, None)
            if check is not None and not check():
                raise ValueError(
                    f"repair needs a {what} file object ({type(f).__name__} is not {what})"
                )
    return f, owned


def repair(path_or_file: PathOrFile) -> Repaired:
    """Make whole, in place, a WAV file that a crash cut short or left with a stale header.

    The data chunk is set to every whole frame (or ADPCM block, or the whole 4-byte groups
    of a last IMA block) present, the fact and RIFF sizes to match, and a trailing partial
    frame is cut off.  Only size fields are ever rewritten: no chunk is moved or dropped,
    the audio is never extended over a chunk that follows it (LIST, ...), and a file that
    repair does not fully understand (fmt after the data, RF64, malformed chunks) or
    cannot improve is left byte-identical.  ``read`` of the result gives the same audio
    as before the repair, or more of it.

    Parameters
    ----------
    path_or_file : str, os.PathLike or binary file object
        A path, or a file object with ``read``, ``write``, ``seek``, ``tell`` and
        ``truncate`` (``io.BytesIO``, a file opened ``r+b``; ``flush`` is called when it
        has one), left open.

    Returns
    -------
    Repaired
        An :class:`Info` of the file after, plus ``changed``, ``note`` and ``before``.

    Raises
    ------
    WavError
        Naming the problem, when the file is unreadable and repair cannot make it
        readable (the file is then left byte-identical).
    TypeError, ValueError
        For bytes, a text file, or a file object that cannot be read, written, seeked
        and truncated.

    Examples
    --------
    >>> import io, numpy as np
    >>> from recorder import wav
    >>> buf = io.BytesIO()
    >>> w = wav.Writer(buf, "s16bit")
    >>> _ = w.write(np.ones(1000, np.int16))
    >>> w.sync()                    # a header for 1000 frames ...
    >>> _ = w.write(np.ones(500, np.int16))
    >>> wav.info(buf).frames        # ... then a crash after 500 more: a stale header
    1000
    >>> r = wav.repair(buf)
    >>> r.changed, r.frames
    (True, 1500)
    """
    f, owned = _open_for_repair(path_or_file)
    with f if owned else contextlib.nullcontext(f):
        f.seek(0, io.SEEK_END)
        size = f.tell()
        try:
            before, error = _info(_check_readable(f, _parse(f, size))), None
        except WavError as e:
            before, error = None, e
        try:
            writes, new_size, note = _repair_plan(f, size)
        except _CannotRepair as e:
            if before is None:
                raise WavError(
                    f"{error}; cannot repair: {e}" if str(error) != str(e) else str(e)
                ) from None
            return _repaired(before, False, f"nothing to repair ({e})", before)
        if not writes and new_size == size:
            if before is None:
                raise WavError(f"{error}; repair changes nothing") from None
            return _repaired(before, False, "nothing to repair", before)
        if new_size < size:
            f.truncate(new_size)
        elif new_size > size:
            f.seek(size)
            f.write(b"\0" * (new_size - size))
        for at, value in writes:
            f.seek(at)
            f.write(struct.pack("<I", value))
        if callable(getattr(f, "flush", None)):
            f.flush()
        return _repaired(_info(_parse(f, new_size)), True, note, before)


def recover(
    path: str | os.PathLike[str], cipher: FileCipher, dst: str | os.PathLike[str] | None = None
):
    """Repair an encrypted recording and write it encrypted with ``cipher``, with no
    plaintext on the disk (what ``recorder repair --key ...`` does).

    The WAV header is repaired (:func:`repair`) in a sealed view, then the
    result, encrypted with ``cipher``, replaces ``dst`` atomically.

    Parameters
    ----------
    path : path
        A :class:`recorder.cipher.SealedPart` left by a crash (opened with ``cipher.key``), or a final
        file encrypted with ``cipher`` (for example one cut short).
    cipher : recorder.types.FileCipher
        :class:`recorder.AesCbcCipher` or :class:`recorder.AesGcmCipher`.
    dst : path, optional
        Where the recovered file goes; default: ``path`` itself.

    Returns
    -------
    tuple of recorder.wav.Info
        ``(before, after)``: the recording's info before and after the repair.

    Raises
    ------
    CipherError
        A wrong key, a changed file, or decrypted bytes that are not a WAV file (then
        nothing is written).
    TypeError
        ``cipher`` is not a cipher.
    OSError
        ``path`` cannot be read, or ``dst``'s folder cannot be written.
    """
    from .cipher import CipherError, SealedPart, check_cipher, is_sealed_part, publish_sealed

    check_cipher(cipher, ("encrypt_file", "decrypt_file"))
    path = os.fspath(path)
    dst = path if dst is None else os.fspath(dst)
    folder, name = os.path.split(os.path.abspath(dst))
    scratch = None
    try:
        if is_sealed_part(path):
            view = SealedPart.open(path, cipher, writable=True)
        else:  # decrypted into a sealed scratch part, never into plaintext
            fd, scratch = tempfile.mkstemp(prefix=f".{name}.", suffix=".repair.part", dir=folder)
            view = SealedPart.create(fd, cipher)
        with view:
            if scratch is not None:
                with open(path, "rb") as src:
                    cipher.decrypt_file(src, view)
            try:
                before = info(view)
                after = repair(view)
            except WavError:
                failed = True
            else:
                failed = False
            if failed:
                raise CipherError()
            fd, out = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            try:
                with open(fd, "wb") as f:
                    publish_sealed(view, f, cipher)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(out, dst)
            except BaseException:
                os.unlink(out)
                raise
    finally:
        if scratch is not None:
            os.unlink(scratch)
    return before, after


def _check_readable(f, layout: _Layout) -> _Layout:
    """``layout`` when :func:`read` decodes the file, else WavError (without decoding)."""
    if layout.codec.validates_data:
        f.seek(layout.data_offset)
        layout.codec.check_data(np.frombuffer(f.read(layout.data_bytes), np.uint8), layout.fmt)
    return layout


def _repaired(after: Info, changed: bool, note: str, before: Info | None) -> Repaired:
    fields = {k: getattr(after, k) for k in Info.__dataclass_fields__}
    return Repaired(**fields, changed=changed, note=note, before=before)
