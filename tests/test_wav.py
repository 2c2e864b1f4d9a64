"""recorder.wav: round trips, header layout, the reader's tolerance of real-world files,
and clear errors (never crashes) on malformed ones."""

from __future__ import annotations

import io
import os
import struct
import wave

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wavmaker import chunk, extensible, fmt_body, riff

from recorder import codecs, wav
from recorder.wav import WavError

SAMPLE_FORMATS = ["alaw", "ulaw", "s16bit", "u8bit"]
RNG = np.random.default_rng(42)
PCM = (RNG.standard_normal(8000 + 37) * 6000).clip(-32768, 32767).astype(np.int16)


def coded_roundtrip(fmt, x):
    enc = {
        "alaw": codecs.alaw_encode,
        "ulaw": codecs.ulaw_encode,
        "s16bit": codecs.s16_encode,
        "u8bit": codecs.u8_encode,
    }[fmt]
    dec = {
        "alaw": codecs.alaw_decode,
        "ulaw": codecs.ulaw_decode,
        "s16bit": codecs.s16_decode,
        "u8bit": codecs.u8_decode,
    }[fmt]
    return dec(enc(x))


@pytest.mark.parametrize("fmt", SAMPLE_FORMATS)
@pytest.mark.parametrize("channels", [1, 2])
def test_roundtrip(tmp_path, fmt, channels):
    x = PCM[: PCM.size // channels * channels].reshape(-1, channels) if channels > 1 else PCM
    path = tmp_path / f"{fmt}.wav"
    meta = wav.write(path, x, fmt=fmt, rate=11025)
    assert (meta.format, meta.rate, meta.channels, meta.frames) == (
        fmt,
        11025,
        channels,
        x.shape[0],
    )
    assert meta.duration == pytest.approx(x.shape[0] / 11025)
    y, info = wav.read(path)
    assert info == meta
    np.testing.assert_array_equal(y, coded_roundtrip(fmt, x))
    assert y.shape == x.shape


@pytest.mark.parametrize("fmt", SAMPLE_FORMATS)
def test_streaming_writer_equals_one_shot(tmp_path, fmt):
    wav.write(tmp_path / "one.wav", PCM, fmt=fmt)
    with wav.Writer(tmp_path / "stream.wav", fmt, 8000) as w:
        pos = 0
        for n in (1, 159, 160, 3, 4000):
            w.write(PCM[pos : pos + n])
            pos += n
        w.write(PCM[pos:])
    assert (tmp_path / "one.wav").read_bytes() == (tmp_path / "stream.wav").read_bytes()


@pytest.mark.parametrize(
    "fmt, tag, bits, fact",
    [("alaw", 6, 8, True), ("ulaw", 7, 8, True), ("s16bit", 1, 16, False), ("u8bit", 1, 8, False)],
)
def test_header_layout(tmp_path, fmt, tag, bits, fact):
    path = tmp_path / "h.wav"
    wav.write(path, PCM[:1001], fmt=fmt, rate=6000)
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    fmt_len = struct.unpack_from("<I", raw, 16)[0]
    t, ch, rate, byte_rate, align, b = struct.unpack_from("<HHIIHH", raw, 20)
    assert (t, ch, rate, b) == (tag, 1, 6000, bits)
    assert align == bits // 8 and byte_rate == 6000 * align
    assert fmt_len == (18 if fact else 16)
    pos = 20 + fmt_len
    if fact:
        assert raw[pos : pos + 8] == b"fact\x04\x00\x00\x00"
        assert struct.unpack_from("<I", raw, pos + 8)[0] == 1001
        pos += 12
    assert raw[pos : pos + 4] == b"data"
    size = struct.unpack_from("<I", raw, pos + 4)[0]
    assert size == 1001 * bits // 8
    assert len(raw) == pos + 8 + size + (size & 1)  # odd data is padded
    if fmt in ("s16bit", "u8bit"):
        with wave.open(str(path)) as w:  # the stdlib reader agrees
            assert (w.getnframes(), w.getframerate(), w.getsampwidth()) == (1001, 6000, bits // 8)


def test_reader_tolerates_real_world_layouts():
    x = np.arange(-500, 500, 10, dtype=np.int16)
    data = chunk(b"data", x.tobytes())
    fmt = chunk(b"fmt ", fmt_body())
    junk = chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00abcd\x00\x00")  # odd inner size, padded
    odd = chunk(b"odd ", b"xyz")  # odd chunk + pad byte
    for blob in (
        riff(fmt, data),
        riff(junk, fmt, odd, data, junk),
        riff(odd, data, fmt),
        riff(fmt, data, junk, size=0),
        riff(chunk(b"fmt ", extensible(1)), data),
    ):
        y, meta = wav.read(io.BytesIO(blob))
        np.testing.assert_array_equal(y, x)
        assert meta.frames == x.size and meta.format == "s16bit"


@pytest.mark.parametrize("size_field", [0, 0xFFFFFFFF, 0x7FFFF000, 0x7FFFFFFF])
def test_unfinished_data_size_reads_to_end_of_file(size_field):
    x = np.arange(100, dtype=np.int16)
    blob = riff(
        chunk(b"fmt ", fmt_body()), b"data" + struct.pack("<I", size_field) + x.tobytes(), size=0
    )
    y, meta = wav.read(io.BytesIO(blob))
    np.testing.assert_array_equal(y, x)
    # an honest empty data chunk followed by another chunk stays empty
    blob = riff(chunk(b"fmt ", fmt_body()), chunk(b"data", b""), chunk(b"LIST", b"INFO"))
    assert wav.read(io.BytesIO(blob))[0].size == 0


def test_wide_and_float_pcm_are_converted():
    x = np.array([-32768, -1, 0, 1, 32767], np.int16)
    s24 = b"".join(b"\x7f" + int(v).to_bytes(2, "little", signed=True) for v in x)
    y, meta = wav.read(io.BytesIO(riff(chunk(b"fmt ", fmt_body(bits=24)), chunk(b"data", s24))))
    np.testing.assert_array_equal(y, x)
    assert meta.format == "pcm24"
    s32 = (x.astype(np.int32) << 16).astype("<i4").tobytes()
    y, _ = wav.read(io.BytesIO(riff(chunk(b"fmt ", extensible(1, bits=32)), chunk(b"data", s32))))
    np.testing.assert_array_equal(y, x)
    f = np.array([-1.5, -1.0, -0.5, 0.0, 0.25, 0.99999, 1.0, np.nan], "<f4")
    y, meta = wav.read(
        io.BytesIO(
            riff(
                chunk(b"fmt ", fmt_body(tag=3, bits=32, extra=b"")),
                chunk(b"fact", b"\x08\0\0\0"),
                chunk(b"data", f.tobytes()),
            )
        )
    )
    assert y.tolist() == [-32768, -32768, -16384, 0, 8192, 32767, 32767, 0]
    assert meta.format == "float32"


BAD = {
    "not riff": (b"RIFX" + b"\0" * 40, "not a WAV file"),
    "not wave": (riff(form=b"AVI "), "expected b'WAVE'"),
    "short": (b"RIFF\0\0", "too short"),
    "no fmt": (riff(chunk(b"data", b"\0\0")), "no fmt chunk"),
    "no data": (riff(chunk(b"fmt ", fmt_body())), "no data chunk"),
    "truncated data": (
        riff(chunk(b"fmt ", fmt_body())) + b"data" + struct.pack("<I", 1 << 30) + b"\0" * 10,
        "truncated",
    ),
    "truncated fmt": (riff(b"fmt " + struct.pack("<I", 4000) + b"\0" * 10), "truncated"),
    "fmt too short": (riff(chunk(b"fmt ", b"\x01\x00\x01\x00"), chunk(b"data", b"")), "too short"),
    "zero channels": (
        riff(chunk(b"fmt ", fmt_body(channels=0, block_align=2)), chunk(b"data", b"")),
        "0 channels",
    ),
    "too many channels": (
        riff(chunk(b"fmt ", fmt_body(channels=1000, block_align=2)), chunk(b"data", b"")),
        "1000 channels",
    ),
    "zero rate": (riff(chunk(b"fmt ", fmt_body(rate=0)), chunk(b"data", b"")), "0 Hz"),
    "mp3": (
        riff(chunk(b"fmt ", fmt_body(tag=0x55, bits=0, block_align=1)), chunk(b"data", b"\0")),
        "0x0055 \\(MP3\\)",
    ),
    "pcm 12 bit": (
        riff(chunk(b"fmt ", fmt_body(bits=12, block_align=2)), chunk(b"data", b"")),
        "unsupported",
    ),
    "alaw align": (
        riff(chunk(b"fmt ", fmt_body(tag=6, bits=8, block_align=2)), chunk(b"data", b"")),
        "block_align is 2, expected 1",
    ),
    "bad extensible": (
        riff(chunk(b"fmt ", fmt_body(tag=0xFFFE, extra=b"\0" * 4)), chunk(b"data", b"")),
        "EXTENSIBLE",
    ),
    "two data": (
        riff(chunk(b"fmt ", fmt_body()), chunk(b"data", b"\0\0"), chunk(b"data", b"\0\0")),
        "two data",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_malformed_files_raise_wav_error(name):
    blob, match = BAD[name]
    with pytest.raises(WavError, match=match):
        wav.read(io.BytesIO(blob))
    assert issubclass(WavError, ValueError)


def test_errors_from_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        wav.read(tmp_path / "missing.wav")
    with pytest.raises(WavError, match="directory"):
        wav.read(tmp_path)
    with pytest.raises(TypeError, match="BytesIO"):
        wav.read(b"RIFF")
    with pytest.raises(ValueError, match="unknown format 'mp3'"):
        wav.write(tmp_path / "x.wav", PCM, fmt="mp3")
    with pytest.raises(ValueError, match="rate"):
        wav.write(tmp_path / "x.wav", PCM, rate=0)
    with pytest.raises(TypeError, match="rate"):
        wav.write(tmp_path / "x.wav", PCM, rate=8000.0)
    with pytest.raises(ValueError, match="whole number"):
        wav.Writer(tmp_path / "y.wav", "alaw", 8000, channels=2).write(PCM[:3])


def _valid_file(fmt="alaw"):
    buf = io.BytesIO()
    with wav.Writer(buf, fmt, 8000) as w:
        w.write(PCM[:300])
    return buf.getvalue()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SAMPLE_FORMATS),
    st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=8),
    st.integers(0, 400),
)
def test_fuzzed_headers_never_crash(fmt, edits, cut):
    blob = bytearray(_valid_file(fmt))
    for pos, val in edits:
        if pos < len(blob):
            blob[pos] = val
    blob = bytes(blob[: len(blob) - cut])
    try:
        y, meta = wav.read(io.BytesIO(blob))
    except WavError:
        return
    assert y.dtype == np.int16
    assert y.size == meta.frames * meta.channels
    assert y.size <= len(blob) * 4 + 64  # never more than the file could hold


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(blob):
    try:
        wav.read(io.BytesIO(b"RIFF" + blob))
    except WavError:
        pass


def test_lying_header_allocates_nothing_big():
    blob = riff(chunk(b"fmt ", fmt_body()), b"data" + struct.pack("<I", 0xFFFFFFF0) + b"\0" * 8)
    with pytest.raises(WavError, match="truncated"):
        wav.read(io.BytesIO(blob))


@pytest.mark.parametrize("cut", [1, 2, 20, 30])
def test_repair_never_swallows_a_cut_trailing_chunk(cut):
    # a stale data size (the audio runs on) and a LIST chunk after the audio that the end
    # of the file cuts short: the LIST bytes must not become audio (found by hypothesis
    # in test_repair.py::test_random_damage_anywhere)
    buf = io.BytesIO()
    wav.write(buf, PCM[:1234], fmt="alaw")
    listing = b"LIST" + struct.pack("<I", 21) + b"INFOISFT" + struct.pack("<I", 9) + b"recorder\0\0"
    blob = bytearray(buf.getvalue() + listing)
    meta = wav.info(io.BytesIO(bytes(blob)))
    struct.pack_into("<I", blob, meta.data_offset - 4, 1024)  # stale: 210 bytes more follow
    blob = bytes(blob[: len(blob) - cut])
    f = io.BytesIO(blob)
    result = wav.repair(f)
    at = f.getvalue().index(b"LIST") if b"LIST" in f.getvalue() else len(blob)
    assert result.data_offset + result.data_bytes <= at, result
    if not result.changed:
        assert f.getvalue() == blob and "cut short" in result.note


@pytest.mark.parametrize("fmt", SAMPLE_FORMATS)
def test_sync_keeps_file_valid_and_repair_recovers_whole_frames(tmp_path, fmt):
    path = tmp_path / "live.wav"
    w = wav.Writer(path, fmt, 8000)
    w.write(PCM[:4000])
    w.sync()
    y, meta = wav.read(path)  # readable mid-recording
    assert meta.frames == 4000
    w.write(PCM[4000:7001])
    w._f.flush()  # the process "dies" here: no sync, no close
    raw = path.read_bytes()
    cut = tmp_path / "cut.wav"
    bps = 2 if fmt == "s16bit" else 1
    cut.write_bytes(raw[: len(raw) - (1 if bps == 2 else 0)])  # a torn last sample
    assert wav.read(cut)[1].frames == 4000  # stale header: only the synced part
    fixed = wav.repair(cut)
    expect = 7001 - (1 if bps == 2 else 0)
    assert fixed.frames == expect
    y, meta = wav.read(cut)
    np.testing.assert_array_equal(y, coded_roundtrip(fmt, PCM[:expect]))
    whole = cut.read_bytes()
    again = wav.repair(cut)  # repairing a sound file changes nothing
    assert not again.changed and again.before == meta and again.frames == meta.frames
    assert cut.read_bytes() == whole
    w.close()


def test_repair_leaves_trailing_chunks_alone(tmp_path):
    x = np.arange(50, dtype=np.int16)
    blob = riff(
        chunk(b"fmt ", fmt_body()), chunk(b"data", x.tobytes()), chunk(b"LIST", b"INFOabcd")
    )
    p = tmp_path / "ok.wav"
    p.write_bytes(blob)
    assert wav.repair(p).frames == 50
    assert p.read_bytes() == blob


def test_info_does_not_decode(tmp_path):
    path = tmp_path / "i.wav"
    wav.write(path, PCM, fmt="ulaw", rate=11000)
    meta = wav.info(path)
    assert meta.format == "ulaw" and meta.rate == 11000 and meta.frames == PCM.size
    assert meta.data_bytes == PCM.size and meta.format_tag == 7
    assert os.path.getsize(path) == meta.data_offset + meta.data_bytes + (meta.data_bytes & 1)


def test_espeak_streamed_to_a_pipe(tmp_path):
    import shutil
    import subprocess

    if not shutil.which("espeak-ng"):
        from conftest import missing

        missing("espeak-ng")
    blob = subprocess.run(
        ["espeak-ng", "--stdout", "a call recorder"], capture_output=True, check=True
    ).stdout
    assert blob[40:44] == b"\x00\xf0\xff\x7f"  # its placeholder data size
    y, meta = wav.read(io.BytesIO(blob))
    assert meta.frames == (len(blob) - 44) // 2 and meta.rate == 22050
    np.testing.assert_array_equal(y, np.frombuffer(blob[44 : 44 + 2 * meta.frames], "<i2"))
