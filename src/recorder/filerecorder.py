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
from .cipher import AesCbcCipher

__all__ = ["FileRecorder", "RecordResult", "RECORD_FORMATS", "RECORD_RATES"]

MEDIA_RATE = 8000
RECORD_FORMATS = ("alaw", "ulaw", "oki", "ima", "s16bit", "u8bit")
RECORD_RATES = (8000, 6000, 11000, 11025)
SYNC_EVERY = MEDIA_RATE          # rewrite the header once per second of media


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
        spb = codec.samples_per_block(1)
        frames = (avail // codec.block_align(1)) * spb
        while frames > 0 and _data_on_disk(codec, frames) > avail:
            frames -= 1
        return frames


def _data_on_disk(codec, frames: int) -> int:
    n = codec.data_bytes(frames, 1)
    return n + (n & 1)


_HEADERS: dict = {}


def _header_of(fmt: str, rate: int) -> bytes:
    key = (fmt, rate)
    if key not in _HEADERS:
        import io
        w = wav.Writer(io.BytesIO(), fmt, rate)
        _HEADERS[key] = w._header()
    return _HEADERS[key]


class Job:
    """One record job: media in (8000 Hz int16), a WAV file out.

    The channel feeds it media with the detector results for that media; the job decides
    whether a termination falls inside, commits samples up to it, and finishes.  All
    methods are called with the channel's engine lock held.
    """

    def __init__(self, spec: JobSpec, resampler_factory, hold_back: int):
        self.spec = spec
        self.cause = Cause.NONE
        self.done = threading.Event()
        self.result: RecordResult | None = None
        self.error: str | None = None
        self.n = 0                      # media samples seen by the job
        self.committed = 0              # media samples handed to the encoder
        self.frames_out = 0             # frames at the recording rate written
        self.audio_seen = False
        self.digit = None
        self.digit_start = None
        self._hold = hold_back if spec.barge_in else 0
        self._held = np.empty(0, np.int16)
        self._max_frames = spec.max_frames()
        self._size_at = None if self._max_frames is None else (
            self._max_frames * MEDIA_RATE // spec.rate if spec.rate != MEDIA_RATE else self._max_frames)
        self._next_sync = SYNC_EVERY
        self._resampler = resampler_factory(MEDIA_RATE, spec.rate) if spec.rate != MEDIA_RATE else None
        self.temp_path = files.temp_path_for(spec.path)
        self.writer = wav.Writer(self.temp_path, spec.fmt, spec.rate, buffering=16 * 1024)
        self.writer.sync()

    @classmethod
    def failed(cls, spec: JobSpec, exc: BaseException) -> "Job":
        """A job that could not even start (the file could not be created)."""
        job = cls.__new__(cls)
        job.spec, job.n, job.committed, job.frames_out = spec, 0, 0, 0
        job.audio_seen, job.digit, job.digit_start = False, None, None
        job.error = f"{type(exc).__name__}: {exc}"
        job.cause = Cause.ERROR
        job.done = threading.Event()
        job.result = RecordResult(Cause.ERROR, None, spec.fmt, spec.rate, 0, 0.0, 0, False,
                                  error=job.error)
        job.done.set()
        return job

    # -- feeding ------------------------------------------------------------------------

    def feed(self, x: np.ndarray, silence_ms: float, audio_seen: bool, digits) -> bool:
        """Take ``x`` (the next media samples) with the detectors' state at its end.
        ``digits``: [(digit, start)] confirmed in this chunk, start in job samples.
        Returns True when the job finished."""
        if self.done.is_set():
            return True
        spec = self.spec
        start, end = self.n, self.n + x.size
        self.n = end
        was_seen = self.audio_seen
        self.audio_seen = self.audio_seen or bool(audio_seen)
        cut, cause = None, None

        def consider(at, why):
            nonlocal cut, cause
            if at is not None and (cut is None or at < cut):
                cut, cause = at, why

        if spec.timeout_samples is not None and end >= spec.timeout_samples:
            consider(spec.timeout_samples, Cause.TIMEOUT)
        if self._size_at is not None and end >= self._size_at:
            consider(self._size_at, Cause.SIZE)
        run = int(round(silence_ms * MEDIA_RATE / 1000))
        if self.audio_seen and spec.max_silence_ms:
            limit = spec.max_silence_ms * MEDIA_RATE // 1000
            if run >= limit:
                consider(max(end - (run - limit), start if was_seen else 0), Cause.SILENCE)
        if not self.audio_seen and spec.initial_silence_ms:
            limit = spec.initial_silence_ms * MEDIA_RATE // 1000
            if run >= limit:
                consider(max(end - (run - limit), 0), Cause.SILENCE)
        if spec.barge_in and digits:
            digit, at = min(digits, key=lambda d: d[1])
            at = max(at, self.committed)
            if cut is None or at < cut:
                self.digit, self.digit_start = digit, at
            consider(at, Cause.BARGEIN)

        avail = np.concatenate([self._held, x]) if self._held.size else x
        base = end - avail.size            # job sample index of avail[0]
        if cut is not None:
            cut = max(cut, self.committed)
            self._commit(avail[: cut - base])
            self._held = np.empty(0, np.int16)
            self.finish(cause)
            return True
        keep = min(self._hold, avail.size)
        self._commit(avail[: avail.size - keep])
        self._held = avail[avail.size - keep:].copy() if keep else np.empty(0, np.int16)
        return False

    def out_of_band_digit(self, digit: str, start: int) -> bool:
        """An RFC 4733 digit that started at job sample ``start``."""
        if self.done.is_set() or not self.spec.barge_in:
            return False
        at = max(min(start, self.n), self.committed)
        self.digit, self.digit_start = digit, at
        avail = self._held
        base = self.n - avail.size
        self._commit(avail[: at - base])
        self._held = np.empty(0, np.int16)
        self.finish(Cause.BARGEIN)
        return True

    def _commit(self, pcm: np.ndarray) -> None:
        if pcm.size == 0 or self.error:
            return
        self.committed += pcm.size
        try:
            if self._resampler is not None:
                pcm = self._resampler.process(pcm)
            self._write(pcm)
            if self.committed >= self._next_sync:
                self._next_sync = (self.committed // SYNC_EVERY + 1) * SYNC_EVERY
                self.writer.sync()
        except OSError as e:
            self._fail(e)

    def _write(self, pcm: np.ndarray) -> None:
        if self._max_frames is not None:
            pcm = pcm[: max(0, self._max_frames - self.frames_out)]
        if pcm.size:
            self.writer.write(pcm)
            self.frames_out += pcm.size

    def _fail(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.finish(Cause.ERROR)

    # -- ending -------------------------------------------------------------------------

    def finish(self, cause: Cause) -> None:
        """Flush everything held back (unless cut), close and publish the file."""
        if self.done.is_set():
            return
        spec = self.spec
        if cause in (Cause.ABORTED, Cause.HANGUP) and self._held.size and not self.error:
            held, self._held = self._held, np.empty(0, np.int16)
            self._commit(held)
        if self.error and cause is not Cause.ERROR:
            cause = Cause.ERROR
        final_path = None
        try:
            if self._resampler is not None and not self.error:
                want = round(self.committed * spec.rate / MEDIA_RATE)
                tail = self._resampler.process(np.empty(0, np.int16), last=True)
                self._write(tail[: max(0, want - self.frames_out)])
            self.writer.close(fsync=True)
            final_path = self._publish()
        except OSError as e:
            if not self.error:
                self.error = f"{type(e).__name__}: {e}"
            cause = Cause.ERROR
            final_path = self._salvage()
        self.cause = cause
        size = os.path.getsize(final_path) if final_path and os.path.exists(final_path) else 0
        self.result = RecordResult(
            cause=cause, path=final_path, format=spec.fmt, rate=spec.rate,
            frames=self.frames_out, duration=self.frames_out / spec.rate, bytes=size,
            audio_detected=self.audio_seen, digit=self.digit if cause is Cause.BARGEIN else None,
            digit_time=(self.digit_start / MEDIA_RATE) if cause is Cause.BARGEIN and self.digit_start is not None else None,
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
