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
# -march=native here.  Release builds carry no debug information (the wheel is a fifth of
# the size); CALLRECORDER_DEBUG=1 builds unoptimised with symbols, CALLRECORDER_SYMBOLS=1
# optimised with symbols (for profiling).
if os.environ.get("CALLRECORDER_DEBUG"):
    COMPILE_ARGS, LINK_ARGS = ["-O0", "-g"], []
elif os.environ.get("CALLRECORDER_SYMBOLS"):
    COMPILE_ARGS, LINK_ARGS = ["-O3", "-g", "-fno-strict-aliasing"], []
else:
    COMPILE_ARGS, LINK_ARGS = ["-O3", "-g0", "-fno-strict-aliasing"], ["-Wl,--strip-debug"]
# No fused multiply-add contraction: float results (the resampler) must not depend on
# the target CPU or on how the compiler schedules a loop.
COMPILE_ARGS.append("-ffp-contract=off")

extensions = [
    Extension(
        f"recorder._codecs.{os.path.splitext(os.path.basename(path))[0]}",
        [path],
        extra_compile_args=COMPILE_ARGS,
        extra_link_args=LINK_ARGS,
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
