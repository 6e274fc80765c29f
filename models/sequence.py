"""Sequence-aware neighbours: users who consumed the same items recently, and what they took next.

For the user's last few items, find other users who consumed them too (most recent occurrences only,
so cost does not grow with traffic), weight those users by how much of the recent sequence they share,
and score the items around each matching position in their histories: mostly what came after.
Items are integer ids; histories live in fixed-size pages so one numpy gather reads any window.
"""

from __future__ import annotations

__all__ = ["SequenceNeighbors"]

import numpy as np
import numpy.typing as npt

from models.arrays import Vocabulary, grown

#: A user's history is a ring of PAGES pages of PAGE items, allocated as it grows.
PAGE_BITS = 6
PAGE = 1 << PAGE_BITS
PAGES = 16
#: The longest history kept per user (older items fall out of the ring).
MAX_HISTORY = PAGE * PAGES

Ids = npt.NDArray[np.int64]
Weights = npt.NDArray[np.float64]


class _Occurrences:
    """The latest ``size`` (user, position) pairs at which one item was consumed (a ring)."""

    __slots__ = ("count", "positions", "users")

    def __init__(self, size: int) -> None:
        self.users = np.zeros(size, dtype=np.int64)
        self.positions = np.zeros(size, dtype=np.int64)
        self.count = 0

    def add(self, user: int, position: int) -> None:
        slot = self.count % len(self.users)
        self.users[slot] = user
        self.positions[slot] = position
        self.count += 1

    def filled(self) -> tuple[Ids, Ids]:
        n = min(self.count, len(self.users))
        return self.users[:n], self.positions[:n]


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
        occurrences: int = 100,
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
        self._pages_used = 0
        self._occurrences: dict[int, _Occurrences] = {}
        offsets = [*range(1, after + 1), *range(-1, -before - 1, -1)]
        self._offsets = np.array(offsets, dtype=np.int64)
        self._distance = np.abs(self._offsets).astype(np.float64) ** -distance_power
        after_side = self._offsets > 0
        self._after_weight = np.where(after_side, self._distance, 0.0)
        self._before_weight = np.where(after_side, 0.0, before_weight * self._distance)
        self._scratch = np.zeros(0)
        self._stamp = np.zeros(0, dtype=np.int64)

    def _read(self, users: Ids, positions: Ids) -> Ids:
        """Items at absolute ``positions`` of ``users`` (any shape; positions must be in range)."""
        slots = positions & (MAX_HISTORY - 1)
        pages = self._table.ravel().take(users * PAGES + (slots >> PAGE_BITS))
        return self._pages.ravel().take(pages * PAGE + (slots & (PAGE - 1)))

    def history(self, user_id: str, last: int = MAX_HISTORY) -> Ids:
        """The user's last ``last`` items, oldest first (empty for an unknown user)."""
        user = self._users.get(user_id)
        if user < 0:
            return np.zeros(0, dtype=np.int64)
        end = int(self._end[user])
        positions = np.arange(max(int(self._start[user]), end - last), end)
        return self._read(np.full(positions.size, user), positions)

    def learn_one(self, user_id: str, item: int) -> None:
        user = self._users.id(user_id)
        if user >= len(self._start):
            self._start = grown(self._start, user + 1)
            self._end = grown(self._end, user + 1)
            self._table = grown(self._table, user + 1, fill=-1)
        position = int(self._end[user])
        slot = position & (MAX_HISTORY - 1)
        page = self._table[user, slot >> PAGE_BITS]
        if page < 0:
            page = self._table[user, slot >> PAGE_BITS] = self._pages_used
            self._pages_used += 1
            self._pages = grown(self._pages, self._pages_used)
        self._pages[page, slot & (PAGE - 1)] = item
        self._end[user] = position + 1
        self._start[user] = max(int(self._start[user]), position + 1 - MAX_HISTORY)
        occ = self._occurrences.get(item)
        if occ is None:
            occ = self._occurrences[item] = _Occurrences(self.occurrences)
        occ.add(user, position)

    def forget(self, user_id: str) -> None:
        """Empty the user's history; occurrences pointing into it no longer match anything."""
        user = self._users.get(user_id)
        if user >= 0:
            # Moving start past every old position invalidates them; new items continue after.
            self._start[user] = self._end[user]

    def scores(self, history: Ids, user_id: str) -> tuple[Ids, Weights]:
        """(item, weight) pairs from what similar users consumed around the same items.

        Unaggregated: an item may occur many times; callers sum them (`models.arrays.Accumulator`).
        """
        recent = history[-self.recent :][::-1].tolist()
        found = [
            (occ.filled(), self.decay**age)
            for age, item in enumerate(recent)
            if (occ := self._occurrences.get(item))
        ]
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        users = np.concatenate([users for (users, _), _ in found])
        positions = np.concatenate([positions for (_, positions), _ in found])
        recency = np.repeat([w for _, w in found], [len(users) for (users, _), _ in found])
        # Matches of other users whose position is still in their history.
        keep = (users != self._users.get(user_id)) & (positions >= self._start[users])
        users, positions, recency = users[keep], positions[keep], recency[keep]
        if users.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        sim = self._similarity(users, recency)
        keep = sim > 0
        users, positions, recency, sim = users[keep], positions[keep], recency[keep], sim[keep]
        window = positions[:, None] + self._offsets[None, :]
        # One unsigned comparison checks start <= position < end.
        start = self._start[users][:, None]
        valid = (window - start).view(np.uint64) < (self._end[users][:, None] - start).view(np.uint64)
        weight = sim[:, None] * (np.multiply.outer(recency, self._after_weight) + self._before_weight)
        items = self._read(users[:, None], window)
        return items[valid], weight[valid]

    def _similarity(self, users: Ids, recency: Weights) -> Weights:
        """Per match, its user's total recency-weighted matches; 0 outside the top ``neighbors`` users.

        Dense per-user scratch vectors are written and cleared at the matching users only.
        """
        size = len(self._start)
        if len(self._scratch) < size:
            self._scratch = np.zeros(size)
            self._stamp = np.zeros(size, dtype=np.int64)
        np.add.at(self._scratch, users, recency)
        sim = self._scratch[users]
        order = np.arange(users.size)
        self._stamp[users] = order
        first = self._stamp[users] == order
        distinct, distinct_sim = users[first], sim[first]
        self._scratch[distinct] = 0.0
        if distinct.size > self.neighbors:
            chosen = distinct[np.argpartition(-distinct_sim, self.neighbors - 1)[: self.neighbors]]
            self._scratch[chosen] = 1.0
            sim = sim * self._scratch[users]
            self._scratch[chosen] = 0.0
        return sim
