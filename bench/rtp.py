"""RTP receive + parse + place: ns per packet, compiled receiver vs a plain Python loop.

N calls (one UDP socket each on 127.0.0.1) get P pre-sent 20 ms A-law packets each (the
sender is a Python loop, not timed; the kernel queues them).  Then we time draining them:

* **recorder.rtp**: ``RtpReceiver.poll(0)`` until every packet was read (epoll +
  recvmmsg batches, parse, source check, sequence window, A-law decode into the jitter
  ring by timestamp), plus the ``take`` calls that release the media as (k, 160) blocks.
* **parse + place only**: the same packets from memory (``RtpReceiver.feed`` and the
  Python loop's body), without the kernel's UDP receive, which costs the same for both.
* **python loop**: the per-packet receiver a pure-Python server would run: for each
  socket ``recv_from_into`` until EAGAIN, ``struct.unpack_from`` of the header, source
  check, and the A-law payload decoded with a numpy table lookup into a per-call buffer at
  its timestamp offset.

Both drain exactly the same packets from the same sockets in the same run, so the kernel's
own UDP cost is in both figures; the ratio is the one to read.  CPU time (this process)
is reported next to wall time.

With ``--kernel-floor`` it also compiles ``bench/udp_floor.c`` (``cc``) and prints what
reading the same number of packets costs with no parsing at all, four ways (one epoll +
recvmmsg per ready call socket as ours, recvmmsg on every socket, io_uring multishot
receive, one shared socket): the kernel's share that no receiver on its UDP stack avoids.
Its rounds are timed alternately with ours.

    python bench/rtp.py [--calls N] [--packets P] [--repeat R] [--kernel-floor] [--json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(HERE)]

import numpy as np  # noqa: E402
from _common import emit  # noqa: E402

from recorder import codecs, rtp  # noqa: E402

FRAME = 160


def build_packets(p: int) -> list[bytes]:
    pcm = (6000 * np.sin(np.arange(p * FRAME) * 0.05)).astype(np.int16)
    al = codecs.alaw_encode(pcm).tobytes()
    return [
        struct.pack("!BBHII", 0x80, 8, i, i * FRAME, 0x1234) + al[i * FRAME : (i + 1) * FRAME]
        for i in range(p)
    ]


def presend(tx: socket.socket, ports: list[int], pkts: list[bytes]) -> int:
    n = 0
    for pkt in pkts:
        for port in ports:
            tx.sendto(pkt, ("127.0.0.1", port))
            n += 1
    return n


def run_ours(calls: int, pkts: list[bytes], tx: socket.socket) -> dict:
    rx = rtp.RtpReceiver(calls, buffer_ms=max(1000, len(pkts) * 20 + 200))
    ports = [rx.add(i, codec="PCMA", source=tx.getsockname()) for i in range(calls)]
    total = presend(tx, ports, pkts)
    c0, t0 = time.process_time(), time.perf_counter()
    got = 0
    while got < total:
        n = rx.poll(0)
        if n == 0 and rx.poll(100) == 0:
            break
        got += n
    now = rtp.monotonic_ns()
    released = 0
    while True:
        block, slots = rx.take(FRAME, now=now)
        if not len(slots):
            break
        released += block.size
    t1, c1 = time.perf_counter(), time.process_time()
    placed = int(rx.counters()["packets"].sum())
    rx.close()
    return {
        "packets": got,
        "placed": placed,
        "released_samples": released,
        "wall_s": t1 - t0,
        "cpu_s": c1 - c0,
    }


def run_python(calls: int, pkts: list[bytes], tx: socket.socket) -> dict:
    socks = []
    for _ in range(calls):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.setblocking(False)
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    total = presend(tx, ports, pkts)
    table = codecs.alaw_decode(bytes(range(256)))
    source = tx.getsockname()
    bufs = [np.zeros(len(pkts) * FRAME + FRAME, np.int16) for _ in range(calls)]
    first = [None] * calls
    buf = bytearray(2048)
    view = memoryview(buf)
    unpack = struct.Struct("!BBHII").unpack_from
    got = 0
    c0, t0 = time.process_time(), time.perf_counter()
    for i, s in enumerate(socks):
        out = bufs[i]
        while True:
            try:
                n, addr = s.recvfrom_into(buf)
            except BlockingIOError:
                break
            got += 1
            if addr != source or n < 12:
                continue
            b0, pt, seq, ts, ssrc = unpack(buf)
            if b0 >> 6 != 2 or pt & 0x7F != 8:
                continue
            if first[i] is None:
                first[i] = ts
            pos = (ts - first[i]) & 0xFFFFFFFF
            payload = np.frombuffer(view[12:n], np.uint8)
            out[pos : pos + len(payload)] = table[payload]
    t1, c1 = time.perf_counter(), time.process_time()
    for s in socks:
        s.close()
    assert got == total, (got, total)
    return {"packets": got, "wall_s": t1 - t0, "cpu_s": c1 - c0}


def run_feed(calls: int, pkts: list[bytes]) -> dict:
    """Parse + place only (no kernel): the same packets handed over from memory."""
    rx = rtp.RtpReceiver(calls, buffer_ms=max(1000, len(pkts) * 20 + 200))
    for i in range(calls):
        rx.add(i, codec="PCMA")
    now = rtp.monotonic_ns()
    data = b"".join(pkts)
    lengths = np.array([len(p) for p in pkts], np.int64)
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(calls):
        rx.feed(i, data, now=now, lengths=lengths)
    t1, c1 = time.perf_counter(), time.process_time()
    assert int(rx.counters()["packets"].sum()) == calls * len(pkts)
    rx.close()
    return {"packets": calls * len(pkts), "wall_s": t1 - t0, "cpu_s": c1 - c0}


def run_python_parse(calls: int, pkts: list[bytes]) -> dict:
    """The Python loop's parse + place alone, from the same in-memory packets."""
    table = codecs.alaw_decode(bytes(range(256)))
    unpack = struct.Struct("!BBHII").unpack_from
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        out = np.zeros(len(pkts) * FRAME + FRAME, np.int16)
        first = None
        for pkt in pkts:
            b0, pt, seq, ts, ssrc = unpack(pkt)
            if b0 >> 6 != 2 or pt & 0x7F != 8:
                continue
            if first is None:
                first = ts
            pos = (ts - first) & 0xFFFFFFFF
            payload = np.frombuffer(pkt, np.uint8, len(pkt) - 12, 12)
            out[pos : pos + len(payload)] = table[payload]
    t1, c1 = time.perf_counter(), time.process_time()
    return {"packets": calls * len(pkts), "wall_s": t1 - t0, "cpu_s": c1 - c0}


