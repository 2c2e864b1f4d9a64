"""Turning what users pass (bytes, bytearray, memoryview, array.array, numpy arrays) into
the C-contiguous numpy arrays the compiled kernels take, with errors that say what is
allowed.  Every public function of the package goes through these helpers."""

from __future__ import annotations

import io
import math
import os
import sys
from typing import IO, Any

import numpy as np

_BYTE_FORMATS = frozenset("bBc")
_INT16_FORMATS = frozenset(("h", "=h", "<h" if sys.byteorder == "little" else ">h", "@h"))

BUFFER_KINDS = "bytes, bytearray, memoryview, array.array or numpy array"


def _memoryview(obj, name: str) -> memoryview:
    if isinstance(obj, (str, list, tuple)) or obj is None or isinstance(obj, (int, float)):
        raise TypeError(f"{name} must be a buffer ({BUFFER_KINDS}), not {type(obj).__name__}")
    try:
        return memoryview(obj)
    except TypeError:
        raise TypeError(
            f"{name} must be a buffer ({BUFFER_KINDS}), not {type(obj).__name__}"
        ) from None


def as_int16(obj, name: str = "pcm") -> np.ndarray:
    """Samples as a C-contiguous native int16 array (a view when possible).

    numpy arrays must have an int16 dtype (any byte order, any layout: copied if needed);
    other buffers may hold int16 items or raw bytes (native byte order, even length).
    N-dimensional arrays keep their shape.
    """
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind != "i" or obj.dtype.itemsize != 2:
            raise TypeError(f"{name} must hold int16 samples, got dtype {obj.dtype}")
        return np.ascontiguousarray(np.atleast_1d(obj), dtype=np.int16)
    mv = _memoryview(obj, name)
    if mv.format in _INT16_FORMATS:
        return np.ascontiguousarray(np.asarray(mv).reshape(-1), dtype=np.int16)
    if mv.format in _BYTE_FORMATS or mv.itemsize == 1:
        raw = np.frombuffer(mv if mv.c_contiguous else mv.tobytes(), dtype=np.uint8)
        if raw.size % 2:
            raise ValueError(f"{name} holds {raw.size} bytes: 16-bit samples need an even count")
        return raw.view(np.int16)
    raise TypeError(f"{name} must hold int16 samples or raw bytes, got buffer format {mv.format!r}")


def as_uint8(obj, name: str = "data") -> np.ndarray:
    """Coded bytes as a C-contiguous uint8 array (a view when possible)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.itemsize != 1 or obj.dtype.kind not in "uiSVb":
            raise TypeError(f"{name} must hold bytes (uint8), got dtype {obj.dtype}")
        return np.ascontiguousarray(np.atleast_1d(obj)).view(np.uint8)
    mv = _memoryview(obj, name)
    if mv.itemsize != 1:
        raise TypeError(f"{name} must hold bytes, got buffer format {mv.format!r}")
    return np.frombuffer(mv if mv.c_contiguous else mv.tobytes(), dtype=np.uint8)


def out_array(out, shape, dtype, name: str = "out") -> np.ndarray:
    """A fresh array, or ``out`` viewed as ``dtype`` with exactly ``shape``'s size."""
    dtype = np.dtype(dtype)
    if out is None:
        return np.empty(shape, dtype=dtype)
    if isinstance(out, np.ndarray):
        arr = out
    else:
        mv = _memoryview(out, name)
        if mv.readonly:
            raise ValueError(f"{name} must be writable")
        arr = np.asarray(mv)
    if not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not arr.flags.writeable:
        raise ValueError(f"{name} must be writable")
    if arr.dtype != dtype:
        if arr.dtype.itemsize == 1 and arr.dtype.kind in "uib":
            arr = arr.view(np.uint8).reshape(-1)
            if arr.size % dtype.itemsize:
                raise ValueError(f"{name} has {arr.size} bytes, not a whole number of {dtype}")
            arr = arr.view(dtype)
        else:
            raise TypeError(f"{name} must have dtype {dtype}, got {arr.dtype}")
    want = int(np.prod(shape, dtype=np.int64))
    if arr.size != want:
        raise ValueError(
            f"{name} has room for {arr.size} items of {dtype}, expected exactly {want}"
        )
    return arr.reshape(shape)


#: Most independent channels (slots) one multi-channel object holds: a bank's memory
#: grows with it (a resampler slot takes a few kB), so a mistyped count must not turn
#: into gigabytes of allocation.
MAX_CHANNELS = 1_000_000
#: Largest sample count the counting functions take (about 1,100 years at 8000 Hz): keeps
#: their int64 arithmetic exact.
MAX_SAMPLES = 1 << 48


