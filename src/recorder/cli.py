"""The ``recorder`` command line (also ``python -m recorder``).

Commands: ``demo`` (the README's main job), ``record``, ``convert``, ``info``, ``dtmf``,
``repair``.  Every error is one line on stderr, ``recorder: error: ...``, with exit
status 2, whatever fails (never a traceback); the one exception is a ``record`` that
fails while it runs (the disk fills, say): it prints what was recorded and exits 1.
Inputs must be regular files (a FIFO or a device is refused before it is opened);
output folders are checked before any work starts (created if missing, writable, names
within the file system's limits).  ``--help`` works on every command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
from typing import Any

import numpy as np

from . import codecs, wav
from ._version import __version__
from .cipher import AesCbcCipher, AesGcmCipher, CipherError, is_sealed_part
from .wav import WavError

DBM0_RMS = 16139.0


class CliError(Exception):
    """An error reported as one line on stderr with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(2, f"recorder: error: {message}\n")


# --- shared helpers ------------------------------------------------------------------------


CIPHERS = ("aes-cbc", "aes-gcm")


def _cipher(args, prefix: str, what: str):
    """The cipher of ``--[in-]key/--[in-]iv/--[in-]cipher``, or None."""
    key, iv = getattr(args, f"{prefix}key"), getattr(args, f"{prefix}iv")
    mode = getattr(args, f"{prefix}cipher")
    opt = "--" + prefix.replace("_", "-")
    if mode == "aes-gcm":
        if iv is not None:
            raise CliError(f"{what}: {opt}iv is not used with aes-gcm (the nonce is in the file)")
        if key is None:
            raise CliError(f"{what}: {opt}cipher aes-gcm needs {opt}key")
    elif key is None and iv is None:
        return None
    elif key is None or iv is None:
        raise CliError(
            f"{what}: give both {opt}key and {opt}iv (hex), or neither "
            f"(or {opt}cipher aes-gcm with {opt}key alone)"
        )
    try:
        return AesGcmCipher(key) if mode == "aes-gcm" else AesCbcCipher(key, iv)
    except (ValueError, TypeError) as e:
        raise CliError(f"{what}: {e}") from None


def _read(path, cipher=None):
    """wav.read with one-line errors."""
    _check_input(path, cipher)
    try:
        return wav.read(path, cipher=cipher)
    except (WavError, CipherError) as e:  # pragma: no cover - info() passed
        raise CliError(f"{path}: {e}") from None


def _check_input(path, cipher=None) -> wav.Info:
    """wav.info with one-line errors (does not decode the audio)."""
    _regular_file(path)
    try:
        return wav.info(path, cipher=cipher)
    except CipherError as e:  # one message whatever failed: nothing to learn from it
        raise CliError(f"{path}: {e}") from None
    except WavError as e:
        hint = (
            " (encrypted? give --key and --iv, or --cipher aes-gcm --key)"
            if _looks_encrypted(path)
            else ""
        )
        raise CliError(f"{path}: not a readable WAV file: {e}{hint}") from None
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}") from None


def _looks_encrypted(path) -> bool:
    """A sealed part, an AES-GCM file, or (not RIFF, whole 16-byte blocks) an AES-CBC one."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(5)
        return (
            is_sealed_part(path)
            or head == b"CRGCM"
            or (head[:4] != b"RIFF" and size % 16 == 0 and size > 0)
        )
    except OSError:
        return False


def _mono8k(pcm: np.ndarray, rate: int, path) -> np.ndarray:
    """Mono 8000 Hz int16, for the detectors."""
    from .resampling import to_mono

    try:
        return to_mono(pcm, rate, 8000)
    except ValueError as e:
        raise CliError(f"{path}: the detectors need 8000 Hz; {e}") from None


_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _regular_file(path) -> None:
    """Refuse, before anything opens it, what is not a regular file: opening a FIFO
    blocks until a writer comes, and a device never ends."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}") from None
    if stat.S_ISDIR(mode):
        raise CliError(f"{path}: is a directory")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise CliError(f"{path}: is {kind}, not a regular file")


