"""Shared test configuration.

* Slow, exhaustive tests are marked ``@pytest.mark.slow``: skipped in a plain local run,
  always run when ``CI=true`` or with ``--runslow``.
* Real tools (ffmpeg, sox, soundfile, spandsp, ...) are required through the fixtures
  below: a missing tool skips locally but FAILS under ``CI=true``, so CI can never pass
  by skipping the interop tests.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import warnings

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    if IN_CI or config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (always run when CI=true)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def missing(what: str):
    """Skip locally, fail in CI."""
    if IN_CI:
        pytest.fail(f"required test tool missing in CI: {what}")
    pytest.skip(f"{what} not available")


def need_exe(name: str) -> str:
    path = shutil.which(name)
    if not path:
        missing(f"executable {name!r}")
    return path


@pytest.fixture(scope="session")
def ffmpeg():
    return need_exe("ffmpeg")


@pytest.fixture(scope="session")
def sox():
    return need_exe("sox")


@pytest.fixture(scope="session")
def soundfile():
    try:
        import soundfile as sf
    except (ImportError, OSError) as e:
        missing(f"soundfile ({e})")
    return sf


@pytest.fixture(scope="session")
def audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop as mod
        except ImportError:
            missing("audioop (stdlib below 3.13, audioop-lts above)")
    return mod


@pytest.fixture(scope="session")
def spandsp():
    name = ctypes.util.find_library("spandsp")
    for candidate in filter(None, (name, "libspandsp.so.2", "libspandsp.so")):
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    missing("libspandsp (Debian libspandsp-dev)")


@pytest.fixture
def full_disk(tmp_path):
    """A real 64 KiB filesystem (tmpfs) that fills up: needs root and mount rights; skips
    where the machine does not allow mounting (an environment limit, not a missing tool)."""
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
