"""The lint gates of CONTRIBUTING.md run as tests on the repository: ruff (rules pinned in
pyproject.toml), ruff format, cython-lint over the Cython sources and mypy over the
package.  The tools come from the ``test`` extra (same pins as .pre-commit-config.yaml);
a missing tool fails under CI=true and skips locally."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import missing

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not (ROOT / "pyproject.toml").is_file() or not (ROOT / "src" / "_codecs").is_dir(),
    reason="not run from a source checkout",
)


def _exe(name: str) -> list[str]:
    """The console script ``name``: this interpreter's own first, else the one on PATH."""
    scripts = Path(sysconfig.get_path("scripts")) / name
    if scripts.is_file():
        return [str(scripts)]
    found = shutil.which(name)
    if found is None:
        missing(f"{name} (pip install '.[test]')")
    return [found]


def _check(cmd: list[str]) -> None:
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}"


def test_ruff_check_is_clean():
    _check([*_exe("ruff"), "check", "--no-cache", "."])


def test_ruff_format_leaves_the_tree_unchanged():
    _check([*_exe("ruff"), "format", "--check", "--no-cache", "."])


def test_cython_lint_is_clean():
    _check([*_exe("cython-lint"), "src/_codecs"])


def test_mypy_is_clean(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        missing("mypy (pip install '.[test]')")
    # settings in pyproject.toml [tool.mypy]; a fresh cache so the result is this tree's
    _check([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), "src/recorder"])