def _output_folder(folder: str, what) -> None:
    """Create ``folder`` if needed and make sure files can be created in it, so a bad
    output location is a usage error before any work starts (not a failed job)."""
    probe = folder
    while not os.path.lexists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.path.lexists(probe) and not os.path.isdir(probe):
        raise CliError(f"{what}: {probe} is not a directory")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise CliError(f"{what}: cannot create the folder {folder}: {e.strerror or e}") from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise CliError(f"{what}: cannot write in {folder}: {e.strerror or e}") from None


def _output_name(path: str, what) -> None:
    """The file name and the whole path within the limits of the folder's file system
    (ENAMETOOLONG would otherwise come only when the file is created or renamed)."""
    folder, name = os.path.split(path)
    for conf, length, part in (
        ("PC_NAME_MAX", len(os.fsencode(name)), "file name"),
        ("PC_PATH_MAX", len(os.fsencode(path)) + 1, "path"),
    ):
        try:
            limit = os.pathconf(folder, conf)
        except (OSError, ValueError):
            continue
        if limit > 0 and length > limit:
            raise CliError(
                f"{what}: the {part} is too long ({length} bytes; this file system "
                f"allows {limit})"
            )


def _level_dbm0(pcm: np.ndarray) -> float | None:
    if pcm.size == 0:
        return None
    x = pcm.astype(np.float64)
    rms = float(np.sqrt(np.mean((x - x.mean()) ** 2)))
    return None if rms == 0 else round(20 * np.log10(rms / DBM0_RMS), 2)


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    cells = [[h for _, h in columns]] + [
        ["-" if r.get(k) is None else str(r[k]) for k, _ in columns] for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )


# --- demo ----------------------------------------------------------------------------------


def _demo_call() -> np.ndarray:
    """A short synthetic call: speech-like talk, a pause, more talk, the DTMF digit 5,
    then talk again.  Returns 8000 Hz int16."""
    rate = 8000
    rng = np.random.default_rng(7)

    def talk(seconds, seed):
        t = np.arange(int(rate * seconds)) / rate
        f0 = 115 + 35 * np.sin(2 * np.pi * 0.8 * t + seed)
        phase = 2 * np.pi * np.cumsum(f0) / rate
        voiced = sum(np.sin(k * phase) / k * (1 + 0.3 * np.sin(seed + k)) for k in range(1, 20))
        env = 0.4 + 0.6 * np.abs(np.sin(2 * np.pi * 2.2 * t + seed))
        x = voiced * env + 0.04 * rng.standard_normal(t.size)
        return x * (DBM0_RMS * 10 ** (-18 / 20) / np.sqrt(np.mean(x**2)))

    def tone(seconds, dbm0=-8.0):
        t = np.arange(int(rate * seconds)) / rate
        a = DBM0_RMS * np.sqrt(2) * 10 ** (dbm0 / 20)
        return a * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))

    quiet = lambda s: 12 * rng.standard_normal(int(rate * s))  # noqa: E731 - line noise ~ -62 dBm0
    x = np.concatenate(
        [
            talk(1.6, 0.1),
            quiet(1.2),
            talk(1.4, 1.3),
            quiet(0.15),
            tone(0.12),
            quiet(0.3),
            talk(1.0, 2.2),
            quiet(0.6),
        ]
    )
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def cmd_demo(args) -> int:
    from .channel import CallChannel
    from .filerecorder import RECORD_FORMATS, RECORD_RATES

    out = os.path.abspath(args.out or tempfile.mkdtemp(prefix="recorder-demo-"))
    _output_folder(out, "--out")
    call = os.path.join(out, "call.wav")
    wav.write(call, _demo_call(), fmt="s16bit", rate=8000)
    runs: list[tuple[str, int, dict[str, Any]]]
    runs = [(fmt, rate, {"barge_in": True}) for fmt in RECORD_FORMATS for rate in RECORD_RATES]
    runs += [
        ("alaw", 8000, {"milliseconds_max_silence": 1000}),
        ("ulaw", 8000, {"max_bytes": 12000}),
        ("s16bit", 8000, {"seconds_timeout": 2}),
        ("alaw", 8000, {"milliseconds_max_silence": 0}),
    ]
    rows = []
    for fmt, rate, opts in runs:
        ch = CallChannel.replay(call, media_root=out)
        name = (
            f"{fmt}-{rate}"
            + ("" if list(opts) == ["barge_in"] else f"-{next(iter(opts))}")
            + ".wav"
        )
        cause = ch.FileRecorder.record(name, file_format=fmt, rate=rate, **opts)
        r = ch.FileRecorder.result()
        assert r is not None, "record() has returned"
        rows.append(
            {
                "format": fmt,
                "rate": rate,
                "cause": cause.name,
                "bytes": r.bytes,
                "seconds": round(r.duration, 3),
                "audio": r.audio_detected,
                "digit": r.digit,
                "options": ",".join(f"{k}={v}" for k, v in opts.items()),
                "file": r.path,
            }
        )
        ch.close()
    if args.json:
        print(json.dumps({"call": call, "recordings": rows}, indent=1))
        return 0
    print(
        f"A {wav.info(call).duration:.2f} s synthetic call ({call}): talk, a pause, talk, "
        f"the digit 5, talk.\nRecorded in every format and rate through FileRecorder:\n"
    )
    print(
        _table(
            rows,
            [
                ("format", "format"),
                ("rate", "rate"),
                ("cause", "cause"),
                ("bytes", "bytes"),
                ("seconds", "seconds"),
                ("audio", "audio"),
                ("digit", "digit"),
                ("options", "options"),
            ],
        )
    )
    print(f"\n{len(rows)} recordings in {out}")
    return 0


