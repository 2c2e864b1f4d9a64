"""Our WAV files decoded by real tools (ffmpeg, sox, libsndfile via soundfile) give
exactly the samples our decoder gives; files those tools write are read by ours exactly."""

from __future__ import annotations

import numpy as np
import pytest
from tools import ffmpeg_decode, ffmpeg_encode, sox_decode, sox_encode

from recorder import wav

FORMATS = ["alaw", "ulaw", "s16bit", "u8bit"]
RNG = np.random.default_rng(7)
NOISE = (RNG.standard_normal(12000) * 7000).clip(-32768, 32767).astype(np.int16)
FULL = np.arange(-32768, 32768, 3, dtype=np.int16)  # every region of both laws
SIGNAL = np.concatenate([NOISE, FULL])


@pytest.fixture(params=FORMATS)
def our_file(request, tmp_path):
    path = tmp_path / f"ours-{request.param}.wav"
    wav.write(path, SIGNAL[:-1], fmt=request.param, rate=8000)  # odd length: padded chunk
    return path, request.param, wav.read(path)[0]


def test_ffmpeg_decodes_our_files_exactly(ffmpeg, our_file):
    path, fmt, ours = our_file
    np.testing.assert_array_equal(ffmpeg_decode(path), ours)


def test_sox_decodes_our_files_exactly(sox, our_file):
    path, fmt, ours = our_file
    np.testing.assert_array_equal(sox_decode(path), ours)


def test_soundfile_decodes_our_files_exactly(soundfile, our_file):
    path, fmt, ours = our_file
    data, rate = soundfile.read(str(path), dtype="int16")
    assert rate == 8000
    np.testing.assert_array_equal(data, ours)


def test_stereo_files_agree_with_ffmpeg(ffmpeg, tmp_path):
    x = SIGNAL[:20000].reshape(-1, 2)
    for fmt in FORMATS:
        path = tmp_path / f"st-{fmt}.wav"
        wav.write(path, x, fmt=fmt, rate=11025)
        ours, meta = wav.read(path)
        assert meta.channels == 2 and ours.shape == (10000, 2)
        np.testing.assert_array_equal(ffmpeg_decode(path, 2), ours)


FFMPEG_CODECS = {
    "alaw": "pcm_alaw",
    "ulaw": "pcm_mulaw",
    "s16bit": "pcm_s16le",
    "u8bit": "pcm_u8",
    "pcm24": "pcm_s24le",
    "pcm32": "pcm_s32le",
    "float32": "pcm_f32le",
}


@pytest.mark.parametrize("fmt", sorted(FFMPEG_CODECS))
@pytest.mark.parametrize("channels", [1, 2])
def test_we_read_files_ffmpeg_writes(ffmpeg, tmp_path, fmt, channels):
    path = tmp_path / f"ff-{fmt}.wav"
    ffmpeg_encode(SIGNAL[: 24000 // channels * channels], 8000, path, FFMPEG_CODECS[fmt], channels)
    ours, meta = wav.read(path)
    assert meta.format == fmt and meta.channels == channels and meta.rate == 8000
    np.testing.assert_array_equal(ours, ffmpeg_decode(path, channels))


SOX_ENCODINGS = {
    "alaw": ["-e", "a-law", "-b", "8"],
    "ulaw": ["-e", "u-law", "-b", "8"],
    "s16bit": ["-e", "signed", "-b", "16"],
    "u8bit": ["-e", "unsigned", "-b", "8"],
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_we_read_files_sox_writes(sox, tmp_path, fmt):
    path = tmp_path / f"sox-{fmt}.wav"
    sox_encode(SIGNAL, 8000, path, "-D", *SOX_ENCODINGS[fmt])
    ours, meta = wav.read(path)
    assert meta.format == fmt and meta.frames == SIGNAL.size
    np.testing.assert_array_equal(ours, sox_decode(path))


SF_SUBTYPES = {"alaw": "ALAW", "ulaw": "ULAW", "s16bit": "PCM_16", "u8bit": "PCM_U8"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_we_read_files_soundfile_writes(soundfile, tmp_path, fmt):
    path = tmp_path / f"sf-{fmt}.wav"
    soundfile.write(str(path), SIGNAL, 8000, subtype=SF_SUBTYPES[fmt])
    ours, meta = wav.read(path)
    assert meta.format == fmt
    np.testing.assert_array_equal(ours, soundfile.read(str(path), dtype="int16")[0])
