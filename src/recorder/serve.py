"""``recorder serve``: a SIP recording server.

Each inbound call (SIP INVITE over UDP/TCP, :mod:`recorder.sip`) becomes a
:class:`SipChannel` in state RINGING, handed to the application ``app(channel)`` on a
worker thread, the way an Aculab UAS inbound application is run::

    def app(channel):                       # examples/voicemail.py is a complete one
        channel.answer()                    # 200 OK with our SDP
        channel.FileRecorder.record(f"{channel.call.id}.wav", milliseconds_max_silence=3000,
                                    barge_in=True)
        channel.hangup()                    # BYE

* ``channel.answer()`` opens the call's RTP port (one even port of ``--rtp-ports``),
  starts receiving and sends the 200 OK; ``channel.hangup()`` sends BYE (480 before
  answer).  A BYE or CANCEL from the caller hangs the channel up: the call becomes IDLE
  and a running recording ends with cause HANGUP, keeping everything received.
* When the application returns with the call still up, the server hangs up.  An
  application that raises is logged with its traceback, its call is hung up, and the
  server goes on with the next call.
* ``channel.call`` (a :class:`CallInfo`) carries the call's details: ``id`` (unique),
  ``call_id``, ``from_uri``, ``from_name``, ``to_uri``, ``to_name``, ``remote`` (host,
  port), ``transport``, ``headers`` and the negotiated ``codec``.

Media path: one compiled :class:`recorder.rtp.RtpReceiver` receives every call's RTP (epoll
+ recvmmsg, audio placed by RTP timestamp, RFC 4733 events); one media thread takes 20 ms
frames of all calls from it every tick and pushes the whole block into the engine in one
call (a :class:`recorder.ChannelBatch` of the answered calls, receiver rows mapped to
batch rows by a numpy array: no Python per frame), and hands the telephone events to
:meth:`CallChannel.push_dtmf` at their true start.  The receiver
follows the caller's media clock (a lost packet is silence of its duration; a caller that
goes silent without BYE becomes silence by wall time after one second), so the channel's
own gap watchdog is set back by :data:`WATCHDOG_SLACK` seconds: it only fills silence if
the media thread itself stalls.

Alignment of a recording with the caller's audio: a recording started before the call's
first RTP packet is released (released = one jitter window, 80 ms, after it arrives; so
``record`` right after ``answer`` always is) starts exactly with the first packet's first
sample; it ends with the last packet placed before the BYE (what is still in the jitter
window when the BYE comes is written too).  In between, the file holds the caller's
audio sample for sample (A-law to an A-law file: byte for byte), with silence only where
packets were lost or the caller sent nothing for more than a second.

SDP changes: an INVITE without SDP (late offer) gets our offer in the 200 and the call's
RTP port is bound right then, so packets sent right after the ACK's answer wait in the
socket; a re-INVITE that changes the codec (PCMA to PCMU, or the payload types) is
applied to the receiver before its 200 leaves (packets of the previous codec still on
their way keep their codec), so the recording goes on without a gap.

Shutdown (:meth:`Server.shutdown`, SIGTERM/SIGINT in ``recorder serve``): new calls get
503; running calls go on until they end (their recordings end with HANGUP) or until
``drain_seconds`` pass; then every recording still running is stopped (ABORTED, its file
published) and its call hung up with BYE.  Nothing recorded is lost on a clean shutdown.

Logs: one line per call start and end (logger ``recorder.serve``), with the Call-ID, and
at the end the recording's cause, file, duration, and the RTP packets, lost and late
packets and ``overrun`` (packets dropped because the media thread fell more than the
receiver's buffer behind: an overloaded server); ``--log-format json`` gives one JSON
object per line.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import importlib
import importlib.util
import ipaddress
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from .channel import CallChannel, CallState, ChannelBatch
from .engine import Engine
from .filerecorder import Hangup

log = logging.getLogger("recorder.serve")

__all__ = [
    "WATCHDOG_SLACK",
    "CallInfo",
    "MediaPump",
    "Metrics",
    "Server",
    "SipChannel",
    "load_app",
    "record_app",
    "setup_logging",
]

#: seconds the channel's gap watchdog stays behind the wall clock (the receiver releases
#: silence by wall time after its ``hold_ms``, 1 s; media waits one jitter window)
WATCHDOG_SLACK = 1.5
FRAME = 160  # 20 ms at 8000 Hz
_TICK_MS = 20
_PUMP_MS = 40  # the media thread's shortest round (see MediaPump._run)
_MAX_BATCHES = 8  # MediaPump: batches of receiving channels before they are merged
#: RTP ports a call tries when the one it was given is held by another process
PORT_TRIES = 8


@dataclass(frozen=True)
class CallInfo:
    """Who called whom: the details of a call's INVITE."""

    id: str  # unique id of this call (hex), also in the logs
    call_id: str  # SIP Call-ID
    from_uri: str
    from_name: str
    to_uri: str
    to_name: str
    remote: tuple[str, int]  # where the INVITE came from (host, port)
    transport: str  # "udp" or "tcp"
    headers: tuple[tuple[str, str], ...]
    codec: str | None  # negotiated audio codec ("PCMA", "PCMU"), None if not yet


