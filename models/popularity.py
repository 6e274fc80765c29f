"""Decayed item popularity: exponentially forgetting interaction weight per item, in event time.

Pure and O(1) per update; the ranked list is cached and rebuilt at most every `refresh_every` updates.
"""

from __future__ import annotations

__all__ = ["DecayedPopularity"]

import heapq
import math
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

K = TypeVar("K", bound=Hashable)

# Scores are stored as weight * 2**((ts - reference) / half_life) so an update touches one item;
# when the exponent gets large every score is rescaled and the reference moves forward.
_RESCALE_AT = 256.0


class DecayedPopularity(Generic[K]):
    """Popularity with a half-life (milliseconds of event time), keyed by item id (any hashable).

    >>> pop = DecayedPopularity(half_life_ms=1000)
    >>> pop.learn_one("a", 1.0, ts=0); pop.learn_one("b", 1.0, ts=1000)
    >>> round(pop.score("a") / pop.score("b"), 3)
    0.5
    >>> pop.top(1)
    [('b', 1.0)]
    """

    def __init__(self, half_life_ms: float = 6 * 3600 * 1000, refresh_every: int = 100) -> None:
        self.half_life_ms = half_life_ms
        self.refresh_every = refresh_every
        self._scores: dict[K, float] = {}
        self._reference_ts: float | None = None
        self._updates_since_refresh = 0
        self._ranked: list[tuple[K, float]] = []
        self._ranked_ids: npt.NDArray[np.int64] | None = None
        self._max = 0.0

    def __len__(self) -> int:
        return len(self._scores)

    def add(self, item_id: K) -> None:
        """Make an item known (ranked last until it gets interactions)."""
        if self._scores.setdefault(item_id, 0.0) == 0.0:
            self._updates_since_refresh += 1

    def learn_one(self, item_id: K, weight: float, ts: int) -> None:
        if self._reference_ts is None:
            self._reference_ts = float(ts)
        exponent = (ts - self._reference_ts) / self.half_life_ms
        if exponent > _RESCALE_AT:
            self._rescale(exponent)
            exponent = 0.0
        value = self._scores.get(item_id, 0.0) + weight * math.pow(2.0, exponent)
        self._scores[item_id] = value
        self._max = max(self._max, value)
        self._updates_since_refresh += 1

    def _rescale(self, exponent: float) -> None:
        factor = math.pow(2.0, -exponent)
        self._scores = {item: score * factor for item, score in self._scores.items()}
        self._max *= factor
        assert self._reference_ts is not None
        self._reference_ts += exponent * self.half_life_ms
        self._ranked = []
        self._ranked_ids = None

    def score(self, item_id: K) -> float:
        """Relative popularity in [0, 1] (1 = the most popular item now)."""
        return self._scores.get(item_id, 0.0) / self._max if self._max > 0 else 0.0

    def score_many(self, items: Iterable[K]) -> list[float]:
        """`score` of each item, in order."""
        scale = 1.0 / self._max if self._max > 0 else 0.0
        get = self._scores.get
        return [get(item, 0.0) * scale for item in items]

    def top(self, k: int) -> list[tuple[K, float]]:
        """The k most popular items with their relative score, best first."""
        stale = self._updates_since_refresh >= self.refresh_every or len(self._ranked) < min(k, len(self))
        if stale:
            depth = max(k, 2 * len(self._ranked), 500)
            best = heapq.nlargest(depth, self._scores.items(), key=lambda kv: (kv[1], kv[0]))
            scale = self._max or 1.0
            self._ranked = [(item, value / scale) for item, value in best]
            self._ranked_ids = None
            self._updates_since_refresh = 0
        return self._ranked[:k]

    def top_ids(self, k: int) -> npt.NDArray[np.int64]:
        """The k most popular items as an array, best first (integer item ids only).

        >>> pop = DecayedPopularity(half_life_ms=1000)
        >>> pop.learn_one(7, 1.0, ts=0); pop.learn_one(3, 2.0, ts=0)
        >>> pop.top_ids(5).tolist()
        [3, 7]
        """
        top = self.top(k)
        if self._ranked_ids is None or len(self._ranked_ids) < len(top):
            self._ranked_ids = np.array([item for item, _ in self._ranked], dtype=np.int64)
        return self._ranked_ids[:k]
