"""The recording server from the wire: ``recorder serve`` with SIPp as the load.

``recorder serve`` runs as a subprocess on 127.0.0.1 (built-in app: every call answered
and recorded to an A-law WAV with silence and DTMF detection on).  SIPp (Debian
``sip-tester``) places ``--calls`` calls at ``--rate`` calls per second; each call
streams ``--seconds`` of speech-like A-law with ``rtp_stream`` (20 ms packets), waits
0.8 s more and hangs up.  While every call is up (after the ramp, before the first
call ends) the benchmark samples:

* the server's CPU: utime + stime of its process, all threads, and any child processes
  (``--workers``) from ``/proc/PID/stat``, over the window's wall time: its **CPU share**
  (1.0 = one core busy);
* **calls per core** = concurrent calls / CPU share (the floor is 10,000), and the CPU
  per call-second;
* where that CPU goes, from ``recorder_cpu_seconds_total{stage}`` of ``--metrics``:
  ``receive`` (the RTP thread: recvmmsg, parse, place, hand frames to the engine), the
  engine tick's ``detect`` (silence + DTMF), ``code`` (G.711 into the jobs' buffers) and
  ``write`` (buffers to the files), ``tick_other`` (the rest of the engine thread:
  watchdog, waking the waiting application threads, Python around the kernels), and
  ``other`` (everything else in the process: SIP, the per-call application threads,
  publishing);
* packets dropped at the socket: the ``drops`` column of ``/proc/net/udp`` for the
  server's RTP ports (read before the calls end: a closed socket takes its counter), and
  ``Udp: RcvbufErrors`` of ``/proc/net/snmp`` before and after (machine-wide: other
  traffic on a shared machine counts there too);
* SIPp's own CPU share: on a small machine the load generator competes with the server,
  and what SIPp can drive is the limit of this benchmark.

The CPU of a call's set-up and end (SIP, the application thread, opening, publishing and
closing its file) is estimated from the whole run: the server's CPU from just before SIPp
starts until every call has ended, per call that ended, less what the window says a
call's media costs for its ``--seconds`` + 0.8 s.

After the run every recording is checked: one per call, each exactly the streamed file
(length and bytes), and the server's call logs report no lost packets.

Capacity at saturation (``--cpu-limit CORES``, root only): the server and its workers
run in a cgroup whose CPU quota is ``CORES`` (``cpu.cfs_quota_us`` / ``cpu.max``, 5 ms
periods), so SIPp keeps the rest of the machine; the run *kept up* when no call was
refused, no packet was dropped or overrun, the engine never reported itself behind, and
every recording is exact.  The largest number of calls that keeps up, divided by
``CORES``, is the server's capacity per core; ``--workers 2 --cpu-limit 2x`` against
``--workers 1 --cpu-limit x`` is the scaling across cores.  From the first call on, the
metrics are read every 0.5 s, and the first moment the engine reports itself behind or
a call is refused is printed with the number of calls up then: with a slow ``--rate``
that is the capacity within the limit, read in one run.

    python bench/serve.py [--calls N] [--seconds S] [--rate CPS] [--workers N]
                          [--cpu-limit CORES] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(HERE)]

import numpy as np  # noqa: E402
from _common import machine, raise_nofile  # noqa: E402

from recorder import codecs, wav  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
FRAME = 160

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench: one call streaming A-law">
  <send retrans="500"><![CDATA[
INVITE sip:bench@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:load@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:bench@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:load@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=load 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [rtpstream_audio_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=ptime:20
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:load@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
  <nop><action><exec rtp_stream="{AUDIO},1,8"/></action></nop>
  <pause milliseconds="{PAUSE_MS}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:load@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


# -- /proc readers ---------------------------------------------------------------------------


def _stat(path: str) -> list[bytes] | None:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(f"/proc/{name}/stat")
            if st is not None:
                children.setdefault(int(st[1]), []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and every descendant (all their threads)."""
    total = 0
    for p in tree(pid):
        st = _stat(f"/proc/{p}/stat")
        if st is not None:
            total += int(st[11]) + int(st[12])
    return total / CLK


