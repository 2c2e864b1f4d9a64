"""IMA ADPCM (tag 0x0011) and OKI ADPCM (tags 0x0010 / 0x0017) in WAV files.

The format registry (:data:`recorder.codecs.REGISTRY`) holds :data:`IMA` and :data:`OKI`,
so :mod:`recorder.wav` writes ``fmt='ima'`` and ``fmt='oki'`` and reads all three tags.

**IMA ADPCM** (as Microsoft / IMA define it, and as ffmpeg, sox and libsndfile read and
write it): the data is a sequence of blocks of ``block_align`` bytes.  A block starts
with one 4-byte header per channel (int16 LE predictor = the block's first sample,
uint8 step index 0..88, a zero byte), then, per channel in turn, groups of 4 bytes
holding 8 samples, **low nibble first**; so a block holds
``2 * (block_align - 4 * channels) / channels + 1`` frames.  We write block_align 256
when ``rate * channels`` is below 12000, 512 below 23000 and 1024 above (libsndfile's
rule; mono 8000 Hz: 256 bytes, 505 frames), rounded down to whole groups; the fmt chunk
carries cbSize 2 + wSamplesPerBlock, a fact chunk the true frame count, and the last
block is padded by repeating the last frame.  Each block restarts the predictor from
its first sample and carries the step index over from the previous block.  The reader
takes any block_align whose groups are whole and agree with wSamplesPerBlock, a short
last block made of whole groups, and raises :class:`~recorder.wav.WavError` for a block
cut inside a header or group, a step index above 88 or a non-zero reserved byte;
:func:`~recorder.wav.repair` cuts such a file back to its whole blocks and groups (the
rule is :meth:`ImaWav.whole_bytes`, shared with the reader).

**OKI ADPCM** (Dialogic VOX in WAV): written with tag 0x0010 (what ffmpeg reads as
``adpcm_ima_oki``); tags 0x0010 and 0x0017 (Dialogic OKI ADPCM) are read.  The data is
the raw VOX nibble stream, high nibble first; in stereo each byte is one frame (left in
the high nibble), as ffmpeg reads it.  block_align 1, 4 bits per sample, fact chunk; an
odd mono frame count ends in a pad nibble that the fact chunk trims.  Mono and stereo
only (what readers support).  Neither sox nor libsndfile read OKI in WAV; for those
tools use the raw ``.vox`` container (:mod:`recorder.vox`).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from . import adpcm
from ._buffers import as_int16
from ._codecs import adpcm as _adpcm
from ._wavcodec import Fmt, WavCodec, WavError


def _interleaved(pcm: Any, channels: int) -> np.ndarray:
    x = as_int16(pcm, "pcm").reshape(-1)
    if x.size % channels:
        raise ValueError(f"{x.size} samples is not a whole number of {channels}-channel frames")
    return x


class ImaWavEncoder:
    """Streaming WAV IMA ADPCM block encoder: ``encode(pcm)`` returns the whole blocks
    completed so far (a partial block is held back), ``flush()`` the last block padded
    with copies of the last frame.  The bytes never depend on how the input is chunked.

    Parameters
    ----------
    channels : int
        Interleaved channels.
    block_align : int
        Bytes per block (a 4-byte header per channel, then whole 4-byte groups).

    Examples
    --------
    >>> import numpy as np
    >>> from recorder._wav_adpcm import ImaWavEncoder
    >>> enc = ImaWavEncoder(1, 256)            # 505 frames per block
    >>> enc.encode(np.zeros(600, np.int16)).size, enc.flush().size
    (256, 256)
    """

    def __init__(self, channels: int, block_align: int) -> None:
        self.channels = channels
        self.block_align = block_align
        self.samples_per_block = _adpcm.ima_wav_samples_per_block(block_align, channels)
        self._index = np.zeros(channels, np.int32)
        self._held = np.empty(0, np.int16)

    def encode(self, pcm: Any) -> np.ndarray:
        """The whole blocks completed by these interleaved int16 samples (uint8)."""
        x = _interleaved(pcm, self.channels)
        if self._held.size:
            x = np.concatenate([self._held, x])
        per_block = self.samples_per_block * self.channels
        nblocks = x.size // per_block
        out = np.empty(nblocks * self.block_align, np.uint8)
        if nblocks:
            _adpcm.ima_wav_encode(
                x[: nblocks * per_block], self.channels, self.block_align, self._index, out
            )
        self._held = x[nblocks * per_block :].copy()
        return out

    def flush(self) -> np.ndarray:
        """The last, partial block padded with its last frame (empty if none)."""
        if not self._held.size:
            return np.empty(0, np.uint8)
        frames = self._held.reshape(-1, self.channels)
        pad = np.repeat(frames[-1:], self.samples_per_block - frames.shape[0], axis=0)
        self._held = np.empty(0, np.int16)
        return self.encode(np.concatenate([frames, pad]).reshape(-1))

    def reset(self) -> None:
        """Forget the held-back samples and the step indexes."""
        self._index[:] = 0
        self._held = np.empty(0, np.int16)


class ImaWav(WavCodec):
    """IMA ADPCM in WAV (tag 0x0011)."""

    def __init__(self):
        super().__init__("ima", 0x0011, 4, 0, has_fact=True, fmt_extra=b"")

    def block_align(self, channels: int, rate: int = 8000) -> int:
        per = rate * channels
        size = 256 if per < 12000 else 512 if per < 23000 else 1024
        group = 4 * channels
        return max(size // group, 2) * group

    def samples_per_block(self, channels: int, rate: int = 8000) -> int:
        return _adpcm.ima_wav_samples_per_block(self.block_align(channels, rate), channels)

    def extra_for(self, channels: int, rate: int = 8000) -> bytes:
        return struct.pack("<H", self.samples_per_block(channels, rate))

    def encoder(self, channels: int, rate: int) -> ImaWavEncoder:
        return ImaWavEncoder(channels, self.block_align(channels, rate))

    def check(self, fmt: Fmt) -> None:
        ch, ba = fmt.channels, fmt.block_align
        if fmt.bits != 4:
            raise WavError(f"IMA ADPCM with {fmt.bits} bits per sample is not supported (only 4)")
        if ba < 4 * ch or (ba - 4 * ch) % (4 * ch):
            raise WavError(
                f"IMA ADPCM block_align {ba} does not hold {ch} 4-byte header(s) and whole "
                f"4-byte groups per channel"
            )
        spb = _adpcm.ima_wav_samples_per_block(ba, ch)
        if len(fmt.extra) >= 2:
            declared = struct.unpack_from("<H", fmt.extra)[0]
            if declared != spb:
                raise WavError(
                    f"IMA ADPCM block_align {ba} disagrees with samples per block {declared} "
                    f"(a block of {ba} bytes holds {spb} frames of {ch} channel(s))"
                )

    def frames_per_block(self, fmt: Fmt) -> int:
        return _adpcm.ima_wav_samples_per_block(fmt.block_align, fmt.channels)

    def whole_bytes(self, nbytes: int, fmt: Fmt) -> int:
        """Whole blocks, then of a short last block its header(s) and whole groups (a
        last block cut inside its header is dropped)."""
        head = 4 * fmt.channels  # also the size of one group per channel
        rest = nbytes % fmt.block_align
        short = 0 if rest < head else rest - (rest - head) % head
        return nbytes - rest + short

    def frames(self, nbytes: int, fmt: Fmt) -> int:
        return _adpcm.ima_wav_frames(self.whole_bytes(nbytes, fmt), fmt.channels, fmt.block_align)[
            0
        ]

    validates_data = True

    def check_data(self, data: np.ndarray, fmt: Fmt) -> None:
        """A data chunk cut inside a block header or group, or a block header with a step
        index above 88 or a non-zero reserved byte, is an error."""
        try:
            _adpcm.ima_wav_frames(data.size, fmt.channels, fmt.block_align)
        except ValueError as e:
            raise WavError(f"{e} (wav.repair() cuts it back to whole blocks and groups)") from None
        try:
            _adpcm.ima_wav_check_headers(data, fmt.channels, fmt.block_align)
        except ValueError as e:
            raise WavError(str(e)) from None

    def decode(self, data: np.ndarray, fmt: Fmt) -> np.ndarray:
        ch, ba = fmt.channels, fmt.block_align
        self.check_data(data, fmt)
        frames = self.frames(data.size, fmt)
        out = np.empty(frames * ch, np.int16)
        _adpcm.ima_wav_decode(data, ch, ba, out)
        return out


class OkiStereoEncoder:
    """Two OKI streams, one byte per frame (left channel in the high nibble); like
    :class:`recorder.adpcm.OkiEncoder` it holds back two frames of lookahead until the
    next call or ``flush()``.

    Examples
    --------
    >>> import numpy as np
    >>> from recorder._wav_adpcm import OkiStereoEncoder
    >>> enc = OkiStereoEncoder()
    >>> enc.encode(np.zeros((10, 2), np.int16)).size + enc.flush().size
    10
    """

    def __init__(self) -> None:
        self._left = adpcm.OkiEncoder()
        self._right = adpcm.OkiEncoder()

    def _codes(self, enc: Any, x: np.ndarray) -> np.ndarray:
        out = np.empty(max(0, len(enc.lookahead) + x.size - 2), np.uint8)
        enc.encode_codes_into(x, out)
        return out

    def encode(self, pcm: Any) -> np.ndarray:
        """One byte per frame of these stereo samples, but the two held back."""
        x = _interleaved(pcm, 2).reshape(-1, 2)
        left = self._codes(self._left, np.ascontiguousarray(x[:, 0]))
        right = self._codes(self._right, np.ascontiguousarray(x[:, 1]))
        return (left << 4) | right

    def flush(self) -> np.ndarray:
        """The frames held back."""
        left = np.frombuffer(self._left.flush_codes(), np.uint8)
        right = np.frombuffer(self._right.flush_codes(), np.uint8)
        return (left << 4) | right

    def reset(self) -> None:
        """Start both streams afresh."""
        self._left.reset()
        self._right.reset()


class OkiWav(WavCodec):
    """OKI / Dialogic ADPCM in WAV (write 0x0010; read 0x0010 and 0x0017)."""

    def __init__(self):
        super().__init__("oki", 0x0010, 4, 0, has_fact=True, fmt_extra=b"", tags=(0x0010, 0x0017))

    def block_align(self, channels: int, rate: int = 8000) -> int:
        return 1

    def samples_per_block(self, channels: int, rate: int = 8000) -> int:
        return 2 if channels == 1 else 1

    def encoder(self, channels: int, rate: int) -> Any:
        if channels == 1:
            return adpcm.OkiEncoder()
        if channels == 2:
            return OkiStereoEncoder()
        raise ValueError(f"OKI ADPCM WAV files are mono or stereo, not {channels} channels")

    def check(self, fmt: Fmt) -> None:
        if fmt.bits != 4:
            raise WavError(f"OKI ADPCM with {fmt.bits} bits per sample is not supported (only 4)")
        if fmt.channels > 2:
            raise WavError(
                f"OKI ADPCM with {fmt.channels} channels is not supported (mono or stereo)"
            )

    def whole_bytes(self, nbytes: int, fmt: Fmt) -> int:
        """Every byte: one mono frame pair or one stereo frame (block_align is ignored)."""
        return nbytes

    def frames(self, nbytes: int, fmt: Fmt) -> int:
        return nbytes * 2 // fmt.channels

    def frames_per_block(self, fmt: Fmt) -> int:
        return 2 if fmt.channels == 1 else 1

    def decode(self, data: np.ndarray, fmt: Fmt) -> np.ndarray:
        if fmt.channels == 1:
            return adpcm.oki_decode(data)
        out = np.empty(2 * data.size, np.int16)
        _adpcm.oki_decode_stereo(data, np.zeros(4, np.int32), out)
        return out


#: The ADPCM WAV codecs (the registry in :mod:`recorder.codecs` lists them).
IMA = ImaWav()
OKI = OkiWav()
