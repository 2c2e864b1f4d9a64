"""One format registry (codecs.REGISTRY) and one helper for each check: every format name
maps to the same codec everywhere, aliases ('s16' = 's16bit') work everywhere, every
recorder format writes and reads back, the rate / path / mono / DTMF helpers have one
home, and no module of the package imports another in a cycle."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from signals import dtmf, speechlike

import recorder
from recorder import CallChannel, codecs, dsp, resampling, vox, wav
from recorder.channel import DTMF_DIGITS
from recorder.filerecorder import RECORD_FORMATS, RECORD_RATES

PKG = Path(recorder.__file__).resolve().parent
X = speechlike(0.4)


# --- the registry -------------------------------------------------------------------------


def test_every_view_of_the_registry_agrees():
    assert (
        codecs.FORMATS
        == tuple(codecs.REGISTRY)
        == ("alaw", "ulaw", "oki", "ima", "s16bit", "u8bit")
    )
    assert codecs.available_formats() == codecs.FORMATS
    assert tuple(wav.WRITE_FORMATS) == codecs.FORMATS
    assert RECORD_FORMATS == codecs.names("record") == codecs.FORMATS
    assert RECORD_RATES == codecs.RECORD_RATES
    assert tuple(vox.FORMATS) == codecs.names("raw") == ("oki", "ima")
    assert codecs.names("push") == ("alaw", "ulaw", "s16bit")
    for name, entry in codecs.REGISTRY.items():
        assert entry.name == name == entry.wav.name
        assert wav.WRITE_FORMATS[name] is entry.wav
        assert codecs.lookup(name) is entry
        assert type(codecs.get_encoder(name)) is type(entry.encoder())
        assert type(codecs.get_decoder(name)) is type(entry.decoder())
        if entry.raw:
            assert vox.FORMATS[name] == (entry.encoder, entry.decoder)
    # the views are read-only: nothing registers formats behind the registry's back
    for view in (codecs.REGISTRY, codecs.ALIASES, wav.WRITE_FORMATS, vox.FORMATS):
        with pytest.raises(TypeError):
            view["mp3"] = None


@pytest.mark.parametrize("alias, name", [("s16", "s16bit"), ("u8", "u8bit")])
def test_aliases_are_the_same_format_everywhere(tmp_path, alias, name):
    assert codecs.ALIASES[alias] == name
    assert codecs.lookup(alias) is codecs.REGISTRY[name]
    a, b = codecs.get_encoder(alias), codecs.get_encoder(name)
    np.testing.assert_array_equal(a.encode(X), b.encode(X))
    np.testing.assert_array_equal(
        codecs.get_decoder(alias).decode(b.encode(X)), codecs.get_decoder(name).decode(b.encode(X))
    )
    info = wav.write(tmp_path / "alias.wav", X, fmt=alias)
    wav.write(tmp_path / "name.wav", X, fmt=name)
    assert info.format == name
    assert (tmp_path / "alias.wav").read_bytes() == (tmp_path / "name.wav").read_bytes()
    with wav.Writer(io.BytesIO(), alias) as w:
        assert w.format == name


def test_s16_and_s16bit_push_and_record_alike(tmp_path):
    root = tmp_path / "media"
    x = speechlike(0.5)
    for codec in ("s16", "s16bit"):
        ch = CallChannel(media_root=root, codec=codec)
        ch.ring()
        ch.answer()
        ch.FileRecorder.start(f"{codec}.wav", file_format=codec)  # alias as file format too
        ch.push(x[:1000])
        ch.push(x[1000:], "s16bit" if codec == "s16" else "s16")
        ch.FileRecorder.stop()
        y, info = wav.read(root / f"{codec}.wav")
        assert info.format == "s16bit"
        np.testing.assert_array_equal(y, x)
    assert (root / "s16.wav").read_bytes() == (root / "s16bit.wav").read_bytes()
    ch = CallChannel(media_root=root)
    for bad in ("u8bit", "oki", "g729", 16):
        with pytest.raises(ValueError, match="expected one of 'alaw', 'ulaw' or 's16bit'"):
            ch.push(b"\0\0", bad)


def test_the_cli_takes_aliases_too(tmp_path):
    src = tmp_path / "call.wav"
    wav.write(src, X, fmt="alaw")

    def run(*a):
        return subprocess.run(
            [sys.executable, "-m", "recorder", *map(str, a)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    assert run("convert", src, "-o", tmp_path / "conv", "--format", "s16", "-q").returncode == 0
    assert wav.info(tmp_path / "conv" / "call.wav").format == "s16bit"
    assert run("record", src, tmp_path / "rec.wav", "--format", "s16").returncode == 0
    y, info = wav.read(tmp_path / "rec.wav")
    assert info.format == "s16bit"
    np.testing.assert_array_equal(y, wav.read(src)[0])
    bad = run("convert", src, "-o", tmp_path / "c2", "--format", "mp3")
    assert bad.returncode == 2 and "unknown format 'mp3'; expected one of 'alaw'" in bad.stderr


def test_unknown_names_are_value_errors_listing_the_names():
    for bad in ("mp3", "S16", "", 16, None, b"alaw"):
        with pytest.raises(
            ValueError, match="expected one of 'alaw', 'ulaw', 'oki', 'ima', 's16bit' or 'u8bit'"
        ):
            codecs.get_encoder(bad)
        with pytest.raises(ValueError, match="unknown format"):
            wav.Writer(io.BytesIO(), bad)
    with pytest.raises(ValueError, match="cannot be written as raw files; expected 'oki' or 'ima'"):
        vox.write(io.BytesIO(), X, fmt="alaw")
    with pytest.raises(ValueError, match="need must be"):
        codecs.lookup("alaw", need="stereo")


@pytest.mark.parametrize("fmt", RECORD_FORMATS)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("target", ["path", "file"])
def test_every_recorder_format_writes_and_reads_back(tmp_path, fmt, channels, target):
    x = X if channels == 1 else np.stack([X, X[::-1]], axis=1)
    dst = tmp_path / "x.wav" if target == "path" else io.BytesIO()
    written = wav.write(dst, x, fmt=fmt, rate=8000)
    src = dst if target == "path" else io.BytesIO(dst.getvalue())
    y, info = wav.read(src)
    assert isinstance(written, wav.Info)  # what the annotation says
    assert written == info == wav.info(src)
    assert (info.format, info.rate, info.channels, info.frames) == (fmt, 8000, channels, X.size)
    assert y.shape == x.shape
    entry = codecs.lookup(fmt)
    if entry.wav.bytes_per_sample:  # sample codecs: exact round trip
        enc = entry.encoder()
        coded = np.concatenate([enc.encode(x.reshape(-1)), enc.flush()])
        np.testing.assert_array_equal(y.reshape(-1), entry.decoder().decode(coded))
    else:  # ADPCM: the same signal, coded
        err = y.astype(float) - x
        snr = 10 * np.log10(np.sum(x.astype(float) ** 2) / np.sum(err**2))
        assert snr > 15, snr


# --- one helper for each check ------------------------------------------------------------


def test_rate_checks_are_one_rule():
    # the same kinds of bad rate give the same errors in wav, dsp and resampling
    makers = {
        "wav": lambda r: wav.Writer(io.BytesIO(), "alaw", r),
        "dsp": lambda r: dsp.DtmfDetector(rate=r),
        "multi": lambda r: dsp.MultiDetector(2, rate=r),
        "resampling": lambda r: resampling.Resampler(r, 8000),
    }
    for make in makers.values():
        for bad in ("8000", None, True, np.bool_(True), [8000]):
            with pytest.raises(TypeError, match="rate must be"):
                make(bad)
        for bad in (0, -8000, 2**70, -(2**70)):
            with pytest.raises(ValueError, match="rate must be|is the ratio"):
                make(bad)
        assert make(np.int64(8000)) is not None
    with pytest.raises(ValueError, match="multiple of 200 Hz between 8000 and 48000 Hz, got 8100"):
        dsp.SilenceDetector(rate=8100)
    with pytest.raises(TypeError, match="rate must be an int"):
        wav.write(io.BytesIO(), X, rate=8000.0)
    assert resampling.Resampler(8000.0, 6000).in_rate == 8000  # whole floats: resampling only


def test_channel_counts_are_one_rule():
    for make in (
        lambda c: wav.Writer(io.BytesIO(), "alaw", 8000, c),
        lambda c: dsp.MultiDetector(c),
        lambda c: resampling.MultiResampler(c, 8000, 6000),
    ):
        for bad in (2.0, "2", None, True):
            with pytest.raises(TypeError, match="channels must be an int"):
                make(bad)
        for bad in (0, -1, 2**70):
            with pytest.raises(ValueError, match="channels must be in 1.."):
                make(bad)
        assert make(np.int32(2)) is not None


@pytest.mark.parametrize("module", ["wav", "vox"])
def test_path_or_file_opening_is_one_rule(tmp_path, module):
    read = wav.read if module == "wav" else vox.read
    write = (lambda t: wav.write(t, X)) if module == "wav" else (lambda t: vox.write(t, X))
    for f in (read, write):
        with pytest.raises(
            ValueError, match="is a directory"
        ):  # was a raw IsADirectoryError in vox
            f(tmp_path)
        with pytest.raises(TypeError, match="BytesIO"):
            f(b"RIFF")
        with pytest.raises(TypeError, match="not int"):
            f(3)  # never a file descriptor
    text = tmp_path / "t.txt"
    text.write_text("RIFF")
    with open(text) as t, pytest.raises(TypeError, match="text file"):
        read(t)
    with open(text, "w") as t, pytest.raises(TypeError, match="text file"):
        write(t)
    buf = io.BytesIO()
    write(buf)
    assert not buf.closed  # a file object is left open
    with pytest.raises(FileNotFoundError):
        read(tmp_path / "missing")


def test_mono_8k_conversion_is_one_function(tmp_path):
    stereo = np.stack([X, (X // 3).astype(np.int16)], axis=1)
    mono = resampling.to_mono(stereo, 8000, 8000)
    np.testing.assert_array_equal(mono, np.rint((X.astype(float) + X // 3) / 2).astype(np.int16))
    at_11k = resampling.resample(np.ascontiguousarray(stereo[:, 0]), 8000, 11025)
    np.testing.assert_array_equal(
        resampling.to_mono(at_11k, 11025, 8000), resampling.resample(at_11k, 11025, 8000)
    )
    with pytest.raises(ValueError, match="dimensions"):
        resampling.to_mono(np.zeros((2, 2, 2), np.int16), 8000, 8000)
    # the replayed call and the CLI's detectors hear what to_mono gives
    path = tmp_path / "stereo11k.wav"
    tone = np.stack([dtmf("5", 0.2), dtmf("5", 0.2)], axis=1)
    tone11 = np.stack(
        [resampling.resample(np.ascontiguousarray(tone[:, c]), 8000, 11025) for c in (0, 1)], axis=1
    )
    wav.write(path, tone11, fmt="s16bit", rate=11025)
    ch = CallChannel.replay(path, media_root=tmp_path / "media")
    ch.FileRecorder.record("r.wav", file_format="s16bit")
    y, _ = wav.read(tmp_path / "media" / "r.wav")
    np.testing.assert_array_equal(y, resampling.to_mono(tone11, 11025, 8000))
    out = subprocess.run(
        [sys.executable, "-m", "recorder", "dtmf", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.split()[2] == "5"


def test_dtmf_keys_have_one_definition():
    # every key of dsp.DTMF_KEYS, sent as its row and column tones, is what the compiled
    # detector (its table is in detect_k.h) reports, and what a channel accepts
    low, high = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
    t = np.arange(800) / 8000
    for i, key in enumerate(dsp.DTMF_KEYS):
        x = (
            6000 * (np.sin(2 * np.pi * low[i // 4] * t) + np.sin(2 * np.pi * high[i % 4] * t))
        ).astype(np.int16)
        assert [d.digit for d in dsp.detect_dtmf(x)] == [key]
    assert sorted(DTMF_DIGITS) == sorted(dsp.DTMF_KEYS) and len(set(DTMF_DIGITS)) == 16
    header = PKG.parent / "_codecs" / "detect_k.h"
    if header.exists():  # a source checkout: the C table is the same string
        assert f'"{dsp.DTMF_KEYS}"' in header.read_text()


# --- no import cycles ---------------------------------------------------------------------


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = p
    return mods


def _runtime_imports(tree: ast.AST):
    """Every import statement, at module level or inside functions, except those under
    ``if TYPE_CHECKING:`` (they never run)."""

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                yield from (n for c in child.orelse for n in [c, *walk(c)])
                continue
            yield child
            yield from walk(child)

    return [n for n in walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports.  ``from . import name`` is an edge to
    the submodule ``name`` when there is one, else to the package itself (the package
    root loads its submodules lazily, so importing a name from it is a hidden cycle)."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        out = set()
        for node in _runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names}
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base)
        graph[name] = {m for m in out if m in mods and m != name}
    return graph


def test_no_module_imports_from_the_package_root():
    graph = _import_graph()
    assert len(graph) > 20 and "recorder.wav" in graph and "recorder.sip.uas" in graph
    offenders = sorted(
        m for m, deps in graph.items() if "recorder" in deps and m != "recorder.__main__"
    )
    assert offenders == [], f"import from the submodule, not from the package root: {offenders}"


def _cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


KNOWN_CYCLES: list[list[str]] = []  # none: wav.recover (not cipher) ties the two together


def test_the_import_graph_is_acyclic():
    graph = _import_graph()
    graph.pop("recorder")  # the lazy package root: covered by the test above
    for deps in graph.values():
        deps.discard("recorder")
    assert _cycles(graph) == KNOWN_CYCLES
    # the checker finds a cycle when there is one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(set(_modules()) - {"recorder.__main__"}))
def test_each_module_imports_alone(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, timeout=120)
