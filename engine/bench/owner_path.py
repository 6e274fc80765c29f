"""The owner's path timed in-process (`streams.owner_path`), run in a process of its own.

The engine does not import the worker's code; like the bench's workers, the measurement runs as
``python -m streams.owner_path`` with the bench's settings in its environment.
"""

from __future__ import annotations

__all__ = ["owner_phases_us", "owner_us_per_event"]

import os
import subprocess
import sys
from typing import Any

import orjson

from engine.ops.settings import Settings
from schemas.errors import StackError


def owner_us_per_event(
    settings: Settings, *, users: int, items: int, events: int, timeout_s: float = 600.0
) -> float:
    """CPU microseconds per event of the owner's path over ``events`` of the bench's stream of ``users``
    and ``items`` (the second half timed), on ``settings``' stack."""
    found = _run(settings, [str(users), str(items), str(events)], timeout_s)
    return float(found["us_per_event"])


def owner_phases_us(
    settings: Settings, *, users: int, items: int, events: int, timeout_s: float = 600.0
) -> dict[str, float]:
    """`owner_us_per_event`'s run with each phase timed (`streams.phases`): microseconds per event of
    each, the rest, and the whole (``total``, timers included)."""
    found = _run(settings, [str(users), str(items), str(events), "--phases"], timeout_s)
    return {**found["phases_us"], "total": found["us_per_event"]}


def _run(settings: Settings, args: list[str], timeout_s: float) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(PERSONALIZE_TOP_N=str(settings.top_n), PERSONALIZE_STACK_DIR=str(settings.stack_dir))
    command = [sys.executable, "-m", "streams.owner_path", *args]
    done = subprocess.run(command, env=env, capture_output=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise StackError(
            f"the owner's path measurement failed: {done.stderr.decode(errors='replace')[-2000:]}"
        )
    found: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return found
