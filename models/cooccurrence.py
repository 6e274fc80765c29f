"""Item-to-item relations learned from consumption sequences: co-occurrence and transitions.

Symmetric: items consumed by the same user close together are related. Directed (``window=1``,
``symmetric=False``): what users take right after an item. Rows are pruned to the strongest links so
memory and per-event cost stay bounded however large the catalog grows. Items are integer ids.
"""

from __future__ import annotations

__all__ = ["CoOccurrence"]

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models import kernels
from models.arrays import grown


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
        # Rows live in slabs of 2 * max_neighbors + 1 links; a full row keeps its strongest half.
        width = 2 * max_neighbors + 1
        self._row_of = np.full(64, -1, dtype=np.int64)
        self._slot = np.full(64, -1, dtype=np.int64)  # scratch for `kernels.link`
        self._ids = np.zeros((64, width), dtype=np.int32)
        self._weights = np.zeros((64, width), dtype=np.float32)
        self._count = np.zeros(64, dtype=np.int64)
        self._total = np.zeros(64)
        self._used = np.zeros(1, dtype=np.int64)

    def learn_one(self, history: Sequence[int] | npt.NDArray[np.int64], item: int) -> None:
        """Relate ``item`` to the items just before it (``history`` is oldest first)."""
        window = (
            history[-self.window :]
            if isinstance(history, np.ndarray)
            else np.array(history[-self.window :], dtype=np.int64)
        )
        self.reserve(max(item, int(window.max()) if window.size else 0) + 1)
        kernels.link(window, item, *self.link_state()[1:])

    def reserve(self, items: int) -> None:
        """Make room for links among item ids below ``items`` from one more event (`kernels.link`)."""
        self._row_of = grown(self._row_of, items, fill=-1)
        self._slot = grown(self._slot, items, fill=-1)
        slabs = int(self._used[0]) + self.window + 1
        if slabs > len(self._ids):
            self._ids = grown(self._ids, slabs)
            self._weights = grown(self._weights, slabs)
            self._count = grown(self._count, slabs)
            self._total = grown(self._total, slabs)

    def link_state(self) -> tuple[Any, ...]:
        """What `kernels.consume` takes for this relation."""
        return (
            self.window, self.symmetric, self._row_of, self._ids, self._weights, self._count, self._total,
            self._used, self.max_neighbors, self._slot,
        )  # fmt: skip

    def neighbors(self, item: int) -> dict[int, float]:
        """Related items with their share of ``item``'s links (empty for an unknown item)."""
        ids, weights = self.scores(np.array([item], dtype=np.int64), recent=1)
        return dict(zip(ids.tolist(), weights.tolist(), strict=True))

    def kernel_state(self) -> tuple[Any, ...]:
        """The rows as `kernels.links_of` reads them."""
        return self._row_of, self._ids, self._weights, self._count, self._total

    def scores(
        self, history: npt.NDArray[np.int64], recent: int = 30, decay: float = 0.8
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """(item, weight) pairs: neighbours of the last ``recent`` items, the newest counting most.

        Unaggregated: an item may occur several times; callers sum them.
        """
        newest = kernels.newest(history, recent, len(self._row_of))
        return kernels.links_of(newest, decay, 0.0, *self.kernel_state())  # type: ignore[no-any-return]
