"""The documentation builds with warnings as errors, and every example in it (the guide
pages and the docstrings autodoc pulls in) runs and prints what it shows.  Both builders
run in a subprocess, as CI runs them; without Sphinx the test skips locally and fails
under CI=true (``pip install ".[test]"`` installs it)."""

from __future__ import annotations

import importlib
import inspect
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import missing

DOCS = Path(__file__).resolve().parent.parent / "docs"

# Modules whose public functions, classes and methods all have numpydoc docstrings; add a
# module here once its docstrings are complete, so they stay complete.
NUMPYDOC_COMPLETE = [
    "recorder.cipher",
    "recorder.codecs",
    "recorder.files",
    "recorder.publish",
    "recorder.types",
    "recorder.sip.call",
    "recorder.sip.message",
    "recorder.sip.ports",
    "recorder.sip.sdp",
    "recorder.sip.server",
    "recorder.sip.transaction",
    "recorder.sip.uas",
]


def sphinx_build(builder: str, out: Path, *flags: str) -> subprocess.CompletedProcess:
    if not (DOCS / "conf.py").is_file():
        pytest.skip("not running from a source checkout (no docs/)")
    try:
        import sphinx  # noqa: F401
    except ImportError:
        missing("sphinx (pip install '.[docs]')")
    env = dict(os.environ, CALLRECORDER_MEDIA_ROOT=str(out / "media"), HOME=str(out))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-q",
            *flags,
            "-b",
            builder,
            "-d",
            str(out / "doctrees"),
            str(DOCS),
            str(out / builder),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=out,
    )


@pytest.mark.slow
def test_html_builds_without_warnings(tmp_path):
    proc = sphinx_build("html", tmp_path, "-W", "--keep-going")
    assert proc.returncode == 0, proc.stderr[-5000:]
    html = (tmp_path / "html" / "api" / "cipher.html").read_text(encoding="utf-8")
    assert "AesGcmCipher" in html and "Parameters" in html  # autodoc + napoleon ran
    assert (tmp_path / "html" / "design.html").is_file()


@pytest.mark.slow
def test_doctest_examples_run(tmp_path):
    proc = sphinx_build("doctest", tmp_path)
    report = (tmp_path / "doctest" / "output.txt").read_text(encoding="utf-8")
    assert proc.returncode == 0, report[-5000:] + proc.stderr[-3000:]
    assert " 0 failures in tests" in report
    # the examples are really there: the guide alone has dozens
    ran = re.search(r"^\s*(\d+) tests$", report, re.M)
    assert ran is not None and int(ran.group(1)) >= 80, report


def public_api(module):
    """(qualified name, function or class) for every public name a module defines, and
    the public methods and properties of its classes (the io file interface aside)."""
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        yield name, obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or any(attr in vars(b) for b in (io.RawIOBase, io.IOBase)):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member) or isinstance(member, property):
                    yield f"{name}.{attr}", member


@pytest.mark.parametrize("module_name", NUMPYDOC_COMPLETE)
def test_public_api_has_numpydoc_sections(module_name):
    module = importlib.import_module(module_name)
    faults = []
    for name, obj in public_api(module):
        doc = inspect.getdoc(obj) or ""
        if not doc.strip():
            faults.append(f"{name}: no docstring")
        elif inspect.isfunction(obj):
            params = [p for p in inspect.signature(obj).parameters if p not in ("self", "cls")]
            if params and not re.search(r"^Parameters\n-{10}$", doc, re.M):
                faults.append(f"{name}: no Parameters section")
    assert not faults, faults
