"""A test RTP sender (the packer is written here, independently of the receiver) and
helpers to drive a :class:`recorder.rtp.RtpReceiver` over real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import struct
import subprocess
import time

import numpy as np

from recorder import codecs, rtp

FRAME = 160


def packet(
    seq: int,
    ts: int,
    ssrc: int = 0x1234,
    payload: bytes = b"",
    *,
    pt: int = 8,
    marker: bool = False,
    padding: int = 0,
    csrcs=(),
    ext: bytes | None = None,
) -> bytes:
    """One RTP packet (RFC 3550 5.1): V=2, P, X, CC, M, PT, seq, ts, SSRC, CSRCs,
    extension (profile 0xBEDE + ``ext`` padded to 32-bit words), payload, padding."""
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if ext is not None else 0) | len(csrcs)
    head = struct.pack(
        "!BBHII", b0, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc
    )
    head += b"".join(struct.pack("!I", c) for c in csrcs)
    if ext is not None:
        ext = ext + b"\0" * (-len(ext) % 4)
        head += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
    tail = b""
    if padding:
        tail = b"\0" * (padding - 1) + bytes([padding])
    return head + payload + tail


def event_payload(event: int, end: bool, volume: int, duration: int) -> bytes:
    """RFC 4733 2.3 payload."""
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


def speechlike(n: int, seed: int = 1) -> np.ndarray:
    """A signal with no zero runs (so silence is recognisable): tones plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 6000 * np.sin(t * 0.07) + 3000 * np.sin(t * 0.31) + rng.normal(0, 800, n)
    x = np.clip(x, -32000, 32000).astype(np.int16)
    x[x == 0] = 1
    return x


def alaw_frames(pcm: np.ndarray) -> list[bytes]:
    data = codecs.alaw_encode(pcm).tobytes()
    return [data[i : i + FRAME] for i in range(0, len(data), FRAME)]


class Link:
    """A receiver with one call per requested slot and a sender socket for it."""

    def __init__(
        self,
        slots=(0,),
        *,
        max_calls: int = 4,
        source_from_sender: bool = True,
        codec: str = "PCMA",
        event_pt: int | None = 101,
        **options,
    ):
        # the tests send a whole call before reading it: a ring big enough to hold it
        options.setdefault("buffer_ms", 8000)
        self.rx = rtp.RtpReceiver(max_calls, **options)
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx.bind(("127.0.0.1", 0))
        self.ports = {}
        for slot in slots:
            source = self.tx.getsockname() if source_from_sender else None
            self.ports[slot] = self.rx.add(
                slot, codec=codec, event_payload_type=event_pt, source=source
            )
        self.sent = 0

    def send(self, datagrams, slot: int = 0, sender: socket.socket | None = None) -> None:
        for d in datagrams:
            (sender or self.tx).sendto(d, ("127.0.0.1", self.ports[slot]))
            self.sent += 1

    def seen(self) -> int:
        c = self.rx.counters()
        return int(sum(c[k].sum() for k in ("packets", "wrong_source", "garbage", "other_pt")))

    def receive(self, timeout_s: float = 10.0) -> int:
        """Poll until every datagram sent was read (bounded); returns the time (ns)
        right after."""
        deadline = time.monotonic() + timeout_s
        while self.seen() < self.sent:
            assert time.monotonic() < deadline, f"only {self.seen()} of {self.sent} datagrams read"
            self.rx.poll(50)
        return rtp.monotonic_ns()

    def take_all(self, now: int, slot: int = 0) -> np.ndarray:
        """Everything released for ``slot`` at ``now``, in frames of 160."""
        out = []
        while True:
            block, slots = self.rx.take(FRAME, now=now)
            if not len(slots):
                break
            for row, s in zip(block, slots, strict=True):
                if s == slot:
                    out.append(row.copy())
        return np.concatenate(out) if out else np.zeros(0, np.int16)

    def close(self):
        self.rx.close()
        self.tx.close()


def ffmpeg_rtp_sender(ffmpeg: str, src, port: int, local_port: int | None = None) -> list[str]:
    """The command of ``ffmpeg`` streaming the WAV file ``src`` as A-law RTP in 20 ms
    packets, paced in real time (``-re``), to 127.0.0.1:``port`` (from ``local_port``)."""
    dest = f"rtp://127.0.0.1:{port}" + (f"?localport={local_port}" if local_port else "")
    return [
        *(ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re"),
        *("-f", "lavfi", "-i", f"amovie={src},asetnsamples=n={FRAME}"),
        *("-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1", "-f", "rtp", dest),
    ]


def ffmpeg_alaw(ffmpeg: str, src) -> bytes:
    """ffmpeg's own A-law of the WAV file ``src`` (its encoder rounds some samples
    differently from G.191's)."""
    return subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(src), "-f", "alaw", "-"],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
