"""IMA ADPCM and OKI ADPCM in WAV files and raw .vox files: layout, streaming writes,
exact sizes, the reference coder, and malformed input (always WavError, never a crash)."""

from __future__ import annotations

import io
import struct

import adpcm_ref as ref
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from speech import speechlike
from wavmaker import chunk, fmt_body, riff

from recorder import adpcm, vox, wav
from recorder.wav import WavError

X = speechlike(5, 1.5)
NOISE = (np.random.default_rng(3).standard_normal(5000) * 5000).astype(np.int16)


def wav_bytes(pcm, fmt, rate=8000, chunks=None):
    buf = io.BytesIO()
    x = np.asarray(pcm)
    channels = x.shape[1] if x.ndim == 2 else 1
    with wav.Writer(buf, fmt, rate, channels) as w:
        flat = x.reshape(-1)
        pos = 0
        for n in chunks or []:
            w.write(flat[pos : pos + n * channels])
            pos += n * channels
        w.write(flat[pos:])
    return buf.getvalue()


def fields(blob):
    fmt_at = blob.find(b"fmt ")
    tag, ch, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", blob, fmt_at + 8)
    size = struct.unpack_from("<I", blob, fmt_at + 4)[0]
    extra = blob[fmt_at + 8 + 16 : fmt_at + 8 + size]
    fact_at = blob.find(b"fact")
    fact = struct.unpack_from("<I", blob, fact_at + 8)[0] if fact_at >= 0 else None
    data_at = blob.find(b"data")
    data_size = struct.unpack_from("<I", blob, data_at + 4)[0]
    return {
        "tag": tag,
        "ch": ch,
        "rate": rate,
        "byte_rate": byte_rate,
        "block_align": block_align,
        "bits": bits,
        "extra": extra,
        "fact": fact,
        "data": blob[data_at + 8 : data_at + 8 + data_size],
    }