# --- record --------------------------------------------------------------------------------


def cmd_record(args) -> int:
    from .channel import CallChannel

    in_cipher = _cipher(args, "in_", "input")
    out_cipher = _cipher(args, "", "output")
    _check_input(args.input, in_cipher)  # fail early, with a clear message
    out = os.path.abspath(args.output)
    if os.path.isdir(out):
        raise CliError(f"{args.output}: is a directory")
    if os.path.exists(out) and not args.overwrite:
        raise CliError(f"{args.output}: exists (use --overwrite)")
    folder, name = os.path.split(out)
    try:
        ch = CallChannel.replay(
            args.input, media_root=folder, cipher=in_cipher, hangup_at_end=not args.no_hangup
        )
    except ValueError as e:
        raise CliError(f"{args.input}: {e}") from None
    try:
        _output_folder(folder, args.output)
        _output_name(out, args.output)
        cause = ch.FileRecorder.record(
            name,
            file_format=args.format,
            rate=args.rate,
            seconds_timeout=args.timeout,
            max_bytes=args.max_bytes,
            milliseconds_max_silence=args.max_silence_ms,
            milliseconds_initial_silence=args.initial_silence_ms,
            barge_in=args.barge_in,
            cipher=out_cipher,
        )
    except CliError:
        ch.close()
        raise
    except ValueError as e:
        ch.close()
        raise CliError(str(e)) from None
    r = ch.FileRecorder.result()
    assert r is not None, "record() has returned"
    ch.close()
    info = {
        "cause": cause.name,
        "file": r.path,
        "format": r.format,
        "rate": r.rate,
        "duration": round(r.duration, 3),
        "bytes": r.bytes,
        "audio_detected": r.audio_detected,
        "digit": r.digit,
        "digit_time": None if r.digit_time is None else round(r.digit_time, 3),
        "error": r.error,
    }
    if args.json:
        print(json.dumps(info))
    else:
        print(
            f"cause: {info['cause']}\nfile: {info['file']}\nformat: {r.format} {r.rate} Hz\n"
            f"duration: {info['duration']:.3f} s\nbytes: {r.bytes}\n"
            f"audio detected: {'yes' if r.audio_detected else 'no'}"
        )
        if r.digit:
            print(f"barge-in digit: {r.digit} at {r.digit_time:.3f} s")
    if r.error:
        kept = f"; what was recorded is in {r.path}" if r.path else ""
        print(f"recorder: error: the recording failed: {r.error}{kept}", file=sys.stderr)
        return 1
    return 0


# --- serve ---------------------------------------------------------------------------------