class _WatchdogClock:
    """The clock a :class:`SipChannel` gives its watchdog: wall time
    :data:`WATCHDOG_SLACK` seconds late, never before the moment of answer."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def restart(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return max(self.start, time.monotonic() - WATCHDOG_SLACK)

    def form(self) -> tuple[float, float]:
        """``(floor, slack)`` of this clock for the engine's gap pass (see
        :meth:`CallChannel._gap_clock`): it reads ``max(floor, time.monotonic() - slack)``."""
        return (self.start, WATCHDOG_SLACK)


class SipChannel(CallChannel):
    """A :class:`~recorder.CallChannel` bound to one SIP call of a :class:`Server`:
    :meth:`answer` sends 200 OK, :meth:`hangup` sends BYE, the caller's BYE/CANCEL hangs
    it up.  Created by the server in state RINGING; ``call`` is its :class:`CallInfo`."""

    def __init__(self, server: Server, sip_call, rtp_port: int, media_root) -> None:
        self._sip_clock = _WatchdogClock()
        super().__init__(
            media_root=media_root,
            codec="s16",
            clock=self._sip_clock,
            name=sip_call.call_id,
            engine=server.engine,
        )
        self._sip_server = server
        self._sip_call = sip_call
        self.rtp_port = rtp_port
        self.call = _info(sip_call)
        self._sip_guard = threading.Lock()
        self._sip_gone: str | None = None  # "bye", "cancel", ... once the caller left
        self._sip_remote_done = threading.Event()  # remote_hangup() has finished
        self._sip_remote_job = None  # the recording the caller's BYE ended (file pending)
        self._sip_receiving = False
        self._sip_sock: socket.socket | None = None  # a late offer's RTP port, bound at answer
        self.rtp_stats = {"packets": 0, "lost": 0, "late": 0, "overrun": 0}
        self.ring()

    def _gap_clock(self) -> tuple[float, float] | None:
        return self._sip_clock.form()

    @property
    def receiving(self) -> bool:
        """Whether the call's RTP is being received."""
        return self._sip_receiving

    @property
    def end_reason(self) -> str | None:
        """Why the SIP call ended ("bye", "cancel", "hangup", "timeout", ...), or None."""
        return self._sip_call.end_reason

    def wait_for_hangup(self, timeout: float | None = None) -> bool:
        """Block until the SIP call has ended (either side); False if ``timeout`` passed."""
        return self._sip_call.ended.wait(timeout)

    def answer(self) -> None:
        """Answer the call: start receiving RTP on :attr:`rtp_port` and send 200 OK.
        Raises :class:`recorder.Hangup` if the caller has gone (CANCEL)."""
        with self._sip_guard:
            gone = self._sip_gone or (
                self._sip_call.end_reason if self._sip_call.ended.is_set() else None
            )
            if gone is not None:
                raise Hangup(f"cannot answer: the call has ended ({gone})")
            if self.state() is CallState.ANSWERED:
                return
            self._sip_clock.restart()
            super().answer()
            # the port we offer is bound before the 200 OK, so packets sent right after
            # it (or after the ACK of a late offer) wait in the socket
            self._sip_sock = self._bind_rtp()
            if self._sip_call.media is not None:
                self._start_media()
        self._sip_call.answer(self.rtp_port)

    def _bind_rtp(self) -> socket.socket:
        """A UDP socket on :attr:`rtp_port`.  When that port cannot be bound (another
        process holds it), the call takes another free port of the range, up to
        :data:`PORT_TRIES` ports in all; :class:`recorder.Hangup` (the call refused with
        503) when none binds."""
        from .sip import PortsExhausted

        error: Exception | None = None
        for _ in range(PORT_TRIES):
            try:
                return self._sip_server.media.bind(self.rtp_port)
            except ValueError as e:
                error = e
                log.warning(
                    "call %s: RTP port %s cannot be bound, trying another: %s",
                    self.call.call_id,
                    self.rtp_port,
                    e,
                )
                try:
                    self.rtp_port = self._sip_server.other_port(self.rtp_port)
                except PortsExhausted as exhausted:
                    error = exhausted
                    break
        self._media_failed(error)

    def _start_media(self) -> None:
        sock, self._sip_sock = self._sip_sock, None
        try:
            self._sip_server.media.start(self, self._sip_call.media, sock)
        except ValueError as e:  # e.g. the port is taken by another process
            self._media_failed(e)
        self._sip_receiving = True

    def _media_failed(self, e: Exception | None) -> NoReturn:
        """The call's RTP port cannot be used (e.g. taken by another process): refuse
        (503) or end the call, and raise :class:`recorder.Hangup`."""
        log.error("call %s: cannot receive RTP on port %s: %s", self.call.call_id, self.rtp_port, e)
        if self._sip_call.state == "ringing":
            self._sip_call.reject(503)
        else:  # a late offer's media: the call is up
            self._sip_call.hangup()
        CallChannel.hangup(self)
        raise Hangup(f"cannot answer: {e}") from None

    def media_changed(self) -> None:
        """The SIP call's media changed (late offer answered in the ACK, re-INVITE)."""
        with self._sip_guard:
            media = self._sip_call.media
            if media is None or self.state() is not CallState.ANSWERED:
                return
            if self._sip_receiving:  # e.g. a re-INVITE from PCMA to PCMU
                self._sip_server.media.update(self, media)
                return
            try:
                self._start_media()
            except Hangup:
                pass

    def hangup(self) -> None:
        """Hang up: what the receiver still holds is written, BYE is sent (480 before
        answer), a running recording ends with HANGUP; returns once its file is
        published."""
        self._stop_media()
        self._sip_call.hangup()
        super().hangup()
        with self._sip_guard:
            gone = self._sip_gone
        if gone is not None:  # the caller's BYE is handled on another thread, which ends
            # the recording without waiting for its file: wait for it here (bounded: a
            # stuck disk)
            if self._sip_remote_done.wait(60) and self._sip_remote_job is not None:
                self._sip_remote_job.done.wait(60)

    def _stop_media(self) -> None:
        with self._sip_guard:
            if self._sip_sock is not None:
                self._sip_sock.close()
                self._sip_sock = None
            if self._sip_receiving:
                self._sip_receiving = False
                self.rtp_stats = self._sip_server.media.stop(self)

    def remote_hangup(self, reason: str) -> None:
        """The caller ended the call (BYE, CANCEL, timeout): hang the channel up.  The
        recording ends at once (cause HANGUP, what was received is kept); this does not
        wait for its file to be published (:meth:`hangup`, on the application's thread,
        does), so many calls ending together are not queued behind each other's disk
        work."""
        with self._sip_guard:
            self._sip_gone = reason
        try:
            self._stop_media()
            self._sip_remote_job = self._hang_up()
        finally:
            self._sip_remote_done.set()