FLOOR_MODES = ("epoll", "sweep", "uring", "shared")


def build_floor(workdir: str) -> str:
    """Compile bench/udp_floor.c; returns the program's path."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("--kernel-floor needs a C compiler (cc)")
    exe = os.path.join(workdir, "udp_floor")
    subprocess.run([cc, "-O2", "-o", exe, os.path.join(HERE, "udp_floor.c")], check=True)
    return exe


def run_floor(exe: str, mode: str, calls: int, packets: int) -> dict:
    """One run of the harness: enough rounds of ``packets`` per call for about 200,000
    datagrams (at least 20 rounds)."""
    rounds = max(20, 200_000 // max(1, calls * packets))
    out = subprocess.run(
        [exe, mode, str(calls), str(packets), str(rounds)], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"udp_floor {mode} failed: {out.stderr.strip() or out.stdout.strip()}")
    _, ns, got = out.stdout.split()
    return {"packets": int(got), "ns_per_packet_cpu": float(ns)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--packets", type=int, default=100, help="per call (queued in the kernel)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--kernel-floor",
        action="store_true",
        help="also time reading the same packets with no parsing (bench/udp_floor.c)",
    )
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="udp_floor_")
    try:
        run_all(a, build_floor(workdir) if a.kernel_floor else "")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_all(a: argparse.Namespace, exe: str) -> None:
    floor: dict[str, list[dict]] = {m: [] for m in FLOOR_MODES}
    pkts = build_packets(a.packets)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    ours, py, feed, pyparse = [], [], [], []
    for _ in range(a.repeat):
        ours.append(run_ours(a.calls, pkts, tx))
        py.append(run_python(a.calls, pkts, tx))
        feed.append(run_feed(a.calls, pkts))
        pyparse.append(run_python_parse(a.calls, pkts))
        for m in FLOOR_MODES if exe else ():
            floor[m].append(run_floor(exe, m, a.calls, a.packets))
    tx.close()
    o = min(ours, key=lambda r: r["cpu_s"])
    p = min(py, key=lambda r: r["cpu_s"])
    f = min(feed, key=lambda r: r["cpu_s"])
    pp = min(pyparse, key=lambda r: r["cpu_s"])
    if o["packets"] != a.calls * a.packets:
        print(
            f"warning: the receiver read {o['packets']} of {a.calls * a.packets} packets "
            "(kernel drops: lower --packets)",
            file=sys.stderr,
        )
    rows = []
    for name, r in (
        ("recorder.rtp (compiled)", o),
        ("python recv_into loop", p),
        ("  parse+place only: ours", f),
        ("  parse+place only: python", pp),
    ):
        rows.append(
            {
                "name": name,
                "packets": r["packets"],
                "ns_per_packet_cpu": 1e9 * r["cpu_s"] / r["packets"],
                "ns_per_packet_wall": 1e9 * r["wall_s"] / r["packets"],
            }
        )
    for i in (0, 2):
        rows[i]["ratio"] = rows[i + 1]["ns_per_packet_cpu"] / rows[i]["ns_per_packet_cpu"]
        rows[i + 1]["ratio"] = 1.0
    for m in FLOOR_MODES if exe else ():
        best = min(floor[m], key=lambda r: r["ns_per_packet_cpu"])
        rows.append(
            {
                "name": f"  kernel only: {m}",
                "packets": best["packets"],
                "ns_per_packet_cpu": best["ns_per_packet_cpu"],
                "ns_per_packet_wall": float("nan"),
                # how much cheaper the bare read is than our whole receive
                "ratio": rows[0]["ns_per_packet_cpu"] / best["ns_per_packet_cpu"],
            }
        )
    emit(
        rows,
        a.json,
        f"RTP receive+parse+place, {a.calls} calls x {a.packets} packets",
        [
            ("name", "receiver", "s"),
            ("packets", "packets", "d"),
            ("ns_per_packet_cpu", "ns/pkt CPU", ".0f"),
            ("ns_per_packet_wall", "ns/pkt wall", ".0f"),
            ("ratio", "speed-up", ".1f"),
        ],
    )


if __name__ == "__main__":
    main()
