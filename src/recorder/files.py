"""Where recordings go: the media root, safe relative file names, and the
temporary-name-then-rename life of a recording file.

A recording's ``filename`` is relative to the media root.  The root is, in order:

1. the ``media_root=`` given to :class:`recorder.CallChannel`;
2. the root set with :func:`set_media_root`;
3. the environment variable ``CALLRECORDER_MEDIA_ROOT``;
4. ``$XDG_DATA_HOME/callrecorder/media`` (``~/.local/share/callrecorder/media``).

Names are taken as given (no extension is added).  Absolute paths, ``..`` or ``.``
components, empty components, backslashes, NUL and other control characters raise
ValueError; so does a name whose real path (after symlinks) leaves the root.
Sub-folders are created as needed.

While a recording runs it is written to ``.<name>.<random>.part`` in the same folder;
when it completes the file is flushed, fsynced, (encrypted,) and renamed to its final
name, so a file under its final name is always complete.  A process killed mid-recording
leaves the ``.part`` file, whose header is rewritten about once a second; ``recorder
repair`` (or :func:`recorder.wav.repair`) makes it whole.
"""

from __future__ import annotations

import os
import secrets

__all__ = ["media_root", "set_media_root", "resolve", "temp_path_for", "PART_SUFFIX"]

PART_SUFFIX = ".part"
_root_override: str | None = None


def _default_root() -> str:
    env = os.environ.get("CALLRECORDER_MEDIA_ROOT")
    if env:
        return env
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "callrecorder", "media")


def media_root() -> str:
    """The current default media root (absolute)."""
    return os.path.abspath(_root_override or _default_root())


def set_media_root(path) -> None:
    """Set the default media root for channels created without ``media_root=``
    (``None`` goes back to the environment / XDG default)."""
    global _root_override
    _root_override = None if path is None else os.fspath(path)


def check_name(filename) -> str:
    """Validate a recording file name (relative, no escapes); returns it as str."""
    if isinstance(filename, os.PathLike):
        filename = os.fspath(filename)
    if not isinstance(filename, str):
        raise TypeError(f"filename must be a str, not {type(filename).__name__}")
    if not filename:
        raise ValueError("filename is empty")
    if any(ord(c) < 32 or c == "\x7f" for c in filename):
        raise ValueError(f"filename {filename!r} contains a control character")
    if "\\" in filename:
        raise ValueError(f"filename {filename!r} contains a backslash; use '/' between folders")
    if filename.startswith("/") or os.path.isabs(filename):
        raise ValueError(f"filename {filename!r} is absolute; it must be relative to the media root")
    parts = filename.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"filename {filename!r} has an empty, '.' or '..' component")
    if parts[-1].endswith(PART_SUFFIX) and parts[-1].startswith("."):
        raise ValueError(f"filename {filename!r} looks like a temporary recording file")
    return filename


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([root, path]) == root


def resolve(filename, root: str | None = None, *, create_dirs: bool = True) -> str:
    """Absolute path of ``filename`` under ``root`` (default :func:`media_root`).
    Raises ValueError if it would leave the root (checked on the real paths before any
    folder is created) or names a directory; creates the folders with ``create_dirs``
    (an OSError from that is left to the caller)."""
    name = check_name(filename)
    root = os.path.abspath(root if root is not None else media_root())
    path = os.path.join(root, *name.split("/"))
    folder = os.path.dirname(path)
    real_root = os.path.realpath(root)
    probe = folder                      # the deepest folder that exists already
    while probe != root and not os.path.lexists(probe):
        probe = os.path.dirname(probe)
    if not _inside(os.path.realpath(probe), real_root):
        raise ValueError(f"filename {filename!r} leaves the media root through a symbolic link")
    if create_dirs:
        os.makedirs(folder, exist_ok=True)
        if not _inside(os.path.realpath(folder), real_root):      # changed meanwhile
            raise ValueError(f"filename {filename!r} leaves the media root through a symbolic link")
    if os.path.isdir(path):
        raise ValueError(f"filename {filename!r} names a directory")
    return path


def temp_path_for(path: str) -> str:
    """A fresh temporary name next to ``path`` for the recording in progress (short
    enough for any legal file name: long names are cut in the temporary one)."""
    folder, base = os.path.split(path)
    short = base.encode("utf-8")[:96].decode("utf-8", "ignore")
    return os.path.join(folder, f".{short}.{secrets.token_hex(4)}{PART_SUFFIX}")


def fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable (best effort on filesystems without it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