def advertised_address(sip_host: str, advertise: str | None) -> str | None:
    """The checked ``advertise`` address (None: ``sip_host`` is advertised)."""
    if advertise is None:
        if sip_host in ("0.0.0.0", "::", ""):
            raise ValueError(
                f"listening on every address ({sip_host or '*'}): give the address callers "
                "send RTP to with --advertise HOST (it goes into the SDP and Contact)"
            )
        return None
    try:
        ip = ipaddress.ip_address(advertise)
    except ValueError:
        raise ValueError(
            f"--advertise must be an IP address (it goes into the SDP), got {advertise!r}"
        ) from None
    if ip.is_unspecified:
        raise ValueError(f"--advertise must be an address callers can reach, got {advertise!r}")
    return str(ip)


def _info(call) -> CallInfo:
    return CallInfo(
        id=call.id,
        call_id=call.call_id,
        from_uri=call.from_uri,
        from_name=call.from_name,
        to_uri=call.to_uri,
        to_name=call.to_name,
        remote=(call.remote.host, call.remote.port),
        transport=call.remote.transport,
        headers=tuple(call.headers),
        codec=None if call.media is None else call.media.codec,
    )


class MediaPump:
    """RTP of every answered call: one :class:`recorder.rtp.RtpReceiver`, one thread that
    moves 20 ms frames (and RFC 4733 digits) from it into the channels."""

    def __init__(self, max_calls: int, host: str, any_source: bool = False) -> None:
        from .rtp import DIGIT_START, RtpReceiver

        self.any_source = any_source  # latch to any address, not only the SDP's

        self._digit_start = DIGIT_START
        self.receiver = RtpReceiver(max_calls)
        self.host = host
        self._lock = threading.Lock()
        self._free = list(range(max_calls - 1, -1, -1))
        self._slots: dict[int, SipChannel] = {}
        self._slot_of: dict[int, int] = {}  # id(channel) -> slot
        self._pushed = np.zeros(max_calls, np.int64)  # slot -> samples pushed
        self._digits: dict[int, list[tuple[int, str]]] = {}
        self._due: set[int] = set()  # slots with digits waiting for their start
        # The receiving channels in batches: the calls that joined in one round make one
        # small batch; every _MAX_BATCHES batches (or once half the rows are gone) they
        # are merged into one, so a round's cost does not grow with calls x call rate.
        self._batches: list[ChannelBatch] = []
        self._of = np.full(max_calls, -1, np.int64)  # slot -> its batch (index), or -1
        self._row = np.full(max_calls, -1, np.int64)  # ... and its row there
        self._joined: list[int] = []  # slots started since the last round
        self._merge = False  # merge the batches before the next push (a push failed)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="serve-media", daemon=True)
        self._thread.start()

    def bind(self, port: int) -> socket.socket:
        """A UDP socket bound to ``port`` for a call whose media is not known yet (hand
        it to :meth:`start`).  ValueError if the port cannot be bound."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, port))
        except OSError as e:
            sock.close()
            raise ValueError(f"cannot bind RTP socket to {self.host}:{port}: {e}") from None
        return sock

    def start(self, channel: SipChannel, media, sock: socket.socket | None = None) -> None:
        """Receive ``media`` (negotiated :class:`recorder.sip.Media`) for ``channel`` (on
        ``sock`` from :meth:`bind` if given)."""
        with self._lock:
            if not self._free:  # a new call answered before an ended one's slot is freed
                if sock is not None:
                    sock.close()
                raise ValueError(f"all {self.receiver.max_calls} RTP receiver slots are in use")
            slot = self._free.pop()
            try:
                # latch to the first packet from the SDP's address (its port may be a
                # NAT's); --rtp-latch any: from any address
                self.receiver.add_media(
                    slot,
                    media,
                    host=self.host,
                    port=channel.rtp_port,
                    latch=True,
                    any_source=self.any_source,
                    sock=sock,
                )
            except BaseException:
                self._free.append(slot)
                if sock is not None:
                    sock.close()
                raise
            self._slots[slot] = channel
            self._slot_of[id(channel)] = slot
            self._pushed[slot] = 0
            self._digits[slot] = []
            self._joined.append(slot)

    def update(self, channel: SipChannel, media) -> None:
        """The call's codec or payload types changed (re-INVITE): decode the new ones."""
        with self._lock:
            slot = self._slot_of.get(id(channel))
            if slot is not None:
                self.receiver.set_codec(
                    slot,
                    codec=media.codec,
                    payload_type=media.payload_type,
                    event_payload_type=media.telephone_event,
                )

    def stop(self, channel: SipChannel) -> dict:
        """Stop receiving for ``channel``; what the receiver still holds is pushed into
        it.  Returns its RTP counters (packets, lost, late, overrun)."""
        with self._lock:
            slot = self._slot_of.pop(id(channel), None)
            if slot is None:
                return {"packets": 0, "lost": 0, "late": 0, "overrun": 0}
            rest = self.receiver.remove(slot)
            c = self.receiver.counters()[slot]
            if rest.size:
                self._push(slot, channel, rest)
            self._deliver_digits(slot, channel, final=True)
            del self._slots[slot], self._digits[slot]
            self._due.discard(slot)
            self._leave(slot)
            self._free.append(slot)
            return {
                "packets": int(c["packets"]),
                "lost": max(0, int(c["lost"])),
                "late": int(c["late"]),
                "overrun": int(c["overrun"]),  # dropped: the media thread fell behind
            }

    def cpu_seconds(self) -> float:
        """CPU time of the media thread so far (0.0 once it has stopped)."""
        ident = self._thread.ident
        if ident is None or not self._thread.is_alive():
            return 0.0
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(ident))
        except OSError:
            return 0.0

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self.receiver.close()

    def _push(self, slot: int, channel: SipChannel, pcm: np.ndarray) -> None:
        try:
            channel.push(pcm, "s16")
        except Exception:  # a closed channel: nothing to keep
            log.debug("push to %r failed", channel, exc_info=True)
        self._pushed[slot] += pcm.size

    def _deliver_digits(self, slot: int, channel: SipChannel, final: bool = False) -> None:
        """Hand out the digits whose start has been pushed (all of them when ``final``),
        ``duration_ms`` placing each at its true start."""
        pending = self._digits[slot]
        pushed = int(self._pushed[slot])
        while pending and (final or pending[0][0] <= pushed):
            start, digit = pending.pop(0)
            ago = max(0, pushed - start) / 8.0
            try:
                channel.push_dtmf(digit, ago)
            except Exception:
                log.debug("push_dtmf to %r failed", channel, exc_info=True)
        if pending:
            self._due.add(slot)
        else:
            self._due.discard(slot)

    def _leave(self, slot: int) -> None:
        """``slot``'s call stopped receiving: its row is skipped from now on."""
        if slot in self._joined:
            self._joined.remove(slot)
        self._of[slot] = self._row[slot] = -1

    def _new_batch(self, slots: list[int]) -> tuple[list[int], ChannelBatch | None]:
        """The slots of ``slots`` whose channel is still open, and a batch of them (None
        when there is none).  Raises what :class:`ChannelBatch` raises (a channel closed
        in the meantime); nothing is changed then."""
        slots = [s for s in slots if not self._slots[s].closed]
        return slots, ChannelBatch([self._slots[s] for s in slots], "s16") if slots else None

    def _add_batch(self, slots: list[int], batch: ChannelBatch | None) -> None:
        if batch is None:
            return
        self._of[slots] = len(self._batches)
        self._row[slots] = np.arange(len(slots))
        self._batches.append(batch)

    def _update_batches(self) -> None:
        """Before a round's push: the calls that joined get a batch of their own; too
        many batches, or too many rows of ended calls, are merged into one.  A batch
        that cannot be made (a channel closed under us) is tried again next round, and
        until then the batches stay as they were."""
        try:
            rows = sum(len(b) for b in self._batches)
            live = int(np.count_nonzero(self._of >= 0))  # rows of calls still receiving
            if self._merge or len(self._batches) >= _MAX_BATCHES or live * 2 < rows:
                slots, batch = self._new_batch(sorted(set(self._slots) - set(self._joined)))
                self._batches = []
                self._of[:] = self._row[:] = -1
                self._add_batch(slots, batch)
                self._merge = False
            if self._joined:
                slots, batch = self._new_batch(sorted(self._joined))
                self._add_batch(slots, batch)
                self._joined = []
        except Exception:
            log.debug("making a batch failed", exc_info=True)
            self._merge = True

    def _push_block(self, block: np.ndarray, slots: np.ndarray) -> None:
        """One 20 ms frame for each of ``slots`` (receiver slots), one engine call per
        batch."""
        self._update_batches()
        where, rows = self._of[slots], self._row[slots]
        for b, batch in enumerate(self._batches):
            mine = where == b
            if mine.all():  # one batch holds every row: no copy
                part, at = block, rows
            elif mine.any():
                part, at = block[mine], rows[mine]
            else:
                continue
            try:
                batch.push(part, "s16", rows=at)
            except Exception:  # a channel closed under us: nothing to keep for it
                log.debug("batch push failed", exc_info=True)
                self._merge = True
        got = slots[where >= 0]
        self._pushed[got] += block.shape[1]
        if self._due:
            for slot in self._due.intersection(got.tolist()):
                self._deliver_digits(slot, self._slots[slot])  # at its start, not a batch later

    def _run(self) -> None:
        rx = self.receiver
        next_round = time.monotonic()
        while not self._stopping.is_set():
            try:
                # Rounds at most every _PUMP_MS: packets arrive all the time at many
                # calls, and waking for each would cost a round of Python per packet;
                # waiting lets every socket collect its packets, then one round drains
                # them all (an idle server sleeps in poll until a packet comes).
                next_round += _PUMP_MS / 1000
                delay = next_round - time.monotonic()
                if delay > 0:
                    self._stopping.wait(delay)
                else:
                    next_round = time.monotonic()
                rx.poll(_TICK_MS)  # every socket that is ready, in one call
                with self._lock:
                    for ev in rx.events():
                        slot = int(ev["row"])
                        if int(ev["kind"]) == self._digit_start and slot in self._digits:
                            self._digits[slot].append((int(ev["start"]), chr(int(ev["digit"]))))
                            self._deliver_digits(slot, self._slots[slot])  # if already due
                    while True:
                        block, slots = rx.take(FRAME)
                        if not len(slots):
                            break
                        self._push_block(block, slots)
            except Exception:  # never let the media of every call die
                log.exception("media thread error")
                time.sleep(_TICK_MS / 1000)


