"""Sphinx configuration for the callrecorder documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors) and
``sphinx-build -b doctest docs docs/_build/doctest`` (runs every example).  The package
must be installed (``pip install -e ".[docs]"``): autodoc imports it, compiled modules
included.
"""

from __future__ import annotations

import recorder

project = "callrecorder"
author = "callrecorder developers"
copyright = "callrecorder developers"
release = recorder.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
]

# numpydoc-style sections (Parameters, Returns, Raises, Examples) through napoleon
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True

# No network in the build (no intersphinx): references to numpy or Python objects that
# are not documented here render as plain text.
nitpicky = False

doctest_global_setup = """
import os, tempfile
import numpy as np
_docs_tmp = tempfile.TemporaryDirectory()
os.chdir(_docs_tmp.name)
os.environ["CALLRECORDER_MEDIA_ROOT"] = os.path.join(_docs_tmp.name, "media")
pcm = (np.sin(np.arange(8000) * 2 * np.pi * 1000 / 8000) * 8000).astype(np.int16)
"""
doctest_global_cleanup = """
os.chdir("/")
_docs_tmp.cleanup()
"""

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"callrecorder {release}"
