"""Sequence-aware neighbours: users who consumed the same items recently, and what they took next.

For the user's last few items, find other users who consumed them too (most recent occurrences only,
so cost does not grow with traffic), weight those users by how much of the recent sequence they share,
and score the items around each matching position in their histories: mostly what came after.
Items are integer ids; histories live in fixed-size pages so one numpy gather reads any window.
"""

from __future__ import annotations

__all__ = ["SequenceNeighbors"]

from typing import Any

import numpy as np
import numpy.typing as npt

from models import kernels
from models.arrays import Vocabulary, grown
from models.kernels import MAX_HISTORY, PAGE, PAGES

Ids = npt.NDArray[np.int64]
Weights = npt.NDArray[np.float64]


class SequenceNeighbors:
    """Per-user consumption sequences plus, per item, its latest occurrences in them.

    >>> seq = SequenceNeighbors()
    >>> for user, items in {"a": [1, 2, 3], "b": [1, 2, 4], "c": [5, 1]}.items():
    ...     for item in items:
    ...         seq.learn_one(user, item)
    >>> seq.history("c").tolist()
    [5, 1]
    >>> ids, weights = seq.scores(seq.history("c"), "c")
    >>> totals = {}
    >>> for i, w in zip(ids.tolist(), weights.tolist()):
    ...     totals[i] = totals.get(i, 0.0) + w
    >>> sorted(totals, key=totals.__getitem__, reverse=True)[:2]
    [2, 3]
    """

    def __init__(
        self,
        *,
        recent: int = 10,
        decay: float = 0.8,
        occurrences: int = 20,
        neighbors: int = 50,
        after: int = 10,
        before: int = 5,
        before_weight: float = 0.5,
        distance_power: float = 0.7,
    ) -> None:
        self.recent = recent
        self.decay = decay
        self.occurrences = occurrences
        self.neighbors = neighbors
        self.after = after
        self.before = before
        self.before_weight = before_weight
        self.distance_power = distance_power
        self._users = Vocabulary()
        # Absolute positions: a user's items are start..end-1; occurrences keep pointing at the
        # right place when old items leave the ring (their position falls below start).
        self._start = np.zeros(64, dtype=np.int64)
        self._end = np.zeros(64, dtype=np.int64)
        self._table = np.full((64, PAGES), -1, dtype=np.int64)
        self._pages = np.zeros((64, PAGE), dtype=np.int64)
        #: Pages and occurrence slabs taken.
        self._used = np.zeros(2, dtype=np.int64)
        # Per item, a slab (row) holding its latest `occurrences` (user, position) pairs as a ring.
        self._slab_of = np.full(64, -1, dtype=np.int64)
        self._occ_users = np.zeros((64, occurrences), dtype=np.int64)
        self._occ_positions = np.zeros((64, occurrences), dtype=np.int64)
        self._occ_count = np.zeros(64, dtype=np.int64)
        offsets = np.array([*range(1, after + 1), *range(-1, -before - 1, -1)], dtype=np.int64)
        distance = np.abs(offsets).astype(np.float64) ** -distance_power
        self._offsets = offsets
        self._after_weight = np.where(offsets > 0, distance, 0.0)
        self._before_weight = np.where(offsets > 0, 0.0, before_weight * distance)
        self._sim = np.zeros(64)
        self._excluded = np.zeros(64, dtype=bool)

    def history(self, user_id: str, last: int = MAX_HISTORY) -> Ids:
        """The user's last ``last`` items, oldest first (empty for an unknown user)."""
        user = self._users.get(user_id)
        if user < 0:
            return np.zeros(0, dtype=np.int64)
        end = int(self._end[user])
        first = max(int(self._start[user]), end - last)
        items: Ids = kernels.read_history(user, first, end, self._table, self._pages)
        return items

    def has_history(self, user_id: str) -> bool:
        """Whether the model holds any item of the user."""
        user = self._users.get(user_id)
        return user >= 0 and bool(self._end[user] > self._start[user])

    def learn_one(self, user_id: str, item: int) -> None:
        kernels.append(self.reserve(user_id, item), item, *self.append_state())

    def reserve(self, user_id: str, item: int) -> int:
        """Make room for one more item of the user (and of ``item``); returns the user's id."""
        user = self._users.id(user_id)
        if user >= len(self._start):
            self._start = grown(self._start, user + 1)
            self._end = grown(self._end, user + 1)
            self._table = grown(self._table, user + 1, fill=-1)
            self._sim = grown(self._sim, user + 1)
            self._excluded = grown(self._excluded, user + 1)
        if item >= len(self._slab_of):
            self._slab_of = grown(self._slab_of, item + 1, fill=-1)
        pages, slabs = self._used.tolist()
        if pages >= len(self._pages):
            self._pages = grown(self._pages, pages + 1)
        if slabs >= len(self._occ_count):
            self._occ_users = grown(self._occ_users, slabs + 1)
            self._occ_positions = grown(self._occ_positions, slabs + 1)
            self._occ_count = grown(self._occ_count, slabs + 1)
        return user

    def append_state(self) -> tuple[Any, ...]:
        """What `kernels.append` takes after (user, item)."""
        return (
            self._start, self._end, self._table, self._pages, self._used, self._slab_of,
            self._occ_users, self._occ_positions, self._occ_count,
        )  # fmt: skip

    def forget(self, user_id: str) -> None:
        """Erase the user's history; occurrences pointing into it no longer match anything.

        >>> seq = SequenceNeighbors()
        >>> seq.learn_one("u", 7); seq.forget("u"); seq.learn_one("u", 8)
        >>> seq.history("u").tolist(), int((seq._pages == 7).sum())
        ([8], 0)
        """
        user = self._users.get(user_id)
        if user >= 0:
            # The items are overwritten, and start moves past every old position, which invalidates
            # the occurrences; new items continue after.
            pages = self._table[user]
            self._pages[pages[pages >= 0]] = -1
            self._start[user] = self._end[user]
            # The row stays behind, unreachable: the id is dropped, so the user's name is kept nowhere
            # (a returning user gets a fresh row).
            self._users.drop(user_id)

    def kernel_state(self, user_id: str) -> tuple[Any, ...]:
        """Everything `kernels.sequence_scores` needs besides the recent items, for this user."""
        return (
            self._users.get(user_id), self.decay, self._slab_of, self._occ_users, self._occ_positions,
            self._occ_count, self._start, self._end, self._table, self._pages, self.neighbors,
            self._offsets, self._after_weight, self._before_weight, self._sim, self._excluded,
        )  # fmt: skip

    def scores(self, history: Ids, user_id: str) -> tuple[Ids, Weights]:
        """(item, weight) pairs from what similar users consumed around the same items.

        Unaggregated: an item may occur many times; callers sum them.
        """
        recent = kernels.newest(history, self.recent, len(self._slab_of))
        return kernels.sequence_scores(recent, *self.kernel_state(user_id))  # type: ignore[no-any-return]