def _hostport(text: str) -> tuple[str, int]:
    """An argparse type: HOST:PORT (port 0..65535)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _port_range(text: str) -> tuple[int, int]:
    """An argparse type: LO-HI, two ports."""
    lo, sep, hi = text.partition("-")
    if not sep or not lo.isdigit() or not hi.isdigit():
        raise argparse.ArgumentTypeError(f"expected LO-HI (e.g. 40000-49999), got {text!r}")
    return int(lo), int(hi)


def cmd_serve(args) -> int:
    from . import serve, workers

    transports = {t.strip() for t in args.transport.split(",")}
    if not transports or not transports <= {"udp", "tcp"}:
        raise CliError(f"--transport must be udp, tcp or udp,tcp, got {args.transport!r}")
    options = {
        "file_format": args.format,
        "rate": args.rate,
        "seconds_timeout": args.timeout,
        "max_bytes": args.max_bytes,
        "milliseconds_max_silence": args.max_silence_ms,
        "milliseconds_initial_silence": args.initial_silence_ms,
        "barge_in": args.barge_in,
        "cipher": _cipher(args, "", "recordings"),
    }
    n = args.workers if args.workers is not None else workers.default_workers()
    serve.advertised_address(args.sip[0], args.advertise)  # checked before any worker starts
    # prometheus_client reads its multiprocess directory when first imported: set it
    # before the app module (which may import it) is loaded
    metrics_dir = workers.metrics_files() if n > 1 and args.metrics else None
    try:
        app = serve.load_app(args.app) if args.app else serve.record_app(**options)
    except BaseException:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        raise
    os.makedirs(args.media_root, exist_ok=True)
    serve.setup_logging(args.log_format)

    def make_server(**kw) -> serve.Server:
        return serve.Server(
            app,
            media_root=args.media_root,
            sip_host=args.sip[0],
            sip_port=args.sip[1],
            udp="udp" in transports,
            tcp="tcp" in transports,
            allow=tuple(args.allow) or ("0.0.0.0/0", "::/0"),
            drain_seconds=args.drain_seconds,
            advertise=args.advertise,
            rtp_latch=args.rtp_latch,
            **kw,
        )

    if n == 1:
        metrics = serve.Metrics(*args.metrics) if args.metrics else None
        server = make_server(rtp_ports=args.rtp_ports, max_calls=args.max_calls, metrics=metrics)
        workers.serve_until_signal(server, metrics)
        return 0
    return workers.supervise(
        n,
        host=args.sip[0],
        port=args.sip[1],
        udp="udp" in transports,
        tcp="tcp" in transports,
        rtp_ports=args.rtp_ports,
        max_calls=args.max_calls,
        metrics=args.metrics,
        log_format=args.log_format,
        make_server=make_server,
        metrics_dir=metrics_dir,
    )


# --- convert -------------------------------------------------------------------------------


def _convert_one(job):
    """One file, in a worker process: written under ``tmp``, renamed to ``dst`` when
    whole (``cmd_convert`` removes ``tmp`` if the worker dies before it can)."""
    src, dst, tmp, fmt, rate, in_c, out_c = job
    from .resampling import resample

    pcm, meta = wav.read(src, cipher=in_c)
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    out_rate = meta.rate if rate is None else rate
    if out_rate != meta.rate:
        pcm = (
            resample(pcm, meta.rate, out_rate)
            if channels == 1
            else np.stack(
                [
                    resample(np.ascontiguousarray(pcm[:, c]), meta.rate, out_rate)
                    for c in range(channels)
                ],
                axis=1,
            )
        )
    from .files import Folder
    from .publish import publish_file

    def write(f) -> None:
        if out_c is None:
            wav.write(f, pcm, fmt=fmt, rate=out_rate)
        else:
            import io

            buf = io.BytesIO()
            wav.write(buf, pcm, fmt=fmt, rate=out_rate)
            f.write(out_c.encrypt(buf.getvalue()))

    folder = Folder(os.path.dirname(dst), os.path.basename(dst))
    try:
        publish_file(folder, write, temp=os.path.basename(tmp))
    finally:
        folder.close()
    return dst, pcm.shape[0] / out_rate


def _convert_jobs(args, in_c, out_c) -> list[tuple]:
    """Every input checked and every output named before any work starts."""
    import io

    from .files import temp_name_for
    from .resampling import ratio

    try:
        args.format = codecs.lookup(args.format).name  # aliases ('s16') too
    except ValueError as e:
        raise CliError(str(e)) from None
    if args.rate is not None:
        try:
            wav.Writer(io.BytesIO(), args.format, args.rate).close()
        except ValueError as e:
            raise CliError(f"--rate {args.rate}: {e}") from None
    jobs, seen = [], set()
    for src in args.inputs:
        meta = _check_input(src, in_c)
        if args.rate is not None and args.rate != meta.rate:
            try:
                ratio(meta.rate, args.rate)
            except ValueError as e:
                raise CliError(
                    f"{src}: cannot convert {meta.rate} Hz to {args.rate} Hz: {e}"
                ) from None
        dst = os.path.join(args.output_dir, os.path.splitext(os.path.basename(src))[0] + ".wav")
        if dst in seen:
            raise CliError(f"{src}: two inputs would both be written to {dst}")
        seen.add(dst)
        if os.path.exists(dst) and not args.overwrite:
            raise CliError(f"{dst}: exists (use --overwrite)")
        tmp = os.path.join(args.output_dir, temp_name_for(os.path.basename(dst)))
        jobs.append((src, dst, tmp, args.format, args.rate, in_c, out_c))
    _output_folder(args.output_dir, "output folder")
    for job in jobs:
        _output_name(job[1], job[1])
    return jobs


def _job_result(job, get):
    """``get()``'s result, a job's failure as one line naming its input."""
    try:
        return get()
    except (WavError, CipherError, ValueError, OSError) as e:
        raise CliError(f"{job[0]}: {e}") from None


def cmd_convert(args) -> int:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool
    from functools import partial

    in_c = _cipher(args, "in_", "input")
    out_c = _cipher(args, "", "output")
    jobs = _convert_jobs(args, in_c, out_c)
    workers = min(args.jobs or os.cpu_count() or 1, len(jobs))
    results = {}
    progress = None
    if (len(jobs) > 1 and not args.quiet and sys.stderr.isatty()) or args.progress:
        from tqdm import tqdm

        progress = tqdm(total=len(jobs), unit="file", file=sys.stderr)
    try:
        if workers == 1:
            for i, job in enumerate(jobs):
                results[i] = _job_result(job, partial(_convert_one, job))
                progress and progress.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_convert_one, job): i for i, job in enumerate(jobs)}
                try:
                    for f in as_completed(futures):
                        results[futures[f]] = _job_result(jobs[futures[f]], f.result)
                        progress and progress.update(1)
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)  # no job starts after a failure
                    raise
    except BrokenProcessPool:
        raise CliError(
            "a worker process ended abruptly (killed?); the files converted before "
            "are complete, no partial file is left"
        ) from None
    finally:
        if progress is not None:
            progress.close()
        for job in jobs:  # what a dead worker could not remove; every worker has ended
            try:
                os.unlink(job[2])
            except OSError:
                pass
    if not args.quiet:
        for i in sorted(results):
            dst, seconds = results[i]
            print(f"{dst}  {seconds:.3f} s")
    return 0


# --- info / dtmf / repair ------------------------------------------------------------------


def _digits(mono: np.ndarray) -> list[dict]:
    from . import dsp

    out = []
    for d in dsp.detect_dtmf(mono):
        assert d.end is not None, "detect_dtmf returns ended digits only"
        out.append(
            {
                "digit": d.digit,
                "start": round(d.start / 8000, 3),
                "end": round(d.end / 8000, 3),
                "level_dbm0": round(float(d.level_dbm0), 1),
            }
        )
    return out


def _analyse(path, cipher, want_digits=True) -> dict:
    from . import dsp

    pcm, meta = _read(path, cipher)
    mono = _mono8k(pcm, meta.rate, path)
    out = {
        "file": path,
        "format": meta.format,
        "rate": meta.rate,
        "channels": meta.channels,
        "frames": meta.frames,
        "duration": round(meta.duration, 6),
        "level_dbm0": _level_dbm0(mono),
    }
    if mono.size:
        audio = dsp.audio_segments(mono)
        heard = int((audio[:, 1] - audio[:, 0]).sum()) if audio.size else 0
        out["silence_share"] = round(1 - heard / mono.size, 4)
    else:
        out["silence_share"] = None
    if want_digits:
        out["dtmf"] = _digits(mono)
    return out


def cmd_info(args) -> int:
    cipher = _cipher(args, "", "input")
    for p in args.files:  # every file checked before any is decoded
        _check_input(p, cipher)
    results = [_analyse(p, cipher) for p in args.files]
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0]))
        return 0
    for r in results:
        digits = "".join(d["digit"] for d in r["dtmf"]) or "-"
        level = "-" if r["level_dbm0"] is None else f"{r['level_dbm0']:.1f} dBm0"
        share = "-" if r["silence_share"] is None else f"{100 * r['silence_share']:.0f}%"
        print(
            f"{r['file']}: {r['format']}, {r['rate']} Hz, {r['channels']} ch, {r['duration']:.3f} s, "
            f"level {level}, silence {share}, DTMF {digits}"
        )
    return 0


def cmd_dtmf(args) -> int:
    cipher = _cipher(args, "", "input")
    for p in args.files:  # every file checked before any is decoded
        _check_input(p, cipher)
    found = []
    for p in args.files:
        pcm, meta = _read(p, cipher)
        found.append({"file": p, "dtmf": _digits(_mono8k(pcm, meta.rate, p))})
    if len(found) == 1:  # one file: the rows alone, as ever
        rows = found[0]["dtmf"]
        if args.json:
            print(json.dumps(rows))
        else:
            for r in rows:
                print(
                    f"{r['start']:9.3f} s  {r['digit']}  ({r['end'] - r['start']:.3f} s, "
                    f"{r['level_dbm0']} dBm0)"
                )
            if not rows:
                print("no DTMF digits")
        return 0
    if args.json:
        print(json.dumps(found))
        return 0
    for f in found:
        digits = (
            ", ".join(f"{r['digit']} at {r['start']:.3f} s" for r in f["dtmf"]) or "no DTMF digits"
        )
        print(f"{f['file']}: {digits}")
    return 0


def _repair_encrypted(path, cipher):
    """A sealed .part left by a crash, or a final encrypted file: repaired through a
    sealed view (no plaintext on the disk) and replaced atomically by the final file
    encrypted with ``cipher``."""
    try:
        return wav.recover(path, cipher)
    except CipherError as e:
        raise CliError(f"{path}: {e}") from None


def cmd_repair(args) -> int:
    cipher = _cipher(args, "", "file")
    for path in args.files:
        _regular_file(path)
        if cipher is None and is_sealed_part(path):
            raise CliError(
                f"{path}: an encrypted recording in progress: give the recording's "
                "--key (and --iv, or --cipher aes-gcm, for the final file)"
            )
        try:
            if cipher is not None:
                before, after = _repair_encrypted(path, cipher)
            else:
                before = wav.info(path)
                after = wav.repair(path)
        except WavError as e:
            raise CliError(f"{path}: cannot repair: {e}") from None
        except OSError as e:
            raise CliError(f"{path}: {e.strerror or e}") from None
        change = (
            "already whole"
            if after.frames == before.frames
            else f"{before.frames} -> {after.frames} frames"
        )
        print(f"{path}: {after.format} {after.rate} Hz, {after.duration:.3f} s ({change})")
    return 0


# --- parser --------------------------------------------------------------------------------


def _add_key(p, prefix="", what="output"):
    p.add_argument(
        f"--{prefix}key", metavar="HEX", help=f"AES key (16, 24 or 32 bytes, hex) of the {what}"
    )
    p.add_argument(f"--{prefix}iv", metavar="HEX", help=f"AES-CBC IV (16 bytes, hex) of the {what}")
    p.add_argument(
        f"--{prefix}cipher",
        choices=CIPHERS,
        default="aes-cbc",
        help=f"encryption of the {what}: aes-cbc (default; openssl enc compatible, needs "
        f"--{prefix}key and --{prefix}iv, no integrity check) or aes-gcm (authenticated, "
        f"a changed file is refused; --{prefix}key only, the nonce is in the file)",
    )


MAX_JOBS = 256


def _whole(low: int, high: int | None = None):
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value}")
        return value

    return parse


def _path(text: str) -> str:
    """An argparse type: a path that is not empty."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


