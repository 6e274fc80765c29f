"""Decayed item popularity: exponentially forgetting interaction weight per item, in event time.

Pure and O(1) per update; the ranked list is cached and rebuilt at most every `refresh_every` updates.
"""

from __future__ import annotations

__all__ = ["DecayedPopularity"]

import heapq
import math

# Scores are stored as weight * 2**((ts - reference) / half_life) so an update touches one item;
# when the exponent gets large every score is rescaled and the reference moves forward.
_RESCALE_AT = 256.0


class DecayedPopularity:
    """Popularity with a half-life (milliseconds of event time).

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
        self._scores: dict[str, float] = {}
        self._reference_ts: float | None = None
        self._updates_since_refresh = 0
        self._ranked: list[tuple[str, float]] = []
        self._max = 0.0

    def __len__(self) -> int:
        return len(self._scores)

    def add(self, item_id: str) -> None:
        """Make an item known (ranked last until it gets interactions)."""
        if self._scores.setdefault(item_id, 0.0) == 0.0:
            self._updates_since_refresh += 1

    def learn_one(self, item_id: str, weight: float, ts: int) -> None:
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

    def score(self, item_id: str) -> float:
        """Relative popularity in [0, 1] (1 = the most popular item now)."""
        return self._scores.get(item_id, 0.0) / self._max if self._max > 0 else 0.0

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k most popular items with their relative score, best first."""
        stale = self._updates_since_refresh >= self.refresh_every or len(self._ranked) < min(k, len(self))
        if stale:
            depth = max(k, 2 * len(self._ranked), 500)
            best = heapq.nlargest(depth, self._scores.items(), key=lambda kv: (kv[1], kv[0]))
            scale = self._max or 1.0
            self._ranked = [(item, value / scale) for item, value in best]
            self._updates_since_refresh = 0
        return self._ranked[:k]