def udp_drops(ports: range) -> tuple[int, int]:
    """(sockets, summed ``drops``) of the UDP sockets bound to a port in ``ports``."""
    n = drops = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            parts = line.split()
            port = int(parts[1].rsplit(":", 1)[1], 16)
            if port in ports:
                n += 1
                drops += int(parts[-1])
    return n, drops


def rcvbuf_errors() -> int:
    with open("/proc/net/snmp") as f:
        lines = [ln.split() for ln in f if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        k: float(v)
        for k, v in (ln.rsplit(" ", 1) for ln in text.splitlines() if ln and ln[0] != "#")
    }


# -- setup -----------------------------------------------------------------------------------


def free_port(kind=socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_range(size: int) -> tuple[int, int]:
    """An even range of ``size`` ports, none bound now (UDP)."""
    for _ in range(50):
        lo = random.randrange(20000, 60000 - size, 2)
        socks = []
        try:
            for p in range(lo, lo + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return lo, lo + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit("no free RTP port range")


def speech(seconds: float) -> np.ndarray:
    """Speech-like audio: syllables of tones and noise with short pauses (no DTMF)."""
    rng = np.random.default_rng(7)
    n = int(seconds * 8000)
    t = np.arange(n) / 8000
    x = 4000 * np.sin(2 * np.pi * 180 * t) + 2500 * np.sin(2 * np.pi * 730 * t)
    x += rng.normal(0, 600, n)
    x *= 0.55 + 0.45 * np.sin(2 * np.pi * 3 * t) ** 2
    return np.clip(x, -32000, 32000).astype(np.int16)


def absolute_app(app: str) -> str:
    """FILE.py:FUNCTION with FILE made absolute (the server runs in the work directory)."""
    where, sep, name = app.rpartition(":")
    return os.path.abspath(where) + sep + name if where.endswith(".py") else app


def cpu_cgroup(cores: float) -> str:
    """A new cgroup whose tasks together get at most ``cores`` CPUs' time (cgroup v1
    ``cpu`` controller, or v2 ``cpu.max``); its directory.  Needs root."""
    period = 5_000  # µs: short periods, so a throttled server stalls a few ms at most
    quota = int(cores * period)
    if quota < 1000:  # the kernel's smallest quota is 1 ms
        raise SystemExit(f"--cpu-limit {cores:g}: at least {1000 / period:g} cores")
    name = f"callrecorder-bench-{os.getpid()}"
    v1, v2 = "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"
    try:
        if os.path.exists(os.path.join(v1, "cpu.cfs_quota_us")):
            path = os.path.join(v1, name)
            os.mkdir(path)
            for key, value in (("cpu.cfs_period_us", period), ("cpu.cfs_quota_us", quota)):
                with open(os.path.join(path, key), "w") as f:
                    f.write(str(value))
        elif os.path.exists(os.path.join(v2, "cgroup.controllers")):
            path = os.path.join(v2, name)
            os.mkdir(path)
            with open(os.path.join(path, "cpu.max"), "w") as f:
                f.write(f"{quota} {period}")
        else:
            raise SystemExit("--cpu-limit: no cgroup cpu controller on this machine")
    except PermissionError:
        raise SystemExit("--cpu-limit needs root (it makes a cgroup)") from None
    return path


def remove_cgroup(path: str) -> None:
    for _ in range(50):  # its tasks may take a moment to be reaped
        try:
            os.rmdir(path)
            return
        except OSError:
            time.sleep(0.1)


# -- the run ---------------------------------------------------------------------------------


def run(args) -> dict:
    sipp = shutil.which("sipp")
    if not sipp:
        raise SystemExit("sipp not found (Debian: apt-get install sip-tester)")
    raise_nofile()
    work = tempfile.mkdtemp(prefix="bench-serve-")
    media = os.path.join(work, "media")
    audio = codecs.alaw_encode(speech(args.seconds)).tobytes()
    audio = audio[: len(audio) - len(audio) % FRAME]
    with open(os.path.join(work, "load.al"), "wb") as f:
        f.write(audio)
    with open(os.path.join(work, "uac.xml"), "w") as f:
        # rtp_stream runs in the background: the pause covers the stream, then 0.8 s
        pause = int(len(audio) / 8 + 800)
        f.write(SCENARIO.replace("{AUDIO}", "load.al").replace("{PAUSE_MS}", str(pause)))
    lo, hi = free_range(2 * args.calls + 200)
    sip_port, metrics_port = free_port(), free_port(socket.SOCK_STREAM)
    cmd = [
        sys.executable,
        "-m",
        "recorder",
        "serve",
        *([absolute_app(args.app)] if args.app else []),
        "--sip",
        f"127.0.0.1:{sip_port}",
        "--transport",
        "udp",
        "--media-root",
        media,
        "--rtp-ports",
        f"{lo}-{hi}",
        "--max-calls",
        str(args.calls + 50),
        "--timeout",
        "0",
        "--max-bytes",
        "0",
        "--max-silence-ms",
        "10000",
        "--metrics",
        f"127.0.0.1:{metrics_port}",
        "--log-format",
        "json",
    ]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    log_path = os.path.join(work, "serve.log")
    log_file = open(log_path, "w")  # closed after the server ends
    cgroup = cpu_cgroup(args.cpu_limit) if args.cpu_limit else None

    def enter_cgroup() -> None:  # in the child, before exec: workers inherit it
        if cgroup is not None:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    server = subprocess.Popen(
        cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=work, preexec_fn=enter_cgroup
    )
    load = None
    try:
        deadline = time.monotonic() + 60
        while '"listening"' not in open(log_path).read():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("server did not start:\n" + open(log_path).read()[-3000:])
            time.sleep(0.1)
        udp_before = rcvbuf_errors()
        c_start = cpu_seconds(server.pid)
        load = subprocess.Popen(
            [
                sipp,
                "-sf",
                "uac.xml",
                f"127.0.0.1:{sip_port}",
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-mp",
                str(free_range(2)[0]),
                "-m",
                str(args.calls),
                "-l",
                str(args.calls),
                "-r",
                str(args.rate),
                "-timeout",
                f"{int(args.seconds + args.calls / args.rate + 120)}s",
                "-nostdin",
                "-t",
                "u1",
                "-trace_err",
            ],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        t0 = time.monotonic()
        ramp = args.calls / args.rate
        # the window: every call up (ramp + 1 s) until the first call's media ends (- 1 s)
        w0, w1 = t0 + ramp + 1.0, t0 + args.seconds - 1.0
        if w1 - w0 < 2.0:
            raise SystemExit(
                f"--seconds {args.seconds} leaves no steady window after a {ramp:.0f} s "
                "ramp: give more seconds or a higher --rate"
            )
        # the ramp: watch for the first sign of saturation (a capacity run under
        # --cpu-limit ramps slowly and reads how many calls were up at that moment)
        saturated: dict = {}

        def watch(now: dict) -> None:
            refused_now = sum(
                v for k, v in now.items() if k.startswith("recorder_calls_refused_total")
            )
            if not saturated and (now.get("recorder_engine_behind", 0.0) or refused_now):
                saturated.update(
                    calls_up=now.get("recorder_calls_active", 0.0),
                    after_s=round(time.monotonic() - t0, 1),
                    why="behind" if now.get("recorder_engine_behind", 0.0) else "refused",
                )

        while time.monotonic() < w0:
            time.sleep(min(0.5, max(0.0, w0 - time.monotonic())))
            watch(metrics(metrics_port))
        m0, c0, l0, wall0 = (
            metrics(metrics_port),
            cpu_seconds(server.pid),
            cpu_seconds(load.pid),
            time.monotonic(),
        )
        active, behind = [], 0.0
        while time.monotonic() < w1 - 0.5:
            time.sleep(min(0.5, max(0.0, w1 - 0.5 - time.monotonic())))
            now = metrics(metrics_port)
            watch(now)
            active.append(now.get("recorder_calls_active", 0.0))
            behind = max(behind, now.get("recorder_engine_behind", 0.0))
        m1, c1, l1, wall1 = (
            metrics(metrics_port),
            cpu_seconds(server.pid),
            cpu_seconds(load.pid),
            time.monotonic(),
        )
        sockets, drops = udp_drops(range(lo, hi + 1))
        load.wait(timeout=args.seconds + ramp + 180)
        deadline = time.monotonic() + 60
        while metrics(metrics_port).get("recorder_calls_active", 0.0) > 0:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        c_end = cpu_seconds(server.pid)
        udp_after = rcvbuf_errors()
        end = metrics(metrics_port)
        refused = sum(v for k, v in end.items() if k.startswith("recorder_calls_refused_total"))
    finally:
        if load is not None and load.poll() is None:
            os.kill(load.pid, signal.SIGKILL)
            load.wait(10)
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)
            try:
                server.wait(120)
            except subprocess.TimeoutExpired:
                os.kill(server.pid, signal.SIGKILL)
                server.wait(10)
        log_file.close()
        if cgroup is not None:
            remove_cgroup(cgroup)

    # -- the recordings
    ends = []
    with open(log_path) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("msg") == "call end":
                ends.append(e)
    complete = 0
    for e in ends:
        path = e.get("file")
        if not path or not os.path.exists(path):
            continue
        info = wav.info(path)
        with open(path, "rb") as f:
            f.seek(info.data_offset)
            data = f.read(info.data_bytes)
        # the streamed file, then at most silence (a late BYE: silence by wall time)
        complete += data[: len(audio)] == audio and not data[len(audio) :].strip(b"\xd5")
    wall = wall1 - wall0
    share = (c1 - c0) / wall
    concurrent = float(np.mean(active)) if active else 0.0

    def stage(name: str) -> float:
        key = f'recorder_cpu_seconds_total{{stage="{name}"}}'
        return (m1.get(key, 0.0) - m0.get(key, 0.0)) / (c1 - c0)

    tick = stage("tick")
    stages = {"receive": stage("receive")}
    stages.update({k: stage(k) for k in ("detect", "code", "write")})
    stages["tick_other"] = tick - stages["detect"] - stages["code"] - stages["write"]
    stages["other"] = 1.0 - stages["receive"] - tick
    result = {
        "calls": args.calls,
        "seconds": args.seconds,
        "rate": args.rate,
        "workers": args.workers,
        "concurrent": round(concurrent, 1),
        "window_s": round(wall, 2),
        "server_cpu_share": round(share, 4),
        "calls_per_core": round(concurrent / share) if share > 0 else None,
        "cpu_us_per_call_second": round(share / concurrent * 1e6, 2) if concurrent else None,
        "stage_share": {k: round(v, 3) for k, v in stages.items()},
        "sipp_cpu_share": round((l1 - l0) / wall, 4),
        # set-up and end of a call: the whole run's CPU per call less its media's
        "setup_end_ms_per_call": round(
            1e3 * ((c_end - c_start) / len(ends) - share / concurrent * (args.seconds + 0.8)), 2
        )
        if concurrent and ends
        else None,
        "rtp_sockets_at_window_end": sockets,
        "socket_drops": drops,
        "udp_rcvbuf_errors": udp_after - udp_before,
        "calls_ended": len(ends),
        "recordings_complete": complete,
        "lost_packets": sum(int(e.get("lost", 0)) for e in ends),
        "late_packets": sum(int(e.get("late", 0)) for e in ends),
        "overrun_packets": sum(int(e.get("overrun", 0)) for e in ends),
        "causes": sorted({str(e.get("cause")) for e in ends}),
        "cpu_limit": args.cpu_limit,
        "refused_calls": int(refused),
        "engine_behind_seen": bool(behind),
        # the first time (ramp or window) the engine was behind or a call was refused
        "saturated": saturated or None,
        "work_dir": work,
    }
    result["kept_up"] = (
        not refused
        and not behind
        and drops == 0
        and result["overrun_packets"] == 0
        and complete == args.calls
    )
    if not args.keep and result["kept_up"]:  # a run that did not keep up keeps its logs
        shutil.rmtree(work, ignore_errors=True)
        result["work_dir"] = None
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1000, help="concurrent calls (default 1000)")
    ap.add_argument(
        "--seconds", type=float, default=30.0, help="media per call in seconds (default 30)"
    )
    ap.add_argument("--rate", type=float, default=100.0, help="calls per second (default 100)")
    ap.add_argument("--workers", type=int, default=None, help="passed to recorder serve")
    ap.add_argument("--app", help="FILE.py:FUNCTION instead of the built-in app")
    ap.add_argument(
        "--cpu-limit",
        type=float,
        default=None,
        metavar="CORES",
        help="run the server in a cgroup limited to CORES CPUs (root; capacity runs)",
    )
    ap.add_argument(
        "--keep",
        action="store_true",
        help="keep the work directory (kept anyway when the run did not keep up)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args)
    if args.json:
        print(json.dumps({"benchmark": "serve", "machine": machine(), "results": r}, indent=1))
        return
    m = machine()
    print(f"recorder serve from the wire, SIPp load  ({m['cpu']}, {m['cores']} cores)")
    print(
        f"  {r['calls']} calls at {r['rate']:g}/s, {r['seconds']:g} s of A-law each; "
        f"window {r['window_s']} s with {r['concurrent']} calls up"
    )
    print(
        f"  server CPU share {r['server_cpu_share']:.3f} cores -> "
        f"{r['calls_per_core']} calls per core (floor 10,000); "
        f"{r['cpu_us_per_call_second']} us CPU per call-second"
    )
    print("  stages: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in r["stage_share"].items()))
    print(
        f"  call set-up and end: {r['setup_end_ms_per_call']} ms CPU per call (the whole "
        "run's CPU per call less its media's)"
    )
    print(f"  SIPp CPU share {r['sipp_cpu_share']:.3f} cores")
    print(
        f"  dropped at the sockets: {r['socket_drops']} ({r['rtp_sockets_at_window_end']} RTP "
        f"sockets); Udp RcvbufErrors +{r['udp_rcvbuf_errors']} (machine-wide)"
    )
    print(
        f"  recordings: {r['recordings_complete']} of {r['calls']} complete and exact; "
        f"{r['calls_ended']} calls ended ({', '.join(r['causes'])}); "
        f"lost {r['lost_packets']}, late {r['late_packets']}, dropped by the receiver "
        f"(server behind) {r['overrun_packets']} packets"
    )
    sat = r["saturated"]
    if sat:
        print(
            f"  saturated: engine {sat['why']} first with {sat['calls_up']:.0f} calls up, "
            f"{sat['after_s']} s after the first call"
        )
    limit = f" under a {r['cpu_limit']:g}-core limit" if r["cpu_limit"] else ""
    print(
        f"  kept up{limit}: {'yes' if r['kept_up'] else 'NO'} ({r['refused_calls']} calls "
        f"refused, engine behind {'seen' if r['engine_behind_seen'] else 'never'})"
    )
    if r["work_dir"]:
        print(f"  kept: {r['work_dir']} (the server's log, the media and SIPp's files)")


if __name__ == "__main__":
    main()
