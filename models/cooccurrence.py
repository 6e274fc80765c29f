"""Item co-occurrence: items liked by the same user close together in time are related.

Counts are recency weighted (pairs further apart in the user's history count less) and normalised by
item frequency at read time, so the most popular items do not become everyone's neighbour.
"""

from __future__ import annotations

__all__ = ["CoOccurrence"]

import heapq
import math
from collections.abc import Sequence


class CoOccurrence:
    """Symmetric co-occurrence counts over each user's recent positives.

    >>> co = CoOccurrence(window=3)
    >>> co.learn_one(["a"], "b", 1.0); co.learn_one(["a", "b"], "c", 1.0)
    >>> [item for item, _ in co.neighbors("c", 5)]
    ['b', 'a']
    """

    def __init__(self, window: int = 20, decay: float = 0.85, max_neighbors: int = 50) -> None:
        self.window = window
        self.decay = decay
        self.max_neighbors = max_neighbors
        self._pairs: dict[str, dict[str, float]] = {}
        self._counts: dict[str, float] = {}

    def learn_one(self, history: Sequence[str], item_id: str, weight: float) -> None:
        """Relate ``item_id`` to the user's previous positives (oldest first in ``history``)."""
        self._counts[item_id] = self._counts.get(item_id, 0.0) + 1.0
        recent = history[-self.window :]
        for age, other in enumerate(reversed(recent)):
            if other == item_id:
                continue
            w = weight * self.decay**age
            self._add(other, item_id, w)
            self._add(item_id, other, w)

    def _add(self, a: str, b: str, w: float) -> None:
        row = self._pairs.setdefault(a, {})
        row[b] = row.get(b, 0.0) + w
        if len(row) > 2 * self.max_neighbors:
            keep = heapq.nlargest(self.max_neighbors, row.items(), key=lambda kv: kv[1])
            self._pairs[a] = dict(keep)

    def neighbors(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """Up to k related items, best first, with frequency-normalised strength."""
        row = self._pairs.get(item_id)
        if not row:
            return []
        n_a = self._counts.get(item_id, 1.0)
        scored = ((b, w / math.sqrt(n_a * self._counts.get(b, 1.0))) for b, w in row.items())
        return heapq.nlargest(k, scored, key=lambda kv: (kv[1], kv[0]))
