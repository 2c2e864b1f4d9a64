"""wav.repair: what a crash leaves is made whole, anything else is left byte-identical.

The property over a deterministic fuzz corpus (our writer's files in every format, chunks
in other orders, odd sizes, placeholder sizes, truncations, mutated size fields): for
every file ``f``, ``read(repair(f))`` is the audio of ``read(f)`` or more of it, never
less, never an error where ``read(f)`` worked; a file repair leaves alone is
byte-identical; repair rewrites nothing but size fields (and cuts a partial trailing frame
or adds a pad byte); a second repair changes nothing.
"""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tools import ffmpeg_decode, sox_decode
from wavmaker import chunk, fmt_body, riff

from recorder import wav
from recorder.wav import WavError

FORMATS = ["alaw", "ulaw", "s16bit", "u8bit", "ima", "oki"]
PCM = (
    np.sin(np.arange(40000) * 0.05) * 8000 + np.random.default_rng(1).standard_normal(40000) * 1500
).astype(np.int16)
LIST = chunk(b"LIST", b"INFOISFT" + struct.pack("<I", 9) + b"recorder\0", pad=True)


# --- building files -------------------------------------------------------------------------


def _pcm(frames: int, channels: int) -> np.ndarray:
    x = PCM[: frames * channels]
    return x.reshape(-1, channels) if channels > 1 else x


def closed(fmt, rate, channels, frames) -> bytes:
    buf = io.BytesIO()
    with wav.Writer(buf, fmt, rate, channels) as w:
        w.write(_pcm(frames, channels))
    return buf.getvalue()


def crashed(fmt, rate, channels, frames, synced) -> bytes:
    """What a process killed mid-recording leaves: the header of the last refresh (at
    ``synced`` frames), then everything written since."""
    buf = io.BytesIO()
    w = wav.Writer(buf, fmt, rate, channels)
    x = _pcm(frames, channels)
    w.write(x[:synced])
    w.sync()
    w.write(x[synced:])
    return buf.getvalue()


