"""Integer ids for string keys and growth of the numpy arrays that hold per-item and per-user state.

Scoring works on integer item ids so that candidate signals are numpy arrays, not dicts; strings are
turned into ids once, when an event or item record arrives, and back into strings once per list.
"""

from __future__ import annotations

__all__ = ["Vocabulary", "grown"]

import itertools
from collections.abc import Iterable
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

    def ids_of(self, names: Iterable[str]) -> npt.NDArray[np.int64]:
        """`get` of each name, as an array.

        >>> v = Vocabulary()
        >>> v.id("a"), v.id("b"), v.ids_of(["b", "x", "a"]).tolist()
        (0, 1, [1, -1, 0])
        """
        return np.fromiter(map(self._ids.get, names, itertools.repeat(-1)), np.int64)

    def drop(self, name: str) -> int:
        """Forget ``name`` (an erased user): its id stays taken by a blank name, never handed out again,
        so arrays indexed by ids keep their rows; the name itself is kept nowhere. Returns the old id,
        -1 when it was never seen.

        >>> v = Vocabulary()
        >>> v.id("a"), v.id("b"), v.drop("a"), v.get("a"), list(v.names)
        (0, 1, 0, -1, ['', 'b'])
        >>> v.id("a")  # comes back as someone new
        2
        """
        found = self._ids.pop(name, -1)
        if found >= 0:
            self.names[found] = ""
        return found


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