# -- applications ---------------------------------------------------------------------------


def record_app(**options) -> Callable[[SipChannel], None]:
    """The built-in application: answer, record to ``<date>/<call id>.wav`` under the media
    root with ``options`` (``FileRecorder.record`` keywords), hang up when it ends."""

    def app(channel: SipChannel) -> None:
        channel.answer()
        day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        channel.FileRecorder.record(f"{day}/{channel.call.id}.wav", **options)
        channel.hangup()

    return app


def load_app(spec: str) -> Callable[[SipChannel], None]:
    """``path/to/file.py:function`` or ``package.module:function`` → the function.
    Raises ValueError naming what is wrong."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"APP must be FILE.py:FUNCTION or MODULE:FUNCTION, got {spec!r}")
    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        raise ValueError(f"APP must be FILE.py:FUNCTION or MODULE:FUNCTION, got {spec!r}")
    try:
        if where.endswith(".py") or os.sep in where:
            if not os.path.isfile(where):
                raise ValueError(f"APP {spec!r}: no such file {where!r}")
            mod_name = "recorder_app_" + os.path.splitext(os.path.basename(where))[0]
            loader = importlib.util.spec_from_file_location(mod_name, where)
            if loader is None or loader.loader is None:
                raise ValueError(f"APP {spec!r}: {where!r} cannot be loaded as a module")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ValueError:
        raise
    except Exception as e:
        raise ValueError(f"APP {spec!r} cannot be loaded: {type(e).__name__}: {e}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"APP {spec!r}: {where} has no function {name!r}")
    return fn


# -- logging --------------------------------------------------------------------------------


class _FieldsFormatter(logging.Formatter):
    """A formatter with ``static`` fields (e.g. the worker) on every line."""

    def __init__(self, static: dict | None = None) -> None:
        super().__init__()
        self.static = static or {}


class _TextFormatter(_FieldsFormatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {**self.static, **(getattr(record, "fields", None) or {})}
        line = f"{self.formatTime(record)} {record.levelname} {record.getMessage()}"
        if fields:
            line += " " + " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return line


def _text(v) -> str:
    s = str(v)
    return json.dumps(s) if (not s or any(c in s for c in ' "=\n')) else s


class _JsonFormatter(_FieldsFormatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.datetime.fromtimestamp(
                record.created, datetime.timezone.utc
            ).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "msg": record.getMessage(),
        }
        out.update(self.static)
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(out, default=str)


def setup_logging(fmt: str = "text", stream=None, fields: dict | None = None) -> None:
    """Log to ``stream`` (stderr) in ``fmt`` 'text' (key=value) or 'json' (one object
    per line); ``fields`` (e.g. ``{"worker": 1}``) go on every line."""
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter(fields) if fmt == "json" else _TextFormatter(fields))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


# -- the server -----------------------------------------------------------------------------


class Server:
    """A SIP recording server: ``app(channel)`` for every inbound call (see the module
    docstring).  ``sip_host``/``sip_port``: where SIP listens (port 0: any free port, read
    :attr:`port` after :meth:`start`); RTP is received on ``sip_host`` too, one even port
    of ``rtp_ports`` (first, last) per call.  ``advertise``: the address put in the SDP
    and Contact (and Via) instead of ``sip_host``, for a server listening on every address
    (``0.0.0.0``, then it is required) or behind NAT.  ``sip_sockets`` (UDP, TCP) and
    ``router``: one worker of ``recorder serve --workers N`` (:mod:`recorder.workers`).
    ``engine``: the :class:`recorder.Engine` the calls record on (default: the
    process-wide one); while it is :attr:`~recorder.Engine.behind`, new calls get 503
    (logged once per episode, counted in ``recorder_calls_refused_total{reason="overload"}``).
    ``rtp_latch``: 'address' (default) takes a call's RTP only from the address in its
    SDP, the port learnt from the first packet; 'any' latches to the first packet from
    anywhere (callers behind a NAT that rewrites the address; whoever sends first to
    the port gets the stream)."""

    def __init__(
        self,
        app: Callable[[SipChannel], None],
        *,
        media_root,
        sip_host="127.0.0.1",
        sip_port=5060,
        udp=True,
        tcp=True,
        rtp_ports=(40000, 49999),
        allow=("0.0.0.0/0", "::/0"),
        max_calls=100,
        drain_seconds=30.0,
        metrics=None,
        advertise=None,
        sip_sockets=(None, None),
        router=None,
        engine: Engine | None = None,
        rtp_latch: str = "address",
    ) -> None:
        from .sip import RtpPorts, SipServer

        if not callable(app):
            raise TypeError("app must be a callable taking a channel")
        if (
            isinstance(drain_seconds, bool)
            or not isinstance(drain_seconds, (int, float))
            or not 0 <= drain_seconds <= 86400
        ):
            raise ValueError(f"drain_seconds must be from 0 to 86400, got {drain_seconds!r}")
        if rtp_latch not in ("address", "any"):
            raise ValueError(f"rtp_latch must be 'address' or 'any', got {rtp_latch!r}")
        self.advertise = advertised_address(sip_host, advertise)
        self.app = app
        self.media_root = os.fspath(media_root)
        self.drain_seconds = float(drain_seconds)
        self.ports = RtpPorts(*rtp_ports)
        self.sip = SipServer(
            self._on_call,
            host=sip_host,
            port=sip_port,
            udp=udp,
            tcp=tcp,
            max_calls=max_calls,
            allow=tuple(allow),
            advertised_ip=self.advertise,
            udp_socket=sip_sockets[0],
            tcp_socket=sip_sockets[1],
            router=router,
        )
        self.media = MediaPump(
            max_calls, "0.0.0.0" if ":" in sip_host else sip_host, rtp_latch == "any"
        )
        self.metrics = metrics
        self.engine = engine or Engine.default()  # the engine every SipChannel records on
        self._refusing = False  # refusing calls because the engine is behind (one log line)
        if metrics is not None:
            metrics.track_cpu(self.media, self.engine)
            metrics.watch_engine(self.engine)
        self._enders = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="serve-end"
        )
        self._lock = threading.Lock()
        self._active: dict[str, SipChannel] = {}
        self._idle = threading.Condition(self._lock)
        self._draining = False
        self._sip_ctx: contextlib.AbstractContextManager[SipServer] | None = None

    @property
    def port(self) -> int:
        return self.sip.port

    @property
    def active_calls(self) -> int:
        with self._lock:
            return len(self._active)

    def start(self) -> None:
        """Start serving (SIP on its own event-loop thread)."""
        self._sip_ctx = ctx = self.sip.run_in_thread()
        ctx.__enter__()
        log.info(
            "listening",
            extra={
                "fields": {
                    "sip": f"{self.sip.host}:{self.sip.port}",
                    "transport": ",".join(
                        t for t, on in (("udp", self.sip.udp), ("tcp", self.sip.tcp)) if on
                    ),
                    "media_root": self.media_root,
                    "advertise": self.advertise or self.sip.host,
                }
            },
        )

    # -- calls (on_call runs on the SIP loop thread: no blocking) --------------------

    def _on_call(self, call) -> None:
        from .sip import PortsExhausted

        with self._lock:
            draining = self._draining
        if draining:
            call.reject(503)
            return
        if self._overloaded(call):
            call.reject(503)
            return
        try:
            port = self.ports.acquire()
        except PortsExhausted:
            log.warning(
                "no free RTP port: call refused", extra={"fields": {"call_id": call.call_id}}
            )
            call.reject(503)
            return
        try:
            channel = SipChannel(self, call, port, self.media_root)
        except Exception:
            self.ports.release(port)
            raise
        call.on_end = lambda c, reason: self._enders.submit(channel.remote_hangup, reason)
        call.on_update = lambda c: self._media_changed(channel)
        with self._lock:
            self._active[channel.call.id] = channel
        if self.metrics is not None:
            with contextlib.suppress(Exception):  # metrics never cost a call
                self.metrics.call_started()
        # one daemon thread per call: an app that never returns cannot block the exit
        threading.Thread(
            target=self._run_app,
            args=(channel,),
            daemon=True,
            name=f"serve-app-{channel.call.id[:8]}",
        ).start()

    def _media_changed(self, channel: SipChannel) -> None:
        """On the SIP loop: a new codec for a call that is receiving is applied at once,
        before the 200 of the re-INVITE leaves, so no packet of the new codec is dropped;
        a late offer's media is started on a worker."""
        if channel.receiving:
            channel.media_changed()
        else:
            self._enders.submit(channel.media_changed)

    def other_port(self, port: int) -> int:
        """A call gives up RTP ``port`` (it cannot be bound) for another free one, which
        is returned; ``port`` goes back to the end of the free ports.  Raises
        :class:`PortsExhausted` when no other port is free."""
        new = self.ports.acquire()
        self.ports.release(port)
        return new

    def _overloaded(self, call) -> bool:
        """True while the engine is behind (new calls get 503 until it has caught up);
        logged once per episode, counted in the metrics."""
        if not self.engine.behind:
            if self._refusing:
                self._refusing = False
                log.warning("engine caught up: taking new calls again")
            return False
        if not self._refusing:
            self._refusing = True
            log.warning(
                "engine behind: refusing new calls with 503 until it catches up",
                extra={"fields": {"call_id": call.call_id, "load": round(self.engine.load, 2)}},
            )
        if self.metrics is not None:
            self.metrics.call_refused("overload")
        return True

    def _run_app(self, channel: SipChannel) -> None:
        info = channel.call
        log.info(
            "call start",
            extra={
                "fields": {
                    "call_id": info.call_id,
                    "id": info.id,
                    "from": info.from_uri,
                    "to": info.to_uri,
                    "remote": f"{info.remote[0]}:{info.remote[1]}",
                    "transport": info.transport,
                    "codec": info.codec,
                }
            },
        )
        error = None
        try:
            self.app(channel)
        except Hangup as e:  # the caller went while the app was at work
            log.info(
                "call hung up during the app: %s", e, extra={"fields": {"call_id": info.call_id}}
            )
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            log.exception("app failed", extra={"fields": {"call_id": info.call_id}})
        finally:
            self._end_call(channel, error)

    def _end_call(self, channel: SipChannel, error: str | None) -> None:
        info = channel.call
        try:
            channel.hangup()
        except Exception:
            log.exception("hangup failed", extra={"fields": {"call_id": info.call_id}})
        fr = channel.FileRecorder
        result = fr.result()
        cause = fr.cause().name if result is not None else "NONE"
        channel.wait_for_hangup(5)  # our BYE/480 has been sent (or theirs came)
        fields = {
            "call_id": info.call_id,
            "id": info.id,
            "cause": cause,
            "file": result.path if result is not None else None,
            "duration": round(result.duration, 3) if result is not None else 0.0,
            **channel.rtp_stats,
            "end": channel.end_reason,
        }
        if error:
            fields["error"] = error
        if self.metrics is not None:
            try:
                self.metrics.call_ended(fields)
            except Exception:  # metrics never leak a call's channel or port
                log.exception("metrics failed")
        log.info("call end", extra={"fields": fields})
        try:
            channel.close()
        finally:
            self.ports.release(channel.rtp_port)
            with self._lock:
                self._active.pop(info.id, None)
                self._idle.notify_all()

    # -- shutdown -------------------------------------------------------------------

    def shutdown(self) -> None:
        """Drain and stop: new calls get 503; running calls may end by themselves for
        ``drain_seconds``; then their recordings are stopped (ABORTED, published) and
        the calls hung up.  Returns when every call is finished and SIP is closed."""
        with self._lock:
            self._draining = True
            n = len(self._active)
        log.info(
            "draining", extra={"fields": {"active_calls": n, "drain_seconds": self.drain_seconds}}
        )
        deadline = time.monotonic() + self.drain_seconds
        with self._lock:
            while self._active and time.monotonic() < deadline:
                self._idle.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            left = list(self._active.values())
        for channel in left:
            try:
                channel.FileRecorder.stop()  # ABORTED, file published
            except Exception:  # not answered / already ended: nothing to stop
                pass
            self._enders.submit(channel.hangup)
        with self._lock:
            end = time.monotonic() + 30
            while self._active and time.monotonic() < end:
                self._idle.wait(0.5)
        if self._sip_ctx is not None:
            self._sip_ctx.__exit__(None, None, None)
            self._sip_ctx = None
        self._enders.shutdown(wait=True)
        self.media.close()
        log.info("stopped")