# --- IMA ADPCM ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rate, channels, block_align, spb",
    [
        (8000, 1, 256, 505),
        (6000, 1, 256, 505),
        (11025, 1, 256, 505),
        (16000, 1, 512, 1017),
        (22050, 1, 512, 1017),
        (44100, 1, 1024, 2041),
        (8000, 2, 512, 505),
        (6000, 2, 512, 505),
        (5000, 2, 256, 249),
    ],
)
def test_ima_layout(rate, channels, block_align, spb):
    x = X[: 2000 * channels].reshape(-1, channels) if channels > 1 else X[:2000]
    f = fields(wav_bytes(x, "ima", rate))
    assert (f["tag"], f["ch"], f["rate"], f["bits"], f["block_align"]) == (
        0x11,
        channels,
        rate,
        4,
        block_align,
    )
    assert f["extra"] == struct.pack("<HH", 2, spb)  # cbSize 2, wSamplesPerBlock
    assert f["fact"] == 2000  # the true frame count
    nblocks = -(-2000 // spb)
    assert len(f["data"]) == nblocks * block_align  # the last block padded
    assert f["byte_rate"] == round(rate * block_align / spb)
    codec = wav.WRITE_FORMATS["ima"]
    assert codec.data_bytes(2000, channels, rate) == len(f["data"])
    assert (
        codec.block_align(channels, rate) == block_align
        and codec.samples_per_block(channels, rate) == spb
    )
    assert codec.max_frames(len(f["data"]), channels, rate) == nblocks * spb
    assert codec.max_frames(len(f["data"]) - 1, channels, rate) == (nblocks - 1) * spb


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_ima_matches_the_reference_coder(channels):
    x = X[: 1700 * channels].reshape(-1, channels) if channels > 1 else X[:1700]
    blob = wav_bytes(x, "ima")
    f = fields(blob)
    frames = [tuple(r) for r in x.reshape(-1, channels).tolist()]
    assert f["data"] == ref.ima_wav_encode(frames, channels, f["block_align"])
    y, meta = wav.read(io.BytesIO(blob))
    want = np.array(ref.ima_wav_decode(f["data"], channels, f["block_align"]))[:1700]
    np.testing.assert_array_equal(y.reshape(-1, channels), want)
    assert meta.frames == 1700 and meta.format == "ima"


def test_ima_matches_the_reference_coder_at_every_simd_level():
    """The search encoder's AVX2 path for IMA (the 8 own costs at once, all 8 magnitudes'
    tails at once when a challenger passes) and its portable one write the reference's
    blocks: speech, loud noise that clips, full-scale square waves (every magnitude beyond
    the clamp gives the same predictor), a ramp through every step size and silence."""
    import recorder

    n = np.arange(1200)
    square = np.where(n % 10 < 5, 32767, -32768)
    fast = np.where(n[:600] % 3 == 0, 32767, -32768)
    loud = (np.random.default_rng(5).standard_normal(1200) * 20000).clip(-32768, 32767)
    ramp = np.linspace(-32768, 32767, 1200)
    x = np.concatenate([X[:1200], loud, fast, square, ramp, np.zeros(600)]).astype(np.int16)
    want = ref.ima_wav_encode([(int(v),) for v in x], 1, 256)
    try:
        for level in recorder.simd.LEVELS:
            name = recorder.set_simd_level(level)
            assert fields(wav_bytes(x, "ima"))["data"] == want, name
    finally:
        recorder.set_simd_level(None)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["ima", "oki"]),
    st.sampled_from([1, 2]),
    st.lists(st.integers(0, 700), max_size=10),
)
def test_streaming_writer_equals_one_shot(fmt, channels, chunks):
    x = NOISE[: 2400 // channels * channels].reshape(-1, channels) if channels > 1 else NOISE[:2401]
    assert wav_bytes(x, fmt, chunks=chunks) == wav_bytes(x, fmt)


@pytest.mark.parametrize("fmt", ["ima", "oki"])
def test_recorder_writes_20_ms_chunks(tmp_path, fmt):
    """What the FileRecorder does: 160-sample writes, sync() now and then; the file equals
    a one-shot write and data_bytes() predicts its size exactly."""
    path = tmp_path / f"rec-{fmt}.wav"
    codec = wav.WRITE_FORMATS[fmt]
    with wav.Writer(path, fmt, 8000) as w:
        for k in range(0, X.size - 160, 160):
            w.write(X[k : k + 160])
            if k % 8000 == 0:
                w.sync()
                assert wav.info(path).frames == w.frames_written
                assert w.data_bytes <= codec.data_bytes(w.frames, 1)
        w.write(X[k + 160 :])
    assert path.read_bytes() == wav_bytes(X, fmt)
    meta = wav.info(path)
    assert meta.frames == X.size and meta.data_bytes == codec.data_bytes(X.size, 1)


def test_ima_reader_takes_other_block_sizes_and_a_short_last_block():
    frames = [(int(v),) for v in X[:3000]]
    for block_align in (36, 260, 2048):
        data = ref.ima_wav_encode(frames, 1, block_align)
        spb = 2 * (block_align - 4) + 1
        blob = riff(
            chunk(b"fmt ", fmt_body(0x11, 1, 8000, 4, block_align, struct.pack("<H", spb))),
            chunk(b"data", data),
        )
        y, meta = wav.read(io.BytesIO(blob))
        np.testing.assert_array_equal(y, np.array(ref.ima_wav_decode(data, 1, block_align))[:, 0])
        # a short last block of whole 4-byte groups, as some writers leave it
        short = data[: len(data) - block_align + 4 + 8]
        blob = riff(
            chunk(b"fmt ", fmt_body(0x11, 1, 8000, 4, block_align, struct.pack("<H", spb))),
            chunk(b"data", short),
        )
        y, meta = wav.read(io.BytesIO(blob))
        assert meta.frames == (len(data) // block_align - 1) * spb + 1 + 16
        np.testing.assert_array_equal(y, np.array(ref.ima_wav_decode(short, 1, block_align))[:, 0])


def test_fact_chunk_trims_padding_only():
    blob = bytearray(wav_bytes(X[:1000], "ima"))  # 2 blocks of 505, fact 1000
    assert wav.info(io.BytesIO(bytes(blob))).frames == 1000
    at = blob.find(b"fact") + 8
    for fact, frames in ((1010, 1010), (505, 1010), (506, 506), (4000, 1010), (0, 1010)):
        blob[at : at + 4] = struct.pack("<I", fact)
        assert wav.info(io.BytesIO(bytes(blob))).frames == frames


# --- malformed IMA files ----------------------------------------------------------------------


def ima_file(data=None, block_align=256, spb=505, bits=4, channels=1, extra=None):
    data = (
        ref.ima_wav_encode([(int(v),) * channels for v in X[:2020]], channels, block_align)
        if data is None
        else data
    )
    ext = struct.pack("<H", spb) if extra is None else extra
    return riff(
        chunk(b"fmt ", fmt_body(0x11, channels, 8000, bits, block_align, ext)), chunk(b"data", data)
    )


def test_ima_bad_files_raise_wav_error():
    good = ref.ima_wav_encode([(int(v),) for v in X[:2020]], 1, 256)
    cases = {
        "truncated block": ima_file(good[:-101]),
        "truncated header": ima_file(good[: 256 * 3 + 2]),
        "step index 89": ima_file(good[:256] + good[256:258] + bytes([89, 0]) + good[260:]),
        "reserved byte": ima_file(good[: 2 * 256 + 3] + b"\x01" + good[2 * 256 + 4 :]),
        "disagrees with samples per block": ima_file(spb=504),
        "whole 4-byte groups": ima_file(good, block_align=258, spb=509),
        "3 bits": ima_file(bits=3),
    }
    for what, blob in cases.items():
        with pytest.raises(WavError) as e:
            wav.read(io.BytesIO(blob))
        msg = str(e.value)
        assert {
            "truncated block": "truncated",
            "truncated header": "truncated",
            "step index 89": "step index 89",
            "reserved byte": "reserved",
            "disagrees with samples per block": "disagrees",
            "whole 4-byte groups": "groups",
            "3 bits": "3 bits",
        }[what] in msg, (what, msg)


def test_ima_errors_name_the_block():
    good = bytearray(ref.ima_wav_encode([(int(v),) for v in X[:2020]], 1, 256))
    good[256 * 2 + 2] = 200
    with pytest.raises(WavError, match="block 2, channel 0: step index 200"):
        wav.read(io.BytesIO(ima_file(bytes(good))))


def test_repair_cuts_a_crashed_ima_file_to_whole_groups(tmp_path):
    path = tmp_path / "crash.wav"
    w = wav.Writer(path, "ima", 8000)
    w.write(X[:3000])
    w.sync()
    w.write(X[3000:6000])
    w._f.flush()  # the process dies: no sync, no close
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])  # and the last block is cut
    meta = wav.repair(path)
    blocks, rest = divmod(len(raw) - 100 - meta.data_offset, 256)
    assert meta.changed and rest > 4
    # whole blocks, then the header and every whole 4-byte group of the cut block
    assert meta.frames == blocks * 505 + 1 + (rest - 4) // 4 * 8
    assert path.stat().st_size == meta.data_offset + blocks * 256 + 4 + (rest - 4) // 4 * 4
    y, _ = wav.read(path)
    np.testing.assert_array_equal(
        y, wav.read(io.BytesIO(wav_bytes(X[:6000], "ima")))[0][: meta.frames]
    )
    w.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["ima", "oki"]),
    st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=8),
    st.integers(0, 600),
)
def test_fuzzed_adpcm_files_never_crash(fmt, edits, cut):
    blob = bytearray(wav_bytes(NOISE[:1500], fmt))
    for pos, val in edits:
        if pos < len(blob):
            blob[pos] = val
    blob = bytes(blob[: len(blob) - cut])
    try:
        y, meta = wav.read(io.BytesIO(blob))
    except WavError:
        return
    assert y.dtype == np.int16 and y.size == meta.frames * meta.channels
    assert y.size <= 4 * len(blob) + 64


