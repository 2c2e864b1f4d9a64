"""``recorder serve --workers N``: N worker processes, one engine each, one SIP address.

The supervisor (the process started by ``recorder serve``) binds N UDP and N TCP
sockets to the SIP address with ``SO_REUSEPORT`` (port 0: the first bind picks the
port, the others take the same), makes one Unix datagram inbox per worker
(:func:`recorder.sip.router.make_inboxes`), then forks the workers.  Worker ``i``
serves on its own sockets with its slice of ``--rtp-ports`` and its share of
``--max-calls``; each call belongs to the worker chosen by its Call-ID
(:mod:`recorder.sip.router`), whichever worker the kernel gave the packet to, so
in-dialog requests (ACK, CANCEL, BYE, re-INVITE) always reach the call's owner.

* Logs: every line of worker ``i`` carries ``worker=i``; the supervisor logs
  ``listening`` (with ``workers=N``) once every worker serves.
* Metrics (``--metrics``): the workers count in ``prometheus_client``'s multiprocess
  files; the supervisor serves the sum on the one endpoint.
* SIGTERM/SIGINT to the supervisor is passed to every worker, which drains as a single
  server does (new calls 503, running calls end, every file published); the supervisor
  exits 0 when all workers exited 0.
* A worker that dies (a crash, ``kill -9``) is not restarted: the supervisor logs it
  with its exit status, then drains the other workers as on SIGTERM and exits 1, so the
  service manager (or Kamailio's failover to another node) takes over.  The dead
  worker's calls are lost; their unfinished ``.part`` files stay under the media root
  for ``recorder repair``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import logging
import math
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable

from .sip.ports import RtpPorts
from .sip.router import Router, make_inboxes

log = logging.getLogger("recorder.serve")

__all__ = [
    "bind_reuseport",
    "default_workers",
    "metrics_files",
    "serve_until_signal",
    "split_ports",
    "supervise",
]

#: seconds the supervisor waits for every worker to serve
START_TIMEOUT = 60.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def split_ports(first: int, last: int, workers: int) -> list[tuple[int, int]]:
    """``workers`` disjoint slices of the RTP port range, each holding even ports.

    >>> from recorder.workers import split_ports
    >>> split_ports(40000, 40010, 2)
    [(40000, 40004), (40006, 40010)]
    """
    RtpPorts(first, last)  # the range's own checks, with their messages
    evens = list(range(first + first % 2, last + 1, 2))
    if len(evens) < workers:
        raise ValueError(
            f"--rtp-ports {first}-{last} holds {len(evens)} even ports, "
            f"fewer than --workers {workers}"
        )
    out, at = [], 0
    for i in range(workers):
        n = len(evens) // workers + (i < len(evens) % workers)
        out.append((evens[at], evens[at + n - 1]))
        at += n
    return out


def calls_share(max_calls: int, workers: int) -> int:
    """Each worker's ``max_calls``: its share of the total, rounded up."""
    return max(1, math.ceil(max_calls / workers))


