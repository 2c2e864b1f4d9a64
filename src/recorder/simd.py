"""The one SIMD switch of every compiled kernel (G.711, ADPCM, resampler, DTMF, engine).

Each kernel carries portable code and SIMD variants chosen at run time; all variants give
the same bits.  By default every kernel runs the best variant the CPU has.
:func:`set_simd_level` caps all of them at once (for tests that compare the variants,
and for measuring them); :func:`simd_level` tells the level in use.

Levels, lowest first (:data:`LEVELS`), and what each kernel runs at a level:

======== ================ ===================== ============ ================ ======================
level    G.711 coder      ADPCM search coder    resampler    DTMF, 1 channel  DTMF + silence, many
======== ================ ===================== ============ ================ ======================
``c``    table loops      portable              portable C   generic build    generic build, by 2
``sse2`` table loops      SSE2                  SSE2         generic build    8 channels, SSE2
``ssse3`` SSSE3           SSE2                  SSE2         generic build    8 channels, SSE2
``avx``  SSSE3            SSE2                  SSE2         AVX build        8 channels, AVX
``avx2`` AVX2             SSE2 + AVX2 scorer    AVX2         AVX build        8 channels, AVX + AVX2
======== ================ ===================== ============ ================ ======================

"Many" is :class:`recorder.dsp.MultiDetector` (and the engine): groups of 8 rows at the
same 10 ms block position run one Goertzel filter of 8 channels per vector.
"""

from __future__ import annotations

import importlib

__all__ = ["LEVELS", "set_simd_level", "simd_level"]

#: The SIMD levels, lowest first (their numbers are the CR_ISA_* of ``cpu_isa.h``).
LEVELS = ("c", "sse2", "ssse3", "avx", "avx2")

# Every compiled module that holds a copy of the level (cpu_isa.h is static per module).
_KERNELS = ("g711", "adpcm", "resample", "detect", "engine")


def _kernel(name: str):
    return importlib.import_module(f"recorder._codecs.{name}")


def simd_level() -> str:
    """The SIMD level in use.

    Returns
    -------
    str
        One of :data:`LEVELS`: the best this CPU runs, unless :func:`set_simd_level`
        capped it lower.

    Examples
    --------
    >>> import recorder
    >>> recorder.simd_level() in recorder.simd.LEVELS
    True
    """
    return LEVELS[_kernel("g711").isa()]


def set_simd_level(level: str | None) -> str:
    """Run every compiled kernel at most at SIMD ``level``.

    Parameters
    ----------
    level : str or None
        One of :data:`LEVELS` (``'c'``, ``'sse2'``, ``'ssse3'``, ``'avx'``, ``'avx2'``),
        or None for the best this CPU runs (the default at import).  A level above what
        the CPU runs is capped to it.

    Returns
    -------
    str
        The level now in use (the same for every kernel).

    Raises
    ------
    ValueError
        If ``level`` is not one of :data:`LEVELS` or None.

    Examples
    --------
    >>> import recorder
    >>> recorder.set_simd_level("c")
    'c'
    >>> recorder.set_simd_level(None) == recorder.simd_level()
    True
    """
    if level is None:
        number = -1
    elif isinstance(level, str) and level in LEVELS:
        number = LEVELS.index(level)
    else:
        raise ValueError(
            f"unknown SIMD level {level!r}; expected one of {', '.join(LEVELS)} "
            "or None (the best this CPU runs)"
        )
    used = {_kernel(name).set_isa(number) for name in _KERNELS}
    assert len(used) == 1, used  # every module reads the same CPU
    return LEVELS[used.pop()]
