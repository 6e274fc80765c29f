"""What is popular now, overall and per category, kept as ranked heads the ranking kernel reads.

Each list is an `ItemPopularity` (a category's over its own ids, so its arrays grow with the
category, not the catalog); a list that changed enough to re-rank is re-ranked when the heads are next
read, and its head (the best ``depth`` items) copied into one row of a matrix, so a request reads the
heads of the user's favourite categories without a Python call per category, and loading a large
catalog re-ranks nothing until the first request. Each category's mass (the sum of its items' values,
in the overall list's frame) turns an item's overall value into its share of its category.
"""

from __future__ import annotations

__all__ = ["CategoryPopularity", "PopularHeads"]

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from models.arrays import grown
from models.popularity import ItemPopularity

Ids = npt.NDArray[np.int64]


class CategoryPopularity:
    """One category's `ItemPopularity` over ids local to the category (in the order its items came).

    >>> pop = CategoryPopularity(half_life_ms=1000, refresh_every=1)
    >>> pop.add(900_000); pop.learn_one(7, 1.0, ts=0)
    >>> pop.top_ids(5).tolist(), pop.known
    ([7, 900000], 2)
    """

    def __init__(self, half_life_ms: float, refresh_every: int) -> None:
        self.ranked = ItemPopularity(half_life_ms, refresh_every)
        self._local: dict[int, int] = {}
        self._items = np.zeros(16, dtype=np.int64)

    def _id(self, item: int) -> int:
        local = self._local.get(item)
        if local is None:
            local = self._local[item] = len(self._local)
            if local >= len(self._items):
                self._items = grown(self._items, local + 1)
            self._items[local] = item
        return local

    def add(self, item: int) -> None:
        self.ranked.add(self._id(item))

    def learn_one(self, item: int, weight: float, ts: int) -> None:
        self.ranked.learn_one(self._id(item), weight, ts)

    @property
    def known(self) -> int:
        return self.ranked.known

    @property
    def stale(self) -> bool:
        return self.ranked.stale

    def top_ids(self, k: int) -> Ids:
        """The k most popular items (catalog ids), best first; ties: the one added first."""
        return self._items[self.ranked.top_ids(k)]


class PopularHeads:
    """Decayed popularity overall and per category id, with their heads as int arrays (-1 pads).

    >>> heads = PopularHeads(half_life_ms=1000, depth=3, refresh_every=1)
    >>> heads.add(1, [0]); heads.add(2, [0, 1]); heads.add(3, [1])
    >>> heads.learn_one(3, [1], 1.0, ts=0); heads.learn_one(2, [0, 1], 2.0, ts=0)
    >>> overall, by_category = heads.kernel_state()
    >>> overall.tolist(), by_category.tolist()
    ([2, 3, 1], [[2, 1, -1], [2, 3, -1]])
    """

    def __init__(self, half_life_ms: float, depth: int = 550, refresh_every: int = 100) -> None:
        self.half_life_ms = half_life_ms
        self.depth = depth
        self.refresh_every = refresh_every
        self.overall = ItemPopularity(half_life_ms, refresh_every)
        self._lists: list[CategoryPopularity] = []
        self._overall_head = np.full(depth, -1, dtype=np.int64)
        self._heads = np.full((0, depth), -1, dtype=np.int64)
        #: Per category: how many items its head holds.
        self._filled = np.zeros(0, dtype=np.int64)
        self._overall_filled = 0
        #: Lists to re-rank at the next read (category ids; -1 is the overall list).
        self._stale: set[int] = set()
        #: Per category: the decayed positive weight of its items, in the frame of `overall`'s values.
        self._mass = np.zeros(0)

    def _list(self, category: int) -> CategoryPopularity:
        while category >= len(self._lists):
            self._lists.append(CategoryPopularity(self.half_life_ms, self.refresh_every))
        if category >= len(self._heads):
            self._heads = grown(self._heads, category + 1, fill=-1)
            self._filled = grown(self._filled, category + 1)
            self._mass = grown(self._mass, category + 1)
        return self._lists[category]

    def add(self, item: int, categories: Iterable[int]) -> None:
        """Make a catalog item known to the overall list and its categories' lists."""
        self.overall.add(item)
        self._check(-1)
        for category in categories:
            self._list(category).add(item)
            self._check(category)

    def learn_one(
        self,
        item: int,
        categories: Iterable[int],
        weight: float,
        ts: int,
        fractions: list[float] | None = None,
    ) -> None:
        """One positive interaction with ``item``."""
        before = self.overall.reference_ts
        self.overall.learn_one(item, weight, ts)
        after = self.overall.reference_ts
        assert after is not None  # set by the first learn_one
        if before is not None and after != before:  # the overall values were rescaled: follow them
            self._mass *= 2.0 ** (-(after - before) / self.half_life_ms)
        added = weight * 2.0 ** ((ts - after) / self.half_life_ms)
        self._check(-1)
        for n, category in enumerate(categories):
            self._list(category).learn_one(item, weight, ts)
            self._mass[category] += added * (fractions[n] if fractions is not None else 1.0)
            self._check(category)

    def mass(self) -> npt.NDArray[np.float64]:
        """Per category id, the sum of its items' values in `overall`'s `ItemPopularity.raw` frame.

        >>> heads = PopularHeads(half_life_ms=1000)
        >>> heads.learn_one(1, [0], 1.0, ts=0); heads.learn_one(2, [0, 1], 1.0, ts=1000)
        >>> values, scale = heads.overall.raw()
        >>> (values[2] / heads.mass()).tolist()
        [0.666..., 1.0]
        """
        return self._mass

    def _check(self, category: int) -> None:
        """Note the list for re-ranking if it is due, or its head is not as full as it can be."""
        ranked, filled = (
            (self.overall, self._overall_filled)
            if category < 0
            else (self._lists[category], self._filled[category])
        )
        if ranked.stale or filled < min(self.depth, ranked.known):
            self._stale.add(category)

    def _sync(self) -> None:
        for category in self._stale:
            ranked = self.overall if category < 0 else self._lists[category]
            head = ranked.top_ids(self.depth)
            if category < 0:
                self._overall_head[: head.size] = head
                self._overall_filled = head.size
            else:
                self._heads[category, : head.size] = head
                self._filled[category] = head.size
        self._stale.clear()

    def kernel_state(self) -> tuple[Ids, Ids]:
        """(overall head, one head per category id), best first, -1 after the last item."""
        if self._stale:
            self._sync()
        return self._overall_head, self._heads
