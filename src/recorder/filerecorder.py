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
  last block) that fits, with cause ``SIZE``.  ``0`` means no limit but the WAV format's
  own: a file cannot pass 4 GiB, and a recording that reaches it ends with ``SIZE``.  A
  limit smaller than the WAV header raises ValueError.
* An existing file of the same name is replaced when the new recording is published.
* **milliseconds_max_silence**: that much continuous silence ends the job with
  ``SILENCE``; the file ends exactly when the silence timer expired.  ``0`` disables it.
  It counts from the start of the job, so a caller who never speaks ends the recording
  too (``audio_detected_in_recording()`` is then False), as the spec's own example
  expects.
* **milliseconds_initial_silence**, when not 0, replaces the max-silence limit until audio
  is first heard: a caller may take longer (or shorter) to start speaking than the pause
  that ends a recording.  ``0`` means no separate initial limit.  Leading silence stays in
  the file (the file is aligned to real time).
* **barge_in**: any DTMF digit (in-band, or an out-of-band RFC 4733 event pushed to the
  channel) ends the job with ``BARGEIN``; the file is cut at the digit's start, so the tone
  is not in it.  ``last_digit()`` gives the digit and its start time afterwards.
* **stop()** ends the job with ``ABORTED`` after everything received so far is written,
  and returns once the file is published (a second ``stop()`` while it is being
  published waits for it too); it waits only for its own file, never for other calls'.
* **After a hangup**, the last recording's outcome is final as soon as you hear of the
  hangup: ``channel.hangup()`` ends the recording with ``HANGUP`` (everything received is
  kept) and returns once its file is published, like ``stop()``; a ``record()`` or
  ``wait_until_finished()`` in progress returns ``HANGUP``; and every FileRecorder call
  that raises ``Hangup`` (the spec: the call is IDLE) raises it only once the last file
  is published.  So after catching ``Hangup``, ``cause()`` (and ``result()``) tell how
  the last recording ended.
* **wait_until_finished(seconds_timeout)** that times out returns ``TIMEOUT`` and the job
  goes on (it is still RECORDING; ``cause()`` stays NONE).
* An I/O error (disk full, folder removed, permission) ends the job with cause ``ERROR``
  and state ``ERROR``; the audio written so far is kept in a valid WAV file where the disk
  allows (under the final name, or the ``.part`` name if the rename failed; with a
  cipher, the sealed ``.part``, which ``recorder repair --key ...`` turns into the final
  encrypted file: nothing is ever published or left unencrypted);
  ``last_error()`` says what went wrong.  ``record`` returns ``Cause.ERROR`` (it does not
  raise) and ``start`` returns False.
"""

from __future__ import annotations

import enum
import io
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from . import codecs, files, wav
from .cipher import SealedPart, check_cipher, publish_sealed
from .engine import MEDIA_RATE, CoreFormat, EndCause, Engine, Event, JobParams
from .publish import publish_file

if TYPE_CHECKING:
    from .types import FileCipher

__all__ = ["RECORD_FORMATS", "RECORD_RATES", "FileRecorder", "RecordResult", "UASCallFileRecorder"]

MIN_AUDIO = MEDIA_RATE * 20 // 1000  # samples: audio shorter than this is not audio
RECORD_FORMATS = codecs.names("record")  # views of the format registry
RECORD_RATES = codecs.RECORD_RATES


class Hangup(Exception):
    """The call is IDLE (not connected, or it has hung up)."""


class Error(Exception):
    """The call or the recorder is not in a state that allows this operation."""


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
    path: str | None  # the file (None if nothing could be kept)
    format: str
    rate: int
    frames: int  # samples at the recording rate
    duration: float  # seconds of audio in the file
    bytes: int  # size of the file on disk (after encryption)
    audio_detected: bool
    digit: str | None = None  # barge-in digit
    digit_time: float | None = None  # its start, seconds from the start of the job
    error: str | None = None


def _check_int(value, name: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be from 0 to {maximum}, got {value}")
    return int(value)


def check_seconds(value, name: str, maximum: float = 1e9) -> float:
    """A finite number of seconds from 0 to ``maximum`` (about 31 years)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number or None, not {type(value).__name__}")
    if not (0 <= value <= maximum):  # also refuses nan
        raise ValueError(f"{name} must be from 0 to {maximum:g} seconds, got {value}")
    return float(value)


