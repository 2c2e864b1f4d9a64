"""Extension modules only; all metadata lives in pyproject.toml.

The Cython sources live in src/_codecs/ and are compiled as ``recorder._codecs.<name>``:
CPython has a built-in module called ``_codecs``, so that directory must never become a
top-level package of its own.
"""

import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

# Portable optimisation only: wheels must run on any x86-64 (SSE2 baseline), so no
# -march=native here.  Set CALLRECORDER_DEBUG=1 for an unoptimised build.
if os.environ.get("CALLRECORDER_DEBUG"):
    COMPILE_ARGS = ["-O0", "-g"]
else:
    COMPILE_ARGS = ["-O3", "-fno-strict-aliasing"]
# No fused multiply-add contraction: float results (the resampler) must not depend on
# the target CPU or on how the compiler schedules a loop.
COMPILE_ARGS.append("-ffp-contract=off")

extensions = [
    Extension(
        f"recorder._codecs.{os.path.splitext(os.path.basename(path))[0]}",
        [path],
        extra_compile_args=COMPILE_ARGS,
        include_dirs=[os.path.join("src", "_codecs")],
    )
    for path in sorted(glob.glob(os.path.join("src", "_codecs", "*.pyx")))
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=[os.path.join("src", "_codecs")],
        compiler_directives={"language_level": "3"},
    ),
)