def build_parser() -> argparse.ArgumentParser:
    from .filerecorder import RECORD_FORMATS, RECORD_RATES

    p = _Parser(prog="recorder", description="Record telephone-call audio to files.")
    p.add_argument("--version", action="version", version=f"callrecorder {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser(
        "demo",
        help="record a synthetic call in every format and rate, show the results",
        description="Synthesise a short call (talk, a pause, the DTMF digit 5) and record it "
        "through FileRecorder in every format and rate, with the recorder's "
        "terminations at work; print a table and where the files are.",
    )
    d.add_argument(
        "--out",
        metavar="DIR",
        type=_path,
        help="where to write (default: a new temporary directory)",
    )
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser(
        "record",
        help="play a WAV file as a call's audio and record it",
        description="Play INPUT (any WAV this package reads) as a call's inbound audio and "
        "record it through FileRecorder exactly as a call would, as fast as "
        "possible.  Defaults are the FileRecorder's.",
    )
    r.add_argument("input", metavar="INPUT")
    r.add_argument("output", metavar="OUTPUT", type=_path)
    r.add_argument("--format", default="alaw", choices=RECORD_FORMATS + tuple(codecs.ALIASES))
    r.add_argument("--rate", type=int, default=8000, choices=RECORD_RATES)
    r.add_argument("--max-bytes", type=int, default=1920000, metavar="N", help="0 = no limit")
    r.add_argument("--max-silence-ms", type=int, default=10000, metavar="MS", help="0 = off")
    r.add_argument("--initial-silence-ms", type=int, default=0, metavar="MS", help="0 = no limit")
    r.add_argument("--barge-in", action="store_true", help="stop at the first DTMF digit")
    r.add_argument("--timeout", type=float, default=120, metavar="SECONDS", help="0 = no limit")
    r.add_argument("--no-hangup", action="store_true", help="after INPUT ends, silence (no hangup)")
    r.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    r.add_argument("--json", action="store_true")
    _add_key(r)
    _add_key(r, "in-", "input")
    r.set_defaults(func=cmd_record)

    c = sub.add_parser(
        "convert",
        help="transcode WAV files (any format and rate to any)",
        description="Transcode many files in parallel over the cores.  Never overwrites "
        "unless --overwrite is given.",
    )
    c.add_argument("inputs", nargs="+", metavar="IN")
    c.add_argument("-o", "--output-dir", required=True, metavar="DIR", type=_path)
    c.add_argument("--format", default="s16bit", help="output format (default s16bit)")
    c.add_argument("--rate", type=_whole(1), default=None, help="output rate in Hz (default: keep)")
    c.add_argument("--overwrite", action="store_true")
    c.add_argument(
        "-j",
        "--jobs",
        type=_whole(1, MAX_JOBS),
        default=None,
        help=f"worker processes, 1 to {MAX_JOBS} (default: one per core)",
    )
    c.add_argument("--progress", action="store_true", help="always show the progress bar")
    c.add_argument("-q", "--quiet", action="store_true")
    _add_key(c)
    _add_key(c, "in-", "inputs")
    c.set_defaults(func=cmd_convert)

    i = sub.add_parser(
        "info",
        help="format, rate, duration, level, silence share, DTMF digits",
        description="Describe WAV files: format, rate, channels, duration, level (dBm0), "
        "share of silence, DTMF digits.",
    )
    i.add_argument("files", nargs="+", metavar="FILE")
    i.add_argument("--json", action="store_true", help="an object for one FILE, a list for several")
    _add_key(i, what="files")
    i.set_defaults(func=cmd_info)

    t = sub.add_parser(
        "dtmf",
        help="DTMF digits in WAV files, with start times",
        description="List the DTMF digits in each FILE with their start and end times "
        "(one process for many files).  For one FILE: a line per digit; "
        "for several: a line per file.",
    )
    t.add_argument("files", nargs="+", metavar="FILE")
    t.add_argument(
        "--json",
        action="store_true",
        help="for one FILE a list of digits; for several a list of {file, dtmf}",
    )
    _add_key(t, what="file")
    t.set_defaults(func=cmd_dtmf)

    f = sub.add_parser(
        "repair",
        help="fix a recording cut short by a crash",
        description="Fix the header of WAV files cut short by a crash (such as a .part "
        "file left by a killed recorder), in place, keeping every whole frame.  "
        "With a key: an encrypted file, or the sealed .part of an encrypted "
        "recording, becomes the final file encrypted with --key/--iv/--cipher; "
        "no plaintext is written to the disk.",
    )
    f.add_argument("files", nargs="+", metavar="FILE")
    _add_key(f, what="files (decrypted, repaired and encrypted again)")
    f.set_defaults(func=cmd_repair)

    v = sub.add_parser(
        "serve",
        help="a SIP recording server: record inbound calls",
        description="Answer SIP calls (UDP/TCP) and record them.  With APP "
        "(FILE.py:FUNCTION or MODULE:FUNCTION) each call is handed to "
        "FUNCTION(channel) on a worker thread; without, every call is "
        "answered and recorded to <date>/<call id>.wav under --media-root "
        "with the record options below.  SIGTERM/SIGINT drains: new calls "
        "get 503, running recordings end with their calls or, after "
        "--drain-seconds, with ABORTED; every file is published.",
    )
    v.add_argument("app", nargs="?", metavar="APP")
    v.add_argument("--sip", required=True, type=_hostport, metavar="HOST:PORT")
    v.add_argument("--transport", default="udp,tcp", help="udp, tcp or udp,tcp (default)")
    v.add_argument(
        "--advertise",
        metavar="HOST",
        help="the IP address put in the SDP and Contact (default: the --sip host; "
        "required when --sip listens on 0.0.0.0, useful behind NAT)",
    )
    v.add_argument(
        "--rtp-latch",
        choices=("address", "any"),
        default="address",
        help="take a call's RTP only from the address in its SDP (default; the port is "
        "learnt from the first packet), or from the first packet from any address "
        "(callers behind a NAT that rewrites addresses)",
    )
    v.add_argument("--media-root", required=True, type=_path, metavar="DIR")
    v.add_argument(
        "--rtp-ports",
        type=_port_range,
        default=(40000, 49999),
        metavar="LO-HI",
        help="RTP port range (default 40000-49999)",
    )
    v.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="accept SIP from this network only (repeatable; default: any)",
    )
    v.add_argument("--max-calls", type=_whole(1, 100000), default=100, metavar="N")
    v.add_argument(
        "--workers",
        type=_whole(1, 1024),
        default=None,
        metavar="N",
        help="worker processes, one engine each, sharing the SIP address with "
        "SO_REUSEPORT (default: the number of cores); each takes a slice of "
        "--rtp-ports and its share of --max-calls",
    )
    v.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="on SIGTERM, how long running calls may go on (default 30)",
    )
    v.add_argument("--format", default="alaw", choices=RECORD_FORMATS)
    v.add_argument("--rate", type=int, default=8000, choices=RECORD_RATES)
    v.add_argument("--max-bytes", type=int, default=1920000, metavar="N", help="0 = no limit")
    v.add_argument("--max-silence-ms", type=int, default=10000, metavar="MS", help="0 = off")
    v.add_argument("--initial-silence-ms", type=int, default=0, metavar="MS", help="0 = no limit")
    v.add_argument("--timeout", type=float, default=120, metavar="S", help="0 = no limit")
    v.add_argument("--barge-in", action="store_true", help="stop at the first DTMF digit")
    v.add_argument(
        "--metrics",
        type=_hostport,
        metavar="HOST:PORT",
        help="serve Prometheus metrics over HTTP here",
    )
    v.add_argument("--log-format", choices=("text", "json"), default="text")
    _add_key(v, what="recordings")
    v.set_defaults(func=cmd_serve)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as e:
        print(f"recorder: error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"recorder: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("recorder: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line for the user, never a traceback
        print(f"recorder: error: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