def _cpu_stages(media: MediaPump, engine: Engine) -> dict[str, float]:
    """CPU seconds by stage: the RTP media thread (``receive``: polling, parsing,
    placing, handing frames to the engine), the engine thread (``tick``, everything it
    does) and the tick's stages inside it (``detect``, ``code``, ``write``:
    :attr:`recorder.engine.Engine.cpu_ns`)."""
    stages = {"receive": media.cpu_seconds(), "tick": engine.thread_cpu_seconds()}
    stages.update((stage, ns / 1e9) for stage, ns in engine.cpu_ns.items())
    return stages


class _CpuCollector:
    """``recorder_cpu_seconds_total{stage}`` (:func:`_cpu_stages`), read at each scrape."""

    def __init__(self, media: MediaPump, engine: Engine) -> None:
        self.media = media
        self.engine = engine

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "recorder_cpu_seconds", "CPU time by processing stage", labels=["stage"]
        )
        for stage, seconds in _cpu_stages(self.media, self.engine).items():
            family.add_metric([stage], seconds)
        yield family


class Metrics:
    """Prometheus metrics (``prometheus_client``) served over HTTP on ``host:port``:
    ``recorder_calls_total``, ``recorder_calls_active``, ``recorder_recordings_total{cause}``,
    ``recorder_recorded_seconds_total``, ``recorder_rtp_packets_total``,
    ``recorder_rtp_lost_total``, ``recorder_rtp_late_total``,
    ``recorder_calls_refused_total{reason}`` (503: ``overload`` while the engine is behind),
    ``recorder_engine_behind`` (1 while behind), ``recorder_engine_load`` (the share of
    the engine worker's time spent processing), and ``recorder_cpu_seconds_total{stage}``
    (receive, tick, and detect, code, write within the tick).

    ``host`` None: no HTTP server (a worker of ``--workers N``, whose values the
    supervisor serves with ``prometheus_client``'s multiprocess collector).  Then the
    engine gauges and the CPU stages are written every :data:`UPDATE_SECONDS` (and at
    :meth:`close`): ``recorder_engine_behind`` and ``recorder_engine_load`` are the
    highest of the running workers, ``recorder_cpu_seconds_total{stage}`` the sum over
    every worker."""

    #: seconds between two updates of a worker's engine gauges and CPU counters
    UPDATE_SECONDS = 1.0

    def __init__(self, host: str | None, port: int = 0) -> None:
        try:
            import prometheus_client as pc
        except ImportError:
            raise ValueError(
                "--metrics needs the prometheus_client package " "(pip install prometheus_client)"
            ) from None
        self._pc = pc
        self.registry = pc.CollectorRegistry()
        r = self.registry
        self.calls = pc.Counter("recorder_calls", "Calls offered to the application", registry=r)
        self.active = pc.Gauge(
            "recorder_calls_active", "Calls in progress", registry=r, multiprocess_mode="livesum"
        )
        self.recordings = pc.Counter(
            "recorder_recordings", "Calls ended, by recording cause", ["cause"], registry=r
        )
        self.seconds = pc.Counter(
            "recorder_recorded_seconds", "Seconds of audio recorded", registry=r
        )
        self.rtp = {
            k: pc.Counter(f"recorder_rtp_{k}", f"RTP packets {k}", registry=r)
            for k in ("packets", "lost", "late")
        }
        self.refused = pc.Counter(
            "recorder_calls_refused", "Calls refused with 503, by reason", ["reason"], registry=r
        )
        self.behind = pc.Gauge(
            "recorder_engine_behind",
            "1 while the engine is behind",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.load = pc.Gauge(
            "recorder_engine_load",
            "Share of the engine worker's time spent processing",
            registry=r,
            multiprocess_mode="livemax",
        )
        self._http = None if host is None else start_metrics_http(pc, host, port, r)
        # a worker (no HTTP server of its own): values pushed by a timer, see _update
        self._engine: Engine | None = None
        self._media: MediaPump | None = None
        self._cpu: Any = None  # the worker's recorder_cpu_seconds counter (prometheus_client)
        self._cpu_sent: dict[str, float] = {}  # stage -> seconds counted so far
        self._update_lock = threading.Lock()
        self._stop_updates = threading.Event()
        self._updater: threading.Thread | None = None

    def track_cpu(self, media: MediaPump, engine: Engine) -> None:
        """Serve ``recorder_cpu_seconds_total{stage}`` for ``media`` and ``engine``."""
        if self._http is not None:
            self.registry.register(_CpuCollector(media, engine))
            return
        with self._update_lock:
            self._media, self._engine = media, engine
            if self._cpu is None:
                self._cpu = self._pc.Counter(
                    "recorder_cpu_seconds",
                    "CPU time by processing stage",
                    ["stage"],
                    registry=self.registry,
                )
        self._start_updates()

    def watch_engine(self, engine: Engine) -> None:
        """Report ``engine``'s :attr:`~recorder.Engine.behind` and ``load``: when scraped,
        or (a worker) every :data:`UPDATE_SECONDS`."""
        if self._http is not None:
            self.behind.set_function(lambda: float(engine.behind))
            self.load.set_function(lambda: engine.load)
            return
        with self._update_lock:
            self._engine = engine
        self._start_updates()

    def _start_updates(self) -> None:
        with self._update_lock:
            if self._updater is not None:
                return
            self._updater = threading.Thread(
                target=self._run_updates, name="serve-metrics", daemon=True
            )
        self._update()
        self._updater.start()

    def _run_updates(self) -> None:
        while not self._stop_updates.wait(self.UPDATE_SECONDS):
            try:
                self._update()
            except Exception:  # metrics never stop the server
                log.exception("metrics update failed")

    def _update(self) -> None:
        """Write the engine gauges and add the CPU time used since the last update."""
        with self._update_lock:
            engine, media, cpu = self._engine, self._media, self._cpu
            if engine is not None:
                self.behind.set(float(engine.behind))
                self.load.set(engine.load)
            if cpu is not None and media is not None and engine is not None:
                for stage, seconds in _cpu_stages(media, engine).items():
                    delta = seconds - self._cpu_sent.get(stage, 0.0)
                    if delta > 0:
                        cpu.labels(stage=stage).inc(delta)
                        self._cpu_sent[stage] = seconds

    def call_started(self) -> None:
        self.calls.inc()
        self.active.inc()

    def call_refused(self, reason: str) -> None:
        self.refused.labels(reason=reason).inc()

    def call_ended(self, fields: dict) -> None:
        self.active.dec()
        self.recordings.labels(cause=fields["cause"]).inc()
        self.seconds.inc(fields["duration"])
        for k, counter in self.rtp.items():
            counter.inc(fields.get(k, 0))

    def close(self) -> None:
        """Stop serving; a worker writes its last values."""
        self._stop_updates.set()
        if self._updater is not None:
            self._updater.join(10)
            with contextlib.suppress(Exception):
                self._update()
        stop_metrics_http(self._http)


def start_metrics_http(pc, host: str, port: int, registry):
    """Serve ``registry`` over HTTP (``prometheus_client`` module ``pc``); ValueError
    naming the address if it cannot be bound.  Returns what :func:`stop_metrics_http`
    takes."""
    try:
        return pc.start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise ValueError(f"--metrics {host}:{port}: {e}") from None


def stop_metrics_http(http) -> None:
    server = http[0] if isinstance(http, tuple) else None
    if server is not None:
        server.shutdown()
