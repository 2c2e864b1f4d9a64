"""The engine's compiled core writes a plain recording file itself (pwrite on the file's
descriptor, the header's size fields refreshed once a second of media), lent by the
file's writer (``wav.Writer.lend`` / ``take_back``); an enciphered file is written from
Python.  Both give the same bytes; a failed write ends only its own recording, with
ERROR and the error's text."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from signals import dtmf, join, silence, speechlike

from recorder import AesCbcCipher, CallChannel, FileRecorder, codecs, wav
from recorder.filerecorder import RECORD_FORMATS, RECORD_RATES

Cause, State = FileRecorder.Cause, FileRecorder.State
HERE = os.path.dirname(os.path.abspath(__file__))
KEY = AesCbcCipher(bytes(range(16)), bytes(16))


# --- the writer lends its file --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["alaw", "s16bit", "ima", "oki"])
def test_a_lent_file_written_by_another_writer_is_finished_by_its_own(tmp_path, fmt):
    """What another writer appends with the target's description (here: os.pwrite, as
    the core does) becomes the writer's: close() pads and finishes the header, and the
    file is byte for byte the one the writer would have written itself."""
    x = speechlike(0.5)[:3999]  # odd: the u8/ADPCM data chunks take a pad byte
    ref = io.BytesIO()
    empty = io.BytesIO()
    wav.Writer(empty, fmt, 8000).sync()
    with wav.Writer(ref, fmt, 8000) as w:
        w.write(x)
    info = w.info()
    coded = ref.getvalue()[info.data_offset : info.data_offset + info.data_bytes]
    with open(tmp_path / "a.wav", "w+b", buffering=0) as f:
        w = wav.Writer(f, fmt, 8000)
        t = w.lend()
        assert t is not None and t.fd == f.fileno() and t.header == empty.getvalue()
        assert (t.header_at, t.data_at) == (0, len(t.header))
        with pytest.raises(ValueError, match="lent"):
            w.write(x)
        with pytest.raises(ValueError, match="lent"):
            w.close()
        assert os.pwrite(t.fd, coded, t.data_at) == len(coded)
        w.take_back(len(coded), x.size)
        with pytest.raises(ValueError, match="not lent"):
            w.take_back(0, 0)
        w.close()
    assert (tmp_path / "a.wav").read_bytes() == ref.getvalue()


def test_only_an_unbuffered_os_file_is_lent_and_counts_are_checked(tmp_path):
    assert wav.Writer(io.BytesIO(), "alaw", 8000).lend() is None
    with open(tmp_path / "b.wav", "w+b") as f:  # buffered: its buffer is the writer's
        assert wav.Writer(f, "alaw", 8000).lend() is None
    with open(tmp_path / "c.wav", "w+b", buffering=0) as f:
        w = wav.Writer(f, "ima", 8000)
        w.write(np.zeros(100, np.int16))  # a partial block waits in the encoder
        with pytest.raises(ValueError, match="partial block"):
            w.lend()
        w.close()
    with open(tmp_path / "d.wav", "w+b", buffering=0) as f:
        w = wav.Writer(f, "alaw", 8000)
        assert w.lend() is not None
        with pytest.raises(ValueError, match="is lent"):
            w.lend()
        for nbytes, frames, err in (
            (-1, 0, ValueError),
            (2**40, 0, ValueError),
            (0, -1, ValueError),
            (1.5, 0, TypeError),
        ):
            with pytest.raises(err):
                w.take_back(nbytes, frames)
        w.take_back(0, 0)
        w.close()
    assert wav.info(tmp_path / "d.wav").frames == 0


# --- the core's files are the Python path's files ------------------------------------------


def _record(path, root, fmt, rate, cipher, how):
    ch = CallChannel.replay(path, media_root=root)
    fr = ch.FileRecorder
    name = f"{fmt}-{rate}-{how}-{'c' if cipher else 'p'}.wav"
    if how == "stop":
        fr.start(name, fmt, rate, max_bytes=0, milliseconds_max_silence=0, cipher=cipher)
        fr.wait_until_finished(2.37)
        fr.stop()
        cause = fr.cause()
    elif how == "barge":
        cause = fr.record(name, fmt, rate, None, 0, 0, 0, True, cipher=cipher)
    else:  # timeout
        cause = fr.record(name, fmt, rate, 2.5, 0, 0, cipher=cipher)
    ch.close()
    data = (root / name).read_bytes()
    return cause, (KEY.decrypt(data) if cipher else data)


@pytest.mark.parametrize("how", ["stop", "barge", "timeout"])
@pytest.mark.parametrize("fmt", RECORD_FORMATS)
def test_the_core_writes_the_bytes_python_writes(tmp_path, fmt, how):
    """Every format and rate, ended by stop(), barge-in and the timeout: the file the core
    wrote is byte for byte the one the Python path writes (an enciphered recording,
    decrypted)."""
    src = tmp_path / "call.wav"
    wav.write(src, join(speechlike(1.3), silence(0.05), dtmf("5", 0.12), speechlike(1.5)), "s16bit")
    for rate in RECORD_RATES:
        if fmt == "ima" and rate > 11999:
            continue
        cause_p, plain = _record(src, tmp_path, fmt, rate, None, how)
        cause_c, deciphered = _record(src, tmp_path, fmt, rate, KEY, how)
        assert (
            cause_p
            is cause_c
            is {"stop": Cause.ABORTED, "barge": Cause.BARGEIN}.get(how, Cause.TIMEOUT)
        )
        assert plain == deciphered, (fmt, rate, how)


def test_the_header_is_current_each_second_of_media_in_every_format(tmp_path):
    """Mid-recording, the .part file the core writes is a valid WAV whose header (RIFF,
    fact and data sizes) describes the audio up to the last whole second."""
    src = tmp_path / "call.wav"
    x = speechlike(4)
    wav.write(src, x, "s16bit")
    for fmt in RECORD_FORMATS:
        for rate in (8000, 11025) if fmt != "ima" else (8000,):
            ch = CallChannel.replay(src, media_root=tmp_path / fmt)
            fr = ch.FileRecorder
            fr.start(f"r{rate}.wav", fmt, rate, milliseconds_max_silence=0)
            fr.wait_until_finished(2.5)
            (part,) = [p for p in os.listdir(tmp_path / fmt) if p.endswith(".part")]
            y, info = wav.read(tmp_path / fmt / part)
            block = codecs.lookup(fmt).wav.samples_per_block(1, rate)
            assert 2 * rate - block - 64 <= info.frames <= 2.5 * rate, (fmt, rate, info)
            fr.stop()
            final = wav.info(tmp_path / fmt / f"r{rate}.wav")
            assert final.frames >= info.frames
            ch.close()


# --- a failed write ---------------------------------------------------------------------------


def test_a_failed_write_in_the_core_ends_that_recording_only(tmp_path):
    """A real write failure (the process's file-size limit, EFBIG, SIGXFSZ ignored) in
    the core's pwrite: that recording ends with ERROR and the error's text, its file
    keeps what the disk took; the other recording on the engine carries on to its end."""
    code = """
        import json, resource, signal, sys
        import numpy as np
        from signals import speechlike
        import recorder
        from recorder import CallChannel, wav

        class Clock:
            t = 1000.0
            def __call__(self):
                return self.t

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        root = sys.argv[1]
        engine, clock = recorder.Engine(), Clock()
        a = CallChannel(media_root=root, codec="s16", engine=engine, clock=clock)
        b = CallChannel(media_root=root, codec="s16", engine=engine, clock=clock)
        for ch in (a, b):
            ch.ring(); ch.answer()
        resource.setrlimit(resource.RLIMIT_FSIZE, (30000, 30000))
        # a: 22 kB per second, past the limit in its second second; b: 8 kB per second
        a.FileRecorder.start("a.wav", "s16bit", 11025, max_bytes=0, milliseconds_max_silence=0)
        b.FileRecorder.start("b.wav", "alaw", 8000, max_bytes=0, milliseconds_max_silence=0)
        x = speechlike(3)
        for i in range(0, x.size, 160):
            a.push(x[i : i + 160])
            b.push(x[i : i + 160])
            clock.t += 0.02
            with engine.lock:
                engine.process()
        a.FileRecorder.stop()  # a has ended by itself: this waits until it is published
        out = {"a_state": a.FileRecorder.state().name, "b_state": b.FileRecorder.state().name}
        b.FileRecorder.stop()
        for name, ch in (("a", a), ("b", b)):
            r = ch.FileRecorder.result()
            out[name] = [r.cause.name, r.error, r.path, r.frames]
        engine.stop()
        print(json.dumps(out))
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
        env={**os.environ, "PYTHONPATH": HERE},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["a_state"], out["b_state"]) == ("ERROR", "RECORDING")
    cause, error, path, frames = out["a"]
    assert cause == "ERROR" and "[Errno 27]" in error and "too large" in error.lower()
    info = wav.info(path)  # a valid WAV file of what the disk took (the repair counts
    assert 0 < frames <= info.frames and os.path.getsize(path) <= 30000  # a torn write too)
    cause, error, path, frames = out["b"]
    assert (cause, error) == ("ABORTED", None)
    assert wav.info(path).frames == frames == 3 * 8000
