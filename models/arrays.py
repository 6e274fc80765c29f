"""Integer ids for string keys and the numpy helpers the scorers share (growth, sparse sums).

Scoring works on integer item ids so that candidate signals are numpy arrays, not dicts; strings are
turned into ids once, when an event or item record arrives, and back into strings once per list.
"""

from __future__ import annotations

__all__ = ["Accumulator", "Vocabulary", "grown"]

from typing import TypeVar

import numpy as np
import numpy.typing as npt

_T = TypeVar("_T", bound=np.generic)


class Vocabulary:
    """Stable dense ids for string keys, in order of first appearance.

    >>> v = Vocabulary()
    >>> v.id("a"), v.id("b"), v.id("a"), v.get("c"), v.names[1], len(v)
    (0, 1, 0, -1, 'b', 2)
    """

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._ids

    def id(self, name: str) -> int:
        """The id of ``name``, assigning the next one when it is new."""
        found = self._ids.get(name)
        if found is None:
            found = self._ids[name] = len(self.names)
            self.names.append(name)
        return found

    def get(self, name: str) -> int:
        """The id of ``name``, or -1 when it was never seen."""
        return self._ids.get(name, -1)


def grown(array: npt.NDArray[_T], size: int, fill: object = 0) -> npt.NDArray[_T]:
    """``array`` with room for ``size`` rows (doubling, new rows set to ``fill``); itself if it fits.

    >>> grown(np.zeros(2, np.int32), 3, fill=-1).tolist()
    [0, 0, -1, -1]
    """
    if size <= len(array):
        return array
    bigger = np.full((max(size, 2 * len(array)), *array.shape[1:]), fill, dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


class Accumulator:
    """Sums weights per id without a dict and without touching the ids that did not occur.

    A dense scratch vector is added into and then cleared at the occurring ids only, so the cost is
    the number of (id, weight) pairs, not the size of the catalog.

    >>> acc = Accumulator()
    >>> ids, sums = acc.sum(np.array([3, 1, 3]), np.array([1.0, 2.0, 0.5]))
    >>> sorted(zip(ids.tolist(), sums.tolist()))
    [(1, 2.0), (3, 1.5)]
    """

    def __init__(self) -> None:
        self._sums = np.zeros(1024)
        self._last = np.zeros(1024, dtype=np.int64)

    def sum(
        self, ids: npt.NDArray[np.integer], weights: npt.NDArray[np.floating]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Distinct ids (in no particular order) and the sum of their weights."""
        if ids.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        ids = ids.astype(np.int64, copy=False)
        size = int(ids.max()) + 1
        self._sums = grown(self._sums, size)
        self._last = grown(self._last, size)
        np.add.at(self._sums, ids, weights)
        order = np.arange(ids.size)
        self._last[ids] = order
        distinct = ids[self._last[ids] == order]
        sums = self._sums[distinct]
        self._sums[distinct] = 0.0
        return distinct, sums
