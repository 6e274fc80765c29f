"""Sequence-aware neighbours: users who consumed the same items recently, and what they took next.

For the user's last few items, find other users who consumed them too (most recent occurrences only,
so cost does not grow with traffic), weight those users by how much of the recent sequence they share,
and score the items around each matching position in their histories: mostly what came after.
"""

from __future__ import annotations

__all__ = ["SequenceNeighbors"]

import heapq
from collections import deque


class SequenceNeighbors:
    """Per-user consumption sequences plus, per item, its latest occurrences in them.

    >>> seq = SequenceNeighbors()
    >>> for user, items in {"a": "xyz", "b": "xyw", "c": "qx"}.items():
    ...     for item in items:
    ...         seq.learn_one(user, item)
    >>> sorted(seq.scores(["q", "x"], "c").items(), key=lambda kv: -kv[1])[:2]
    [('y', ...), ('z', ...)]
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
        max_history: int = 1000,
    ) -> None:
        self.recent = recent
        self.decay = decay
        self.occurrences = occurrences
        self.neighbors = neighbors
        self.after = after
        self.before = before
        self.before_weight = before_weight
        self.distance_power = distance_power
        self.max_history = max_history
        # history[user] = (absolute position of its first element, items); positions stay valid when
        # old items are dropped, so the occurrence lists can keep pointing into it.
        self._history: dict[str, tuple[int, list[str]]] = {}
        self._occurrences: dict[str, deque[tuple[str, int]]] = {}
        self._far = [d**-distance_power for d in range(1, max(after, before) + 1)]

    def history(self, user_id: str) -> list[str]:
        """The user's items, oldest first (at most ``max_history``)."""
        entry = self._history.get(user_id)
        return entry[1] if entry else []

    def learn_one(self, user_id: str, item_id: str) -> None:
        start, items = self._history.get(user_id) or (0, [])
        position = start + len(items)
        items.append(item_id)
        if len(items) > self.max_history:
            drop = len(items) - self.max_history
            del items[:drop]
            start += drop
        self._history[user_id] = (start, items)
        occ = self._occurrences.get(item_id)
        if occ is None:
            occ = self._occurrences[item_id] = deque(maxlen=self.occurrences)
        occ.append((user_id, position))

    def forget(self, user_id: str) -> None:
        """Remove the user's history and every occurrence pointing into it."""
        start, items = self._history.pop(user_id, (0, []))
        for item in set(items):
            occ = self._occurrences.get(item)
            if occ is not None:
                kept = [entry for entry in occ if entry[0] != user_id]
                occ.clear()
                occ.extend(kept)

    def scores(self, recent: list[str], user_id: str) -> dict[str, float]:
        """Items scored by what similar users consumed around the same items (unnormalised)."""
        similarity: dict[str, float] = {}
        matches: dict[str, list[tuple[int, float]]] = {}
        weight = 1.0
        for item in reversed(recent[-self.recent :]):
            for other, position in self._occurrences.get(item, ()):
                if other != user_id:
                    similarity[other] = similarity.get(other, 0.0) + weight
                    matches.setdefault(other, []).append((position, weight))
            weight *= self.decay
        scored: dict[str, float] = {}
        get = scored.get
        far, after, before, before_weight = self._far, self.after, self.before, self.before_weight
        for other, sim in heapq.nlargest(self.neighbors, similarity.items(), key=lambda kv: kv[1]):
            start, items = self._history[other]
            for position, recency in matches[other]:
                at = position - start
                if at < 0:
                    continue
                weight = sim * recency
                for item, f in zip(items[at + 1 : at + 1 + after], far, strict=False):
                    scored[item] = get(item, 0.0) + weight * f
                weight = before_weight * sim
                for item, f in zip(reversed(items[max(0, at - before) : at]), far, strict=False):
                    scored[item] = get(item, 0.0) + weight * f
        return scored
