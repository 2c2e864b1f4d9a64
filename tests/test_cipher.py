"""Encryption: AES-CBC (openssl-compatible), AES-GCM (authenticated), one opaque error for
every failure to decrypt, and sealed temporary files for recordings in progress."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import need_exe
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from signals import join, silence, speechlike

from recorder import AesCbcCipher, AesGcmCipher, CipherError, wav
from recorder.cipher import DECRYPT_FAILED, SealedPart, is_sealed_part, publish_sealed
from recorder.wav import recover

KEY = bytes(range(16))
IV = bytes(range(0xF0, 0xE0, -1))
GKEY = bytes(range(32))
FORMATS = ("alaw", "ulaw", "s16bit", "u8bit", "ima", "oki")
MARKERS = (b"RIFF", b"WAVE", b"fmt ", b"data", b"fact")


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "recorder", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def pattern(seconds=1.5):
    return join(speechlike(seconds * 0.6), silence(seconds * 0.1), speechlike(seconds * 0.3))


def plain_wav(x, fmt="s16bit", rate=8000) -> bytes:
    buf = io.BytesIO()
    with wav.Writer(buf, fmt, rate) as w:
        w.write(x)
    return buf.getvalue()


def new_part(path, cipher) -> SealedPart:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    return SealedPart.create(fd, cipher)


def assert_opaque(fn, *args, **kw):
    with pytest.raises(CipherError) as e:
        fn(*args, **kw)
    assert type(e.value) is CipherError and str(e.value) == DECRYPT_FAILED
    assert e.value.__context__ is None and e.value.__cause__ is None  # nothing chained
    return e.value


def assert_no_plaintext(raw: bytes, plain: bytes):
    for marker in MARKERS:
        assert marker not in raw, marker
    audio = plain[64:]
    for i in range(0, len(audio) - 16, 997):  # no 16-byte run of the audio
        assert audio[i : i + 16] not in raw


# --- AES-CBC: the spec's, openssl-compatible ------------------------------------------------


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_cbc_output_is_what_openssl_decrypts(tmp_path, bits):
    need_exe("openssl")
    key = os.urandom(bits // 8)
    c = AesCbcCipher(key, AesCbcCipher.random_iv())
    plain = plain_wav(pattern(0.5))
    enc = tmp_path / "enc.wav"
    with enc.open("wb") as f:
        assert c.encrypt_file(io.BytesIO(plain), f) == c.encrypted_size(len(plain))
    out = subprocess.run(
        [
            "openssl",
            "enc",
            "-d",
            f"-aes-{bits}-cbc",
            "-K",
            key.hex(),
            "-iv",
            c.iv.hex(),
            "-in",
            enc,
        ],
        capture_output=True,
        check=True,
    ).stdout
    assert out == plain
    assert c.encrypt(plain) == enc.read_bytes()
    assert "no integrity" in AesCbcCipher.__doc__.lower()


def test_padding_oracle_closed_one_error_for_every_failure(tmp_path):
    """Bad padding, good padding over garbage, good padding over a broken WAV header: the
    same exception type and the same message, with nothing of the plaintext in it."""
    c = AesCbcCipher(KEY, IV)
    raw_cbc = Cipher(algorithms.AES(KEY), modes.CBC(IV)).encryptor()
    bad_padding = (
        raw_cbc.update(b"RIFF\x24\x00\x00\x00WAVE" + bytes(19) + b"\x00") + raw_cbc.finalize()
    )
    garbage = c.encrypt(b"GARBAGE!" * 10)
    header_only = c.encrypt(plain_wav(pattern(0.2))[:30])
    not_blocks = c.encrypt(plain_wav(pattern(0.2)))[:-5]
    for i, data in enumerate((bad_padding, garbage, header_only, not_blocks, b"")):
        p = tmp_path / f"{i}.wav"
        p.write_bytes(data)
        for fn in (wav.read, wav.info):
            e = assert_opaque(fn, p, cipher=c)
            assert b"GARB" not in str(e).encode() and "RIFF" not in str(e)
            assert_opaque(fn, io.BytesIO(data), cipher=c)
    # the same for GCM files, sealed parts and a wrong key
    g = tmp_path / "g.wav"
    g.write_bytes(AesGcmCipher(GKEY).encrypt(plain_wav(pattern(0.2))))
    assert_opaque(wav.read, g, cipher=AesGcmCipher(os.urandom(32)))
    assert_opaque(wav.read, g, cipher=c)
    part = new_part(tmp_path / "x.part", AesGcmCipher(GKEY))
    part.write(b"not a wav file at all")
    part.close()
    assert_opaque(wav.info, tmp_path / "x.part", cipher=AesGcmCipher(GKEY))
    assert_opaque(wav.info, tmp_path / "x.part", cipher=AesGcmCipher(os.urandom(32)))


def test_a_cipher_argument_that_is_not_a_cipher_is_a_type_error(tmp_path):
    p = tmp_path / "a.wav"
    wav.write(p, pattern(0.1))
    for bad in ("00" * 16, bytes(16), 7, object()):
        for fn in (wav.read, wav.info):
            with pytest.raises(TypeError, match="AesCbcCipher or recorder.AesGcmCipher"):
                fn(p, cipher=bad)
    with pytest.raises(TypeError, match="AesGcmCipher"):
        SealedPart.create(io.BytesIO(), "00" * 32)


# --- AES-GCM: authenticated ----------------------------------------------------------------


def test_gcm_round_trip_and_a_fresh_nonce_per_file(tmp_path):
    c = AesGcmCipher(GKEY)
    x = pattern()
    plain = plain_wav(x, "alaw")
    p = tmp_path / "g.wav"
    with p.open("wb") as f:
        n = c.encrypt_file(io.BytesIO(plain), f)
    data = p.read_bytes()
    assert n == len(data) == c.encrypted_size(len(plain))
    assert c.max_plain_size(len(data)) == len(plain)
    assert c.decrypt(data) == plain
    assert_no_plaintext(data, plain)
    y, meta = wav.read(p, cipher=c)
    np.testing.assert_array_equal(y, wav.read(io.BytesIO(plain))[0])
    assert wav.info(p, cipher=c) == meta and meta.format == "alaw"
    # the nonce is chosen inside, never by the caller: the same input never encrypts the same
    outs = {c.encrypt(plain) for _ in range(20)}
    assert len(outs) == 20 and len({o[:18] for o in outs}) == 20
    with pytest.raises(ValueError, match="key is 5 bytes"):
        AesGcmCipher(b"short")
    assert len(AesGcmCipher.random_key()) == 32


def test_gcm_refuses_every_bit_flip_truncation_and_extension(tmp_path):
    c = AesGcmCipher(GKEY)
    good = c.encrypt(plain_wav(pattern(0.3), "ulaw"))
    rng = random.Random(1234)
    for _ in range(2000):
        bad = bytearray(good)
        bit = rng.randrange(len(good) * 8)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert_opaque(wav.read, io.BytesIO(bytes(bad)), cipher=c)
    for cut in list(range(64)) + rng.sample(range(64, len(good)), 200):
        assert_opaque(wav.read, io.BytesIO(good[:cut]), cipher=c)
    for extra in (b"\0", b"\0" * 16, os.urandom(100)):
        assert_opaque(wav.read, io.BytesIO(good + extra), cipher=c)
    assert wav.read(io.BytesIO(good), cipher=c)[1].format == "ulaw"


# --- sealed parts: recordings in progress ---------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_sealed_part_with_wav_writer_holds_no_plaintext(tmp_path, fmt):
    c = AesGcmCipher(GKEY)
    x = pattern(2.0)
    path = tmp_path / "rec.part"
    part = new_part(path, c)
    assert part.readable() and part.writable() and part.seekable()
    ref = io.BytesIO()
    w, wr = wav.Writer(part, fmt, 8000), wav.Writer(ref, fmt, 8000)
    for i in range(0, len(x), 160):
        w.write(x[i : i + 160])
        wr.write(x[i : i + 160])
        if i % 4000 == 0:  # header refreshes, as the recorder does
            w.sync()
            wr.sync()
            os.fsync(part.fileno())
            assert_no_plaintext(path.read_bytes(), ref.getvalue())
    w.close()
    wr.close()
    part.close()
    plain = ref.getvalue()
    raw = path.read_bytes()
    assert is_sealed_part(path) and not is_sealed_part(io.BytesIO(plain))
    assert_no_plaintext(raw, plain)
    view = SealedPart.open(path, c)
    assert view.read() == plain  # byte for byte the plain file
    view.close()
    y, meta = wav.read(path, cipher=c)
    np.testing.assert_array_equal(y, wav.read(io.BytesIO(plain))[0])
    assert meta.format == fmt
    # published with either cipher, the final file is the plain file, encrypted
    cbc = AesCbcCipher(KEY, IV)
    for final in (c, cbc):
        with SealedPart.open(path, c) as view, open(tmp_path / "final.wav", "wb") as f:
            publish_sealed(view, f, final)
        assert final.decrypt((tmp_path / "final.wav").read_bytes()) == plain


def test_header_rewrites_are_encrypted_afresh(tmp_path):
    """A rewrite of the same offset must not reuse a keystream: after a header refresh
    that changes 8 bytes, the whole first page on disk is different."""
    c = AesGcmCipher(GKEY)
    path = tmp_path / "h.part"
    part = new_part(path, c)
    w = wav.Writer(part, "alaw", 8000)
    w.write(pattern(1.0))
    w.sync()
    before = path.read_bytes()
    w.write(np.zeros(160, np.int16))
    w.sync()
    after = path.read_bytes()
    head = 4096
    changed = sum(a != b for a, b in zip(before[:head], after[:head], strict=False))
    assert changed > head * 0.9, changed
    w.close()
    part.close()


def test_sealed_part_behaves_like_a_file(tmp_path):
    """Random writes, seeks past the end, truncations and reads against a plain file, with
    the part reopened from the disk now and then."""
    c = AesCbcCipher(KEY, IV)
    rng = random.Random(7)
    path = tmp_path / "f.part"
    part = new_part(path, c)
    model = open(tmp_path / "model", "w+b", buffering=0)
    for _step in range(400):
        op = rng.random()
        if op < 0.45:
            pos = rng.randrange(0, model.seek(0, 2) + 9000)
            data = os.urandom(rng.choice((1, 7, 44, 160, 4096, 5000, 20000)))
            model.seek(pos)
            part.seek(pos)
            assert part.write(data) == model.write(data)
        elif op < 0.75:
            pos = rng.randrange(0, model.seek(0, 2) + 100)
            n = rng.randrange(0, 12000)
            model.seek(pos)
            part.seek(pos)
            assert part.read(n) == model.read(n)
        elif op < 0.85:
            size = rng.randrange(0, model.seek(0, 2) + 5000)
            assert part.truncate(size) == model.truncate(size)
        else:
            pos = model.tell()
            part.close()
            part = SealedPart.open(path, c, writable=True)
            part.seek(pos)
        assert part.tell() == model.tell()
        assert part.seek(0, io.SEEK_END) == model.seek(0, io.SEEK_END)
    part.seek(0)
    model.seek(0)
    assert part.read() == model.read()
    part.close()
    model.close()
    with pytest.raises(ValueError, match="closed"):
        part.read(1)
    with SealedPart.open(path, c) as ro:
        assert not ro.writable()
        with pytest.raises(io.UnsupportedOperation):
            ro.write(b"x")
        with pytest.raises(ValueError, match="negative"):
            ro.seek(-1)


def test_sealed_part_refuses_a_wrong_key_and_a_changed_page(tmp_path):
    c = AesGcmCipher(GKEY)
    path = tmp_path / "w.part"
    wav.write(part := new_part(path, c), pattern(1.0), fmt="s16bit")
    part.close()
    assert_opaque(SealedPart.open, path, AesGcmCipher(os.urandom(32)))
    assert_opaque(SealedPart.open, path, AesCbcCipher(os.urandom(16), IV))
    data = bytearray(path.read_bytes())
    data[5000] ^= 0x01
    path.write_bytes(bytes(data))
    assert_opaque(wav.read, path, cipher=c)
    with pytest.raises(ValueError, match="empty file"):
        SealedPart.create(io.BytesIO(b"x"), c)
    ro = os.open(tmp_path / "ro", os.O_WRONLY | os.O_CREAT, 0o600)
    with pytest.raises(ValueError, match="O_RDWR"):
        SealedPart.create(ro, c)  # the part took the fd over, and closed it
    appending = os.open(tmp_path / "ap", os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    with pytest.raises(ValueError, match="without O_APPEND"):
        SealedPart.create(appending, c)


def test_a_torn_last_page_is_cut_like_a_crash_and_other_pages_must_authenticate(tmp_path):
    c = AesGcmCipher(GKEY)
    path = tmp_path / "t.part"
    part = new_part(path, c)
    data = os.urandom(10000)
    part.write(data)
    part.close()
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x80  # the last write, torn
    path.write_bytes(bytes(raw))
    with SealedPart.open(path, c) as view:
        assert view.read() == data[:8192]  # the part ends before the torn page
    with SealedPart.open(path, c, writable=True) as view:
        view.seek(0, io.SEEK_END)
        view.write(b"more")
    with SealedPart.open(path, c) as view:
        assert view.read() == data[:8192] + b"more"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x80  # a page before the last: refused
    path.write_bytes(bytes(raw))
    with SealedPart.open(path, c) as view:
        assert_opaque(view.read)


CRASH = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from recorder import AesCbcCipher, wav
    from recorder.cipher import SealedPart
    path, key, n_sync, n_more = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    x = np.load(sys.argv[5])
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    w = wav.Writer(SealedPart.create(fd, AesCbcCipher(key, bytes(16))), sys.argv[6], 8000)
    for i in range(n_sync):
        w.write(x[i * 160:(i + 1) * 160])
        if i % 50 == 49:
            w.sync()
    w.sync()
    for i in range(n_sync, n_sync + n_more):
        w.write(x[i * 160:(i + 1) * 160])
    os.kill(os.getpid(), signal.SIGKILL)          # killed mid-recording: nothing closed
""")


