"""Where recordings go: the media root, safe relative file names, and the
temporary-name-then-rename life of a recording file.

A recording's ``filename`` is relative to the media root.  The root is, in order:

1. the ``media_root=`` given to :class:`recorder.CallChannel`;
2. the root set with :func:`set_media_root`;
3. the environment variable ``CALLRECORDER_MEDIA_ROOT``;
4. ``$XDG_DATA_HOME/callrecorder/media`` (``~/.local/share/callrecorder/media``).

Names are taken as given (no extension is added).  Absolute paths, ``..`` or ``.``
components, empty components, backslashes, NUL and other control characters raise
ValueError; so do names longer than the file system allows (a component over
``NAME_MAX`` bytes, usually 255, or the whole path over ``PATH_MAX``, usually 4096) and
names more than :data:`MAX_DEPTH` folders deep.

A recording never leaves the media root, and **no folder under the media root may be a
symbolic link** (the root itself may be one): such a name raises ValueError naming the
link.  The final name itself may be an existing symbolic link: publishing replaces the
link, it never writes through it.  A final name that is a folder raises ValueError.

While a recording runs it is written to ``.<name>.<random>.part`` in the same folder;
when it completes the file is flushed, fsynced, (encrypted,) and renamed to its final
name, so a file under its final name is always complete.  A process killed mid-recording
leaves the ``.part`` file, whose header is rewritten about once a second; ``recorder
repair`` (or :func:`recorder.wav.repair`) makes it whole.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat

__all__ = ["MAX_DEPTH", "PART_SUFFIX", "Folder", "check_name", "media_root", "set_media_root"]

PART_SUFFIX = ".part"
MAX_DEPTH = 64  # folders a name may go down (a recording tree needs a handful)
_NAME_MAX = 255  # when the file system cannot tell (POSIX: NAME_MAX, PATH_MAX)
_PATH_MAX = 4096
_RETRIES = 16  # a folder that keeps appearing and vanishing while we walk
_root_override: str | None = None

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_WALK_FLAGS = _DIR_FLAGS | getattr(os, "O_NOFOLLOW", 0)
_TEMP_FLAGS = (
    os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _default_root() -> str:
    env = os.environ.get("CALLRECORDER_MEDIA_ROOT")
    if env:
        return env
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(data, "callrecorder", "media")


def media_root() -> str:
    """The current default media root.

    Returns
    -------
    str
        The absolute path: the root set with :func:`set_media_root`, else
        ``CALLRECORDER_MEDIA_ROOT``, else the XDG default.

    Examples
    --------
    >>> import os
    >>> from recorder import files
    >>> os.path.isabs(files.media_root())
    True
    """
    return os.path.abspath(_root_override or _default_root())


def set_media_root(path: str | os.PathLike[str] | None) -> None:
    """Set the default media root for channels created without ``media_root=``.

    Parameters
    ----------
    path : str, os.PathLike or None
        The new root; None goes back to the environment / XDG default.

    Examples
    --------
    >>> import tempfile
    >>> from recorder import files
    >>> tmp = tempfile.TemporaryDirectory()
    >>> files.set_media_root(tmp.name)
    >>> files.media_root() == tmp.name
    True
    >>> files.set_media_root(None); tmp.cleanup()
    """
    global _root_override
    _root_override = None if path is None else os.fspath(path)


def _limit(root: str | None, name: str, default: int) -> int:
    probe = root
    while probe:  # the deepest existing folder can tell
        try:
            return os.pathconf(probe, name)
        except (OSError, ValueError):
            parent = os.path.dirname(probe)
            probe = parent if parent != probe else None
    return default


def check_name(filename: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> str:
    """Validate a recording file name: relative, no escapes, within the file system's
    length limits under ``root`` (see the module documentation for the rules).

    Parameters
    ----------
    filename : str or os.PathLike
        The name, relative to the media root, ``/`` between folders.
    root : str or os.PathLike, optional
        The media root whose file system sets the length limits; default: the usual
        limits (255-byte components, 4096-byte paths).

    Returns
    -------
    str
        The name, as str.

    Raises
    ------
    TypeError
        ``filename`` is not a str or path.
    ValueError
        The name is refused; the message names the problem.

    Examples
    --------
    >>> from recorder import files
    >>> files.check_name("calls/a.wav")
    'calls/a.wav'
    >>> files.check_name("../a.wav")
    Traceback (most recent call last):
    ...
    ValueError: filename '../a.wav' has an empty, '.' or '..' component
    """
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
        raise ValueError(
            f"filename {filename!r} is absolute; it must be relative to the media root"
        )
    try:
        encoded = filename.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"filename {filename!r} is not valid Unicode (a lone surrogate)") from None
    parts = filename.split("/")
    shown = filename if len(filename) <= 80 else filename[:60] + "..." + filename[-12:]
    if len(parts) - 1 > MAX_DEPTH:
        raise ValueError(
            f"filename {shown!r} is {len(parts) - 1} folders deep; at most "
            f"{MAX_DEPTH} are allowed"
        )
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"filename {shown!r} has an empty, '.' or '..' component")
    root = os.path.abspath(root) if root is not None else None
    name_max = _limit(root, "PC_NAME_MAX", _NAME_MAX)
    for part in parts:
        if len(part.encode("utf-8")) > name_max:
            raise ValueError(
                f"filename {shown!r} has a component of {len(part.encode('utf-8'))} "
                f"bytes; the file system allows at most NAME_MAX={name_max}"
            )
    path_max = _limit(root, "PC_PATH_MAX", _PATH_MAX)
    total = len(encoded) + (len(os.fsencode(root)) + 1 if root else 0)
    if total >= path_max:
        raise ValueError(
            f"filename {shown!r} makes a path of {total} bytes under the media "
            f"root; the file system allows less than PATH_MAX={path_max}"
        )
    if parts[-1].endswith(PART_SUFFIX) and parts[-1].startswith("."):
        raise ValueError(f"filename {shown!r} looks like a temporary recording file")
    return filename


def temp_name_for(base: str) -> str:
    """A fresh temporary name for a recording in progress.

    Parameters
    ----------
    base : str
        The final file name (one component).

    Returns
    -------
    str
        ``.<base>.<random>.part``, short enough for any legal name (a long ``base`` is
        cut in it).

    Examples
    --------
    >>> from recorder import files
    >>> name = files.temp_name_for("a.wav")
    >>> name.startswith(".a.wav."), name.endswith(".part")
    (True, True)
    """
    short = base.encode("utf-8")[:96].decode("utf-8", "ignore")
    return f".{short}.{secrets.token_hex(4)}{PART_SUFFIX}"


def _open_child(parent: int, part: str, filename: str) -> int:
    """Open (creating if missing) the folder ``part`` inside the open folder ``parent``,
    never following a symbolic link."""
    for _ in range(_RETRIES):
        try:
            return os.open(part, _WALK_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise
            try:
                st = os.stat(part, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone meanwhile: look again
            if stat.S_ISLNK(st.st_mode):
                raise ValueError(
                    f"filename {filename!r}: {part!r} is a symbolic link; folders "
                    f"under the media root must not be symbolic links (they "
                    f"could lead outside it)"
                ) from None
            if not stat.S_ISDIR(st.st_mode):  # a file in the way: an I/O error
                raise NotADirectoryError(
                    errno.ENOTDIR, f"{part!r} of {filename!r} is not a folder"
                ) from None
            continue  # a folder again meanwhile: look again
        try:
            os.mkdir(part, 0o777, dir_fd=parent)
        except FileExistsError:
            pass  # made by someone else meanwhile
    raise ValueError(f"filename {filename!r}: folder {part!r} keeps changing while it is opened")


class Folder:
    """The open folder of one recording under the media root, reached without
    following any symbolic link (see the module documentation).  Every file operation
    of the recording goes through it by name relative to the open folder, so no path is
    resolved twice.  Missing folders are created.  Close it with :meth:`close`.

    Parameters
    ----------
    root : str or os.PathLike
        The media root (it may itself be a symbolic link).
    filename : str
        The recording's name relative to ``root`` (see :func:`check_name`).

    Attributes
    ----------
    filename : str
        The checked name.
    base : str
        Its last component: the final file's name in this folder.
    path : str
        The final file's path (for messages and results only).
    fd : int
        The open folder (-1 once closed).

    Raises
    ------
    ValueError
        The name is refused: a bad name, a symbolic link on the way, or a final name
        that is a folder.
    OSError
        The folders cannot be created or opened (a file in the way, permissions, disk
        full).

    Examples
    --------
    >>> import tempfile
    >>> from recorder.files import Folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = Folder(tmp.name, "calls/2026/a.wav")
    >>> name, f = folder.create_temp()
    >>> f.write(b"RIFF")
    4
    >>> f.close()
    >>> folder.replace(name, folder.base)
    >>> folder.base, folder.exists("a.wav"), folder.size("a.wav")
    ('a.wav', True, 4)
    >>> folder.close(); tmp.cleanup()
    """

    def __init__(self, root: str | os.PathLike[str], filename: str) -> None:
        name = check_name(filename, root)
        real_root = os.path.realpath(os.fspath(root))  # resolved once, trusted
        *folders, self.base = name.split("/")
        self.filename = name
        self.dirname = os.path.join(os.path.abspath(os.fspath(root)), *folders)
        self.path = os.path.join(self.dirname, self.base)  # for messages and results
        os.makedirs(real_root, exist_ok=True)
        fd = os.open(real_root, _DIR_FLAGS)
        try:
            for part in folders:  # iterative: one open folder at a time
                child = _open_child(fd, part, name)
                os.close(fd)
                fd = child
            try:
                st = os.stat(self.base, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                if stat.S_ISDIR(st.st_mode):
                    raise ValueError(f"filename {name!r} names a directory")
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def path_of(self, name: str) -> str:
        """The path of a file of this folder, for messages and results only (file
        operations go through the open folder, never through this path).

        Parameters
        ----------
        name : str
            A file name in this folder.

        Returns
        -------
        str
            The folder's path under the media root, joined with ``name``.

        Examples
        --------
        >>> import tempfile
        >>> from recorder.files import Folder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = Folder(tmp.name, "calls/a.wav")
        >>> folder.path_of("a.wav") == folder.path
        True
        >>> folder.close(); tmp.cleanup()
        """
        return os.path.join(self.dirname, name)

    def create_temp(self, name: str | None = None):
        """Create a fresh temporary file for the recording.

        Parameters
        ----------
        name : str, optional
            The temporary name to use; default: a fresh :func:`temp_name_for` the final
            name.

        Returns
        -------
        tuple of (str, file)
            The temporary file's name and the file, open for reading and writing,
            unbuffered.

        Raises
        ------
        FileExistsError
            ``name`` exists already (or no fresh name was free).
        OSError
            The file cannot be created.

        Examples
        --------
        >>> import tempfile
        >>> from recorder.files import Folder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = Folder(tmp.name, "calls/a.wav")
        >>> name, f = folder.create_temp()
        >>> name.startswith(".a.wav."), name.endswith(".part")
        (True, True)
        >>> f.close()
        >>> folder.close(); tmp.cleanup()
        """
        if name is not None:
            fd = os.open(name, _TEMP_FLAGS, 0o666, dir_fd=self.fd)
            return name, os.fdopen(fd, "w+b", buffering=0)
        for _ in range(_RETRIES):
            name = temp_name_for(self.base)
            try:
                fd = os.open(name, _TEMP_FLAGS, 0o666, dir_fd=self.fd)
            except FileExistsError:
                continue
            return name, os.fdopen(fd, "w+b", buffering=0)
        raise FileExistsError(errno.EEXIST, "no free temporary name", self.path)

    def open(self, name: str, mode: str = "rb"):
        """Open an existing file of this folder, never through a symbolic link.

        Parameters
        ----------
        name : str
            A file name in this folder.
        mode : {'rb', 'r+b'}, optional
            Read only (the default), or read and write.

        Returns
        -------
        file
            The open binary file.

        Raises
        ------
        KeyError
            ``mode`` is not one of those.
        OSError
            The file does not exist, is a symbolic link, or cannot be opened.

        Examples
        --------
        >>> import tempfile
        >>> from recorder.files import Folder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = Folder(tmp.name, "calls/a.wav")
        >>> name, f = folder.create_temp()
        >>> f.write(b"data")
        4
        >>> f.close()
        >>> with folder.open(name) as g:
        ...     g.read()
        b'data'
        >>> folder.close(); tmp.cleanup()
        """
        modes = {"rb": os.O_RDONLY, "r+b": os.O_RDWR}
        if mode not in modes:
            raise ValueError(f"mode must be 'rb' or 'r+b', got {mode!r}")
        flags = modes[mode]
        fd = os.open(
            name, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), dir_fd=self.fd
        )
        return os.fdopen(fd, mode)

    def exists(self, name: str) -> bool:
        """Whether this folder has an entry ``name`` (a symbolic link counts, not
        followed).

        Parameters
        ----------
        name : str
            A file name in this folder.

        Returns
        -------
        bool
            True if the entry exists.

        Examples
        --------
        >>> import tempfile
        >>> from recorder.files import Folder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = Folder(tmp.name, "calls/a.wav")
        >>> folder.exists("a.wav")
        False
        >>> folder.close(); tmp.cleanup()
        """
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except OSError:
            return False
        return True

    def size(self, name: str) -> int:
        """The size in bytes of a file of this folder (a symbolic link is not followed).

        Parameters
        ----------
        name : str
            A file name in this folder.

        Returns
        -------
        int
            Its size in bytes.

        Raises
        ------
        OSError
            There is no such file.

        Examples
        --------
        >>> import tempfile
        >>> from recorder.files import Folder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = Folder(tmp.name, "calls/a.wav")
        >>> name, f = folder.create_temp()
        >>> f.close()
        >>> folder.size(name)
        0
        >>> folder.close(); tmp.cleanup()
        """
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_size

    def replace(self, src: str, dst: str) -> None:
        """Rename a file of this folder, replacing any file of the new name, and make
        the rename durable (the folder is synced where the file system allows).

        Parameters
        ----------
        src : str
            The file to rename.
        dst : str
            Its new name in this folder.

        Raises
        ------
        OSError
            The rename failed (``src`` missing, ``dst`` a folder, ...).

        Examples
        --------
        >>> import tempfile
        >>> from recorder.files import Folder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = Folder(tmp.name, "calls/a.wav")
        >>> name, f = folder.create_temp()
        >>> f.close()
        >>> folder.replace(name, folder.base)
        >>> folder.exists(name), folder.exists(folder.base)
        (False, True)
        >>> folder.close(); tmp.cleanup()
        """
        os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        try:
            os.fsync(self.fd)
        except OSError:  # best effort on file systems without it
            pass

    def unlink(self, name: str, *, quiet: bool = False) -> None:
        """Remove a file of this folder.

        Parameters
        ----------
        name : str
            The file to remove.
        quiet : bool, optional
            Ignore a failure (the file is gone already, ...); default False.

        Raises
        ------
        OSError
            The file could not be removed, unless ``quiet``.

        Examples
        --------
        >>> import tempfile
        >>> from recorder.files import Folder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = Folder(tmp.name, "calls/a.wav")
        >>> name, f = folder.create_temp()
        >>> f.close()
        >>> folder.unlink(name)
        >>> folder.exists(name)
        False
        >>> folder.unlink(name, quiet=True)
        >>> folder.close(); tmp.cleanup()
        """
        try:
            os.unlink(name, dir_fd=self.fd)
        except OSError:
            if not quiet:
                raise

    def close(self) -> None:
        """Close the open folder; closing again does nothing.

        Examples
        --------
        >>> import tempfile
        >>> from recorder.files import Folder
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = Folder(tmp.name, "calls/a.wav")
        >>> folder.close()
        >>> folder.fd
        -1
        >>> folder.close(); tmp.cleanup()
        """
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self):
        try:
            self.close()
        except (AttributeError, OSError):
            pass