def seconds_to_samples(seconds: float) -> int:
    """Media samples in ``seconds`` (checked); any positive time is at least one sample."""
    return max(1, round(seconds * MEDIA_RATE)) if seconds > 0 else 0


MAX_MS = 10**12  # milliseconds accepted for the silence limits (about 31 years)


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
    cipher: FileCipher | None

    @classmethod
    def build(
        cls,
        root,
        filename,
        file_format,
        rate,
        seconds_timeout,
        max_bytes,
        milliseconds_max_silence,
        milliseconds_initial_silence,
        barge_in,
        cipher,
    ):
        file_format = (
            codecs.ALIASES.get(file_format, file_format)
            if isinstance(file_format, str)
            else file_format
        )
        if not isinstance(file_format, str) or file_format not in RECORD_FORMATS:
            raise ValueError(
                f"file_format must be one of {', '.join(RECORD_FORMATS)}; got {file_format!r}"
            )
        if file_format not in wav.WRITE_FORMATS:
            raise ValueError(f"file_format {file_format!r} is not available in this build")
        if isinstance(rate, bool) or rate not in RECORD_RATES:
            raise ValueError(
                f"rate must be one of {', '.join(map(str, RECORD_RATES))}; got {rate!r}"
            )
        if seconds_timeout is None:
            timeout = None
        else:
            # 0 means no limit
            timeout = seconds_to_samples(check_seconds(seconds_timeout, "seconds_timeout")) or None
        max_bytes = _check_int(max_bytes, "max_bytes", 1 << 62)
        max_sil = _check_int(milliseconds_max_silence, "milliseconds_max_silence", MAX_MS)
        init_sil = _check_int(milliseconds_initial_silence, "milliseconds_initial_silence", MAX_MS)
        if not isinstance(barge_in, (bool, np.bool_)):
            raise TypeError(f"barge_in must be True or False, not {type(barge_in).__name__}")
        if cipher is not None:
            check_cipher(cipher, ("encrypt_file", "decrypt", "max_plain_size"))
        filename = files.check_name(filename, root)
        path = os.path.join(os.path.abspath(root), *filename.split("/"))
        spec = cls(
            filename,
            path,
            file_format,
            int(rate),
            timeout,
            max_bytes,
            max_sil,
            init_sil,
            bool(barge_in),
            cipher,
        )
        if spec.max_frames() < 0:
            raise ValueError(
                f"max_bytes={max_bytes} is smaller than the WAV header "
                f"({spec.header_bytes()} bytes) of a {file_format} file"
            )
        return spec

    def header_bytes(self) -> int:
        return len(_header_of(self.fmt, self.rate))

    def plain_limit(self) -> int:
        """Bytes the WAV file may take before encryption: max_bytes (after encryption
        with a cipher), and never more than a WAV file can hold (4 GiB)."""
        cap = wav.max_file_bytes()
        limit = min(self.max_bytes, cap) if self.max_bytes else cap
        if self.cipher is not None and self.max_bytes:
            limit = min(limit, self.cipher.max_plain_size(self.max_bytes))
        return limit

    def max_frames(self) -> int:
        """Frames (at the recording rate) that fit in the byte limit; negative if not
        even the header fits."""
        limit = self.plain_limit()
        codec = wav.WRITE_FORMATS[self.fmt]
        avail = limit - self.header_bytes()
        if avail < 0:
            return -1
        frames = codec.max_frames(avail, 1, self.rate)
        while frames > 0 and _data_on_disk(codec, frames, self.rate) > avail:
            frames -= 1  # an odd-sized data chunk takes a pad byte
        return frames


