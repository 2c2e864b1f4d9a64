"""``channel.FileRecorder``: record a call's inbound audio to a WAV file.

The API is the spec's (``record``, ``start``, ``stop``, ``state``, ``cause``,
``wait_until_finished``, ``audio_detected_in_recording``, ``State``, ``Cause``); this module
also holds the record job: the per-recording state that turns the call's 8000 Hz media
into a file and decides, at the exact sample, when and why the recording ends.

Semantics, where the spec leaves room:

* **Time** is media time: samples the channel received (8000 per second).  A live source
  follows the wall clock (gaps are filled with silence by the channel's watchdog); a fast
  replay advances only while someone waits on the channel.
* **seconds_timeout** (``record`` only): the job ends with ``TIMEOUT`` after exactly that
  much media; ``0`` or ``None`` means no time limit.
* **max_bytes** bounds the size of the finished file on disk, header included (and, with
  a ``cipher``, after encryption).  The recording is cut at the last sample (ADPCM: the
  last block) that fits, with cause ``SIZE``.  ``0`` means no limit; a limit smaller than
  the WAV header raises ValueError.
* **milliseconds_initial_silence** applies until audio is first heard: if the caller stays
  silent that long the job ends with ``SILENCE`` (``audio_detected_in_recording()`` is then
  False).  ``0`` means wait for audio without limit.  The leading silence stays in the file
  (the file is aligned to real time).
* **milliseconds_max_silence** applies once audio has been heard: that much continuous
  silence ends the job with ``SILENCE``; the file ends exactly when the silence timer
  expired.  ``0`` disables it.
* **barge_in**: any DTMF digit (in-band, or an out-of-band RFC 4733 event pushed to the
  channel) ends the job with ``BARGEIN``; the file is cut at the digit's start, so the tone
  is not in it.  ``last_digit()`` gives the digit and its start time afterwards.
* **stop()** ends the job with ``ABORTED`` after everything received so far is written;
  a hangup ends it with ``HANGUP`` the same way.
* **wait_until_finished(seconds_timeout)** that times out returns ``TIMEOUT`` and the job
  goes on (it is still RECORDING; ``cause()`` stays NONE).
* An I/O error (disk full, folder removed, permission) ends the job with cause ``ERROR``
  and state ``ERROR``; the audio written so far is kept in a valid WAV file where the disk
  allows (under the final name, or the ``.part`` name if the rename failed);
  ``last_error()`` says what went wrong.  ``record`` returns ``Cause.ERROR`` (it does not
  raise) and ``start`` returns False.
"""

from __future__ import annotations

import enum
import os
import threading
from dataclasses import dataclass

import numpy as np

from . import files, wav
from ._codecs import engine as _core
from .cipher import AesCbcCipher

__all__ = ["FileRecorder", "UASCallFileRecorder", "RecordResult", "RECORD_FORMATS", "RECORD_RATES"]

MEDIA_RATE = 8000
RECORD_FORMATS = ("alaw", "ulaw", "oki", "ima", "s16bit", "u8bit")
RECORD_RATES = (8000, 6000, 11000, 11025)


class State(enum.Enum):
    """Record states (``FileRecorder.State``)."""

    RECORDING = "RECORDING"
    IDLE = "IDLE"
    ERROR = "ERROR"


class Cause(enum.Enum):
    """Record termination causes (``FileRecorder.Cause``)."""

    ERROR = "ERROR"
    BARGEIN = "BARGEIN"
    SILENCE = "SILENCE"
    SIZE = "SIZE"
    ABORTED = "ABORTED"
    HANGUP = "HANGUP"
    TIMEOUT = "TIMEOUT"
    NONE = "NONE"


@dataclass(frozen=True)
class RecordResult:
    """What a finished record job produced."""

    cause: Cause
    path: str | None            # the file (None if nothing could be kept)
    format: str
    rate: int
    frames: int                 # samples at the recording rate
    duration: float             # seconds of audio in the file
    bytes: int                  # size of the file on disk (after encryption)
    audio_detected: bool
    digit: str | None = None    # barge-in digit
    digit_time: float | None = None   # its start, seconds from the start of the job
    error: str | None = None