def bind_reuseport(
    host: str, port: int, workers: int, udp: bool, tcp: bool
) -> tuple[int, list[tuple[socket.socket | None, socket.socket | None]]]:
    """Bind ``workers`` (UDP, TCP) socket pairs to ``host:port`` with ``SO_REUSEPORT``.

    Returns the port (the one picked when ``port`` is 0) and the pairs.  Raises OSError
    if the address cannot be bound (taken without ``SO_REUSEPORT``, not local)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    made: list[socket.socket] = []

    def bound(kind: int, at: int) -> socket.socket:
        s = socket.socket(family, kind)
        made.append(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, at))
        return s

    try:
        pairs: list[tuple[socket.socket | None, socket.socket | None]] = []
        for _ in range(workers):
            t = bound(socket.SOCK_STREAM, port) if tcp else None
            if t is not None:
                port = t.getsockname()[1]
            u = bound(socket.SOCK_DGRAM, port) if udp else None
            if u is not None:
                port = u.getsockname()[1]
            pairs.append((u, t))
    except OSError:
        for s in made:
            s.close()
        raise
    return port, pairs


def serve_until_signal(server, metrics=None, ready: Callable[[], None] | None = None) -> None:
    """Start ``server``, serve until SIGTERM/SIGINT, then drain and stop it."""
    stop = threading.Event()
    for sig in _SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)  # a worker starts with them blocked
    server.start()
    tune_gc()
    if ready is not None:
        ready()
    full_at = time.monotonic() + GC_FULL_EVERY
    while not stop.wait(1.0):
        if time.monotonic() >= full_at:  # the old generations, collected here only
            gc.collect()
            full_at = time.monotonic() + GC_FULL_EVERY
    server.shutdown()
    if metrics is not None:
        metrics.close()


#: allocations between two young-generation collections of the cyclic garbage collector
#: in a server process (CPython's default is 700)
GC_YOUNG = 100_000
#: seconds between two full collections of a server process (see :func:`tune_gc`)
GC_FULL_EVERY = 60.0


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running server process.  What
    exists once the server has started (modules, the application, the server itself) is
    frozen out of every collection; the young generation is collected every
    :data:`GC_YOUNG` allocations (CPython: 700) and the middle one every 50 of those;
    the whole heap, which with thousands of calls is large, is no longer scanned by
    CPython's own schedule but once every :data:`GC_FULL_EVERY` seconds by
    :func:`serve_until_signal`, so the cyclic garbage of ended calls is still freed.
    (bench/serve.py: about 10 % less CPU per call-second at 1,000 calls.)"""
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 50, 1_000_000)


def supervise(
    workers: int,
    *,
    host: str,
    port: int,
    udp: bool,
    tcp: bool,
    rtp_ports: tuple[int, int],
    max_calls: int,
    metrics: tuple[str, int] | None,
    log_format: str,
    make_server: Callable[..., object],
    metrics_dir: str | None = None,
) -> int:
    """Run ``workers`` worker processes on one SIP address; the exit status.

    ``make_server(sip_sockets=(udp, tcp), router=..., rtp_ports=(lo, hi),
    max_calls=n, metrics=Metrics or None)`` builds a worker's
    :class:`recorder.serve.Server` (in the worker, after the fork).  With ``metrics``,
    ``metrics_dir`` is the directory from :func:`metrics_files` (made here if None; it
    is removed when this returns).
    """
    slices = split_ports(*rtp_ports, workers)
    share = calls_share(max_calls, workers)
    if metrics is not None and metrics_dir is None:
        metrics_dir = metrics_files()
    try:
        if metrics_dir is not None:
            _check_multiprocess(metrics_dir)
        port, socks = bind_reuseport(host, port, workers, udp, tcp)
        inboxes = make_inboxes(workers)
        ready_r, ready_w = os.pipe()
        pids: dict[int, int] = {}  # pid -> worker
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for i in range(workers):
                try:
                    pid = os.fork()
                except OSError:  # out of processes or memory: stop those started
                    for started in pids:
                        os.kill(started, signal.SIGTERM)
                    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                    raise
                if pid == 0:  # the worker: never returns
                    os.close(ready_r)
                    _worker(
                        i,
                        socks,
                        inboxes,
                        ready_w,
                        log_format,
                        lambda i=i: make_server(
                            sip_sockets=socks[i],
                            router=Router(i, [tx for tx, _ in inboxes], inboxes[i][1]),
                            rtp_ports=slices[i],
                            max_calls=share,
                            metrics=_worker_metrics(metrics is not None),
                        ),
                    )
                pids[pid] = i
            for pair in socks:
                for s in pair:
                    if s is not None:
                        s.close()
            for tx, rx in inboxes:
                tx.close()
                rx.close()
            os.close(ready_w)
            return _run(pids, ready_r, old_mask, host, port, udp, tcp, metrics, metrics_dir)
        finally:
            os.close(ready_r)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def metrics_files() -> str:
    """Make the directory of the workers' ``prometheus_client`` multiprocess files and
    set ``PROMETHEUS_MULTIPROC_DIR`` to it; the path.  Call it before anything imports
    ``prometheus_client`` (``recorder serve`` does so before loading the app module):
    the library reads the variable once, when it is first imported."""
    if importlib.util.find_spec("prometheus_client") is None:
        raise ValueError(
            "--metrics needs the prometheus_client package (pip install prometheus_client)"
        )
    path = tempfile.mkdtemp(prefix="recorder-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    _check_multiprocess(path)
    return path


def _check_multiprocess(path: str) -> None:
    """ValueError if ``prometheus_client`` was imported before its multiprocess directory
    was set: the workers' metrics would silently stay empty."""
    values = sys.modules.get("prometheus_client.values")
    if values is None:
        return
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") != path or values.ValueClass is getattr(
        values, "MutexValue", None
    ):
        raise ValueError(
            "--metrics with --workers: prometheus_client was imported (by the app module?) "
            "before its multiprocess directory was set, so the workers' metrics would be "
            "lost; import it inside the app function, or set PROMETHEUS_MULTIPROC_DIR"
        )


