"""G.711 and linear PCM codecs against independent references: a plain-Python
transcription of ITU-T G.191, the stdlib audioop, and spandsp's transcoding tables."""

from __future__ import annotations

import array
import ctypes
import threading

import g191_ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recorder
from recorder import codecs

ALL_INPUTS = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


@pytest.fixture(scope="module")
def g191():
    return {
        "alaw_enc": np.array([g191_ref.alaw_compress(int(x)) for x in ALL_INPUTS], np.uint8),
        "ulaw_enc": np.array([g191_ref.ulaw_compress(int(x)) for x in ALL_INPUTS], np.uint8),
        "alaw_dec": np.array([g191_ref.alaw_expand(c) for c in range(256)], np.int16),
        "ulaw_dec": np.array([g191_ref.ulaw_expand(c) for c in range(256)], np.int16),
    }


def test_alaw_encode_matches_g191_for_every_input(g191):
    np.testing.assert_array_equal(codecs.alaw_encode(ALL_INPUTS), g191["alaw_enc"])


def test_ulaw_encode_matches_g191_for_every_input(g191):
    np.testing.assert_array_equal(codecs.ulaw_encode(ALL_INPUTS), g191["ulaw_enc"])


def test_decoders_match_g191_for_every_code(g191):
    np.testing.assert_array_equal(codecs.alaw_decode(ALL_CODES), g191["alaw_dec"])
    np.testing.assert_array_equal(codecs.ulaw_decode(ALL_CODES), g191["ulaw_dec"])


def test_known_values():
    # Idle codes (zero input) and the extremes of both laws.
    assert codecs.alaw_encode(np.int16([0]))[0] == 0xD5
    assert codecs.ulaw_encode(np.int16([0]))[0] == 0xFF
    assert codecs.alaw_decode(b"\xd5\x55\xaa\x2a").tolist() == [8, -8, 32256, -32256]
    assert codecs.ulaw_decode(b"\xff\x7f\x80\x00").tolist() == [0, 0, 32124, -32124]


def test_audioop_alaw_agrees_everywhere(audioop):
    ours = codecs.alaw_encode(ALL_INPUTS).tobytes()
    assert ours == audioop.lin2alaw(ALL_INPUTS.tobytes(), 2)
    assert codecs.alaw_decode(ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES.tobytes(), 2)
    assert codecs.ulaw_decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES.tobytes(), 2)


def test_audioop_ulaw_encoder_differs_on_exactly_508_negative_inputs(audioop):
    ours = codecs.ulaw_encode(ALL_INPUTS)
    theirs = np.frombuffer(audioop.lin2ulaw(ALL_INPUTS.tobytes(), 2), np.uint8)
    differ = ALL_INPUTS[ours != theirs]
    assert differ.size == 508
    assert (differ < 0).all()
    # Where they differ, the two codes are neighbours (one quantisation step apart).
    d = np.abs(
        codecs.ulaw_decode(ours[ours != theirs]).astype(int)
        - codecs.ulaw_decode(theirs[ours != theirs]).astype(int)
    )
    assert d.max() <= 1024


@pytest.mark.parametrize(
    "law, codes",
    [
        ("alaw", "34 21 21 34 B4 A1 A1 B4"),
        ("ulaw", "1E 0B 0B 1E 9E 8B 8B 9E"),
    ],
)
def test_digital_milliwatt_is_0_dbm0(law, codes):
    pcm = getattr(codecs, f"{law}_decode")(bytes.fromhex(codes)).astype(np.float64)
    level = 20 * np.log10(np.sqrt(np.mean(pcm**2)) / 16139.0)
    assert abs(level) <= 0.1, level


