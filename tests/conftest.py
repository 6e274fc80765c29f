"""Hypothesis profiles for the fuzz tests: reproducible by default, longer on demand.

``default``: a fixed seed per test (``derandomize``), no example database, no deadline (the shared machine
is slow at times), so a run of the suite always draws the same examples. ``long``
(``HYPOTHESIS_PROFILE=long``): 20 times the examples, still derandomized, for a longer fuzzing session.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("default", max_examples=100, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("long", max_examples=2_000, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