def split(blob: bytes) -> list[tuple[bytes, bytes]]:
    """The chunks of one of our writer's files: [(id, body)]."""
    out, pos = [], 12
    while pos + 8 <= len(blob):
        cid, size = struct.unpack_from("<4sI", blob, pos)
        out.append((cid, blob[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return out


def join(*chunks: bytes, riff_size=None) -> bytes:
    return riff(*chunks, size=riff_size)


def set_u32(blob: bytes, at: int, value: int) -> bytes:
    return blob[:at] + struct.pack("<I", value) + blob[at + 4 :]


def data_size_at(blob: bytes) -> int:
    return blob.index(b"data", 12) + 4


def sample_cuts(n: int, head: int, every: int) -> list[int]:
    """Truncation points: every byte of the header region, every ``every``-th byte after
    it, and the last few bytes."""
    cuts = set(range(0, min(n, head + 12)))
    cuts.update(range(head + 12, n, every))
    cuts.update(range(max(0, n - 6), n))
    return sorted(cuts)


def corpus(bases, *, every=37, mutations=6, seed=0):
    """Yield (name, bytes) over the variants of each (fmt, rate, channels, frames)."""
    rng = np.random.default_rng(seed)
    for fmt, rate, channels, frames in bases:
        tag = f"{fmt}/{rate}/{channels}/{frames}"
        whole = closed(fmt, rate, channels, frames)
        crash = crashed(fmt, rate, channels, frames, frames // 3)
        parts = dict(split(whole))
        fmt_c = chunk(b"fmt ", parts[b"fmt "])
        fact_c = chunk(b"fact", parts[b"fact"]) if b"fact" in parts else b""
        data = parts[b"data"]
        data_c = chunk(b"data", data)
        odd = (
            data[: len(data) - 1 + len(data) % 2]
            if fmt in ("alaw", "ulaw", "u8bit", "oki")
            else data
        )
        variants = {
            "whole": whole,
            "crash": crash,
            "list-after": join(fmt_c, fact_c, data_c, LIST),
            "list-before": join(fmt_c, LIST, fact_c, data_c),
            "data-first": join(data_c, fmt_c, fact_c),
            "odd-nopad-list": join(fmt_c, fact_c, chunk(b"data", odd, pad=False), LIST),
            "odd-pad-list": join(fmt_c, fact_c, chunk(b"data", odd), LIST),
            "junk-after": join(fmt_c, fact_c, data_c, b"\x01\x02\x03"),
        }
        at = data_size_at(crash)
        for size in (0, 0xFFFFFFFF, 0x7FFFF000, 0x7FFFFFFF):
            variants[f"placeholder-{size:x}"] = set_u32(crash, at, size)
        la = variants["list-after"]
        variants["list-after-stale"] = set_u32(la, data_size_at(la), len(data) // 2)
        variants["data-first-stale"] = set_u32(variants["data-first"], 16, len(data) // 2)
        for name, blob in variants.items():
            yield f"{tag}/{name}", blob
        # truncations: the crash case, and files with other chunks around the data
        for name in (
            "crash",
            "whole",
            "list-after",
            "list-before",
            "data-first",
            "placeholder-ffffffff",
        ):
            blob = variants[name]
            head = (
                blob.index(b"data") + 8 if name != "data-first" else len(blob) - len(fmt_c + fact_c)
            )
            for cut in sample_cuts(len(blob), head, every):
                yield f"{tag}/{name}/cut{cut}", blob[:cut]
        # mutated size fields: RIFF, fmt, fact, data, LIST
        for name in ("crash", "list-after", "list-before"):
            blob = variants[name]
            fields = [4, blob.index(b"fmt ") + 4, data_size_at(blob)]
            fields += [blob.index(b"fact") + 4, blob.index(b"fact") + 8] if fact_c else []
            fields += [blob.index(b"LIST") + 4] if b"LIST" in blob else []
            for at in fields:
                old = struct.unpack_from("<I", blob, at)[0]
                values = {0, 1, old - 1, old + 1, old + 4, old // 2, 2 * old + 7, 0xFFFFFFFF}
                values.update(int(v) for v in rng.integers(0, 2 * len(blob) + 64, mutations))
                for v in sorted(values):
                    yield f"{tag}/{name}/u32@{at}={v}", set_u32(blob, at, v & 0xFFFFFFFF)
                for _ in range(mutations):
                    k, b = int(rng.integers(0, 4)), int(rng.integers(0, 256))
                    mutated = bytearray(blob)
                    mutated[at + k] = b
                    yield f"{tag}/{name}/byte@{at + k}={b}", bytes(mutated)


def _read(blob: bytes):
    try:
        y, meta = wav.read(io.BytesIO(blob))
    except WavError as e:
        return None, str(e)
    return y.reshape(-1), meta


def size_fields(blob: bytes, meta: wav.Info) -> set[int]:
    """Byte offsets of the size fields repair may rewrite: RIFF, data and fact."""
    spots = {4, meta.data_offset - 4}
    head = blob[: meta.data_offset]
    pos = 12
    while pos + 8 <= len(head):
        cid, size = struct.unpack_from("<4sI", head, pos)
        if cid == b"fact":
            spots.add(pos + 8)
        pos += 8 + size + (size & 1)
    return {s + k for s in spots for k in range(4)}


def check_repair(name: str, blob: bytes) -> str:
    """The property, for one file.  Returns what happened: 'same', 'more', 'fixed',
    'refused' (unreadable and not repairable)."""
    before, why = _read(blob)
    f = io.BytesIO(blob)
    try:
        result = wav.repair(f)
    except WavError as e:
        assert before is None, f"{name}: repair raised {e} on a readable file"
        assert f.getvalue() == blob, f"{name}: repair raised but changed the file"
        assert str(e), name
        return "refused"
    out = f.getvalue()
    if not result.changed:
        assert out == blob, f"{name}: reported unchanged but the bytes differ"
        assert before is not None, f"{name}: unreadable ({why}) yet repair reports success"
    after, why_after = _read(out)
    assert after is not None, f"{name}: unreadable after repair: {why_after} (before: {why})"
    assert result.frames * result.channels == after.size, name
    if before is not None:
        assert (
            after.size >= before.size
        ), f"{name}: repair lost audio ({before.size} -> {after.size})"
        np.testing.assert_array_equal(after[: before.size], before, err_msg=name)
        assert (
            result.before is not None and result.before.frames * result.channels == before.size
        ), name
    # nothing but size fields changed; only a partial frame cut or a pad byte added
    common = min(len(out), len(blob))
    diff = np.flatnonzero(
        np.frombuffer(out[:common], np.uint8) != np.frombuffer(blob[:common], np.uint8)
    )
    allowed = size_fields(out, wav.info(io.BytesIO(out)))
    assert set(diff.tolist()) <= allowed, f"{name}: repair changed bytes outside the size fields"
    if len(out) > len(blob):
        assert len(out) == len(blob) + 1 and out[-1] == 0, f"{name}: grew by more than a pad byte"
    elif len(out) < len(blob):
        meta = wav.info(io.BytesIO(out))
        assert len(out) == meta.data_offset + meta.data_bytes + (
            meta.data_bytes & 1
        ), f"{name}: cut somewhere else than after the data"
    for cid in (b"LIST", b"fmt ", b"fact"):  # every chunk kept, none swallowed as audio
        if cid in blob[:common]:
            assert out.count(cid) >= blob[:common].count(cid), f"{name}: {cid!r} lost"
    if result.changed and b"LIST" in out:  # audio to the reader after only if it was before
        at = out.index(b"LIST")
        inside = lambda m: m is not None and m.data_offset <= at < m.data_offset + m.data_bytes  # noqa: E731
        assert not inside(result) or inside(result.before), f"{name}: LIST swallowed into the data"
    again = io.BytesIO(out)
    second = wav.repair(again)
    assert not second.changed and again.getvalue() == out, f"{name}: second repair changed the file"
    if before is None:
        return "fixed"
    return "more" if after.size > before.size else "same"


SMALL = [(fmt, 8000, 1, 1234) for fmt in FORMATS] + [
    ("alaw", 11025, 2, 700),
    ("s16bit", 6000, 2, 333),
    ("ima", 8000, 2, 800),
    ("oki", 8000, 2, 501),
]
LARGE = [
    (fmt, rate, ch, n)
    for fmt in FORMATS
    for rate in (6000, 8000, 16000)
    for ch in (1, 2)
    for n in (0, 1, 505, 506, 1017)
]


def test_fuzz_corpus_read_after_repair_never_loses_audio():
    seen = {"same": 0, "more": 0, "fixed": 0, "refused": 0}
    for name, blob in corpus(SMALL):
        seen[check_repair(name, blob)] += 1
    # the corpus exercises every outcome, many times each
    assert min(seen.values()) >= 50, seen


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SMALL),
    st.sampled_from(["whole", "crash", "list"]),
    st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
    st.integers(0, 700),
)
def test_random_damage_anywhere(base, kind, edits, cut):
    """Random bytes changed anywhere in the first 120 bytes, then the end cut off."""
    fmt, rate, channels, frames = base
    if kind == "crash":
        blob = bytearray(crashed(fmt, rate, channels, frames, frames // 2))
    else:
        blob = bytearray(closed(fmt, rate, channels, frames) + (LIST if kind == "list" else b""))
    for pos, val in edits:
        if pos < len(blob):
            blob[pos] = val
    check_repair(f"{base}/{kind}/{edits}/cut{cut}", bytes(blob[: len(blob) - cut]))


@pytest.mark.slow
def test_fuzz_corpus_exhaustive():
    """Every third case of the large corpus (about 170,000, a minute or two of CI); all
    507,374 with CALLRECORDER_FULL_FUZZ=1 (about 4 minutes on 2 cores)."""
    stride = 1 if os.environ.get("CALLRECORDER_FULL_FUZZ") else 3
    for i, (name, blob) in enumerate(corpus(LARGE, every=3, mutations=20, seed=1)):
        if i % stride == 0:
            check_repair(name, blob)


# --- the crash case: every truncation of a recording ------------------------------------------


def whole_frames(fmt: str, channels: int, nbytes: int, block_align: int) -> int:
    """Frames in ``nbytes`` of data cut short, computed here from the formats' definitions."""
    if fmt == "oki":
        return nbytes * 2 // channels
    if fmt != "ima":
        return nbytes // block_align
    per_block = 2 * (block_align - 4 * channels) // channels + 1
    blocks, rest = divmod(nbytes, block_align)
    groups = (rest - 4 * channels) // (4 * channels) if rest >= 4 * channels else -1
    return blocks * per_block + (1 + groups * 8 if groups >= 0 else 0)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("channels", [1, 2])
def test_every_truncation_of_a_crashed_recording_keeps_every_whole_frame(fmt, channels):
    frames = 1100
    blob = crashed(fmt, 8000, channels, frames, 300)
    ref, _ = wav.read(io.BytesIO(closed(fmt, 8000, channels, frames)))
    ref = ref.reshape(-1)
    meta = wav.info(io.BytesIO(closed(fmt, 8000, channels, frames)))
    start = meta.data_offset
    for cut in range(start, len(blob) + 1):
        f = io.BytesIO(blob[:cut])
        result = wav.repair(f)
        y, info = wav.read(io.BytesIO(f.getvalue()))
        expect = whole_frames(fmt, channels, cut - start, meta.block_align)
        expect = min(expect, frames)
        assert info.frames == result.frames == expect, (cut, info.frames, expect)
        np.testing.assert_array_equal(y.reshape(-1), ref[: expect * channels], err_msg=str(cut))


def test_os_truncate_then_repair(tmp_path):
    """The issue's example: a finished file cut with os.truncate is repaired."""
    import os

    p = tmp_path / "c.wav"
    wav.write(p, PCM[:16000], fmt="alaw")
    os.truncate(p, 4000)
    with pytest.raises(WavError, match="truncated"):
        wav.read(p)
    result = wav.repair(p)
    assert result.changed and result.before is None and result.frames == 4000 - result.data_offset
    y, _ = wav.read(p)
    full, _ = wav.read(io.BytesIO(closed("alaw", 8000, 1, 16000)))
    np.testing.assert_array_equal(y, full[: y.size])


# --- what repair must not touch ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["alaw", "ima"])
def test_data_before_fmt_is_left_byte_identical(fmt):
    parts = dict(split(closed(fmt, 8000, 1, 1000)))
    blob = join(
        chunk(b"data", parts[b"data"]),
        chunk(b"fmt ", parts[b"fmt "]),
        chunk(b"fact", parts[b"fact"]),
    )
    y, _ = wav.read(io.BytesIO(blob))
    f = io.BytesIO(blob)
    result = wav.repair(f)
    assert not result.changed and "fmt" in result.note and f.getvalue() == blob
    stale = set_u32(blob, 16, 10)  # a stale size: the fmt chunk is not audio
    f = io.BytesIO(stale)
    with pytest.raises(WavError, match="before the fmt chunk"):
        wav.repair(f)
    assert f.getvalue() == stale
    placeholder = set_u32(blob, 16, 0xFFFFFFFF)  # unreadable and not repairable: a clear error
    with pytest.raises(WavError, match="before the fmt chunk"):
        wav.repair(io.BytesIO(placeholder))


def test_odd_data_without_pad_then_list_is_left_alone():
    x = bytes(range(1, 102))  # 101 A-law bytes
    blob = riff(chunk(b"fmt ", fmt_body(6, 1, 8000, 8)), chunk(b"data", x, pad=False), LIST)
    y, _ = wav.read(io.BytesIO(blob))
    assert y.size == 101
    f = io.BytesIO(blob)
    assert not wav.repair(f).changed and f.getvalue() == blob


def test_stale_size_before_a_list_chunk_stops_at_the_list():
    parts = dict(split(closed("alaw", 8000, 1, 3000)))
    blob = join(
        chunk(b"fmt ", parts[b"fmt "]),
        chunk(b"fact", parts[b"fact"]),
        chunk(b"data", parts[b"data"]),
        LIST,
    )
    stale = set_u32(blob, data_size_at(blob), 1000)
    f = io.BytesIO(stale)
    result = wav.repair(f)
    assert result.changed and result.before.frames == 1000 and result.frames == 3000
    assert f.getvalue() == blob  # exactly the file before the damage


def test_oki_repair_ignores_block_align():
    """Dialogic files may say block_align 256; OKI has no blocks and the reader ignores it."""
    data = bytes(wav.read(io.BytesIO(closed("oki", 8000, 1, 1000)))[0].size // 2 * [0x17])
    blob = riff(chunk(b"fmt ", fmt_body(0x17, 1, 8000, 4, 256)), chunk(b"data", data))
    stale = set_u32(blob, data_size_at(blob), len(data) - 3)  # a crash: the header says less
    f = io.BytesIO(stale)
    result = wav.repair(f)
    assert (
        result.changed
        and result.before.frames == 2 * (len(data) - 3)
        and result.frames == 2 * len(data)
    )


def test_ima_header_never_finished_keeps_the_short_block():
    """A header that says more than the file holds: repair keeps every whole group of the
    cut block, as many frames as the reader gets from a short last block."""
    blob = crashed("ima", 8000, 1, 1500, 100)
    at = data_size_at(blob)
    short = at + 4 + 256 + 4 + 49 * 4  # one block, then a short one of 49 groups
    f = io.BytesIO(set_u32(blob[:short], at, 0xFFFFFFFF))  # the streaming placeholder
    assert wav.read(io.BytesIO(f.getvalue()))[1].frames == 505 + 1 + 49 * 8 == 898
    result = wav.repair(f)
    assert result.changed and result.frames == 898
    assert wav.read(io.BytesIO(f.getvalue()))[1].frames == 898
    f = io.BytesIO(set_u32(blob[: short + 2], at, 2 * 256))  # says more; half a group more
    result = wav.repair(f)
    assert result.changed and result.before is None and result.frames == 898
    assert wav.read(io.BytesIO(f.getvalue()))[1].frames == 898


def test_ima_data_ending_inside_a_group_is_readable_after_repair():
    blob = crashed("ima", 8000, 1, 1500, 1500)
    cut = blob[:-3]
    cut = set_u32(cut, data_size_at(cut), len(cut) - data_size_at(cut) - 4)
    with pytest.raises(WavError, match="truncated"):
        wav.read(io.BytesIO(cut))
    f = io.BytesIO(cut)
    result = wav.repair(f)
    assert result.changed
    y, meta = wav.read(io.BytesIO(f.getvalue()))
    assert meta.frames == result.frames == 505 + 1 + 62 * 8  # 2 blocks less 3 bytes


def test_ima_cut_inside_a_group_with_chunks_after_is_refused():
    parts = dict(split(closed("ima", 8000, 1, 1000)))
    blob = join(
        chunk(b"fmt ", parts[b"fmt "]),
        chunk(b"fact", parts[b"fact"]),
        chunk(b"data", parts[b"data"][:-2]),
        LIST,
    )
    f = io.BytesIO(blob)
    with pytest.raises(WavError, match="would have to move"):
        wav.repair(f)
    assert f.getvalue() == blob


def test_nothing_to_repair_in_a_whole_file(tmp_path):
    for fmt in FORMATS:
        blob = closed(fmt, 8000, 1, 777)
        f = io.BytesIO(blob)
        result = wav.repair(f)
        assert not result.changed and result.note == "nothing to repair" and f.getvalue() == blob
        assert result.before == wav.info(io.BytesIO(blob))


def test_unrepairable_files_raise_a_clear_error(tmp_path):
    p = tmp_path / "junk.wav"
    p.write_bytes(b"not a wav at all, not even close")
    with pytest.raises(WavError, match="not a WAV file"):
        wav.repair(p)
    p.write_bytes(closed("alaw", 8000, 1, 100)[:30])  # cut inside the fmt chunk
    with pytest.raises(WavError, match="truncated"):
        wav.repair(p)


# --- file objects ---------------------------------------------------------------------------


def test_repair_accepts_a_bytesio_and_an_open_file(tmp_path):
    blob = crashed("alaw", 8000, 1, 7001, 4000)
    buf = io.BytesIO(blob)
    meta = wav.repair(buf)
    assert meta.frames == 7001 and meta.changed and meta.before.frames == 4000 and not buf.closed
    assert wav.read(io.BytesIO(buf.getvalue()))[1].frames == 7001
    p = tmp_path / "c.wav"
    p.write_bytes(blob)
    with open(p, "r+b") as f:
        assert wav.repair(f).frames == 7001
        assert not f.closed
    assert p.read_bytes() == buf.getvalue()


def test_repair_rejects_file_objects_it_cannot_rewrite(tmp_path):
    p = tmp_path / "c.wav"
    p.write_bytes(crashed("alaw", 8000, 1, 7001, 4000))
    with open(p, "rb") as f, pytest.raises(ValueError, match="writable"):
        wav.repair(f)
    with pytest.raises(TypeError, match="not bytes"):
        wav.repair(p.read_bytes())
    assert wav.info(p).frames == 4000


# --- other decoders agree -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["alaw", "ulaw", "s16bit", "ima"])
def test_repaired_files_decode_the_same_in_ffmpeg_and_sox(tmp_path, ffmpeg, sox, fmt):
    p = tmp_path / f"{fmt}.wav"
    blob = crashed(fmt, 8000, 1, 5000, 1000)
    p.write_bytes(blob[:-7])
    wav.repair(p)
    ours, meta = wav.read(p)
    assert meta.frames > 4000
    theirs = ffmpeg_decode(p)
    assert theirs.size == ours.size
    if fmt == "ima":  # ffmpeg's IMA decoder rounds its own way (see test_adpcm_interop)
        assert np.abs(theirs.astype(np.int32) - ours).max() <= 64
    else:
        np.testing.assert_array_equal(theirs, ours)
    np.testing.assert_array_equal(sox_decode(p), ours)


@pytest.mark.parametrize("fmt", ["alaw", "s16bit", "u8bit", "ima"])
def test_repaired_files_decode_the_same_in_soundfile(tmp_path, soundfile, fmt):
    p = tmp_path / f"{fmt}.wav"
    p.write_bytes(crashed(fmt, 8000, 1, 5000, 1000)[:-5])
    wav.repair(p)
    ours, meta = wav.read(p)
    theirs, rate = soundfile.read(str(p), dtype="int16")
    assert rate == 8000
    # libsndfile decodes a short last IMA block as a whole one (frames past the data)
    assert theirs.size == ours.size if fmt != "ima" else theirs.size >= ours.size
    np.testing.assert_array_equal(theirs[: ours.size], ours)


class _MinimalFile:
    """A file object with only read/write/seek/tell/truncate (like an encrypting wrapper)."""

    def __init__(self, blob: bytes):
        self._b = io.BytesIO(blob)
        self.read, self.write, self.seek = self._b.read, self._b.write, self._b.seek
        self.tell, self.truncate = self._b.tell, self._b.truncate

    def value(self) -> bytes:
        return self._b.getvalue()


def test_repair_through_a_minimal_file_object():
    f = _MinimalFile(crashed("ima", 8000, 1, 3000, 600)[:-10])
    result = wav.repair(f)
    assert result.changed and result.frames > 2000
    assert wav.read(io.BytesIO(f.value()))[1].frames == result.frames


@pytest.mark.parametrize("fmt", ["alaw", "ima", "s16bit"])
def test_a_stale_size_then_a_list_cut_by_the_end_keeps_the_list_out_of_the_audio(fmt):
    """Found by hypothesis: the data size of the last header refresh, more audio, then a
    LIST chunk that the end of the file cuts (anywhere, even inside its size field): the
    LIST bytes must never become audio."""
    for cut in range(1, len(LIST)):
        blob = bytearray(closed(fmt, 8000, 1, 1234) + LIST)
        blob[54] = 0  # the data size of an earlier refresh
        check_repair(f"{fmt} cut {cut}", bytes(blob[:-cut]))