def integer(value, name: str, lo: int, hi: int) -> int:
    """``value`` as a Python int in ``lo..hi``.  TypeError for anything but an integer
    (bool, float, str, None...), ValueError outside the range: never OverflowError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return value


def slot_array(rows, channels: int, name: str = "rows") -> np.ndarray:
    """Slot numbers as a C-contiguous 1-D int64 array, each in ``0..channels-1``.

    Any integer sequence or array; TypeError for non-integers, ValueError naming the first
    value out of range (huge Python ints and uint64 values included: no wrap-around)."""
    r = np.asarray(rows)
    if r.size == 0:
        return np.zeros(0, np.int64)
    if r.dtype.kind == "O":  # Python ints beyond int64
        items = r.reshape(-1).tolist()
        for v in items:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be integer slot numbers, got {type(v).__name__}")
            if not 0 <= v < channels:
                raise ValueError(f"{name}: slot {v} out of range 0..{channels - 1}")
        return np.array(items, np.int64)
    if r.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer slot numbers, got dtype {r.dtype}")
    r = r.reshape(-1)
    bad = (r < 0) | (r >= channels)
    if bad.any():
        raise ValueError(f"{name}: slot {r[np.argmax(bad)]} out of range 0..{channels - 1}")
    return np.ascontiguousarray(r, dtype=np.int64)


def unaliased(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``src``, or a copy of it when it may share memory with ``dst`` (an ``out=`` buffer
    overlapping the input): the kernels then read the input as it was, so ``out=`` may be
    the input itself or overlap it anywhere."""
    return src.copy() if np.may_share_memory(src, dst) else src


def aligned_copy(a, dtype, align: int = 64) -> np.ndarray:
    """A C-contiguous copy of ``a`` as ``dtype`` whose data starts at a multiple of
    ``align`` bytes (a power of two): tables that vector loops read in whole vectors
    (the resampler's taps) then never have a load straddle two cache lines."""
    src = np.asarray(a, dtype=dtype)
    raw = np.empty(src.nbytes + align, np.uint8)
    start = -raw.ctypes.data % align
    out = raw[start : start + src.nbytes].view(src.dtype).reshape(src.shape)
    out[...] = src
    return out


def disjoint(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """ValueError when two arrays that are both written (or one written while the other
    is read as state) may share memory."""
    if np.may_share_memory(a, b):
        raise ValueError(f"{what} must not share memory")


#: Highest sample rate any rate check takes by default (Hz).
MAX_RATE = 1_000_000


def sample_rate(
    value: Any,
    name: str = "rate",
    lo: int = 1,
    hi: int | None = MAX_RATE,
    *,
    multiple: int = 1,
    whole_floats: bool = False,
) -> int:
    """``value`` as a sample rate in Hz: a Python int in ``lo..hi`` (and a multiple of
    ``multiple``; ``hi`` None: no upper bound).  The one rate check of the package (wav, dsp, resampling).

    TypeError for anything but an integer (bool, str, None...; floats too unless
    ``whole_floats``, which takes a float holding a whole number), ValueError naming
    ``name`` and the allowed range otherwise: never OverflowError.
    """
    if whole_floats and isinstance(value, (float, np.floating)):
        if not (math.isfinite(value) and value == int(value)):
            raise ValueError(f"{name} must be a whole number of Hz, got {value!r}")
        rate = int(value)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        rate = int(value)
    else:
        kind = "a whole number of Hz" if whole_floats else "an int (Hz)"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if rate < lo or (hi is not None and rate > hi) or rate % multiple:
        step = f"a multiple of {multiple} Hz " if multiple > 1 else ""
        span = f"between {lo} and {hi} Hz" if hi is not None else f"at least {lo} Hz"
        raise ValueError(f"{name} must be {step}{span}, got {rate}")
    return rate


def open_binary(
    target: Any, mode: str, error: type[Exception] = ValueError, buffering: int = -1
) -> tuple[IO[bytes], bool]:
    """``(file, owned)``: ``target`` itself when it is a binary file object (``owned``
    False: the caller leaves it open), else the path ``target`` opened in ``mode``
    (``'rb'``, ``'wb'``, ``'w+b'``, ``'r+b'``; ``owned`` True).  The one path-or-file
    opening of the package (wav, vox).

    A file object is one with ``read`` (modes with ``r``) or ``write`` (the others).
    TypeError for bytes (pass ``io.BytesIO``), a text file or anything else that is not
    a path; ``error`` (a ValueError subclass, e.g. WavError) for a directory.  A missing
    file raises FileNotFoundError as ``open`` does.
    """
    if isinstance(target, (bytes, bytearray, memoryview)):
        raise TypeError("pass a path or a binary file object, not bytes (wrap them in io.BytesIO)")
    if hasattr(target, "read" if "r" in mode else "write"):
        if isinstance(target, io.TextIOBase):
            raise TypeError(
                "pass a binary file object, not a text file (open it with 'b' in the mode)"
            )
        return target, False
    try:
        path = os.fspath(target)
    except TypeError:
        raise TypeError(
            f"pass a path or a binary file object, not {type(target).__name__}"
        ) from None
    try:
        return open(path, mode, buffering=buffering), True
    except IsADirectoryError:
        raise error(f"{os.fsdecode(path)}: is a directory") from None
