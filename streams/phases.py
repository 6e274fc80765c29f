"""Where the owner's path spends its CPU, phase by phase: thread-CPU timers around the pipeline's and
the model's calls, for `streams.owner_path` (``--phases``; `personalize bench --workers --phases`).

A diagnostic: each timer costs ~0.3 us, so it runs apart from the measurement without them. The phases
do not nest, and what none of them holds (the profile, trending, deduplication, the changelog's and the
pipeline's own bookkeeping) is reported as ``rest``.

>>> class Model:
...     def learn_one(self, n):
...         return sum(range(n))
>>> timers = Timers({"learn": (Model, "learn_one")})
>>> with timers:
...     Model().learn_one(10_000)
49995000
>>> Model.learn_one(Model(), 3), timers.calls["learn"], timers.seconds["learn"] > 0
(3, 1, True)
"""

from __future__ import annotations

__all__ = ["OWNER_PHASES", "Timers"]

import functools
import inspect
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from engine.store.redis_store import RedisStore
from models.recommender import HybridRecommender
from streams import explaining
from streams.pipeline import Pipeline
from streams.quality import Quality

#: Phase -> (the class or module, the name of the call it times).
OWNER_PHASES: Mapping[str, tuple[Any, str]] = {
    "parse": (Pipeline, "prepare"),
    "quality": (Quality, "before_learn"),
    "learn": (HybridRecommender, "learn_one"),
    "rank": (HybridRecommender, "recommend"),
    "explain": (explaining, "stored_reasons"),
    "write": (RedisStore, "publish_lists"),
}


class Timers:
    """While entered, each call of ``phases`` counts its thread CPU seconds; restored on exit."""

    def __init__(self, phases: Mapping[str, tuple[Any, str]]) -> None:
        self.phases = phases
        self.seconds = dict.fromkeys(phases, 0.0)
        self.calls = dict.fromkeys(phases, 0)
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> Timers:
        for phase, (owner, name) in self.phases.items():
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            self._saved.append((owner, name, original))
            setattr(owner, name, self._timed(phase, original))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def _timed(self, phase: str, call: Any) -> Any:
        seconds, calls, clock = self.seconds, self.calls, time.thread_time

        if inspect.iscoroutinefunction(call):

            @functools.wraps(call)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = clock()
                try:
                    return await call(*args, **kwargs)
                finally:
                    seconds[phase] += clock() - started
                    calls[phase] += 1

            return timed_async

        @functools.wraps(call)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return call(*args, **kwargs)
            finally:
                seconds[phase] += clock() - started
                calls[phase] += 1

        return timed

    def us_per_event(self, events: int, total_us: float) -> dict[str, float]:
        """Each phase's microseconds per event over ``events``, and the ``rest`` of ``total_us`` (the
        whole's microseconds per event)."""
        out = {phase: spent / max(1, events) * 1e6 for phase, spent in self.seconds.items()}
        out["rest"] = max(0.0, total_us - sum(out.values()))
        return out
