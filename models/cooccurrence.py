"""Item-to-item relations learned from consumption sequences: co-occurrence and transitions.

Symmetric: items consumed by the same user close together are related. Directed (``window=1``,
``symmetric=False``): what users take right after an item. Rows are pruned to the strongest links so
memory and per-event cost stay bounded however large the catalog grows. Items are integer ids.
"""

from __future__ import annotations

__all__ = ["CoOccurrence"]

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: Pending links of rows nobody read are folded in this often (events), bounding their memory.
FOLD_EVERY = 2_000


class CoOccurrence:
    """Counts of item pairs within ``window`` consecutive items of one user's history.

    >>> co = CoOccurrence(window=3)
    >>> co.learn_one([1], 2); co.learn_one([1, 2], 3)
    >>> sorted(co.neighbors(3).items())
    [(1, 0.333...), (2, 0.333...)]
    >>> nxt = CoOccurrence(window=1, symmetric=False)
    >>> nxt.learn_one([1], 2); nxt.neighbors(1), nxt.neighbors(2)
    ({2: 0.5}, {})
    """

    def __init__(self, window: int = 30, *, symmetric: bool = True, max_neighbors: int = 100) -> None:
        self.window = window
        self.symmetric = symmetric
        self.max_neighbors = max_neighbors
        # Learning appends to per-row lists of new links (cheap); a row folds its list into its
        # Counter when it is read, or when `FOLD_EVERY` events have passed, then is read as arrays.
        self._pending: defaultdict[int, list[int]] = defaultdict(list)
        self._rows: dict[int, Counter[int]] = {}
        self._totals: dict[int, int] = {}
        self._arrays: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        self._events = 0

    def learn_one(self, history: Sequence[int], item: int) -> None:
        """Relate ``item`` to the items just before it (``history`` is oldest first)."""
        others = [other for other in history[-self.window :] if other != item]
        pending = self._pending
        for other in others:
            pending[other].append(item)
        if self.symmetric and others:
            pending[item].extend(others)
        self._events += 1
        if self._events % FOLD_EVERY == 0:
            for row in list(pending):
                self._fold(row)

    def _fold(self, item: int) -> None:
        """Add the row's pending links to its counts; prune it to the strongest links."""
        links = self._pending.pop(item, None)
        if not links:
            return
        row = self._rows.get(item)
        if row is None:
            row = self._rows[item] = Counter()
        row.update(links)
        self._totals[item] = self._totals.get(item, 0) + len(links)
        if len(row) > 2 * self.max_neighbors:
            self._rows[item] = Counter(dict(row.most_common(self.max_neighbors)))
        self._arrays.pop(item, None)

    def _row(self, item: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
        """The row as (neighbour ids, share of the item's links); None when it has none."""
        if item in self._pending:
            self._fold(item)
        found = self._arrays.get(item)
        if found is None:
            row = self._rows.get(item)
            if not row:
                return None
            ids = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            weights = np.fromiter(row.values(), dtype=np.float64, count=len(row))
            found = self._arrays[item] = (ids, weights / (self._totals[item] + 1.0))
        return found

    def neighbors(self, item: int) -> dict[int, float]:
        """Related items with their share of ``item``'s links (empty for an unknown item)."""
        row = self._row(item)
        return {} if row is None else dict(zip(row[0].tolist(), row[1].tolist(), strict=True))

    def scores(
        self, history: npt.NDArray[np.int64], recent: int = 30, decay: float = 0.8
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """(item, weight) pairs: neighbours of the last ``recent`` items, the newest counting most.

        Unaggregated: an item may occur several times; callers sum them.
        """
        ids, weights = [], []
        scale = 1.0
        for item in history[-recent:][::-1].tolist():
            row = self._row(item)
            if row is not None:
                ids.append(row[0])
                weights.append(row[1] * scale)
            scale *= decay
        if not ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(ids), np.concatenate(weights)
