"""Compiled kernels of callrecorder (Cython).

These modules are internal: use the public wrappers in :mod:`recorder` (``recorder.codecs``,
``recorder.wav``, ``recorder.dsp``), which validate arguments and carry the documentation.
"""