def test_reencoding_is_stable():
    # A-law: every code survives decode -> encode; mu-law: all but negative zero (0x7F),
    # which decodes to 0 and comes back as the idle code 0xFF.
    assert (codecs.alaw_encode(codecs.alaw_decode(ALL_CODES)) == ALL_CODES).all()
    back = codecs.ulaw_encode(codecs.ulaw_decode(ALL_CODES))
    assert np.flatnonzero(back != ALL_CODES).tolist() == [0x7F]
    assert back[0x7F] == 0xFF


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_encoding_is_monotonic(law):
    enc, dec = getattr(codecs, f"{law}_encode"), getattr(codecs, f"{law}_decode")
    level = dec(enc(ALL_INPUTS)).astype(np.int32)
    assert (np.diff(level) >= 0).all()
    # and the quantisation error stays within half a step of the segment (<= 1/32 relative + 1 step at 0)
    err = np.abs(level - ALL_INPUTS.astype(np.int32))
    assert (err <= np.maximum(np.abs(ALL_INPUTS.astype(np.int32)) // 16, 16) + 4).all()


def _spandsp_table(lib, fn):
    f = getattr(lib, fn)
    f.restype = ctypes.c_uint8
    f.argtypes = [ctypes.c_uint8]
    return np.array([f(i) for i in range(256)], np.uint8)


# Where spandsp's transcoding tables and G.711 Tables 3/4 (as Sun's g711.c, sox and
# pjsip carry them) disagree: spandsp maps these to the nearest level of the other law.
SPANDSP_A2U_DIFFERS = [0x1A, 0x9A]  # A-law magnitude 79 -> mu magnitude 79 (G.711) / 80 (spandsp)
SPANDSP_U2A_DIFFERS = [0x2F, 0xAF]  # mu-law magnitude 80 -> A magnitude 80 (G.711) / 79 (spandsp)


def test_transcoding_matches_spandsp_except_documented_codes(spandsp):
    a2u = codecs.alaw_to_ulaw(ALL_CODES)
    u2a = codecs.ulaw_to_alaw(ALL_CODES)
    ref_a2u = _spandsp_table(spandsp, "alaw_to_ulaw")
    ref_u2a = _spandsp_table(spandsp, "ulaw_to_alaw")
    assert np.flatnonzero(a2u != ref_a2u).tolist() == SPANDSP_A2U_DIFFERS
    assert np.flatnonzero(u2a != ref_u2a).tolist() == SPANDSP_U2A_DIFFERS
    # both choices are neighbours of each other
    for got, ref, dec in ((a2u, ref_a2u, codecs.ulaw_decode), (u2a, ref_u2a, codecs.alaw_decode)):
        d = np.abs(dec(got).astype(int) - dec(ref).astype(int))
        assert d.max() <= 256


def test_transcoding_properties():
    a2u = codecs.alaw_to_ulaw(ALL_CODES)
    u2a = codecs.ulaw_to_alaw(ALL_CODES)
    # sign bit preserved, levels close, order preserved
    assert ((a2u & 0x80) == (ALL_CODES & 0x80)).all()
    assert ((u2a & 0x80) == (ALL_CODES & 0x80)).all()
    a_lin = codecs.alaw_decode(ALL_CODES).astype(int)
    u_lin = codecs.ulaw_decode(ALL_CODES).astype(int)
    assert (np.abs(codecs.ulaw_decode(a2u).astype(int) - a_lin) <= np.abs(a_lin) // 8 + 8).all()
    assert (np.abs(codecs.alaw_decode(u2a).astype(int) - u_lin) <= np.abs(u_lin) // 8 + 16).all()
    order = np.argsort(a_lin, kind="stable")
    assert (np.diff(codecs.ulaw_decode(a2u)[order].astype(int)) >= 0).all()
    # Known table entries: A-law idle 0xD5 -> mu 0xFF? (A-law +8 -> mu magnitude 1)
    assert a2u[0xD5] == 0xFE and u2a[0xFF] == 0xD5


def test_u8_and_s16():
    x = ALL_INPUTS
    u8 = codecs.u8_encode(x).astype(int)
    expect = np.clip((x.astype(int) + 128) >> 8, -128, 127) + 128
    np.testing.assert_array_equal(u8, expect)
    assert codecs.u8_encode(np.int16([0, 127, 128, -128, -129, 32767, -32768])).tolist() == [
        128,
        128,
        129,
        128,
        127,
        255,
        0,
    ]
    np.testing.assert_array_equal(
        codecs.u8_decode(ALL_CODES), (ALL_CODES.astype(np.int16) - 128) << 8
    )
    s16 = codecs.s16_encode(x)
    assert s16.dtype == np.uint8 and s16.tobytes() == x.astype("<i2").tobytes()
    np.testing.assert_array_equal(codecs.s16_decode(s16), x)
    np.testing.assert_array_equal(codecs.u8_decode(codecs.u8_encode(x)), (expect - 128) << 8)


ENCODERS = ["alaw_encode", "ulaw_encode", "u8_encode", "s16_encode"]
DECODERS = ["alaw_decode", "ulaw_decode", "u8_decode", "s16_decode", "alaw_to_ulaw", "ulaw_to_alaw"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-32768, 32767), max_size=300), st.sampled_from(ENCODERS))
def test_every_buffer_type_gives_the_same_encoding(values, name):
    fn = getattr(codecs, name)
    x = np.array(values, np.int16)
    ref = fn(x)
    for buf in (
        x.tobytes(),
        bytearray(x.tobytes()),
        memoryview(x.tobytes()),
        array.array("h", values),
        memoryview(x),
        x[::-1].copy()[::-1],
    ):
        np.testing.assert_array_equal(fn(buf), ref)
    np.testing.assert_array_equal(fn(x.astype(">i2")), ref)  # byte-swapped numpy


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(DECODERS), st.data())
def test_any_chunking_gives_the_same_result(data, name, draw):
    fn = getattr(codecs, name)
    if name == "s16_decode":
        data = data[: len(data) // 2 * 2]
    ref = fn(data)
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=6)))
    step = 2 if name == "s16_decode" else 1
    cuts = [c // step * step for c in cuts]
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    got = np.concatenate([fn(p) for p in pieces]) if pieces else fn(b"")
    np.testing.assert_array_equal(got, ref)
    for buf in (bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        np.testing.assert_array_equal(fn(buf), ref)


def test_shapes_are_kept():
    x = np.arange(-600, 600, dtype=np.int16).reshape(3, 400)
    a = codecs.alaw_encode(x)
    assert a.shape == (3, 400)
    assert codecs.alaw_decode(a).shape == (3, 400)
    assert codecs.s16_encode(x).shape == (3, 800)
    assert codecs.s16_decode(codecs.s16_encode(x)).shape == (3, 400)
    np.testing.assert_array_equal(codecs.alaw_encode(x[:, ::2]), a[:, ::2])  # non-contiguous
    assert codecs.alaw_encode(np.int16(5)).shape == (1,)


def test_out_parameter():
    x = np.arange(-100, 100, dtype=np.int16)
    out = np.empty(200, np.uint8)
    assert codecs.alaw_encode(x, out=out) is not None
    np.testing.assert_array_equal(out, codecs.alaw_encode(x))
    buf = bytearray(200)
    r = codecs.ulaw_encode(x, out=buf)
    assert bytes(buf) == r.tobytes() == codecs.ulaw_encode(x).tobytes()
    dec = bytearray(400)
    codecs.alaw_decode(out, out=dec)
    assert bytes(dec) == codecs.alaw_decode(out).tobytes()
    with pytest.raises(ValueError, match="expected exactly 200"):
        codecs.alaw_encode(x, out=np.empty(199, np.uint8))
    with pytest.raises(ValueError, match="writable"):
        codecs.alaw_encode(x, out=bytes(200))
    with pytest.raises(TypeError, match="dtype"):
        codecs.alaw_encode(x, out=np.empty(200, np.float32))


def test_bad_inputs_name_the_problem():
    with pytest.raises(TypeError, match="buffer"):
        codecs.alaw_encode([1, 2, 3])
    with pytest.raises(TypeError, match="buffer"):
        codecs.alaw_encode("abc")
    with pytest.raises(TypeError, match="int16"):
        codecs.alaw_encode(np.zeros(4, np.float64))
    with pytest.raises(ValueError, match="even"):
        codecs.alaw_encode(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="even"):
        codecs.s16_decode(b"\x00\x01\x02")
    with pytest.raises(TypeError, match="bytes"):
        codecs.alaw_decode(np.zeros(4, np.int16))
    with pytest.raises(TypeError, match="buffer"):
        codecs.alaw_decode(None)
    assert codecs.alaw_encode(b"").size == 0 and codecs.ulaw_decode(b"").size == 0


def test_streaming_objects():
    x = np.arange(-3000, 3000, 7, dtype=np.int16)
    for fmt in ("alaw", "ulaw", "s16bit", "u8bit"):
        enc, dec = codecs.get_encoder(fmt), codecs.get_decoder(fmt)
        coded = np.concatenate([enc.encode(x[:100]), enc.encode(x[100:]), enc.flush()])
        whole = codecs.get_encoder(fmt).encode(x)
        np.testing.assert_array_equal(coded, whole)
        raw = coded.tobytes()
        back = np.concatenate([dec.decode(raw[:101]), dec.decode(raw[101:])])
        np.testing.assert_array_equal(back, codecs.get_decoder(fmt).decode(raw))
    with pytest.raises(ValueError, match="alaw"):
        codecs.get_encoder("mp3")


def test_results_are_stable_across_threads():
    rng = np.random.default_rng(5)
    x = rng.integers(-32768, 32768, size=2_000_000).astype(np.int16)
    ref = codecs.alaw_encode(x)
    results = [None] * 4

    def work(i):
        results[i] = codecs.alaw_encode(x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, ref)


def test_every_coder_variant_is_exact(g191):
    """The AVX2, SSSE3 and table coders give the G.191 values, for every code and every
    input, at every buffer length (SIMD body and scalar tail) and alignment."""
    best = recorder.simd_level()
    rng = np.random.default_rng(11)
    codes = rng.integers(0, 256, 5000).astype(np.uint8)
    try:
        for level in recorder.simd.LEVELS:
            assert recorder.set_simd_level(level) in recorder.simd.LEVELS
            for law in ("alaw", "ulaw"):
                dec = getattr(codecs, f"{law}_decode")
                np.testing.assert_array_equal(dec(ALL_CODES), g191[f"{law}_dec"])
                ref = g191[f"{law}_dec"][codes]
                for n in (0, 1, 15, 16, 17, 31, 33, 4999):
                    for off in (0, 1, 3):
                        np.testing.assert_array_equal(dec(codes[off : off + n]), ref[off : off + n])
                enc = getattr(codecs, f"{law}_encode")
                np.testing.assert_array_equal(enc(ALL_INPUTS), g191[f"{law}_enc"])
                for n in (0, 1, 15, 16, 17, 33, 4999):
                    for off in (0, 1, 3):
                        part = ALL_INPUTS[7919 * off : 7919 * off + n]
                        np.testing.assert_array_equal(
                            enc(part), g191[f"{law}_enc"][7919 * off : 7919 * off + n]
                        )
    finally:
        assert recorder.set_simd_level(None) == best
