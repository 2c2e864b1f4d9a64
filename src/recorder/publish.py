"""Publishing files: :func:`publish_file`, the one atomic write-fsync-rename step every
finished file goes through (recordings encrypted on publish, ``recorder convert``'s
outputs), and the publisher: a small bounded pool of threads that finish recordings
(close, fsync, encrypt, rename) away from the engine lock.

Each finished recording is one piece of work; up to ``workers`` of them run at once, so
one slow file (a slow disk, a slow cipher) holds up only its own worker: the others keep
publishing, and ``FileRecorder.stop()`` waits only for its own file.  Threads start when
there is work and no idle worker, and end after a minute without work.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Callable
from typing import IO, Protocol

__all__ = ["DEFAULT_WORKERS", "PublishFolder", "Publisher", "publish_file"]

log = logging.getLogger("recorder.publish")

DEFAULT_WORKERS = 4
MAX_WORKERS = 256
_IDLE_SECONDS = 60.0


class PublishFolder(Protocol):
    """The folder a file is published in (:class:`recorder.files.Folder` is one): names
    are relative to it, and ``base`` is the final name."""

    base: str

    def create_temp(self, name: str | None = None) -> tuple[str, IO[bytes]]: ...
    def replace(self, src: str, dst: str) -> None: ...
    def unlink(self, name: str, *, quiet: bool = False) -> None: ...


def publish_file(
    folder: PublishFolder, write: Callable[[IO[bytes]], object], *, temp: str | None = None
) -> None:
    """Write a file and put it under its final name atomically.

    ``write(f)`` writes the whole content into a fresh temporary file of ``folder``;
    the file is then flushed, fsynced and renamed over ``folder.base`` (replacing any
    file of that name), and the folder is synced.  A reader sees the old file or the
    whole new one, never a part, even after a crash.

    Parameters
    ----------
    folder : PublishFolder
        Where the file goes; ``folder.base`` is its final name.
    write : callable
        Called once with the temporary file, open for binary writing.
    temp : str, optional
        The temporary file's name (it must not exist); default: a fresh one.

    Raises
    ------
    OSError
        The file could not be written, synced or renamed (or whatever ``write``
        raises).  Nothing is left behind: the temporary file is removed.

    Examples
    --------
    >>> import tempfile, os
    >>> from recorder import files
    >>> from recorder.publish import publish_file
    >>> d = tempfile.mkdtemp()
    >>> folder = files.Folder(d, "hello.txt")
    >>> publish_file(folder, lambda f: f.write(b"hi"))
    >>> folder.close()
    >>> open(os.path.join(d, "hello.txt"), "rb").read()
    b'hi'
    """
    name, f = folder.create_temp(temp)
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        folder.replace(name, folder.base)
    except BaseException:
        folder.unlink(name, quiet=True)  # no partial file left behind
        raise


class Publisher:
    """Runs submitted work (callables that record their own errors) on at most
    ``workers`` threads, in the order submitted."""

    def __init__(self, workers: int = DEFAULT_WORKERS, name: str = "callrecorder-publisher"):
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise TypeError(f"workers must be an int, not {type(workers).__name__}")
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers must be from 1 to {MAX_WORKERS}, got {workers}")
        self.workers = workers
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque = collections.deque()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._busy = 0

    def submit(self, work) -> None:
        """Run ``work()`` on a worker thread as soon as one is free."""
        with self._cond:
            self._queue.append(work)
            if self._idle == 0 and len(self._threads) < self.workers:
                t = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._threads.add(t)
                t.start()
            else:
                self._cond.notify()

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                while not self._queue:
                    self._idle += 1
                    woke = self._cond.wait(_IDLE_SECONDS)
                    self._idle -= 1
                    if not woke and not self._queue:
                        self._threads.discard(me)
                        return
                work = self._queue.popleft()
                self._busy += 1
            try:
                work()
            except Exception:  # pragma: no cover - work records its own errors
                log.exception("publishing a recording failed")
            finally:
                with self._cond:
                    self._busy -= 1
                    if not self._busy and not self._queue:
                        self._cond.notify_all()

    def pending(self) -> int:
        """Pieces of work queued or running."""
        with self._cond:
            return len(self._queue) + self._busy

    def drain(self) -> None:
        """Wait until every submitted piece of work has run (from a worker thread:
        returns at once, it cannot wait for itself)."""
        if threading.current_thread() in self._threads:
            return
        with self._cond:
            while self._queue or self._busy:
                self._cond.wait()
