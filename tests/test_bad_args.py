"""Hostile arguments: every entry point answers a bad index, slot, count, size, rate,
state or buffer with a ValueError / TypeError naming the problem - never a crash, an
OverflowError / IndexError / MemoryError, or a huge allocation - and ``out=`` buffers
that overlap the input give the same result as separate ones.

The compiled modules (``recorder._codecs.*``) are tested too: their Python-visible
functions are the last check before code that runs without bounds checks, so they must
be safe on their own, whoever calls them.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import recorder
from recorder import adpcm, codecs, dsp, resampling
from recorder._codecs import adpcm as k_adpcm
from recorder._codecs import detect as k_detect
from recorder._codecs import engine as k_engine
from recorder._codecs import resample as k_resample

HUGE = (2**31, 2**63, 2**64 - 1, 2**70, -(2**70))
PCM = np.arange(-800, 800, 10, dtype=np.int16)  # 160 samples
BLOCK = np.zeros((4, 160), np.int16)


def _bank():
    b = k_engine.Bank(4)
    b.open(0)
    return b


def _job_bank(barge=False):
    b = _bank()
    b.start_job(0, 0, -1, -1, 0, 0, barge, 0)
    return b


def _push_rows(slots, gens, block, codec=0):
    b = _bank()  # slot 0 open (generation 1)
    return b.push_rows(np.array(slots, np.int64), np.array(gens, np.int64), block, codec)


def _batch(close=False):
    engine = recorder.Engine(tick=3600.0)
    chans = [recorder.CallChannel(media_root="/nonexistent", engine=engine) for _ in range(2)]
    batch = recorder.ChannelBatch(chans)
    if close:
        chans[1].close()
    return batch


def _feed_args(slot):
    return (
        np.array([slot], np.int64),
        np.zeros((1, 160), np.int16),
        np.zeros(1, np.int64),
        np.zeros(1, np.uint8),
        np.full(1, -1, np.int64),
        np.zeros(1, np.int32),
        np.full(1, -1, np.int64),
    )


def _multistate(channels=4):
    m = dsp.MultiDetector(channels)
    return k_detect.MultiState(
        channels,
        k_detect.DtmfConfig(8000, -42, 10, 6, 6, 0.02, 0.8, 0.3),
        k_detect.SilenceConfig(8000, -42, 20),
    ), m


def _state_call(slot_values, *, silence_len=1, ev=None):
    ms, _ = _multistate()
    rows = np.asarray(slot_values, np.int64)
    k = len(rows)
    ev = np.empty(ms.max_events(k, 160), k_detect.EVENT_DTYPE) if ev is None else ev
    return ms.process(
        np.zeros((k, 160), np.int16),
        rows,
        ev,
        np.empty(silence_len, np.int64),
        np.empty(k, np.uint8),
        np.empty(k, np.float32),
    )


def _set_held(value):
    e = codecs.ImaEncoder()
    e.held = value


# (id, call, exception, message fragment)
CASES = [
    # --- dsp.MultiDetector: slots, rows, channels (the segfault of the issue) ---------
    ("current_digit 10**7", lambda: dsp.MultiDetector(4).current_digit(10**7), ValueError, "slot"),
    ("current_digit -1", lambda: dsp.MultiDetector(4).current_digit(-1), ValueError, "slot"),
    ("current_digit 4", lambda: dsp.MultiDetector(4).current_digit(4), ValueError, "0..3"),
    *[
        (
            f"current_digit {v}",
            lambda v=v: dsp.MultiDetector(4).current_digit(v),
            ValueError,
            "slot",
        )
        for v in HUGE
    ],
    ("current_digit 1.5", lambda: dsp.MultiDetector(4).current_digit(1.5), TypeError, "int"),
    ("current_digit True", lambda: dsp.MultiDetector(4).current_digit(True), TypeError, "int"),
    ("current_digit None", lambda: dsp.MultiDetector(4).current_digit(None), TypeError, "int"),
    (
        "detector rows 4",
        lambda: dsp.MultiDetector(4).process(BLOCK[:1], rows=[4]),
        ValueError,
        "out of range",
    ),
    (
        "detector rows -1",
        lambda: dsp.MultiDetector(4).process(BLOCK[:1], rows=[-1]),
        ValueError,
        "out of range",
    ),
    *[
        (
            f"detector rows {v}",
            lambda v=v: dsp.MultiDetector(4).process(BLOCK[:1], rows=[v]),
            ValueError,
            "out of range",
        )
        for v in HUGE
    ],
    (
        "detector rows uint64 max",
        lambda: dsp.MultiDetector(4).process(BLOCK[:1], rows=np.array([2**64 - 1], np.uint64)),
        ValueError,
        "18446744073709551615",
    ),
    (
        "detector rows float",
        lambda: dsp.MultiDetector(4).process(BLOCK[:1], rows=[1.0]),
        TypeError,
        "integer",
    ),
    (
        "detector rows str",
        lambda: dsp.MultiDetector(4).process(BLOCK[:1], rows=["1"]),
        TypeError,
        "integer",
    ),
    (
        "detector rows repeated",
        lambda: dsp.MultiDetector(4).process(BLOCK[:2], rows=[1, 1]),
        ValueError,
        "twice",
    ),
    (
        "detector rows count",
        lambda: dsp.MultiDetector(4).process(BLOCK[:2], rows=[1]),
        ValueError,
        "entries",
    ),
    (
        "detector reset 2**70",
        lambda: dsp.MultiDetector(4).reset([2**70]),
        ValueError,
        "out of range",
    ),
    ("detector reset 4", lambda: dsp.MultiDetector(4).reset([4]), ValueError, "out of range"),
    ("detector reset 1.5", lambda: dsp.MultiDetector(4).reset([1.5]), TypeError, "integer"),
    ("detector finish 4", lambda: dsp.MultiDetector(4).finish([4]), ValueError, "out of range"),
    (
        "detector finish -2**70",
        lambda: dsp.MultiDetector(4).finish([-(2**70)]),
        ValueError,
        "out of range",
    ),
    ("detector block 1-D", lambda: dsp.MultiDetector(4).process(PCM), ValueError, "2-D"),
    (
        "detector block 3-D",
        lambda: dsp.MultiDetector(4).process(np.zeros((4, 2, 2), np.int16)),
        ValueError,
        "2-D",
    ),
    (
        "detector block float",
        lambda: dsp.MultiDetector(4).process(np.zeros((4, 160))),
        TypeError,
        "int16",
    ),
    *[
        (f"detector channels {v}", lambda v=v: dsp.MultiDetector(v), ValueError, "channels")
        for v in (0, -1, 10**7, *HUGE)
    ],
    ("detector channels 1.5", lambda: dsp.MultiDetector(1.5), TypeError, "channels"),
    ("detector channels inf", lambda: dsp.MultiDetector(math.inf), TypeError, "channels"),
    ("detector rate inf", lambda: dsp.MultiDetector(4, rate=math.inf), TypeError, "rate"),
    ("detector rate 2**70", lambda: dsp.MultiDetector(4, rate=2**70), ValueError, "rate"),
    ("dtmf rate 0", lambda: dsp.DtmfDetector(rate=0), ValueError, "rate"),
    ("dtmf level nan", lambda: dsp.DtmfDetector(min_level_dbm0=math.nan), ValueError, "min_level"),
    ("dtmf 2-D", lambda: dsp.DtmfDetector().process(BLOCK), ValueError, "1-D"),
    ("silence rate 2**63", lambda: dsp.SilenceDetector(rate=2**63), ValueError, "rate"),
    (
        "silence min_audio inf",
        lambda: dsp.SilenceDetector(min_audio_ms=math.inf),
        ValueError,
        "min_audio_ms",
    ),
    ("detect_dtmf rate -1", lambda: dsp.detect_dtmf(PCM, rate=-1), ValueError, "rate"),
    ("audio_segments odd bytes", lambda: dsp.audio_segments(b"abc"), ValueError, "even"),
    # --- ADPCM states and counts -----------------------------------------------------
    *[
        (f"IMA predictor {v}", lambda v=v: codecs.ImaEncoder(state=(v, 0)), ValueError, "predictor")
        for v in HUGE
    ],
    *[
        (f"IMA index {v}", lambda v=v: codecs.ImaDecoder(state=(0, v)), ValueError, "step index")
        for v in HUGE
    ],
    *[
        (f"OKI predictor {v}", lambda v=v: codecs.OkiEncoder(state=(v, 0)), ValueError, "predictor")
        for v in (2048, -2049, *HUGE)
    ],
    ("OKI index 49", lambda: codecs.OkiDecoder(state=(0, 49)), ValueError, "0..48"),
    ("IMA predictor inf", lambda: codecs.ImaEncoder(state=(math.inf, 0)), TypeError, "int"),
    ("IMA predictor nan", lambda: codecs.ImaEncoder(state=(math.nan, 0)), TypeError, "int"),
    ("IMA predictor 1.5", lambda: codecs.ImaEncoder(state=(1.5, 0)), TypeError, "int"),
    ("IMA index True", lambda: codecs.ImaEncoder(state=(0, True)), TypeError, "int"),
    ("IMA state scalar", lambda: codecs.ImaEncoder(state=5), TypeError, "pair"),
    ("IMA state triple", lambda: codecs.ImaEncoder(state=(1, 2, 3)), TypeError, "pair"),
    (
        "ima_decode state 2**70",
        lambda: adpcm.ima_decode(b"ab", state=(2**70, 0)),
        ValueError,
        "predictor",
    ),
    (
        "oki_encode state 2**70",
        lambda: adpcm.oki_encode(PCM, state=(0, 2**70)),
        ValueError,
        "step index",
    ),
    *[
        (f"nbytes {v}", lambda v=v: codecs.ImaEncoder().nbytes(v), ValueError, "nsamples")
        for v in (-1, 2**63, 2**70)
    ],
    ("OKI nbytes 2**63-1", lambda: codecs.OkiEncoder().nbytes(2**63 - 1), ValueError, "nsamples"),
    ("nbytes inf", lambda: codecs.ImaEncoder().nbytes(math.inf), TypeError, "nsamples"),
    ("held 16", lambda: _set_held(16), ValueError, "held"),
    ("held 2**70", lambda: _set_held(2**70), ValueError, "held"),
    ("held 1.5", lambda: _set_held(1.5), TypeError, "held"),
    ("held str", lambda: _set_held("x"), TypeError, "held"),
    *[
        (f"row_states {v}", lambda v=v: codecs.row_states(v), ValueError, "rows")
        for v in (-1, 10**7, *HUGE)
    ],
    ("row_states inf", lambda: codecs.row_states(math.inf), TypeError, "rows"),
    ("row_states 1.5", lambda: codecs.row_states(1.5), TypeError, "rows"),
    (
        "rows state predictor",
        lambda: codecs.ima_encode_rows(BLOCK, np.full((4, 3), 2**30, np.int32)),
        ValueError,
        "state row 0",
    ),
    (
        "rows state index",
        lambda: codecs.oki_decode_rows(
            np.zeros((4, 2), np.uint8), np.array([[0, 0, 0]] * 3 + [[0, 2**31 - 1, 0]], np.int32)
        ),
        ValueError,
        "state row 3",
    ),
    (
        "rows state shadow",
        lambda: codecs.oki_encode_rows(
            BLOCK, np.array([[0, 0, 0]] * 3 + [[0, 0, -5000]], np.int32)
        ),
        ValueError,
        "shadow",
    ),
    (
        "rows state shape",
        lambda: codecs.ima_encode_rows(BLOCK, codecs.row_states(3)),
        ValueError,
        "shape",
    ),
    (
        "rows state dtype",
        lambda: codecs.ima_encode_rows(BLOCK, np.zeros((4, 3), np.int64)),
        TypeError,
        "int32",
    ),
    (
        "rows odd",
        lambda: codecs.ima_encode_rows(np.zeros((2, 3), np.int16), codecs.row_states(2)),
        ValueError,
        "even",
    ),
    ("rows 1-D", lambda: codecs.ima_decode_rows(b"ab", codecs.row_states(1)), ValueError, "2-D"),
    # --- sample codecs: buffers ------------------------------------------------------
    (
        "alaw out short",
        lambda: codecs.alaw_encode(PCM, out=np.zeros(159, np.uint8)),
        ValueError,
        "159",
    ),
    (
        "alaw out strided",
        lambda: codecs.alaw_encode(PCM, out=np.zeros(320, np.uint8)[::2]),
        ValueError,
        "contiguous",
    ),
    ("alaw out read-only", lambda: codecs.alaw_encode(PCM, out=bytes(160)), ValueError, "writable"),
    (
        "alaw out dtype",
        lambda: codecs.alaw_encode(PCM, out=np.zeros(160, np.int16)),
        TypeError,
        "uint8",
    ),
    ("alaw float", lambda: codecs.alaw_encode(np.zeros(4, np.float32)), TypeError, "int16"),
    ("alaw int", lambda: codecs.alaw_encode(5), TypeError, "buffer"),
    ("alaw str", lambda: codecs.alaw_encode("abc"), TypeError, "buffer"),
    ("ulaw decode uint16", lambda: codecs.ulaw_decode(np.zeros(4, np.uint16)), TypeError, "uint8"),
    ("s16 decode odd", lambda: codecs.s16_decode(b"abc"), ValueError, "even"),
    ("u8 decode out", lambda: codecs.u8_decode(b"ab", out=np.zeros(3, np.int16)), ValueError, "2"),
    ("get_encoder None", lambda: codecs.get_encoder(None), ValueError, "format"),
    ("get_decoder list", lambda: codecs.get_decoder(["alaw"]), ValueError, "format"),
    ("SampleEncoder list", lambda: codecs.SampleEncoder(["alaw"]), ValueError, "sample codec"),
    ("SampleDecoder None", lambda: codecs.SampleDecoder(None), ValueError, "sample codec"),
    (
        "ima out short",
        lambda: adpcm.ima_encode(PCM[:5], out=np.zeros(2, np.uint8)),
        ValueError,
        "3",
    ),
    (
        "decoder 2-D",
        lambda: codecs.OkiDecoder().decode(np.zeros((2, 2), np.uint8)),
        ValueError,
        "1-D",
    ),
    # --- resampling ------------------------------------------------------------------
    *[
        (f"rate {v!r}", lambda v=v: recorder.Resampler(8000, v), ValueError, "out_rate")
        for v in (math.inf, -math.inf, math.nan, 0, -1, 8000.5)
    ],
    ("in_rate inf", lambda: recorder.Resampler(math.inf, 8000), ValueError, "in_rate"),
    ("resample inf", lambda: recorder.resample(PCM, 8000, math.inf), ValueError, "out_rate"),
    ("ratio inf", lambda: resampling.ratio(8000, math.inf), ValueError, "out_rate"),
    ("rate 2**70", lambda: recorder.Resampler(8000, 2**70), ValueError, "1000"),
    ("rate str", lambda: recorder.Resampler(8000, "6000"), TypeError, "out_rate"),
    *[
        (
            f"bank channels {v}",
            lambda v=v: recorder.MultiResampler(v, 8000, 6000),
            ValueError,
            "channels",
        )
        for v in (0, -1, 2**40, *HUGE)
    ],
    ("bank channels 1.5", lambda: recorder.MultiResampler(1.5, 8000, 6000), TypeError, "channels"),
    (
        "bank rows 4",
        lambda: recorder.MultiResampler(4, 8000, 6000).process(BLOCK[:1], [4]),
        ValueError,
        "out of range",
    ),
    *[
        (
            f"bank rows {v}",
            lambda v=v: recorder.MultiResampler(4, 8000, 6000).process(BLOCK[:1], [v]),
            ValueError,
            "out of range",
        )
        for v in HUGE
    ],
    (
        "bank reset 9",
        lambda: recorder.MultiResampler(4, 8000, 6000).reset([9]),
        ValueError,
        "out of range",
    ),
    (
        "bank flush 2**70",
        lambda: recorder.MultiResampler(4, 8000, 6000).flush([2**70]),
        ValueError,
        "out of range",
    ),
    *[
        (
            f"bank counts {v}",
            lambda v=v: recorder.MultiResampler(4, 8000, 6000).counts(v),
            ValueError,
            "n must",
        )
        for v in (-1, 2**62, 2**63, 2**70)
    ],
    *[
        (f"count {v}", lambda v=v: recorder.Resampler(8000, 6000).count(v), ValueError, "n must")
        for v in (-1, 2**62, 2**63, 2**70)
    ],
    ("count 1.5", lambda: recorder.Resampler(8000, 6000).count(1.5), TypeError, "n must"),
    ("resampler 2-D", lambda: recorder.Resampler(8000, 6000).process(BLOCK), ValueError, "1-D"),
    (
        "resampler float64",
        lambda: recorder.Resampler(8000, 6000).process(np.zeros(4)),
        TypeError,
        "float32",
    ),
    (
        "bank block 1-D",
        lambda: recorder.MultiResampler(4, 8000, 6000).process(PCM),
        ValueError,
        "2-D",
    ),
    # --- compiled modules: their own checks ------------------------------------------
    ("engine open -1", lambda: _bank().open(-1), ValueError, "slot"),
    *[(f"engine slot {v}", lambda v=v: _bank().pending(v), ValueError, "slot") for v in HUGE],
    *[(f"engine open {v}", lambda v=v: _bank().open(v), ValueError, "slot") for v in HUGE],
    ("engine slot 1.5", lambda: _bank().media(1.5), TypeError, "slot"),
    ("engine n nan", lambda: _bank().push_zeros(0, math.nan), TypeError, "n "),
    ("engine push_zeros 2**70", lambda: _bank().push_zeros(0, 2**70), ValueError, "n "),
    ("engine ready 2**70", lambda: _bank().ready(2**70), ValueError, "n "),
    ("engine take n 2**70", lambda: _bank().take(np.array([0], np.int64), 2**70), ValueError, "n "),
    (
        "engine timeout 2**70",
        lambda: _bank().start_job(0, 0, 2**70, -1, 0, 0, False, 0),
        ValueError,
        "timeout_at",
    ),
    ("engine cause 99", lambda: _job_bank().end_job(0, 99, True), ValueError, "cause"),
    (
        "engine rate 500",
        lambda: _bank().start_job(0, 0, -1, -1, 0, 0, False, 0, 500),
        ValueError,
        "rate",
    ),
    (
        "engine rate 2**70",
        lambda: _bank().start_job(0, 0, -1, -1, 0, 0, False, 0, 2**70),
        ValueError,
        "rate",
    ),
    (
        "engine IMA at 16000 Hz",
        lambda: _bank().start_job(0, 4, -1, -1, 0, 0, False, 0, 16000),
        ValueError,
        "IMA",
    ),
    (
        "engine max_frames -5",
        lambda: _bank().start_job(0, 0, -1, -1, 0, 0, False, 0, 8000, -5),
        ValueError,
        "max_frames",
    ),
    ("engine fmt 6", lambda: _bank().start_job(0, 6, -1, -1, 0, 0, False, 0), ValueError, "fmt"),
    ("engine barge start 2**70", lambda: _job_bank(True).barge(0, 49, 2**70), ValueError, "start"),
    ("engine capacity 2**70", lambda: k_engine.Bank(2**70), ValueError, "capacity"),
    ("engine open 2**31-1", lambda: _bank().open(2**31 - 1), ValueError, "slot"),
    ("engine capacity -5", lambda: k_engine.Bank(-5), ValueError, "capacity"),
    ("engine sync_every 0", lambda: k_engine.Bank(4, sync_every=0), ValueError, "sync_every"),
    (
        "engine flush_bytes 2**62",
        lambda: k_engine.Bank(4, flush_bytes=2**62),
        ValueError,
        "flush_bytes",
    ),
    ("engine push_zeros -5", lambda: _bank().push_zeros(0, -5), ValueError, "n must"),
    ("engine idle 0 ticks", lambda: _bank().idle(0), ValueError, "ticks must"),
    ("engine idle 2**70 ticks", lambda: _bank().idle(2**70), ValueError, "ticks "),
    ("engine push closed", lambda: _bank().push_s16(1, PCM), ValueError, "not open"),
    *[
        (f"engine push_rows {name}", call, exc, match)
        for name, call, exc, match in [
            ("slot -1", lambda: _push_rows([-1], [1], BLOCK[:1]), ValueError, "row 0: slot -1"),
            ("slot 2**40", lambda: _push_rows([2**40], [1], BLOCK[:1]), ValueError, "not open"),
            ("closed slot", lambda: _push_rows([0, 3], [1, 1], BLOCK[:2]), ValueError, "row 1"),
            ("stale gen", lambda: _push_rows([0], [0], BLOCK[:1]), ValueError, "generation"),
            ("rows", lambda: _push_rows([0], [1], BLOCK), ValueError, "4 rows for 1 slots"),
            ("gens", lambda: _push_rows([0], [1, 1], BLOCK[:1]), ValueError, "gens"),
            ("codec 7", lambda: _push_rows([0], [1], BLOCK[:1], 7), ValueError, "codec"),
            ("1-D", lambda: _push_rows([0], [1], PCM), ValueError, "dimensions"),
            ("float", lambda: _push_rows([0], [1], BLOCK[:1] * 1.0), ValueError, "dtype"),
            ("int16 as alaw", lambda: _push_rows([0], [1], BLOCK[:1], 1), ValueError, "dtype"),
            ("None", lambda: _push_rows([0], [1], None), TypeError, "None"),
            ("strided", lambda: _push_rows([0], [1], BLOCK[:1, ::2]), ValueError, "contiguous"),
        ]
    ],
    ("batch no channels", lambda: recorder.ChannelBatch([]), ValueError, "at least one"),
    ("batch not a channel", lambda: recorder.ChannelBatch([object()]), TypeError, "CallChannel"),
    ("batch 1-D", lambda: _batch().push(np.zeros(160, np.uint8)), ValueError, "2-D"),
    ("batch rows", lambda: _batch().push(np.zeros((3, 160), np.uint8)), ValueError, "3 rows"),
    (
        "batch s16 bytes",
        lambda: _batch().push(np.zeros((2, 9), np.uint8), "s16"),
        TypeError,
        "int16",
    ),
    ("batch alaw int16", lambda: _batch().push(BLOCK[:2]), TypeError, "bytes"),
    ("batch row 2", lambda: _batch().push(BLOCK[:1], "s16", rows=[2]), ValueError, "rows"),
    ("batch codec", lambda: _batch().push(BLOCK[:2], "g729"), ValueError, "g729"),
    ("batch closed", lambda: _batch(close=True).push(BLOCK[:2], "s16"), recorder.Error, "closed"),
    (
        "engine take 2**32",
        lambda: _bank().take(np.array([2**32], np.int64), 1),
        ValueError,
        "not open",
    ),
    ("engine take -1", lambda: _bank().take(np.array([0], np.int64), -1), ValueError, "n must"),
    (
        "engine take 2**40",
        lambda: _bank().take(np.array([0], np.int64), 2**40),
        ValueError,
        "n must",
    ),
    ("engine feed 2**32", lambda: _job_bank().feed(*_feed_args(2**32)), ValueError, "not open"),
    ("engine fmt 9", lambda: _bank().start_job(0, 9, -1, -1, 0, 0, False, 0), ValueError, "fmt"),
    (
        "engine hold -10",
        lambda: _bank().start_job(0, 0, -1, -1, 0, 0, True, -10),
        ValueError,
        "hold",
    ),
    (
        "engine hold 2**31-1",
        lambda: _bank().start_job(0, 0, -1, -1, 0, 0, True, 2**31 - 1),
        ValueError,
        "hold",
    ),
    ("engine barge digit", lambda: _job_bank(True).barge(0, -5, 0), ValueError, "digit"),
    ("engine job -1", lambda: _bank().job(-1), ValueError, "not open"),
    ("detect current 10**7", lambda: _multistate()[0].current(10**7), ValueError, "slot"),
    ("detect silence_state -1", lambda: _multistate()[0].silence_state(-1), ValueError, "slot"),
    ("detect reset 4", lambda: _multistate()[0].reset(np.array([4], np.int64)), ValueError, "slot"),
    (
        "detect finish -1",
        lambda: _multistate()[0].finish(np.array([-1], np.int64)),
        ValueError,
        "slot",
    ),
    ("detect process slot", lambda: _state_call([7]), ValueError, "slot"),
    (
        "detect process short outputs",
        lambda: _state_call([0, 1], silence_len=1),
        ValueError,
        "entries",
    ),
    (
        "detect process ev dtype",
        lambda: _state_call([0], ev=np.zeros(100, np.float64)),
        TypeError,
        "EVENT_DTYPE",
    ),
    ("detect process ev list", lambda: _state_call([0], ev=[]), TypeError, "EVENT_DTYPE"),
    (
        "detect channels 0",
        lambda: k_detect.MultiState(0, None, k_detect.SilenceConfig(8000, -42, 20)),
        ValueError,
        "channels",
    ),
    (
        "detect channels 10**8",
        lambda: k_detect.MultiState(10**8, None, None),
        ValueError,
        "channels",
    ),
    ("detect rate 0", lambda: k_detect.SilenceConfig(0, -42, 20), ValueError, "rate"),
    (
        "detect rate 100",
        lambda: k_detect.DtmfConfig(100, -42, 10, 6, 6, 0.02, 0.8, 0.3),
        ValueError,
        "rate",
    ),
    (
        "adpcm spb channels 0",
        lambda: k_adpcm.ima_wav_samples_per_block(256, 0),
        ValueError,
        "channels",
    ),
    (
        "adpcm frames block_align 0",
        lambda: k_adpcm.ima_wav_frames(100, 1, 0),
        ValueError,
        "block_align",
    ),
    ("adpcm frames negative", lambda: k_adpcm.ima_wav_frames(-100, 1, 256), ValueError, "nbytes"),
    (
        "adpcm headers block_align 0",
        lambda: k_adpcm.ima_wav_check_headers(np.zeros(8, np.uint8), 1, 0),
        ValueError,
        "block_align",
    ),
    (
        "adpcm headers channels -1",
        lambda: k_adpcm.ima_wav_check_headers(np.zeros(8, np.uint8), -1, 256),
        ValueError,
        "channels",
    ),
    (
        "adpcm decode block_align 3",
        lambda: k_adpcm.ima_wav_decode(np.zeros(8, np.uint8), 1, 3, np.zeros(8, np.int16)),
        ValueError,
        "block_align",
    ),
    (
        "adpcm encode index",
        lambda: k_adpcm.ima_wav_encode(
            np.zeros(505, np.int16), 1, 256, np.array([99], np.int32), np.zeros(256, np.uint8)
        ),
        ValueError,
        "step index",
    ),
    (
        "resample filter block",
        lambda: k_resample.Filter(np.zeros((1, 8), np.float32), 1, 1, 2**40),
        ValueError,
        "block",
    ),
    (
        "resample filter p",
        lambda: k_resample.Filter(np.zeros((0, 8), np.float32), 0, 1),
        ValueError,
        "p must",
    ),
]


@pytest.mark.parametrize("call,exc,match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert not isinstance(info.value, (OverflowError, IndexError, MemoryError))
    assert str(info.value)


def test_valid_edges_still_work():
    """The limits are inclusive: the last slot, the largest state, zero counts."""
    m = dsp.MultiDetector(4)
    m.process(BLOCK[:1], rows=[3])
    assert m.current_digit(3) is None
    assert m.current_digit(np.int64(0)) is None
    assert codecs.ImaEncoder(state=(32767, 88)).state == (32767, 88)
    assert codecs.ImaEncoder(state=(np.int16(-32768), np.uint8(0))).state == (-32768, 0)
    assert codecs.OkiEncoder(state=(-2048, 48)).state == (-2048, 48)
    assert codecs.ImaEncoder().nbytes(0) == 0
    assert codecs.row_states(0).shape == (0, 3)
    assert recorder.Resampler(8000, 6000).count(0) == 0
    assert recorder.MultiResampler(4, 8000, 6000).counts(160, [np.uint64(3)]).shape == (1,)
    assert recorder.Resampler(np.float64(8000.0), 6000).out_rate == 6000


# --- out= overlapping the input ----------------------------------------------------------

SAMPLE_CODECS = [
    # name, function, input dtype, input bytes per item, output dtype
    ("alaw_encode", codecs.alaw_encode, np.int16, np.uint8),
    ("ulaw_encode", codecs.ulaw_encode, np.int16, np.uint8),
    ("u8_encode", codecs.u8_encode, np.int16, np.uint8),
    ("alaw_decode", codecs.alaw_decode, np.uint8, np.int16),
    ("ulaw_decode", codecs.ulaw_decode, np.uint8, np.int16),
    ("u8_decode", codecs.u8_decode, np.uint8, np.int16),
    ("alaw_to_ulaw", codecs.alaw_to_ulaw, np.uint8, np.uint8),
    ("ulaw_to_alaw", codecs.ulaw_to_alaw, np.uint8, np.uint8),
]


def _signal(dtype, n, seed=1):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, n).astype(np.uint8)
    return rng.integers(-32768, 32768, n).astype(np.int16)


@pytest.mark.parametrize(
    "name,func,in_dtype,out_dtype", SAMPLE_CODECS, ids=[c[0] for c in SAMPLE_CODECS]
)
@pytest.mark.parametrize("shift", [0, 1, 7, 64, -1, -8, -100])
def test_out_overlapping_input(name, func, in_dtype, out_dtype, shift):
    """out= at every offset around the input (shift in bytes; 0 = the same start): the
    result is that of a separate buffer."""
    n = 1000
    x = _signal(in_dtype, n)
    want = func(x.copy())
    in_bytes = n * np.dtype(in_dtype).itemsize
    out_bytes = n * np.dtype(out_dtype).itemsize
    pad = 256
    arena = np.zeros(pad + max(in_bytes, out_bytes) + 2 * pad, np.uint8)
    src = arena[pad : pad + in_bytes].view(in_dtype)
    src[:] = x
    o = pad + shift * np.dtype(out_dtype).itemsize
    dst = arena[o : o + out_bytes].view(out_dtype)
    assert np.shares_memory(src, dst)
    got = func(src, out=dst)
    assert np.shares_memory(got, dst)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shift", [0, 1, -3])
def test_out_overlapping_memoryview(shift):
    """The same through memoryviews of one bytearray (not numpy on either side)."""
    codes = bytes(_signal(np.uint8, 4000, seed=2))
    want = codecs.alaw_to_ulaw(codes)
    ba = bytearray(4100)
    ba[50:4050] = codes
    got = codecs.alaw_to_ulaw(
        memoryview(ba)[50:4050], out=memoryview(ba)[50 + shift : 4050 + shift]
    )
    np.testing.assert_array_equal(got, want)
    assert bytes(ba[50 + shift : 4050 + shift]) == want.tobytes()


def test_s16_in_place():
    """s16 encode / decode in place: the bytes of the samples are their own output."""
    x = _signal(np.int16, 999)
    buf = x.copy()
    got = codecs.s16_encode(buf, out=buf.view(np.uint8))
    np.testing.assert_array_equal(got, codecs.s16_encode(x))
    back = codecs.s16_decode(buf.view(np.uint8)[1 : 1 + 1996], out=buf[1:])
    np.testing.assert_array_equal(back, codecs.s16_decode(x.view(np.uint8)[1 : 1 + 1996].copy()))


@pytest.mark.parametrize("cls", [codecs.ImaEncoder, codecs.OkiEncoder])
@pytest.mark.parametrize("shift", [0, 3, -5])
def test_adpcm_encode_overlap(cls, shift):
    x = _signal(np.int16, 2001, seed=3) // 4
    want = cls().encode(x)
    arena = np.zeros(2 * 2001 + 64, np.uint8)
    src = arena[32 : 32 + 2 * 2001].view(np.int16)
    src[:] = x
    enc = cls()
    dst = arena[32 + shift : 32 + shift + enc.nbytes(len(x))]
    got = enc.encode(src, out=dst)
    np.testing.assert_array_equal(got, want)
    one = np.zeros(4002 + 64, np.uint8)
    s1 = one[32 : 32 + 4002].view(np.int16)
    s1[:] = x
    func = adpcm.ima_encode if cls is codecs.ImaEncoder else adpcm.oki_encode
    got1 = func(s1, out=one[32 + shift : 32 + shift + 1001])
    np.testing.assert_array_equal(got1, func(x))


@pytest.mark.parametrize("cls", [codecs.ImaDecoder, codecs.OkiDecoder])
@pytest.mark.parametrize("offset", [0, 1000, 1998, 2000])
def test_adpcm_decode_overlap(cls, offset):
    """The 1000 input bytes sit at byte 2000 of an arena; the 4000-byte output starts at
    ``offset`` (2000: the same start; 0: the input is the output's tail)."""
    data = _signal(np.uint8, 1000, seed=4)
    want = cls().decode(data)
    arena = np.zeros(6000, np.uint8)
    src = arena[2000:3000]
    src[:] = data
    dst = arena[offset : offset + 4000].view(np.int16)
    assert np.shares_memory(src, dst)
    np.testing.assert_array_equal(cls().decode(src, out=dst), want)
    arena[2000:3000] = data
    func = adpcm.ima_decode if cls is codecs.ImaDecoder else adpcm.oki_decode
    np.testing.assert_array_equal(func(src, out=dst), want)


@pytest.mark.parametrize("oki", [False, True])
def test_rows_overlap(oki):
    """Rows: pcm/out overlap is handled; a state array sharing memory with the input or
    out is refused (it is updated in place while they are read / written)."""
    enc = codecs.oki_encode_rows if oki else codecs.ima_encode_rows
    dec = codecs.oki_decode_rows if oki else codecs.ima_decode_rows
    x = _signal(np.int16, 4 * 160, seed=5).reshape(4, 160) // 8
    want = enc(x, codecs.row_states(4))
    buf = x.copy()
    out = buf.reshape(-1).view(np.uint8)[100:420].reshape(4, 80)
    assert np.shares_memory(buf, out)
    got = enc(buf, codecs.row_states(4), out=out)
    np.testing.assert_array_equal(got, want)
    wantd = dec(want, codecs.row_states(4))
    arena = np.zeros((4, 160), np.int16)
    src = arena.reshape(-1).view(np.uint8)[600:920].reshape(4, 80)
    src[:] = want
    gotd = dec(src, codecs.row_states(4), out=arena)
    np.testing.assert_array_equal(gotd, wantd)
    words = np.zeros(4 * 80 // 4 + 12, np.int32)
    state = words[-12:].reshape(4, 3)
    out = words.view(np.uint8)[-320:].reshape(4, 80)
    with pytest.raises(ValueError, match="state and out"):
        enc(x, state, out=out)
    pcm = np.zeros((4, 24), np.int16)
    with pytest.raises(ValueError, match="state and pcm"):
        enc(pcm, pcm.view(np.int32).reshape(-1)[:12].reshape(4, 3))
    data = np.zeros((4, 12), np.uint8)
    with pytest.raises(ValueError, match="state and data"):
        dec(data, data.view(np.int32).reshape(-1)[:12].reshape(4, 3))


# --- hammering every public callable in a child process -----------------------------------

HAMMER = r"""
import math, sys
import numpy as np
import recorder
from recorder import adpcm, codecs, dsp, resampling
from recorder._codecs import adpcm as ka, detect as kd, engine as ke, g711 as kg, resample as kr

PCM = (np.arange(320, dtype=np.int64) * 97 % 20000 - 10000).astype(np.int16)
CODES = np.arange(320, dtype=np.uint8)
BLOCK = np.tile(PCM[:160], (4, 1))
HOSTILE = [-1, 0, 7, 2**31, 2**63, 2**64, 2**70, -2**70, 1.5, math.inf, -math.inf, math.nan,
           True, None, "x", b"", b"abc", [], [2**70], [-1], [0, 0], np.int64(-1),
           np.uint64(2**64 - 1), np.zeros(0, np.int16), np.zeros((2, 3), np.int16),
           np.zeros(9, np.int16)[::2], np.zeros(3, np.float64), np.zeros((0, 5), np.uint8),
           np.zeros(4, np.int32), np.zeros((4, 3), np.int32), object()]

def job_bank():
    b = ke.Bank(4); b.open(0); b.start_job(0, 0, -1, -1, 0, 0, True, 16); b.push_zeros(0, 320)
    return b

import os
DEVNULL = os.open(os.devnull, os.O_WRONLY)
HDR, FIELDS = bytes(44), [(4, 4, 0, 36), (40, 4, 0, 0)]

def writing_bank():
    b = job_bank(); b.write_to(0, DEVNULL, HDR, 0, 44, FIELDS, 1, 1)
    return b

def mstate():
    return kd.MultiState(4, kd.DtmfConfig(8000, -42, 10, 6, 6, 0.02, 0.8, 0.3),
                         kd.SilenceConfig(8000, -42, 20))

def ev(n=4096):
    return np.empty(n, kd.EVENT_DTYPE)

# (name, factory of the callable, positional args, keyword args)
T = []
for f in (codecs.alaw_encode, codecs.ulaw_encode, codecs.s16_encode, codecs.u8_encode):
    T.append((f.__name__, lambda f=f: f, (PCM,), {"out": None}))
for f in (codecs.alaw_decode, codecs.ulaw_decode, codecs.s16_decode, codecs.u8_decode,
          codecs.alaw_to_ulaw, codecs.ulaw_to_alaw):
    T.append((f.__name__, lambda f=f: f, (CODES,), {"out": None}))
T += [
    ("get_encoder", lambda: codecs.get_encoder, ("alaw",), {}),
    ("get_decoder", lambda: codecs.get_decoder, ("s16bit",), {}),
    ("SampleEncoder", lambda: codecs.SampleEncoder, ("ulaw",), {}),
    ("SampleDecoder.decode", lambda: codecs.get_decoder("s16bit").decode, (CODES,), {}),
    ("row_states", lambda: codecs.row_states, (4,), {}),
]
for f in (adpcm.ima_encode, adpcm.oki_encode):
    T.append((f.__name__, lambda f=f: f, (PCM,), {"state": (0, 0), "out": None}))
for f in (adpcm.ima_decode, adpcm.oki_decode):
    T.append((f.__name__, lambda f=f: f, (CODES,), {"state": (0, 0), "out": None}))
for f in (adpcm.ima_encode_rows, adpcm.oki_encode_rows):
    T.append((f.__name__, lambda f=f: lambda x, s, **k: f(x, s if s is not None else codecs.row_states(4), **k),
              (BLOCK, None), {"out": None}))
for f in (adpcm.ima_decode_rows, adpcm.oki_decode_rows):
    T.append((f.__name__, lambda f=f: lambda x, s, **k: f(x, s if s is not None else codecs.row_states(4), **k),
              (BLOCK.view(np.uint8)[:, :160].copy(), None), {"out": None}))
for cls in (codecs.ImaEncoder, codecs.OkiEncoder):
    T += [(cls.__name__, lambda cls=cls: lambda p, i: cls(state=(p, i)), (0, 0), {}),
          (cls.__name__ + ".encode", lambda cls=cls: cls().encode, (PCM,), {"out": None}),
          (cls.__name__ + ".nbytes", lambda cls=cls: cls().nbytes, (10,), {}),
          (cls.__name__ + ".set_state", lambda cls=cls: cls().set_state, (0, 0), {}),
          (cls.__name__ + ".held", lambda cls=cls: lambda v: setattr(cls(), "held", v), (3,), {})]
for cls in (codecs.ImaDecoder, codecs.OkiDecoder):
    T += [(cls.__name__, lambda cls=cls: lambda p, i: cls(state=(p, i)), (0, 0), {}),
          (cls.__name__ + ".decode", lambda cls=cls: cls().decode, (CODES,), {"out": None})]
T += [
    ("OkiEncoder.encode_codes_into", lambda: codecs.OkiEncoder().encode_codes_into, (PCM, np.zeros(318, np.uint8)), {}),
    ("DtmfDetector", lambda: dsp.DtmfDetector, (8000,), {"min_level_dbm0": -42.0}),
    ("DtmfDetector.process", lambda: dsp.DtmfDetector().process, (PCM,), {}),
    ("SilenceDetector", lambda: dsp.SilenceDetector, (8000,), {"threshold_dbm0": -40.0, "min_audio_ms": 20.0}),
    ("SilenceDetector.process", lambda: dsp.SilenceDetector().process, (PCM,), {}),
    ("detect_dtmf", lambda: dsp.detect_dtmf, (PCM, 8000), {}),
    ("audio_segments", lambda: dsp.audio_segments, (PCM, 8000), {}),
    ("MultiDetector", lambda: dsp.MultiDetector, (4, 8000, True, True), {}),
    ("MultiDetector.process", lambda: dsp.MultiDetector(4).process, (BLOCK, [0, 1, 2, 3]), {}),
    ("MultiDetector.reset", lambda: dsp.MultiDetector(4).reset, ([1],), {}),
    ("MultiDetector.finish", lambda: dsp.MultiDetector(4).finish, ([1],), {}),
    ("MultiDetector.current_digit", lambda: dsp.MultiDetector(4).current_digit, (1,), {}),
    ("resample", lambda: recorder.resample, (PCM, 8000, 6000), {}),
    ("Resampler", lambda: recorder.Resampler, (8000, 11025), {}),
    ("Resampler.process", lambda: recorder.Resampler(8000, 6000).process, (PCM, False), {}),
    ("Resampler.count", lambda: recorder.Resampler(8000, 6000).count, (10, False), {}),
    ("MultiResampler", lambda: recorder.MultiResampler, (4, 8000, 6000), {}),
    ("MultiResampler.process", lambda: recorder.MultiResampler(4, 8000, 6000).process, (BLOCK, None, False), {}),
    ("MultiResampler.reset", lambda: recorder.MultiResampler(4, 8000, 6000).reset, ([1],), {}),
    ("MultiResampler.flush", lambda: recorder.MultiResampler(4, 8000, 6000).flush, ([1],), {}),
    ("MultiResampler.counts", lambda: recorder.MultiResampler(4, 8000, 6000).counts, (10, [1], False), {}),
    ("design", lambda: resampling.design, (8000, 6000), {}),
    ("ratio", lambda: resampling.ratio, (8000, 6000), {}),
    # compiled modules
    ("g711.alaw_encode", lambda: kg.alaw_encode, (PCM, np.zeros(320, np.uint8)), {}),
    ("g711.s16_decode", lambda: kg.s16_decode, (CODES, np.zeros(160, np.int16)), {}),
    ("adpcm.encode_rows", lambda: ka.encode_rows, (True, BLOCK, np.zeros((4, 3), np.int32), np.zeros((4, 80), np.uint8)), {}),
    ("adpcm.decode_rows", lambda: ka.decode_rows, (False, CODES.reshape(4, 80), np.zeros((4, 3), np.int32), np.zeros((4, 160), np.int16)), {}),
    ("adpcm.ima_wav_samples_per_block", lambda: ka.ima_wav_samples_per_block, (256, 1), {}),
    ("adpcm.ima_wav_frames", lambda: ka.ima_wav_frames, (300, 1, 256), {}),
    ("adpcm.ima_wav_check_headers", lambda: ka.ima_wav_check_headers, (np.zeros(512, np.uint8), 1, 256), {}),
    ("adpcm.ima_wav_decode", lambda: ka.ima_wav_decode, (np.zeros(512, np.uint8), 1, 256, np.zeros(1010, np.int16)), {}),
    ("adpcm.ima_wav_encode", lambda: ka.ima_wav_encode, (np.zeros(505, np.int16), 1, 256, np.zeros(1, np.int32), np.zeros(256, np.uint8)), {}),
    ("adpcm.ImaCoder.encode_into", lambda: ka.ImaCoder().encode_into, (PCM, np.zeros(160, np.uint8)), {}),
    ("adpcm.OkiCoder.decode_into", lambda: ka.OkiCoder().decode_into, (CODES, np.zeros(640, np.int16)), {}),
    ("adpcm.OkiCoder.encode_codes_into", lambda: ka.OkiCoder().encode_codes_into, (PCM, np.zeros(318, np.uint8)), {}),
    ("adpcm.oki_decode_stereo", lambda: ka.oki_decode_stereo, (CODES, np.zeros(4, np.int32), np.zeros(640, np.int16)), {}),
    ("detect.DtmfConfig", lambda: kd.DtmfConfig, (8000, -42, 10, 6, 6, 0.02, 0.8, 0.3), {}),
    ("detect.SilenceConfig", lambda: kd.SilenceConfig, (8000, -42, 20), {}),
    ("detect.MultiState", lambda: kd.MultiState, (4, None, kd.SilenceConfig(8000, -42, 20)), {}),
    ("detect.MultiState.process", lambda: mstate().process, (BLOCK, np.arange(4, dtype=np.int64), ev(), np.zeros(4, np.int64), np.zeros(4, np.uint8), np.zeros(4, np.float32)), {}),
    ("detect.MultiState.reset", lambda: mstate().reset, (np.array([1], np.int64),), {}),
    ("detect.MultiState.finish", lambda: mstate().finish, (np.array([1], np.int64),), {}),
    ("detect.MultiState.current", lambda: mstate().current, (1,), {}),
    ("detect.MultiState.silence_state", lambda: mstate().silence_state, (1,), {}),
    ("detect.MultiState.max_events", lambda: mstate().max_events, (4, 160), {}),
    ("resample.Filter", lambda: kr.Filter, (np.zeros((1, 8), np.float32), 1, 1, 1024), {}),
    ("engine.Bank", lambda: ke.Bank, (4, 4096, 8000), {}),
    ("engine.open", lambda: job_bank().open, (1,), {}),
    ("engine.close", lambda: job_bank().close, (0,), {}),
    ("engine.pending", lambda: job_bank().pending, (0,), {}),
    ("engine.media", lambda: job_bank().media, (0,), {}),
    ("engine.reset_media", lambda: job_bank().reset_media, (0,), {}),
    ("engine.push_s16", lambda: job_bank().push_s16, (0, PCM), {}),
    ("engine.push_g711", lambda: job_bank().push_g711, (0, CODES, False), {}),
    ("engine.push_zeros", lambda: job_bank().push_zeros, (0, 10), {}),
    ("engine.push_rows", lambda: job_bank().push_rows, (np.array([0], np.int64), np.array([1], np.int64), BLOCK[:1], 0), {}),
    ("engine.generation", lambda: job_bank().generation, (0,), {}),
    ("engine.set_accept", lambda: job_bank().set_accept, (0, True), {}),
    ("engine.ready", lambda: job_bank().ready, (160, np.array([0], np.int64)), {}),
    ("engine.take", lambda: job_bank().take, (np.array([0], np.int64), 160), {}),
    ("engine.start_job", lambda: job_bank().start_job, (0, 0, -1, -1, 0, 0, True, 16), {}),
    ("engine.feed", lambda: job_bank().feed, (np.array([0], np.int64), BLOCK[:1], np.zeros(1, np.int64), np.zeros(1, np.uint8), np.full(1, -1, np.int64), np.zeros(1, np.int32), np.full(1, -1, np.int64)), {}),
    ("engine.end_job", lambda: job_bank().end_job, (0, 1, True), {}),
    ("engine.barge", lambda: job_bank().barge, (0, 49, 0), {}),
    ("engine.take_out", lambda: job_bank().take_out, (0,), {}),
    ("engine.write_to", lambda: job_bank().write_to, (0, DEVNULL, HDR, 0, 44, FIELDS, 1, 1), {}),
    ("engine.end_output", lambda: writing_bank().end_output, (0, True), {}),
    ("engine.job", lambda: job_bank().job, (0,), {}),
    ("engine.active", lambda: job_bank().active, (0,), {}),
]

def KERNEL(name):
    return name.split(".")[0] in ("g711", "adpcm", "detect", "engine", "resample") \
        or name.endswith("_into")

calls = unexpected = 0
for name, factory, args, kwargs in T:
    factory()(*args, **kwargs)          # the base call must work
    slots = [(i, None) for i in range(len(args))] + [(None, k) for k in kwargs]
    for i, key in slots:
        for h in HOSTILE:
            a, kw = list(args), dict(kwargs)
            if key is None:
                a[i] = h
            else:
                kw[key] = h
            print("CALL", name, i if key is None else key, repr(h).replace("\n", "")[:40], flush=True)
            calls += 1
            try:
                factory()(*a, **kw)
            except (ValueError, TypeError):
                pass
            except BufferError:
                # Cython's typed memoryviews refuse a read-only buffer for an output with
                # BufferError; only the compiled kernels take raw outputs (the public
                # functions check out= themselves)
                if not KERNEL(name):
                    unexpected += 1
                    print("UNEXPECTED", name, i if key is None else key, "BufferError", flush=True)
            except BaseException as e:
                unexpected += 1
                print("UNEXPECTED", name, i if key is None else key, repr(h).replace("\n", "")[:40],
                      type(e).__name__, str(e)[:100], flush=True)
print("DONE", calls, "calls", unexpected, "unexpected", flush=True)
"""


def test_hammer_in_subprocess():
    """Every public callable (and every Python-visible entry point of the compiled
    modules), each argument in turn replaced by hostile values, in a child process: a
    segfault fails this test (with the call that crashed) instead of killing pytest."""
    r = subprocess.run([sys.executable, "-c", HAMMER], capture_output=True, text=True, timeout=600)
    lines = r.stdout.splitlines()
    tail = "\n".join(lines[-3:]) + "\n" + r.stderr[-2000:]
    assert r.returncode == 0, f"child died with {r.returncode} after:\n{tail}"
    bad = [ln for ln in lines if ln.startswith("UNEXPECTED")]
    assert not bad, "\n".join(bad[:40])
    assert lines[-1].startswith("DONE") and int(lines[-1].split()[1]) > 3000, tail
