"""Helpers shared by the benchmarks: timing (median of N), machine description, output."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
import warnings


def median_time(fn, repeat: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def import_audioop():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            return None
    return audioop


def raise_nofile() -> int:
    """Raise this process's open-files limit to its hard limit (a recording holds its
    file and folder open, an RTP call its socket); returns that limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def emit(rows: list[dict], as_json: bool, title: str, columns: list[tuple[str, str, str]]) -> None:
    """Print rows as a table (columns: key, header, format) or as JSON."""
    if as_json:
        print(json.dumps({"benchmark": title, "machine": machine(), "results": rows}, indent=1))
        return
    m = machine()
    print(f"{title}  ({m['cpu']}, {m['cores']} cores, Python {m['python']})")
    widths = [max(len(h), 10) for _, h, _ in columns]
    print(
        "  ".join(
            h.rjust(w) if i else h.ljust(w + 14)
            for i, ((_, h, _), w) in enumerate(zip(columns, widths, strict=True))
        )
    )
    for r in rows:
        cells = []
        for i, ((key, _, fmt), w) in enumerate(zip(columns, widths, strict=True)):
            v = r.get(key)
            s = "-" if v is None else format(v, fmt)
            cells.append(s.rjust(w) if i else s.ljust(w + 14))
        print("  ".join(cells))