# --- OKI ------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels, n", [(1, 3001), (1, 3000), (2, 1500)])
def test_oki_layout_and_roundtrip(channels, n):
    x = NOISE[: n * channels].reshape(-1, channels) if channels > 1 else NOISE[:n]
    blob = wav_bytes(x, "oki", 6000)
    f = fields(blob)
    assert (f["tag"], f["ch"], f["rate"], f["bits"], f["block_align"]) == (
        0x10,
        channels,
        6000,
        4,
        1,
    )
    assert f["byte_rate"] == 6000 * channels // 2 and f["fact"] == n
    assert (
        len(f["data"])
        == wav.WRITE_FORMATS["oki"].data_bytes(n, channels)
        == (n * channels + 1) // 2
    )
    y, meta = wav.read(io.BytesIO(blob))
    assert meta.format == "oki" and meta.frames == n and meta.rate == 6000
    if channels == 1:
        np.testing.assert_array_equal(y, adpcm.oki_decode(adpcm.oki_encode(x))[:n])
        assert f["data"] == adpcm.oki_encode(x).tobytes()
    else:
        for c in range(2):
            codes, _ = ref.oki_encode_codes(x[:, c].tolist())
            got = [(b >> 4) if c == 0 else (b & 15) for b in f["data"]]
            assert got == codes
            np.testing.assert_array_equal(y[:, c], ref.oki_decode_codes(codes)[0])
    # the Dialogic tag reads the same
    blob2 = bytearray(blob)
    at = blob2.find(b"fmt ") + 8
    blob2[at : at + 2] = struct.pack("<H", 0x17)
    y2, meta2 = wav.read(io.BytesIO(bytes(blob2)))
    np.testing.assert_array_equal(y2, y)
    assert meta2.format == "oki" and meta2.format_tag == 0x17