def _worker_metrics(on: bool):
    if not on:
        return None
    from .serve import Metrics

    return Metrics(None)


def _worker(i, socks, inboxes, ready_w, log_format, make) -> None:
    """The body of worker ``i`` after the fork: serve, drain, ``os._exit``."""
    rc = 1
    try:
        from .serve import setup_logging

        for j, pair in enumerate(socks):
            if j != i:
                for s in pair:
                    if s is not None:
                        s.close()
        for j, (_, rx) in enumerate(inboxes):
            if j != i:
                rx.close()
        setup_logging(log_format, fields={"worker": i})
        _die_with_parent()
        server = make()  # its threads keep SIGTERM/SIGINT blocked: the main thread takes them

        def ready() -> None:
            os.write(ready_w, bytes([i % 256]))
            os.close(ready_w)

        serve_until_signal(server, getattr(server, "metrics", None), ready)
        rc = 0
    except BaseException:
        with contextlib.suppress(Exception):
            log.error("worker failed\n%s", traceback.format_exc().rstrip())
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(rc)


def _die_with_parent() -> None:
    """SIGTERM (a drain) for this worker when the supervisor dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG (Linux)
    if os.getppid() == 1:  # the supervisor died before that
        os.kill(os.getpid(), signal.SIGTERM)


def _run(pids, ready_r, old_mask, host, port, udp, tcp, metrics, metrics_dir) -> int:
    """The supervisor's part: wait for the workers, pass signals on, reap them."""
    stopping = threading.Event()
    failed = False

    def stop_all(*_) -> None:
        stopping.set()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for sig in _SIGNALS:
        signal.signal(sig, stop_all)
    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def reap(status_pid: int, status: int) -> None:
        nonlocal failed
        i = pids.pop(status_pid)
        code = os.waitstatus_to_exitcode(status)
        if metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(status_pid, metrics_dir)
        if code != 0 or not stopping.is_set():
            failed = True
            log.error(
                "worker died: draining the others (no worker is restarted)",
                extra={"fields": {"worker": i, "pid": status_pid, "exit": code}},
            )
            stop_all()

    # every worker serving (or one gone): then "listening"
    total, started, deadline = len(pids), 0, time.monotonic() + START_TIMEOUT
    while started < total and not stopping.is_set() and time.monotonic() < deadline:
        if select.select([ready_r], [], [], 0.2)[0]:
            started += len(os.read(ready_r, 64)) or 0
        while pids:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in pids:  # not a child the app module may have started
                reap(pid, status)
    http = None
    if started < total and not stopping.is_set():
        log.error("not every worker started in %s s", START_TIMEOUT)
        failed = True
        stop_all()
    elif not stopping.is_set():
        if metrics is not None:
            try:
                http = _serve_metrics(metrics, metrics_dir)
            except ValueError as e:
                log.error("%s", e)
                failed = True
                stop_all()
        log.info(
            "listening",
            extra={
                "fields": {
                    "sip": f"{host}:{port}",
                    "transport": ",".join(t for t, on in (("udp", udp), ("tcp", tcp)) if on),
                    "workers": len(pids),
                    "pids": sorted(pids),
                }
            },
        )
    while pids:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid in pids:
            reap(pid, status)
    if http is not None:
        from .serve import stop_metrics_http

        stop_metrics_http(http)
    log.info("stopped", extra={"fields": {"failed": failed}})
    return 1 if failed else 0


def _serve_metrics(metrics: tuple[str, int], metrics_dir):
    import prometheus_client as pc
    from prometheus_client import multiprocess

    from .serve import start_metrics_http

    registry = pc.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=metrics_dir)
    return start_metrics_http(pc, metrics[0], metrics[1], registry)