def _data_on_disk(codec, frames: int, rate: int) -> int:
    n = codec.data_bytes(frames, 1, rate)
    return n + (n & 1)


_HEADERS: dict = {}


def _header_of(fmt: str, rate: int) -> bytes:
    key = (fmt, rate)
    if key not in _HEADERS:
        buf = io.BytesIO()
        wav.Writer(buf, fmt, rate).sync()
        _HEADERS[key] = buf.getvalue()
    return _HEADERS[key]


#: how the engine's core codes each recording format (at any rate: it resamples too)
_CORE_FORMAT = {
    "alaw": CoreFormat.ALAW,
    "ulaw": CoreFormat.ULAW,
    "s16bit": CoreFormat.S16,
    "u8bit": CoreFormat.U8,
    "ima": CoreFormat.IMA,
    "oki": CoreFormat.OKI,
}


class RecordingFile:
    """The file of one recording: created as a temporary ``.part`` in its folder,
    written while the recording runs (:attr:`writer`, a :class:`recorder.wav.Writer`),
    and finished by :meth:`finish`: closed, fsynced and published under its final name
    (encrypted, with a cipher, by :func:`recorder.publish.publish_file`), or after an I/O
    error salvaged as a valid WAV file.  Every file operation goes through its open
    :class:`recorder.files.Folder` (no path is resolved twice).

    Parameters
    ----------
    spec : JobSpec
        The recording's validated arguments (name, format, rate, cipher).
    root : str
        The media root ``spec.filename`` is relative to.

    Raises
    ------
    ValueError
        A refused name (a symbolic link on the way, a folder under the final name).
    OSError
        The folder or the file cannot be made.
    """

    def __init__(self, spec: JobSpec, root) -> None:
        self.spec = spec
        self.folder = files.Folder(root, spec.filename)
        try:
            self._create_part()
        except BaseException:
            self.folder.close()
            raise

    def _create_part(self) -> None:
        """The temporary file the recording is written to (the one place it is made).
        With a cipher it is a :class:`recorder.cipher.SealedPart`: every byte on disk is
        encrypted (under a key derived from the cipher's key and a random salt), so no
        plaintext audio ever reaches the disk; ``recorder repair --key ...`` recovers it
        after a crash."""
        self._part, self._raw = self.folder.create_temp()
        self.temp_path = self.folder.path_of(self._part)
        try:
            self._file = self._raw
            if self.spec.cipher is not None:
                self._file = SealedPart.create(self._raw, self.spec.cipher)
            self.writer = wav.Writer(self._file, self.spec.fmt, self.spec.rate)
            self.writer.sync()
        except BaseException:
            self._release_part()
            self.folder.unlink(self._part, quiet=True)
            raise

    def _release_part(self) -> None:
        """Close the temporary file (the sealed view first, then the OS file)."""
        for f in {id(self._file): self._file, id(self._raw): self._raw}.values():
            try:
                f.close()
            except OSError:  # nothing may keep the job from ending
                pass

    def discard(self) -> None:
        """Remove the file (the recording never started)."""
        self.writer.close()
        self._release_part()
        self.folder.unlink(self._part, quiet=True)
        self.folder.close()

    def finish(self, error: str | None) -> tuple[str | None, str | None, int]:
        """Close, fsync and publish the file; with ``error`` (an earlier write failed),
        or when this fails, keep what reached the disk (:meth:`_salvage`).  Never raises
        for an I/O error.  Returns ``(path, error, size)``: where the file is (None if
        nothing could be kept), the error if any, and its size on disk."""
        final_path = None
        try:
            self.writer.close()
            self._file.flush()
            os.fsync(self._raw.fileno())
            if error:  # an earlier write failed: keep what reached the disk
                wav.repair(self._file)
            final_path = self._publish()
        except Exception as e:
            if not error:
                error = f"{type(e).__name__}: {e}"
            final_path = self._salvage()
        finally:
            size = 0
            if final_path:
                try:
                    size = self.folder.size(os.path.basename(final_path))
                except OSError:
                    pass
            self._release_part()
            try:
                self.folder.close()
            except OSError:  # nothing may keep the job from being done
                pass
        return final_path, error, size

    def _publish(self) -> str:
        """Put the closed temporary file under its final name (encrypted if asked)."""
        if self.spec.cipher is not None:
            self._encrypt_into_place()
        else:
            self.folder.replace(self._part, self.folder.base)
        return self.spec.path

    def _encrypt_into_place(self) -> None:
        """Encrypt the closed temporary file to a second temporary file, rename that to
        the final name, and remove the plaintext (the one encrypt-on-publish step)."""
        cipher = self.spec.cipher
        assert cipher is not None, "only called when the spec has a cipher"
        publish_file(self.folder, lambda dst: publish_sealed(self._file, dst, cipher))
        self.folder.unlink(self._part)

    def _salvage(self) -> str | None:
        """After an I/O error: keep what reached the disk in a valid WAV file.  Without a
        cipher it goes under the final name when possible; with a cipher whose encryption
        failed, the recording stays in its sealed (encrypted) ``.part`` file, which
        ``recorder repair --key ...`` turns into the final encrypted file, and
        ``result().path`` says where it is."""
        try:
            if not self.writer.closed:
                try:
                    self.writer.close()
                except OSError:
                    pass
            if not self.folder.exists(self._part):
                return None
            wav.repair(self._file)
            if self.spec.cipher is None:
                try:
                    return self._publish()
                except OSError:
                    pass
            return self.temp_path
        except (OSError, ValueError):
            return self.temp_path if self.folder.exists(self._part) else None