@pytest.mark.parametrize(
    "fmt,mode", [("alaw", "aes-cbc"), ("ima", "aes-gcm"), ("s16bit", "aes-gcm")]
)
def test_crashed_sealed_part_is_recovered_by_the_cli(tmp_path, fmt, mode):
    x = pattern(3.0)
    np.save(tmp_path / "x.npy", x)
    part = tmp_path / ".call.wav.abcd.part"
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, part, KEY.hex(), "100", "37", tmp_path / "x.npy", fmt],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    raw = part.read_bytes()
    for marker in MARKERS:
        assert marker not in raw
    # no key: a clear message; a wrong key: the one clear message; nothing changed
    r = cli("repair", part)
    assert r.returncode == 2 and "--key" in r.stderr and len(r.stderr.splitlines()) == 1
    r = cli("repair", part, "--key", "ff" * 16, "--iv", "00" * 16)
    assert r.returncode == 2 and DECRYPT_FAILED in r.stderr and len(r.stderr.splitlines()) == 1
    assert part.read_bytes() == raw
    # the right key: the final encrypted file, every whole frame that reached the disk
    opts = ["--key", KEY.hex()] + (["--iv", IV.hex()] if mode == "aes-cbc" else ["--cipher", mode])
    r = cli("repair", part, *opts)
    assert r.returncode == 0, r.stderr
    final = AesCbcCipher(KEY, IV) if mode == "aes-cbc" else AesGcmCipher(KEY)
    assert not is_sealed_part(part)
    y, meta = wav.read(part, cipher=final)
    assert meta.format == fmt
    # what reached the disk: everything up to the last sync, and every whole 4 KiB page
    # written after it (the partial last page was still in memory); the same writes to a
    # plain file, cut there and repaired, are the expected result
    plain = io.BytesIO()
    w = wav.Writer(plain, fmt, 8000)
    for i in range(100):
        w.write(x[i * 160 : (i + 1) * 160])
        if i % 50 == 49:
            w.sync()
    w.sync()
    synced = len(plain.getvalue())
    for i in range(100, 137):
        w.write(x[i * 160 : (i + 1) * 160])
    written = plain.getvalue()
    on_disk = io.BytesIO(written[: max(synced, len(written) // 4096 * 4096)])
    assert wav.repair(on_disk).frames == meta.frames > 100 * 160 - 505
    np.testing.assert_array_equal(y, wav.read(on_disk)[0])
    # repairing the final file again works and changes nothing
    assert cli("repair", part, *opts).returncode == 0
    np.testing.assert_array_equal(wav.read(part, cipher=final)[0], y)


def test_recover_a_cut_final_file_in_python(tmp_path):
    for final in (AesCbcCipher(KEY, IV), AesGcmCipher(GKEY)):
        plain = plain_wav(pattern(1.0), "ulaw")
        cut = bytearray(plain[:5000])
        at = plain.index(b"data") + 4
        cut[at : at + 4] = (0xFFFFFFFF).to_bytes(4, "little")  # a header never finished
        src = tmp_path / "cut.wav"
        src.write_bytes(final.encrypt(bytes(cut)))
        dst = tmp_path / "fixed.wav"
        before, after = recover(src, final, dst)
        assert after.frames == 5000 - 58 and after.frames <= before.frames
        y, _ = wav.read(dst, cipher=final)
        np.testing.assert_array_equal(y, wav.read(io.BytesIO(plain))[0][: after.frames])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.wav", "fixed.wav"]
        assert_opaque(recover, src, AesGcmCipher(os.urandom(32)), dst)
        changed = bytearray(src.read_bytes())
        changed[len(changed) // 2] ^= 0x10
        src.write_bytes(bytes(changed))
        if isinstance(final, AesGcmCipher):  # authenticated: a changed file is refused
            assert_opaque(recover, src, final, dst)
            assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.wav", "fixed.wav"]
        dst.unlink()
        src.unlink()


# --- the command line ----------------------------------------------------------------------


def test_cli_gcm_everywhere(tmp_path):
    src = tmp_path / "call.wav"
    wav.write(src, pattern(1.0), fmt="s16bit")
    k = GKEY.hex()
    rec = tmp_path / "rec.wav"
    r = cli("record", src, rec, "--cipher", "aes-gcm", "--key", k, "--json")
    assert r.returncode == 0, r.stderr
    assert rec.read_bytes()[:5] == b"CRGCM"
    info = json.loads(cli("info", rec, "--cipher", "aes-gcm", "--key", k, "--json").stdout)
    assert info["format"] == "alaw"
    again = tmp_path / "again.wav"
    r = cli("record", rec, again, "--in-cipher", "aes-gcm", "--in-key", k, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["cause"] == "HANGUP", r.stderr
    assert cli("dtmf", rec, "--cipher", "aes-gcm", "--key", k).returncode == 0
    out = tmp_path / "out"
    r = cli(
        "convert",
        rec,
        "-o",
        out,
        "--in-cipher",
        "aes-gcm",
        "--in-key",
        k,
        "--key",
        KEY.hex(),
        "--iv",
        IV.hex(),
        "--format",
        "s16bit",
    )
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(
        wav.read(out / "rec.wav", cipher=AesCbcCipher(KEY, IV))[0],
        wav.read(rec, cipher=AesGcmCipher(GKEY))[0],
    )
    # a changed GCM file is refused with the one message
    data = bytearray(rec.read_bytes())
    data[100] ^= 4
    rec.write_bytes(bytes(data))
    r = cli("info", rec, "--cipher", "aes-gcm", "--key", k)
    assert r.returncode == 2 and DECRYPT_FAILED in r.stderr
    r = cli("info", rec)
    assert r.returncode == 2 and "encrypted?" in r.stderr
    for args, words in (
        (["--cipher", "aes-gcm", "--key", k, "--iv", IV.hex()], "not used with aes-gcm"),
        (["--cipher", "aes-gcm"], "needs --key"),
        (["--key", k], "give both --key and --iv"),
    ):
        r = cli("info", src, *args)
        assert r.returncode == 2 and words in r.stderr, r.stderr
