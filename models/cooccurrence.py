"""Item-to-item relations learned from consumption sequences: co-occurrence and transitions.

Symmetric: items consumed by the same user close together are related. Directed (``window=1``,
``symmetric=False``): what users take right after an item. Rows are pruned to the strongest links so
memory and per-event cost stay bounded however large the catalog grows.
"""

from __future__ import annotations

__all__ = ["CoOccurrence"]

import heapq
from collections.abc import Sequence


class CoOccurrence:
    """Counts of item pairs within ``window`` consecutive items of one user's history.

    >>> co = CoOccurrence(window=3)
    >>> co.learn_one(["a"], "b"); co.learn_one(["a", "b"], "c")
    >>> sorted(co.neighbors("c").items())
    [('a', 0.333...), ('b', 0.333...)]
    >>> nxt = CoOccurrence(window=1, symmetric=False)
    >>> nxt.learn_one(["a"], "b"); nxt.neighbors("a"), nxt.neighbors("b")
    ({'b': 0.5}, {})
    """

    def __init__(self, window: int = 30, *, symmetric: bool = True, max_neighbors: int = 100) -> None:
        self.window = window
        self.symmetric = symmetric
        self.max_neighbors = max_neighbors
        self._rows: dict[str, dict[str, float]] = {}
        self._totals: dict[str, float] = {}

    def learn_one(self, history: Sequence[str], item_id: str, weight: float = 1.0) -> None:
        """Relate ``item_id`` to the items just before it (``history`` is oldest first)."""
        for other in history[-self.window :]:
            if other == item_id:
                continue
            self._add(other, item_id, weight)
            if self.symmetric:
                self._add(item_id, other, weight)

    def _add(self, a: str, b: str, w: float) -> None:
        row = self._rows.get(a)
        if row is None:
            row = self._rows[a] = {}
        row[b] = row.get(b, 0.0) + w
        self._totals[a] = self._totals.get(a, 0.0) + w
        if len(row) > 2 * self.max_neighbors:
            self._rows[a] = dict(heapq.nlargest(self.max_neighbors, row.items(), key=lambda kv: kv[1]))

    def neighbors(self, item_id: str) -> dict[str, float]:
        """Related items with their share of ``item_id``'s links (empty for an unknown item)."""
        row = self._rows.get(item_id)
        if not row:
            return {}
        scale = 1.0 / (self._totals[item_id] + 1.0)
        return {b: w * scale for b, w in row.items()}

    def scores(self, history: Sequence[str], recent: int = 30, decay: float = 0.8) -> dict[str, float]:
        """Neighbours of the last ``recent`` items, the newest counting most (unnormalised)."""
        scored: dict[str, float] = {}
        get = scored.get
        weight = 1.0
        for item in reversed(history[-recent:]):
            row = self._rows.get(item)
            if row:
                scale = weight / (self._totals[item] + 1.0)
                for b, w in row.items():
                    scored[b] = get(b, 0.0) + w * scale
            weight *= decay
        return scored
