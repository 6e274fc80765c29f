"""Decayed item popularity: exponentially forgetting interaction weight per item, in event time.

Pure and O(1) per update; the ranked list is cached and rebuilt at most every `refresh_every` updates.
"""

from __future__ import annotations

__all__ = ["DecayedPopularity", "ItemPopularity"]

import math

import numpy as np
import numpy.typing as npt

from models.arrays import Vocabulary, grown

# Scores are stored as weight * 2**((ts - reference) / half_life) so an update touches one item;
# when the exponent gets large every score is rescaled and the reference moves forward.
_RESCALE_AT = 256.0
#: Below this the largest score counts as none: 1 / a subnormal float overflows (an event of value
#: 5e-324 once made every later ranking divide by it, found by fuzzing the worker).
_TINY = 1e-300


class DecayedPopularity:
    """Popularity with a half-life (milliseconds of event time), keyed by item id.

    `ItemPopularity` over the ids of a vocabulary; ties rank the item seen first first.

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
        self._ids = Vocabulary()
        self._items = ItemPopularity(half_life_ms, refresh_every)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item_id: str) -> None:
        """Make an item known (ranked last until it gets interactions)."""
        self._items.add(self._ids.id(item_id))

    def learn_one(self, item_id: str, weight: float, ts: int) -> None:
        self._items.learn_one(self._ids.id(item_id), weight, ts)

    def score(self, item_id: str) -> float:
        """Relative popularity in [0, 1] (1 = the most popular item now)."""
        found = self._ids.get(item_id)
        return 0.0 if found < 0 else float(self._items.scores(np.array([found]))[0])

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k most popular items with their relative score, best first."""
        return [(self._ids.names[item], score) for item, score in self._items.top(k)]


class ItemPopularity:
    """`DecayedPopularity` over integer item ids, held in numpy arrays for vectorised reads.

    Only items added (or learned) are ranked; the arrays are as long as the largest id, but a
    re-ranking reads only the items that ever had interactions (and a few without), so its cost
    follows the active items, not the catalog.

    >>> pop = ItemPopularity(half_life_ms=1000)
    >>> pop.learn_one(3, 1.0, ts=0); pop.learn_one(1, 1.0, ts=1000); pop.add(5)
    >>> pop.scores(np.array([1, 3, 7])).tolist(), pop.top_ids(5).tolist()
    ([1.0, 0.5, 0.0], [1, 3, 5])
    """

    def __init__(self, half_life_ms: float = 6 * 3600 * 1000, refresh_every: int = 100) -> None:
        self.half_life_ms = half_life_ms
        self.refresh_every = refresh_every
        #: -1 marks ids that are not items of this list.
        self._scores = np.full(64, -1.0)
        self._known = 0
        self._reference_ts: float | None = None
        self._max = 0.0
        self._updates_since_refresh = 0
        self._ranked = np.zeros(0, dtype=np.int64)
        self._depth = 500
        #: Items that ever had a positive score, and the first items added (to fill a short list).
        self._active: list[int] = []
        self._first: list[int] = []

    def add(self, item: int) -> None:
        """Make an item known (ranked last until it gets interactions)."""
        if item >= len(self._scores):
            self._scores = grown(self._scores, item + 1, fill=-1.0)
        if self._scores[item] < 0:
            self._scores[item] = 0.0
            self._known += 1
            self._updates_since_refresh += 1
            if len(self._first) < 2 * self._depth:
                self._first.append(item)

    def learn_one(self, item: int, weight: float, ts: int) -> None:
        self.add(item)
        if self._reference_ts is None:
            self._reference_ts = float(ts)
        exponent = (ts - self._reference_ts) / self.half_life_ms
        if exponent > _RESCALE_AT:
            factor = math.pow(2.0, -exponent)
            np.multiply(self._scores, factor, out=self._scores, where=self._scores > 0)
            self._max *= factor
            self._reference_ts += exponent * self.half_life_ms
            exponent = 0.0
        before = self._scores[item]
        value = before + weight * math.pow(2.0, exponent)
        if before == 0.0 and value > 0.0:
            self._active.append(item)
        self._scores[item] = value
        self._max = max(self._max, value)
        self._updates_since_refresh += 1

    @property
    def reference_ts(self) -> float | None:
        """The event time at which a stored value equals its weight (moves forward at each rescale)."""
        return self._reference_ts

    def raw(self) -> tuple[npt.NDArray[np.float64], float]:
        """The stored values (-1: not an item of this list) and the factor to relative popularity."""
        return self._scores, 1.0 / self._max if self._max > _TINY else 0.0

    def scores(self, items: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Relative popularity in [0, 1] of each item (1 = the most popular item now)."""
        inside = np.minimum(items, len(self._scores) - 1)
        values = np.where(items < len(self._scores), np.maximum(self._scores[inside], 0.0), 0.0)
        return values / self._max if self._max > _TINY else np.zeros_like(values)

    @property
    def known(self) -> int:
        """How many items the list ranks."""
        return self._known

    @property
    def stale(self) -> bool:
        """Whether the next `top_ids` re-ranks (enough updates since the last ranking)."""
        return self._updates_since_refresh >= self.refresh_every

    def top_ids(self, k: int) -> npt.NDArray[np.int64]:
        """The k most popular items, best first (ties: lower id first); refreshed every few updates."""
        if self._updates_since_refresh >= self.refresh_every or len(self._ranked) < min(k, self._known):
            # As deep as the deepest list ever asked for (not doubling at every refresh).
            self._depth = max(self._depth, k)
            depth = min(self._depth, self._known)
            values = self._scores
            pool = np.array(self._active, dtype=np.int64)
            if pool.size < depth:
                # Not enough active items: fill with items without interactions, lowest ids first.
                first = np.array(self._first, dtype=np.int64)
                spare = np.sort(first[values[first] == 0.0])
                if pool.size + spare.size < depth:  # the first ones took interactions: scan them all
                    spare = np.flatnonzero(values == 0.0)
                pool = np.concatenate((pool, spare[: depth - pool.size]))
            best = pool[np.argpartition(-values[pool], depth - 1)[:depth]] if depth < pool.size else pool
            self._ranked = best[np.lexsort((best, -values[best]))]
            self._updates_since_refresh = 0
        return self._ranked[:k]

    def top(self, k: int) -> list[tuple[int, float]]:
        """The k most popular items with their relative score, best first."""
        ids = self.top_ids(k)
        return list(zip(ids.tolist(), self.scores(ids).tolist(), strict=True))