class Job:
    """One record job.  Its decisions (when and why it ends, at the exact sample), the
    resampling to the file's rate and the coding (every format, ADPCM blocks included, cut
    at the file's size limit) run in the engine's compiled core (one slot per channel).
    A plain file (no cipher) is written by the core too: the file's writer lends it
    (:meth:`recorder.wav.Writer.lend`) when the job starts and takes it back when it ends,
    so no Python runs for the recording until then.  Otherwise this object takes the
    core's events: it writes what the core coded to its :class:`RecordingFile` and
    refreshes the header.  Either way it has the finished file published.

    Life: running -> ended (``ended`` set: the cause is known, no more media; under the
    engine lock) -> done (``done`` set: the file is closed, fsynced, encrypted and under
    its final name).  The slow file work between the two runs on the engine's publisher
    pool (:mod:`recorder.publish`), never under the engine lock, so a slow disk does not
    stall other calls.
    """

    _engine: Engine  # set by attach()
    _slot: int

    def __init__(self, spec: JobSpec, root):
        """Open the job's folder under ``root`` and create its temporary file (no engine
        lock: this is file-system work).  ValueError for a refused name, OSError when
        the folder or file cannot be made.  :meth:`attach` then starts it."""
        self.spec = spec
        self.cause = Cause.NONE
        self.ended = False
        self.done = threading.Event()
        self.result: RecordResult | None = None
        self.error: str | None = None
        self.frames_out = 0
        self.audio_seen = False
        self.digit: str | None = None
        self.digit_start: int | None = None
        self._n_final = 0
        self._max_frames = spec.max_frames()
        self.file = RecordingFile(spec, root)
        self.writer = self.file.writer

    def discard(self) -> None:
        """Undo a job that was never attached: its temporary file goes."""
        self.file.discard()

    def attach(self, engine: Engine, slot: int, hold_back: int) -> None:
        """Start the job's state machine on the engine's ``slot`` (engine lock held)."""
        spec = self.spec
        if spec.rate == MEDIA_RATE:
            size_at = self._max_frames
        else:  # the first 8 kHz sample count whose resampled frames reach the limit
            size_at = -(-self._max_frames * MEDIA_RATE // spec.rate)
        engine.start_job(
            slot,
            self,
            JobParams(
                fmt=_CORE_FORMAT[spec.fmt],
                timeout_at=spec.timeout_samples or -1,
                size_at=size_at,
                max_silence=spec.max_silence_ms * MEDIA_RATE // 1000,
                initial_silence=spec.initial_silence_ms * MEDIA_RATE // 1000,
                barge=spec.barge_in,
                hold=hold_back,
                rate=spec.rate,
                max_frames=self._max_frames,
            ),
        )
        self._engine, self._slot = engine, slot
        target = self.writer.lend()  # None: an enciphered file, written from Python
        if target is not None:
            try:
                engine.write_file(slot, target)
            except BaseException:  # undo the start: the caller discards the job
                engine.end_job(slot, EndCause.ERROR, False)
                engine.job_ended(slot)
                self.writer.take_back(0, 0)
                raise

    # -- events from the engine core (engine lock held) --------------------------------

    def on_event(self, events: Event) -> None:
        """React to what the core reported for this job's slot after a chunk."""
        if self.ended:
            return
        if not self.writer.lent:  # (lent: the core writes the plain file itself)
            try:
                self._drain()
                if events & Event.SYNC:
                    self.writer.sync()
            except Exception as e:  # an I/O error, or anything else: the job ends
                self.fail(e)
                return
        if events & Event.DONE:
            self.finish(Cause[EndCause(self._engine.job_state(self._slot).cause).name])

    def _drain(self) -> None:
        """Write what the core has coded since the last call; the frames it has coded
        (a partial ADPCM block and OKI's lookahead included) go to the header."""
        engine = self._engine
        data = engine.take_coded(self._slot)
        if data:
            self.frames_out = engine.job_state(self._slot).frames
            self.writer.write_coded(data, frames=self.frames_out)

    def _take_back(self) -> None:
        """The core stops writing the file (after writing what it has coded, unless the
        job failed) and the writer learns what it wrote; OSError if a write failed."""
        done = self._engine.end_file(self._slot, write_rest=self.error is None)
        self.writer.take_back(done.nbytes, done.frames)
        self.frames_out = done.frames
        if done.error is not None:
            raise done.error

    def out_of_band_digit(self, digit: str, start: int) -> None:
        """An RFC 4733 digit that started at job sample ``start``: barge-in cuts there (or
        as far back as the held-back media allows)."""
        if not self.ended and self._engine.barge(self._slot, digit, start):
            self.on_event(Event.DONE)

    @property
    def n(self) -> int:
        """Media samples the job has seen."""
        return self._engine.job_state(self._slot).n if not self.ended else self._n_final

    def fail(self, exc: BaseException) -> None:
        """End the job with ERROR because of ``exc`` (engine lock held)."""
        if self.error is None:
            self.error = f"{type(exc).__name__}: {exc}"
        self.finish(Cause.ERROR)

    # -- ending -------------------------------------------------------------------------

    def end(self, cause: Cause) -> None:
        """End the job from outside (stop -> ABORTED, hangup -> HANGUP): everything
        received is kept, held-back media included.  Engine lock held."""
        if self.ended:
            return
        self._engine.end_job(self._slot, EndCause[cause.name], True)
        self.finish(cause)

    def abort(self) -> None:
        """End the job with ABORTED (the engine stops or drops the channel)."""
        self.end(Cause.ABORTED)

    def finish(self, cause: Cause) -> None:
        """The job ends with ``cause`` (engine lock held): the last media goes to the
        writer, the slot is freed, and the publisher closes and publishes the file."""
        if self.ended:
            return
        engine = self._engine
        try:
            engine.end_job(
                self._slot, EndCause.ERROR if self.error else EndCause[cause.name], False
            )
            st = engine.job_state(self._slot)
            self._n_final, committed = st.n, st.committed
            # audio counts only if the file keeps at least 20 ms of it (the detector's
            # shortest audio): a barge-in tone cut from the end is not audio in the file
            self.audio_seen = 0 <= st.first_audio and committed - st.first_audio >= MIN_AUDIO
            if cause is Cause.BARGEIN:
                self.digit, self.digit_start = st.digit, st.digit_start
            if not self.error and not self.writer.lent:
                self._drain()  # the core has coded the end of the file
        except Exception as e:
            if self.error is None:
                self.error = f"{type(e).__name__}: {e}"
        finally:
            if self.writer.lent:  # whatever happened: the core lets go of the file here
                try:
                    self._take_back()
                except Exception as e:
                    if self.error is None:
                        self.error = f"{type(e).__name__}: {e}"
            self.ended = True
            self.cause = Cause.ERROR if self.error else cause
            engine.job_ended(self._slot)
            engine.finish_later(self._close_and_publish)

    def _close_and_publish(self) -> None:
        """On a publisher thread: the file is finished (:meth:`RecordingFile.finish`);
        then the result, and ``done``."""
        spec = self.spec
        final_path, size = None, 0
        try:
            final_path, self.error, size = self.file.finish(self.error)
        finally:
            if self.error:
                self.cause = Cause.ERROR
            self.result = RecordResult(
                cause=self.cause,
                path=final_path,
                format=spec.fmt,
                rate=spec.rate,
                frames=self.frames_out,
                duration=self.frames_out / spec.rate,
                bytes=size,
                audio_detected=self.audio_seen,
                digit=self.digit,
                digit_time=None if self.digit_start is None else self.digit_start / MEDIA_RATE,
                error=self.error,
            )
            self.done.set()


class FailedStart:
    """The outcome of a record job that could not even start (its folder or file could
    not be created): already ended and done, with cause ERROR.  It answers the same
    questions as a finished :class:`Job` (``ended``, ``done``, ``cause``, ``audio_seen``,
    ``result``).

    Parameters
    ----------
    spec : JobSpec
        The job's validated arguments.
    exc : BaseException
        Why it could not start.
    """

    ended = True
    audio_seen = False
    cause = Cause.ERROR

    def __init__(self, spec: JobSpec, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.result = RecordResult(
            Cause.ERROR, None, spec.fmt, spec.rate, 0, 0.0, 0, False, error=self.error
        )
        self.done = threading.Event()
        self.done.set()


class FileRecorder:
    """Records the call's inbound audio to WAV files (the spec's ``FileRecorder``).

    Get it as ``channel.FileRecorder`` (or ``channel.file_recorder``).  See the module
    documentation for the exact semantics of every argument.  It owns the record-job
    lifecycle: it starts a :class:`Job` on its channel's media, waits for it (the
    channel serves the waiting), and keeps the last job's outcome.

    Parameters
    ----------
    channel : recorder.channel.CallChannel
        The call whose inbound audio is recorded.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from recorder import CallChannel, wav
    >>> folder = tempfile.mkdtemp()
    >>> _ = wav.write(f"{folder}/call.wav", np.zeros(8000, np.int16), fmt="s16bit")
    >>> ch = CallChannel.replay(f"{folder}/call.wav", media_root=folder)
    >>> ch.FileRecorder.record("out.wav", milliseconds_max_silence=500).name
    'SILENCE'
    >>> ch.close()
    """

    State: TypeAlias = State
    Cause: TypeAlias = Cause

    def __init__(self, channel) -> None:
        self._channel = channel
        self._job: Job | FailedStart | None = (
            None  # the running or last job (replaced under the lock)
        )

    # -- spec API -----------------------------------------------------------------------

    def record(
        self,
        filename: str | os.PathLike[str],
        file_format: str = "alaw",
        rate: int = 8000,
        seconds_timeout: float | None = 120,
        max_bytes: int = 1920000,
        milliseconds_max_silence: int = 10000,
        milliseconds_initial_silence: int = 0,
        barge_in: bool = False,
        cipher: FileCipher | None = None,
    ) -> Cause:
        """Record to ``filename`` and block until the recording ends.

        Parameters
        ----------
        filename : str or path-like
            Relative to the channel's media root; folders are created.
        file_format : str
            One of :data:`RECORD_FORMATS`.
        rate : int
            One of :data:`RECORD_RATES` (Hz).
        seconds_timeout : float or None
            Media time after which the recording ends with TIMEOUT (0 or None: none).
        max_bytes : int
            Size limit of the file on disk (0: only the WAV format's own 4 GiB).
        milliseconds_max_silence, milliseconds_initial_silence : int
            Silence that ends the recording (0: off); see the module documentation.
        barge_in : bool
            A DTMF digit ends the recording, cut at the digit's start.
        cipher : AesCbcCipher or AesGcmCipher, optional
            Encrypt the file (nothing unencrypted ever reaches the disk).

        Returns
        -------
        Cause
            Why the recording ended (ERROR if the file could not be made or written).

        Raises
        ------
        Hangup
            The call is IDLE.
        Error
            The call is not ANSWERED, or a recording is already running.
        ValueError, TypeError
            A bad argument (named in the message).
        """
        job = self._begin(
            filename,
            file_format,
            rate,
            seconds_timeout,
            max_bytes,
            milliseconds_max_silence,
            milliseconds_initial_silence,
            barge_in,
            cipher,
        )
        if job is None:
            return Cause.ERROR
        self._wait_for(job, None)
        return job.cause

    def start(
        self,
        filename: str | os.PathLike[str],
        file_format: str = "alaw",
        rate: int = 8000,
        max_bytes: int = 1920000,
        milliseconds_max_silence: int = 10000,
        milliseconds_initial_silence: int = 0,
        barge_in: bool = False,
        cipher: FileCipher | None = None,
    ) -> bool:
        """Begin recording to ``filename`` and return at once.

        Parameters
        ----------
        filename, file_format, rate, max_bytes, milliseconds_max_silence, \
milliseconds_initial_silence, barge_in, cipher
            As in :meth:`record`.

        Returns
        -------
        bool
            True once the recording has started; False if its file could not be
            created (:meth:`state` is then ERROR, :meth:`last_error` says why).

        Raises
        ------
        Hangup, Error, ValueError, TypeError
            As :meth:`record`.
        """
        job = self._begin(
            filename,
            file_format,
            rate,
            None,
            max_bytes,
            milliseconds_max_silence,
            milliseconds_initial_silence,
            barge_in,
            cipher,
        )
        return job is not None

    def stop(self) -> bool:
        """Stop the recording (cause ABORTED) after writing everything received so far.

        Returns
        -------
        bool
            True once its file is published (also when called again while the file is
            still being published, and at once when nothing is recording).

        Raises
        ------
        Hangup
            The call is IDLE (raised once the last file is published).
        Error
            The call is not ANSWERED.
        """
        self._check_call()
        job = self._job
        if job is None:
            return True
        self._channel.end_job(job, Cause.ABORTED)
        job.done.wait()  # only this recording's file, nobody else's
        return True

    def state(self) -> State:
        """RECORDING while a job runs (until its file is published); ERROR if the last
        job failed; otherwise IDLE."""
        job = self._job
        if job is None:
            return State.IDLE
        if not job.done.is_set():
            return State.RECORDING
        return State.ERROR if job.cause is Cause.ERROR else State.IDLE

    def cause(self) -> Cause:
        """Why the last job ended; NONE while a job runs or before any job."""
        job = self._job
        if job is None or not job.done.is_set():
            return Cause.NONE
        return job.cause

    def wait_until_finished(self, seconds_timeout: float | None = 120) -> Cause:
        """Block until the recording ends or ``seconds_timeout`` of media time passes.

        Parameters
        ----------
        seconds_timeout : float or None
            Media seconds to wait at most; None waits forever.

        Returns
        -------
        Cause
            The recording's cause; TIMEOUT if the time passed first (the recording goes
            on); with no recording running, :meth:`cause` at once.

        Raises
        ------
        Hangup, Error
            As :meth:`stop`.
        ValueError, TypeError
            ``seconds_timeout`` is not a number of seconds from 0 to 1e9.
        """
        self._check_call()
        if seconds_timeout is not None:
            seconds_timeout = check_seconds(seconds_timeout, "seconds_timeout")
        job = self._job
        if job is None or job.done.is_set():
            return self.cause()
        finished = self._wait_for(job, seconds_timeout)
        return job.cause if finished else Cause.TIMEOUT

    def audio_detected_in_recording(self) -> bool | None:
        """True if audio (not just silence) was heard during the last record job, False
        if not; None while a job runs or before any job."""
        job = self._job
        if job is None or not job.done.is_set():
            return None
        return job.audio_seen

    # -- extras -------------------------------------------------------------------------

    def result(self) -> RecordResult | None:
        """Everything about the last finished job (file, size, duration, digit...)."""
        job = self._job
        return job.result if job is not None and job.done.is_set() else None

    def last_digit(self) -> tuple[str, float | None] | None:
        """``(digit, seconds from the start of the job)`` of the barge-in, or None."""
        r = self.result()
        return (r.digit, r.digit_time) if r is not None and r.digit is not None else None

    def last_error(self) -> str | None:
        """What went wrong when the last job ended in ERROR."""
        r = self.result()
        return r.error if r is not None else None

    def running_job(self) -> Job | None:
        """The job still taking media (not yet ended), if any."""
        job = self._job
        return job if isinstance(job, Job) and not job.ended else None

    # -- internals ----------------------------------------------------------------------

    def _wait_for(self, job: Job | FailedStart, seconds: float | None) -> bool:
        """Wait until ``job`` is done (file published; True) or ``seconds`` of media
        pass (False).  The channel serves the waiting (a fast replay advances only
        while someone waits)."""
        channel = self._channel
        deadline = (
            None if seconds is None else channel.media_samples() + seconds_to_samples(seconds)
        )
        if not channel.wait(lambda: job.ended, deadline):
            return False
        if job.ended:
            job.done.wait()
        return job.done.is_set()

    def _settle(self) -> None:
        """Wait until an ended job's file is published, so its outcome is final."""
        job = self._job
        if job is not None and job.ended:
            job.done.wait()

    def _check_call(self) -> None:
        """The call must be ANSWERED.  A Hangup is raised only once the last recording's
        file is published: after catching it, ``cause()`` and ``result()`` are final."""
        try:
            self._channel.check_call()
        except Hangup:
            self._settle()
            raise

    def _begin(
        self,
        filename,
        file_format,
        rate,
        seconds_timeout,
        max_bytes,
        max_silence,
        initial_silence,
        barge_in,
        cipher,
    ):
        channel = self._channel
        self._check_call()
        self._settle()  # the previous file is still being published
        if self.running_job() is not None:
            raise Error("a recording is already in progress on this channel")
        spec = JobSpec.build(
            channel.media_root,
            filename,
            file_format,
            rate,
            seconds_timeout,
            max_bytes,
            max_silence,
            initial_silence,
            barge_in,
            cipher,
        )
        try:  # file-system work, outside the engine lock
            job = Job(spec, channel.media_root)
        except OSError as e:  # folder or file cannot be created: ERROR
            with channel.lock:
                channel.check_call()
                if self.running_job() is not None:
                    raise Error("a recording is already in progress on this channel") from None
                self._job = FailedStart(spec, e)
            return None
        try:
            with channel.lock:
                channel.check_call()
                if self.running_job() is not None:
                    raise Error("a recording is already in progress on this channel")
                channel.begin_job(job)
                self._job = job
        except BaseException:
            job.discard()
            raise
        return job

    def __repr__(self) -> str:
        return f"<FileRecorder state={self.state().name} cause={self.cause().name}>"


#: The spec's name for the class (``class UASCallFileRecorder``).
UASCallFileRecorder = FileRecorder