def _check_int(value, name: str, *, allow_none=False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


@dataclass(frozen=True)
class JobSpec:
    """Validated arguments of one record job."""

    filename: str
    path: str
    fmt: str
    rate: int
    timeout_samples: int | None
    max_bytes: int
    max_silence_ms: int
    initial_silence_ms: int
    barge_in: bool
    cipher: AesCbcCipher | None

    @classmethod
    def build(cls, root, filename, file_format, rate, seconds_timeout, max_bytes,
              milliseconds_max_silence, milliseconds_initial_silence, barge_in, cipher):
        if not isinstance(file_format, str) or file_format not in RECORD_FORMATS:
            raise ValueError(f"file_format must be one of {', '.join(RECORD_FORMATS)}; got {file_format!r}")
        if file_format not in wav.WRITE_FORMATS:
            raise ValueError(f"file_format {file_format!r} is not available in this build")
        if isinstance(rate, bool) or rate not in RECORD_RATES:
            raise ValueError(f"rate must be one of {', '.join(map(str, RECORD_RATES))}; got {rate!r}")
        if seconds_timeout is None:
            timeout = None
        else:
            if isinstance(seconds_timeout, bool) or not isinstance(seconds_timeout, (int, float)):
                raise TypeError(f"seconds_timeout must be a number or None, not {type(seconds_timeout).__name__}")
            if seconds_timeout < 0 or seconds_timeout != seconds_timeout:
                raise ValueError(f"seconds_timeout must be >= 0, got {seconds_timeout}")
            timeout = round(seconds_timeout * MEDIA_RATE) or None
        max_bytes = _check_int(max_bytes, "max_bytes")
        max_sil = _check_int(milliseconds_max_silence, "milliseconds_max_silence")
        init_sil = _check_int(milliseconds_initial_silence, "milliseconds_initial_silence")
        if not isinstance(barge_in, (bool, np.bool_)):
            raise TypeError(f"barge_in must be True or False, not {type(barge_in).__name__}")
        if cipher is not None and not (hasattr(cipher, "encrypt_file") and hasattr(cipher, "decrypt")):
            raise TypeError("cipher must be a recorder.AesCbcCipher (or provide encrypt_file/decrypt)")
        path = files.resolve(filename, root)
        spec = cls(filename, path, file_format, int(rate), timeout, max_bytes, max_sil, init_sil,
                   bool(barge_in), cipher)
        if max_bytes and spec.max_frames() < 0:
            raise ValueError(f"max_bytes={max_bytes} is smaller than the WAV header "
                             f"({spec.header_bytes()} bytes) of a {file_format} file")
        return spec

    def header_bytes(self) -> int:
        return len(_header_of(self.fmt, self.rate))

    def plain_limit(self) -> int:
        if not self.max_bytes:
            return 0
        if self.cipher is not None:
            return self.cipher.max_plain_size(self.max_bytes)
        return self.max_bytes

    def max_frames(self) -> int | None:
        """Frames (at the recording rate) that fit in max_bytes; None without a limit;
        negative if not even the header fits."""
        limit = self.plain_limit()
        if not limit:
            return None
        codec = wav.WRITE_FORMATS[self.fmt]
        avail = limit - self.header_bytes()
        if avail < 0:
            return -1
        frames = codec.max_frames(avail, 1, self.rate)
        while frames > 0 and _data_on_disk(codec, frames, self.rate) > avail:
            frames -= 1                    # an odd-sized data chunk takes a pad byte
        return frames


def _data_on_disk(codec, frames: int, rate: int) -> int:
    n = codec.data_bytes(frames, 1, rate)
    return n + (n & 1)


_HEADERS: dict = {}


def _header_of(fmt: str, rate: int) -> bytes:
    key = (fmt, rate)
    if key not in _HEADERS:
        import io
        w = wav.Writer(io.BytesIO(), fmt, rate)
        _HEADERS[key] = w._header()
    return _HEADERS[key]


_C = _core.CONSTANTS
_FMT_CODE = {"alaw": _C["FMT_ALAW"], "ulaw": _C["FMT_ULAW"], "s16bit": _C["FMT_S16"], "u8bit": _C["FMT_U8"]}
_CAUSE_OF = {_C["CAUSE_TIMEOUT"]: "TIMEOUT", _C["CAUSE_SIZE"]: "SIZE", _C["CAUSE_SILENCE"]: "SILENCE",
             _C["CAUSE_BARGEIN"]: "BARGEIN", _C["CAUSE_ABORTED"]: "ABORTED", _C["CAUSE_HANGUP"]: "HANGUP",
             _C["CAUSE_ERROR"]: "ERROR"}
_CODE_OF = {v: k for k, v in _CAUSE_OF.items()}


class Job:
    """One record job.  Its decisions (when and why it ends, at the exact sample) and the
    G.711/PCM coding at 8000 Hz run in the engine's compiled core (one slot per channel);
    this object owns the file: it writes what the core coded, resamples and codes the
    other formats, refreshes the header, and publishes the finished file.  All methods
    are called with the engine lock held.
    """

    def __init__(self, spec: JobSpec, engine, slot: int, resampler_factory, hold_back: int):
        self.spec = spec
        self.cause = Cause.NONE
        self.done = threading.Event()
        self.result: RecordResult | None = None
        self.error: str | None = None
        self.frames_out = 0
        self.audio_seen = False
        self.digit = None
        self.digit_start = None
        self._engine, self._slot = engine, slot
        self._max_frames = spec.max_frames()
        direct = spec.rate == MEDIA_RATE and spec.fmt in _FMT_CODE
        if self._max_frames is None:
            size_at = -1
        elif spec.rate == MEDIA_RATE:
            size_at = self._max_frames
        else:   # the last 8 kHz sample whose resampled frames still fit
            size_at = self._max_frames * MEDIA_RATE // spec.rate
        self._resampler = resampler_factory(MEDIA_RATE, spec.rate) if spec.rate != MEDIA_RATE else None
        self.temp_path = files.temp_path_for(spec.path)
        self.writer = wav.Writer(self.temp_path, spec.fmt, spec.rate, buffering=0)
        try:
            self.writer.sync()
            engine.start_job(
                slot, self,
                fmt=_FMT_CODE[spec.fmt] if direct else _C["FMT_PCM_OUT"],
                timeout_at=spec.timeout_samples or -1, size_at=size_at,
                max_sil=spec.max_silence_ms * MEDIA_RATE // 1000,
                init_sil=spec.initial_silence_ms * MEDIA_RATE // 1000,
                barge=spec.barge_in, hold=hold_back)
        except BaseException:
            self.writer.close()
            os.unlink(self.temp_path)
            raise

    @classmethod
    def failed(cls, spec: JobSpec, exc: BaseException) -> "Job":
        """A job that could not even start (the file could not be created)."""
        job = cls.__new__(cls)
        job.spec, job.frames_out = spec, 0
        job.audio_seen, job.digit, job.digit_start = False, None, None
        job.error = f"{type(exc).__name__}: {exc}"
        job.cause = Cause.ERROR
        job.done = threading.Event()
        job.result = RecordResult(Cause.ERROR, None, spec.fmt, spec.rate, 0, 0.0, 0, False,
                                  error=job.error)
        job.done.set()
        return job

    # -- events from the engine core --------------------------------------------------------

    def on_event(self, events: int) -> None:
        """React to what the core reported for this job's slot after a chunk."""
        if self.done.is_set():
            return
        try:
            self._drain()
            if events & _C["EV_SYNC"]:
                self.writer.sync()
        except OSError as e:
            self._fail(e)
            return
        if events & _C["EV_DONE"]:
            self.finish(Cause[_CAUSE_OF[self._engine.bank.job(self._slot)[4]]])

    def _drain(self) -> None:
        bank = self._engine.bank
        if self._resampler is not None or self.spec.fmt not in _FMT_CODE:
            pcm = bank.take_pcm(self._slot)
            if pcm.size:
                if self._resampler is not None:
                    pcm = self._resampler.process(pcm)
                self._write(pcm)
        else:
            data = bank.take_out(self._slot)
            if data:
                self.writer.write_coded(data)
                self.frames_out = self.writer.frames

    def _write(self, pcm: np.ndarray) -> None:
        if self._max_frames is not None:
            pcm = pcm[: max(0, self._max_frames - self.frames_out)]
        if pcm.size:
            self.writer.write(pcm)
            self.frames_out += pcm.size

    def out_of_band_digit(self, digit: str, start: int) -> None:
        """An RFC 4733 digit that started at job sample ``start``: barge-in cuts there."""
        if not self.done.is_set() and self._engine.bank.barge(self._slot, ord(digit), start):
            self.on_event(_C["EV_DONE"])

    @property
    def n(self) -> int:
        """Media samples the job has seen."""
        return self._engine.bank.job(self._slot)[1] if not self.done.is_set() else self._n_final

    def _fail(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.finish(Cause.ERROR)

    # -- ending -------------------------------------------------------------------------

    def end(self, cause: Cause) -> None:
        """End the job from outside (stop -> ABORTED, hangup -> HANGUP): everything
        received is kept, held-back media included."""
        if self.done.is_set():
            return
        self._engine.bank.end_job(self._slot, _CODE_OF[cause.name], True)
        self.finish(cause)

    def end_aborted(self) -> None:
        self.end(Cause.ABORTED)

    def finish(self, cause: Cause) -> None:
        """Close and publish the file; the job's cause becomes final."""
        if self.done.is_set():
            return
        spec, bank = self.spec, self._engine.bank
        if bank.active(self._slot):
            bank.end_job(self._slot, _CODE_OF["ERROR" if self.error else cause.name], False)
        _, self._n_final, committed, self.audio_seen, _, digit_start, digit = bank.job(self._slot)
        self._engine.job_ended(self._slot)
        if cause is Cause.BARGEIN:
            self.digit, self.digit_start = digit, digit_start
        final_path = None
        try:
            if not self.error:
                self._drain()
                if self._resampler is not None:
                    want = round(committed * spec.rate / MEDIA_RATE)
                    tail = self._resampler.process(np.empty(0, np.int16), last=True)
                    self._write(tail[: max(0, want - self.frames_out)])
            self.writer.close(fsync=True)
            if self.error:              # an earlier write failed: keep what reached the disk
                wav.repair(self.temp_path)
            final_path = self._publish()
        except OSError as e:
            if not self.error:
                self.error = f"{type(e).__name__}: {e}"
            final_path = self._salvage()
        if self.error:
            cause = Cause.ERROR
        self.cause = cause
        size = os.path.getsize(final_path) if final_path and os.path.exists(final_path) else 0
        self.result = RecordResult(
            cause=cause, path=final_path, format=spec.fmt, rate=spec.rate,
            frames=self.frames_out, duration=self.frames_out / spec.rate, bytes=size,
            audio_detected=self.audio_seen, digit=self.digit,
            digit_time=None if self.digit_start is None else self.digit_start / MEDIA_RATE,
            error=self.error)
        self.done.set()

    def _publish(self) -> str:
        spec = self.spec
        folder = os.path.dirname(spec.path)
        if spec.cipher is not None:
            enc_tmp = files.temp_path_for(spec.path)
            with open(self.temp_path, "rb") as src, open(enc_tmp, "wb") as dst:
                spec.cipher.encrypt_file(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(enc_tmp, spec.path)
            os.unlink(self.temp_path)
        else:
            os.replace(self.temp_path, spec.path)
        files.fsync_dir(folder)
        return spec.path

    def _salvage(self) -> str | None:
        """After an I/O error: make the partial file valid and put it where it belongs."""
        try:
            if not self.writer.closed:
                try:
                    self.writer.close()
                except OSError:
                    pass
            if not os.path.exists(self.temp_path):
                return None
            wav.repair(self.temp_path)
            try:
                return self._publish()
            except OSError:
                return self.temp_path
        except (OSError, ValueError):
            return self.temp_path if os.path.exists(self.temp_path) else None


class FileRecorder:
    """Records the call's inbound audio to WAV files (the spec's ``FileRecorder``).

    Get it as ``channel.FileRecorder`` (or ``channel.file_recorder``).  See the module
    documentation for the exact semantics of every argument.
    """

    State = State
    Cause = Cause

    def __init__(self, channel):
        self._channel = channel
        self._job: Job | None = None
        self._last: Job | None = None

    # -- spec API -----------------------------------------------------------------------

    def record(self, filename, file_format="alaw", rate=8000, seconds_timeout=120,
               max_bytes=1920000, milliseconds_max_silence=10000, milliseconds_initial_silence=0,
               barge_in=False, cipher=None) -> Cause:
        """Record to ``filename`` and block until the recording ends; returns the cause.

        Raises Hangup if the call is IDLE, Error if it is not ANSWERED or a recording is
        already running, ValueError/TypeError for bad arguments."""
        job = self._begin(filename, file_format, rate, seconds_timeout, max_bytes,
                          milliseconds_max_silence, milliseconds_initial_silence, barge_in, cipher)
        if job is None:
            return Cause.ERROR
        self._channel._wait_for(job, None)
        return job.cause

    def start(self, filename, file_format="alaw", rate=8000, max_bytes=1920000,
              milliseconds_max_silence=10000, milliseconds_initial_silence=0, barge_in=False,
              cipher=None) -> bool:
        """Begin recording to ``filename``; returns True once the recording has started
        (False if the file could not be created: ``state()`` is then ERROR).  Same errors
        as :meth:`record`."""
        job = self._begin(filename, file_format, rate, None, max_bytes, milliseconds_max_silence,
                          milliseconds_initial_silence, barge_in, cipher)
        return job is not None

    def stop(self) -> bool:
        """Stop the recording (cause ABORTED) after writing everything received so far.
        Returns True (also when nothing is recording)."""
        self._channel._check_call()
        return self._channel._stop_job(self, Cause.ABORTED)

    def state(self) -> State:
        """RECORDING while a job runs; ERROR if the last job failed; otherwise IDLE."""
        if self._job is not None and not self._job.done.is_set():
            return State.RECORDING
        last = self._job or self._last
        if last is not None and last.cause is Cause.ERROR:
            return State.ERROR
        return State.IDLE

    def cause(self) -> Cause:
        """Why the last job ended; NONE while a job runs or before any job."""
        job = self._job or self._last
        if job is None or not job.done.is_set():
            return Cause.NONE
        return job.cause

    def wait_until_finished(self, seconds_timeout=120) -> Cause:
        """Block until the recording ends (returns its cause) or ``seconds_timeout`` of
        media time passes (returns TIMEOUT; the recording goes on).  ``None`` waits
        forever.  With no recording running, returns :meth:`cause` at once."""
        self._channel._check_call()
        if seconds_timeout is not None:
            if isinstance(seconds_timeout, bool) or not isinstance(seconds_timeout, (int, float)):
                raise TypeError("seconds_timeout must be a number or None")
            if seconds_timeout < 0:
                raise ValueError(f"seconds_timeout must be >= 0, got {seconds_timeout}")
        job = self._job
        if job is None or job.done.is_set():
            return self.cause()
        finished = self._channel._wait_for(job, seconds_timeout)
        return job.cause if finished else Cause.TIMEOUT

    def audio_detected_in_recording(self):
        """True if audio (not just silence) was heard during the last record job, False
        if not; None while a job runs or before any job."""
        job = self._job or self._last
        if job is None or not job.done.is_set():
            return None
        return job.audio_seen

    # -- extras -------------------------------------------------------------------------

    def result(self) -> RecordResult | None:
        """Everything about the last finished job (file, size, duration, digit...)."""
        job = self._job or self._last
        return job.result if job is not None and job.done.is_set() else None

    def last_digit(self):
        """``(digit, seconds from the start of the job)`` of the barge-in, or None."""
        r = self.result()
        return (r.digit, r.digit_time) if r is not None and r.digit is not None else None

    def last_error(self) -> str | None:
        """What went wrong when the last job ended in ERROR."""
        r = self.result()
        return r.error if r is not None else None

    # -- internals ----------------------------------------------------------------------

    def _begin(self, filename, file_format, rate, seconds_timeout, max_bytes, max_silence,
               initial_silence, barge_in, cipher):
        channel = self._channel
        channel._check_call()
        spec = JobSpec.build(channel.media_root, filename, file_format, rate, seconds_timeout,
                             max_bytes, max_silence, initial_silence, barge_in, cipher)
        return channel._start_job(self, spec)

    def __repr__(self) -> str:
        return f"<FileRecorder state={self.state().name} cause={self.cause().name}>"


#: The spec's name for the class (``class UASCallFileRecorder``).
UASCallFileRecorder = FileRecorder