def test_oki_bad_files():
    data = adpcm.oki_encode(NOISE[:400]).tobytes()
    with pytest.raises(WavError, match="3 channels"):
        wav.read(
            io.BytesIO(riff(chunk(b"fmt ", fmt_body(0x10, 3, 8000, 4, 1)), chunk(b"data", data)))
        )
    with pytest.raises(WavError, match="8 bits"):
        wav.read(
            io.BytesIO(riff(chunk(b"fmt ", fmt_body(0x17, 1, 8000, 8, 1)), chunk(b"data", data)))
        )
    with pytest.raises(ValueError, match="mono or stereo"):
        wav.Writer(io.BytesIO(), "oki", 8000, channels=3)


# --- raw .vox ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["oki", "ima"])
def test_vox_files(tmp_path, fmt):
    path = tmp_path / f"x.{fmt}"
    assert vox.write(path, NOISE[:1001], fmt) == 501
    enc = adpcm.oki_encode if fmt == "oki" else adpcm.ima_encode
    assert path.read_bytes() == enc(NOISE[:1001]).tobytes()
    y = vox.read(path, fmt)
    assert y.size == 1002  # the pad nibble decodes as one more sample
    with vox.Writer(tmp_path / "s.vox", fmt) as w:
        for k in range(0, 1001, 160):
            w.write(NOISE[k : min(k + 160, 1001)])
    assert (tmp_path / "s.vox").read_bytes() == path.read_bytes()
    assert w.frames == 1001 and w.bytes_written == 501
    with pytest.raises(ValueError, match="'oki' or 'ima'"):
        vox.read(path, "alaw")
    with pytest.raises(ValueError, match="mono"):
        vox.write(path, NOISE[:10].reshape(5, 2))
