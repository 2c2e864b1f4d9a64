"""DTMF receiver side by side with spandsp's dtmf_rx (Debian libspandsp, ctypes), same
signals, same run: the Mitel CM7291-style conformance sweeps (also through A-law, mu-law,
IMA and OKI ADPCM), talk-off on real speech and music, and speed (one channel, and the
multi-channel bank with DTMF + silence on 20 ms chunks).

    python bench/dtmf.py [--json] [--quick] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path = [p for p in sys.path if os.path.abspath(p) != os.path.dirname(HERE)]

import dsp_signals as S  # noqa: E402
import numpy as np  # noqa: E402
from _common import emit, machine, median_time  # noqa: E402

from recorder import dsp  # noqa: E402

KEYS = S.KEYS


class Receivers:
    def __init__(self, sp):
        self.sp = sp

    def ours(self, x):
        return "".join(d.digit for d in dsp.detect_dtmf(x))

    def theirs(self, x):
        return self.sp.dtmf_rx(x)


def conformance(rx: Receivers, codec, quick: bool):
    """Rows of (test, ours, spandsp, pass criterion) for one channel condition."""
    sp = rx.sp
    lvl = -4 if codec in (None, "alaw", "ulaw") else -15

    def run(x):
        y = S.to_int16(x) if codec is None else S.codec_pass(S.to_int16(x), codec, sp)
        return rx.ours(y), rx.theirs(y)

    rows = []

    def add(name, ours, theirs, want, ok_ours, ok_theirs):
        rows.append(
            {
                "codec": codec or "linear",
                "test": name,
                "ours": ours,
                "spandsp": theirs,
                "want": want,
                "ours_ok": bool(ok_ours),
                "spandsp_ok": bool(ok_theirs),
            }
        )

    # decode: 16 digits x10, 50/50 ms
    want = "".join(d * 10 for d in KEYS)
    o, t = run(S.digit_train(want, 50, 50, low_dbm0=lvl, high_dbm0=lvl))
    add(
        "decode 16x10",
        f"{sum(a == b for a, b in zip(o, want, strict=False))}/160 ({len(o)} events)",
        f"{sum(a == b for a, b in zip(t, want, strict=False))}/160 ({len(t)} events)",
        "160/160",
        o == want,
        t == want,
    )

    # frequency: +-1.5 % detected, +-3.5 % rejected (digits 1 5 9 D, each tone)
    def freq(dev):
        no = nt = 0
        for d in "159D":
            for low in (True, False):
                x = S.digit_train(
                    d * 10,
                    50,
                    50,
                    low_dbm0=lvl - 13 if codec is None else lvl,
                    high_dbm0=lvl - 13 if codec is None else lvl,
                    low_dev=dev if low else 0.0,
                    high_dev=0.0 if low else dev,
                )
                o, t = run(x)
                no += len(o)
                nt += len(t)
        return no, nt

    for dev in (0.015, -0.015):
        no, nt = freq(dev)
        add(f"freq {dev:+.1%} accept", f"{no}/80", f"{nt}/80", "80/80", no == 80, nt == 80)
    for dev in (0.035, -0.035):
        no, nt = freq(dev)
        add(f"freq {dev:+.1%} reject", f"{no}/80", f"{nt}/80", "0/80", no == 0, nt == 0)

    # twist: high 8 dB below low, low 4 dB below high, all digits x10
    for name, lo, hi in (("twist normal 8 dB", lvl, lvl - 8), ("twist reverse 4 dB", lvl - 4, lvl)):
        o, t = run(S.digit_train("".join(d * 10 for d in KEYS), 50, 50, low_dbm0=lo, high_dbm0=hi))
        add(name, f"{len(o)}/160", f"{len(t)}/160", "160/160", o == want, t == want)

    # dynamic range
    top, bottom = (3, -36) if codec in (None, "alaw", "ulaw") else (3, -15)
    levels = list(range(top, bottom - 1, -1))
    x = np.concatenate([S.digit_train(KEYS, 50, 50, low_dbm0=v, high_dbm0=v) for v in levels])
    o, t = run(x)
    n = len(levels) * 16
    add(
        f"range {top:+d}..{bottom} dBm0",
        f"{len(o)}/{n}",
        f"{len(t)}/{n}",
        f"{n}/{n}",
        o == KEYS * len(levels),
        t == KEYS * len(levels),
    )
    o, t = run(S.digit_train(KEYS * 3, 50, 50, low_dbm0=-55, high_dbm0=-55))
    add("-55 dBm0 rejected", f"{len(o)}", f"{len(t)}", "0", o == "", t == "")

    # lowest level detected (digit 1 x10 per level)
    def lowest(fn):
        for v in range(-20, -60, -1):
            y = S.to_int16(S.digit_train("1" * 10, 50, 50, low_dbm0=v, high_dbm0=v))
            y = y if codec is None else S.codec_pass(y, codec, sp)
            if len(fn(y)) != 10:
                return v + 1
        return -60

    if codec in (None, "alaw"):
        lo_o, lo_t = lowest(rx.ours), lowest(rx.theirs)
        add(
            "lowest level, all 10 found",
            f"{lo_o} dBm0",
            f"{lo_t} dBm0",
            "<= -36",
            lo_o <= -36,
            lo_t <= -36,
        )

    # timing: bursts at every alignment
    offs = list(range(0, 80, 5))

    def bursts(on, off=60):
        return np.concatenate(
            [np.concatenate([S.silence(off + k / 8), S.tone_pair("1", on, lvl, lvl)]) for k in offs]
            + [S.silence(100)]
        )

    o, t = run(bursts(40))
    add(
        "40 ms tones detected",
        f"{len(o)}/{len(offs)}",
        f"{len(t)}/{len(offs)}",
        "all",
        len(o) == len(offs),
        len(t) == len(offs),
    )
    o, t = run(bursts(19))
    add("19 ms tones rejected", f"{len(o)}", f"{len(t)}", "0", o == "", t == "")

    # shortest detected / longest rejected, ms
    def guard(fn):
        for ms in range(10, 60):
            y = S.to_int16(bursts(ms))
            y = y if codec is None else S.codec_pass(y, codec, sp)
            if len(fn(y)) == len(offs):
                return ms
        return 60

    if codec is None:
        g_o, g_t = guard(rx.ours), guard(rx.theirs)
        add(
            "shortest tone always detected",
            f"{g_o} ms",
            f"{g_t} ms",
            "<= 40 ms",
            g_o <= 40,
            g_t <= 40,
        )
    pairs = np.concatenate(
        [
            np.concatenate(
                [
                    S.silence(13 + k / 8),
                    S.tone_pair("5", 50, lvl, lvl),
                    S.silence(40),
                    S.tone_pair("5", 50, lvl, lvl),
                    S.silence(100),
                ]
            )
            for k in offs
        ]
    )
    o, t = run(pairs)
    add(
        "40 ms pause: 2 events",
        f"{len(o)}/{2 * len(offs)}",
        f"{len(t)}/{2 * len(offs)}",
        "all",
        len(o) == 2 * len(offs),
        len(t) == 2 * len(offs),
    )
    drop = np.concatenate(
        [
            np.concatenate(
                [
                    S.silence(13 + k / 8),
                    S.tone_pair("5", 50, lvl, lvl),
                    S.silence(10),
                    S.tone_pair("5", 50, lvl, lvl),
                    S.silence(100),
                ]
            )
            for k in offs
        ]
    )
    o, t = run(drop)
    add(
        "10 ms dropout: 1 event",
        f"{len(o)}/{len(offs)}",
        f"{len(t)}/{len(offs)}",
        "all",
        len(o) == len(offs),
        len(t) == len(offs),
    )

    # noise: 1000 digits at 15 dB S/N; failing S/N
    def noisy(snr, n=1000):
        rng = np.random.default_rng(1234567)
        sig = S.digit_train("1" * n, 50, 50, lead_ms=0)
        return sig + S.band_noise(len(sig), -4 - snr, rng)

    o, t = run(noisy(15))
    add(
        "S/N 15 dB, 1000 digits",
        f"{len(o)}/1000",
        f"{len(t)}/1000",
        "1000/1000",
        o == "1" * 1000,
        t == "1" * 1000,
    )
    if not quick or codec is None:

        def failing(which):
            for snr in range(15, -10, -1):
                o, t = run(noisy(snr))
                if len(o if which == 0 else t) != 1000:
                    return snr
            return -10

        f_o, f_t = failing(0), failing(1)
        add(
            "S/N where 1000/1000 first fails",
            f"{f_o} dB",
            f"{f_t} dB",
            "< 15 dB",
            f_o < 15,
            f_t < 15,
        )

    # dial tone at -15 dBm0 under -15 dBm0 digits
    sig = S.digit_train(KEYS * 3, 50, 50, low_dbm0=-15, high_dbm0=-15)
    o, t = run(sig + S.dial_tone(len(sig), -15))
    add(
        "dial tone -15 under -15 digits",
        f"{len(o)}/48",
        f"{len(t)}/48",
        "48/48",
        o == KEYS * 3,
        t == KEYS * 3,
    )
    return rows


def talkoff(rx: Receivers, quick: bool):
    sets = []
    speech = S.speech_files()
    music = S.music_files()
    if quick:
        speech = [f for f in speech if "/fr" in f]
    if speech:
        sets.append(("speech (asterisk prompts)", S.corpus(speech)))
    if music:
        sets.append(("music on hold", S.corpus(music)))
    try:
        text = (
            "The quick brown fox jumps over the lazy dog. Please hold the line, your call is "
            "important to us. One two three four five six seven eight nine zero. "
            "Press one for sales, two for support, star to return to the main menu."
        )
        parts = [
            S.espeak(text, v, speed=sp_, pitch=p)
            for v in ("en", "en+f3", "en+f2", "en+m3", "en+f4", "fr", "de", "es", "it")
            for p in ((30, 60, 80, 95) if not quick else (50, 80))
            for sp_ in ((130, 170, 200) if not quick else (170,))
        ]
        sets.append(("espeak-ng speech", np.concatenate(parts)))
    except (OSError, subprocess.SubprocessError) as e:
        print(f"espeak-ng corpus skipped: {e}", file=sys.stderr)
    rows = []
    for name, x in sets:
        for gain in (0, 8, -10):
            y = S.to_int16(x.astype(np.float64) * 10 ** (gain / 20))
            hours = len(y) / 8000 / 3600
            o, t = rx.ours(y), rx.theirs(y)
            rows.append(
                {
                    "corpus": name,
                    "gain_db": gain,
                    "hours": round(hours, 3),
                    "ours": len(o),
                    "spandsp": len(t),
                    "ours_digits": o,
                    "spandsp_digits": t,
                    "ours_per_hour": len(o) / hours,
                    "spandsp_per_hour": len(t) / hours,
                }
            )
    return rows


def speed(rx: Receivers, repeat: int, quick: bool):
    sp = rx.sp
    files = S.speech_files()
    x = S.corpus(files[: 300 if quick else 1200])
    n = min(len(x), 4_000_000 if quick else 8_000_000)
    x = np.ascontiguousarray(x[:n])
    rows = []

    # one channel, whole buffer
    def ours1():
        d = dsp.DtmfDetector()
        d.process(x)

    def theirs1():
        sp.dtmf_rx(x, chunk=n)

    t_o, t_t = median_time(ours1, repeat), median_time(theirs1, repeat)
    rows.append(
        {
            "case": "1 channel, one buffer",
            "ours_msps": n / t_o / 1e6,
            "spandsp_msps": n / t_t / 1e6,
            "ratio": t_t / t_o,
        }
    )

    # many channels, 20 ms chunks
    K, L = (2000 if quick else 10000), 160
    ticks = 10
    need = K * L * ticks
    src = np.resize(x, need).reshape(ticks, K, L)  # each tick: K channels x 160 samples
    src = np.ascontiguousarray(src)

    def multi(dtmf, silence):
        m = dsp.MultiDetector(K, dtmf=dtmf, silence=silence)

        def go():
            for t in range(ticks):
                m.process(src[t])

        return go

    lib = sp.lib
    states = [lib.dtmf_rx_init(None, None, None) for _ in range(K)]

    def theirs_multi():
        for t in range(ticks):
            blk = src[t]
            base = blk.ctypes.data
            for i in range(K):
                lib.dtmf_rx(states[i], base + 2 * L * i, L)

    t_m = median_time(multi(True, False), repeat)
    t_ms = median_time(multi(True, True), repeat)
    t_s = median_time(multi(False, True), repeat)
    t_sp = median_time(theirs_multi, max(1, repeat // 2))
    for s in states:
        lib.dtmf_rx_free(s)
    total = K * L * ticks
    rows.append(
        {
            "case": f"{K} channels x 20 ms, DTMF",
            "ours_msps": total / t_m / 1e6,
            "spandsp_msps": total / t_sp / 1e6,
            "ratio": t_sp / t_m,
            "ratio_vs_1buffer": (total / t_m) / (n / t_t),
        }
    )
    rows.append({"case": f"{K} channels x 20 ms, silence", "ours_msps": total / t_s / 1e6})
    rows.append(
        {
            "case": f"{K} channels x 20 ms, DTMF + silence",
            "ours_msps": total / t_ms / 1e6,
            "channels_per_core": total / t_ms / 8000,
        }
    )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smaller corpora and fewer sweeps")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--skip", default="", help="comma list of parts to skip: conformance,talkoff,speed"
    )
    args = ap.parse_args(argv)
    sp = S.load_spandsp()
    if sp is None:
        print("libspandsp not found (Debian libspandsp-dev)", file=sys.stderr)
        return 2
    rx = Receivers(sp)
    skip = set(filter(None, args.skip.split(",")))
    out = {"machine": machine()}
    t0 = time.time()
    if "conformance" not in skip:
        conf = []
        for codec in (None, "alaw", "ulaw", "ima", "oki"):
            conf += conformance(rx, codec, args.quick)
        out["conformance"] = conf
    if "talkoff" not in skip:
        out["talkoff"] = talkoff(rx, args.quick)
    if "speed" not in skip:
        out["speed"] = speed(rx, args.repeat, args.quick)
    out["seconds"] = round(time.time() - t0, 1)
    if args.json:
        import json

        print(json.dumps(out, indent=1, default=str))
        return 0
    if "conformance" in out:
        print(
            "Conformance (Mitel CM7291-style; IMA/OKI at -15 dBm0 per tone, others at -4 unless stated)"
        )
        emit(
            out["conformance"],
            False,
            "DTMF conformance: ours vs spandsp dtmf_rx",
            [
                ("codec", "codec", ""),
                ("test", "test", ""),
                ("ours", "ours", ""),
                ("spandsp", "spandsp", ""),
                ("want", "want", ""),
                ("ours_ok", "ours ok", ""),
                ("spandsp_ok", "spandsp ok", ""),
            ],
        )
        print()
    if "talkoff" in out:
        emit(
            out["talkoff"],
            False,
            "Talk-off: false digits (ours vs spandsp)",
            [
                ("corpus", "corpus", ""),
                ("gain_db", "gain dB", "d"),
                ("hours", "hours", ".3f"),
                ("ours", "ours", "d"),
                ("spandsp", "spandsp", "d"),
                ("ours_per_hour", "ours/h", ".1f"),
                ("spandsp_per_hour", "spandsp/h", ".1f"),
            ],
        )
        print()
    if "speed" in out:
        emit(
            out["speed"],
            False,
            f"Speed (speech, median of {args.repeat}), Msamples/s",
            [
                ("case", "case", ""),
                ("ours_msps", "ours", ".0f"),
                ("spandsp_msps", "spandsp", ".0f"),
                ("ratio", "ours/spandsp", ".2f"),
                ("ratio_vs_1buffer", "vs spandsp 1 buffer", ".2f"),
                ("channels_per_core", "ch/core real time", ".0f"),
            ],
        )
        print(
            "(spandsp in the multi-channel row: dtmf_rx called per channel per 20 ms through ctypes;"
            " 'vs spandsp 1 buffer' compares with its best per-sample speed, one call on the whole buffer)"
        )
    print(f"({out['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
