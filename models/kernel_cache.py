"""Where numba keeps the compiled kernels: one directory per version of the models' sources.

Numba's own cache (``cache=True``) is checked against the source file of each compiled function only.
A kernel inlines what it calls from other files (`models.ranking_kernels.rank` calls into
`models.kernels`, `models.focus` and `models.taste`), so after an edit or a ``git pull`` that changes
only a callee's file, the caller would load its stale machine code and run the old callee. Keying the
cache directory by a digest of every ``models/*.py`` makes any change compile everything afresh
(once: ``make install`` warms the kernels up), and the directories of other versions are removed. An
explicit ``NUMBA_CACHE_DIR`` (the Docker image's, built from fixed sources) is kept.
"""

from __future__ import annotations

__all__ = ["configure", "directory"]

import hashlib
import os
import shutil
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def directory(sources: Path = _HERE) -> Path:
    """The cache directory for the current contents of ``sources``' Python files.

    >>> directory().name.startswith("numba-"), directory().parent.name
    (True, '__pycache__')
    """
    digest = hashlib.sha256()
    for path in sorted(sources.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return sources / "__pycache__" / f"numba-{digest.hexdigest()[:16]}"


def configure(sources: Path = _HERE) -> None:
    """Point numba at `directory` unless ``NUMBA_CACHE_DIR`` is set, and remove the directories of other
    versions of the sources; before any kernel is compiled."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    current = directory(sources)
    for other in current.parent.glob("numba-*"):
        if other != current:
            shutil.rmtree(other, ignore_errors=True)
    path = str(current)
    os.environ["NUMBA_CACHE_DIR"] = path
    if "numba" in sys.modules:  # numba read its configuration when imported: set it there too
        from numba.core import config

        config.CACHE_DIR = path  # type: ignore[attr-defined]
