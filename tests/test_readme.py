"""The README's Python blocks run as written, in order, as a new user would paste them
into one session, in a fresh temporary folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)


def test_readme_has_python_blocks():
    assert len(python_blocks()) >= 6


def test_readme_python_blocks_run_in_order(tmp_path):
    script = "\n\n".join(python_blocks())
    (tmp_path / "tour.py").write_text(script, encoding="utf-8")
    env = dict(os.environ, CALLRECORDER_MEDIA_ROOT=str(tmp_path / "media"), HOME=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "tour.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the tour wrote what it says it writes, and nothing outside the temporary folder
    assert (tmp_path / "call.wav").is_file()
    assert any((tmp_path / "calls").rglob("*.wav"))
