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

    def create_temp(self, name: str | None = None) -> tuple[str, IO[bytes]]:
        """Create a temporary file in the folder.

        Parameters
        ----------
        name : str, optional
            Its name (it must not exist); default: a fresh one.

        Returns
        -------
        tuple of (str, file)
            The name and the file, open for binary writing.
        """
        ...

    def replace(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` in the folder, durably, replacing ``dst``.

        Parameters
        ----------
        src, dst : str
            File names in the folder.
        """
        ...

    def unlink(self, name: str, *, quiet: bool = False) -> None:
        """Remove a file of the folder.

        Parameters
        ----------
        name : str
            The file to remove.
        quiet : bool, optional
            Ignore a failure.
        """
        ...


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
    ``workers`` threads, in the order submitted.

    Threads start when there is work and no idle worker, and end after a minute without
    work.  An exception escaping a piece of work is logged (``recorder.publish``), never
    raised.

    Parameters
    ----------
    workers : int, optional
        The most threads that run work at once, 1 to 256 (default 4).
    name : str, optional
        The worker threads' name.

    Attributes
    ----------
    workers : int
        ``workers``.

    Raises
    ------
    TypeError
        ``workers`` is not an int.
    ValueError
        ``workers`` is out of range.

    Examples
    --------
    >>> from recorder.publish import Publisher
    >>> done = []
    >>> pub = Publisher(workers=2)
    >>> for i in range(3):
    ...     pub.submit(lambda i=i: done.append(i))
    >>> pub.drain()
    >>> sorted(done), pub.pending()
    ([0, 1, 2], 0)
    """

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

    def submit(self, work: Callable[[], object]) -> None:
        """Run ``work()`` on a worker thread as soon as one is free.

        Parameters
        ----------
        work : callable
            Called with no arguments; it records its own errors (an exception that
            escapes is logged).

        Examples
        --------
        >>> from recorder.publish import Publisher
        >>> pub, done = Publisher(), []
        >>> pub.submit(lambda: done.append("ran"))
        >>> pub.drain()
        >>> done
        ['ran']
        """
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
        """The number of pieces of work queued or running.

        Returns
        -------
        int
            0 once everything submitted has run.

        Examples
        --------
        >>> from recorder.publish import Publisher
        >>> Publisher().pending()
        0
        """
        with self._cond:
            return len(self._queue) + self._busy

    def drain(self) -> None:
        """Wait until every submitted piece of work has run.

        Called from one of this publisher's worker threads it returns at once (it
        cannot wait for itself).

        Examples
        --------
        >>> from recorder.publish import Publisher
        >>> pub, done = Publisher(workers=1), []
        >>> pub.submit(lambda: done.append(1))
        >>> pub.drain()
        >>> pub.pending(), done
        (0, [1])
        """
        if threading.current_thread() in self._threads:
            return
        with self._cond:
            while self._queue or self._busy:
                self._cond.wait()
