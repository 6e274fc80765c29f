"""Simple rankers the engine is measured against: popularity (all-time and decayed), item co-occurrence,
and the user's top categories x popularity.

Each follows the recommender contract of `models.registry` (``learn_item``, ``learn_one``, ``recommend``,
``forget_user``), so the replay, the demo and the contract checks drive them as they drive the engine's
model. Pure: no I/O; they never rank an item the user consumed or an unavailable one.
"""

from __future__ import annotations

__all__ = [
    "CoOccurrenceRecommender",
    "CountPopularity",
    "PopularRecommender",
    "TopCategoriesRecommender",
]

from collections.abc import Iterable, Iterator

import numpy as np

from models.arrays import Vocabulary
from models.cooccurrence import CoOccurrence
from models.popularity import DecayedPopularity
from models.profile import UserProfile
from models.signals import signal_of
from schemas.events import Context, Event, ItemRecord

#: Weight of one onboarding "I like this category" in `TopCategoriesRecommender` (three positives).
LIKED_CATEGORY_WEIGHT = 3.0


class _Counts:
    """Items in descending order of an integer count, kept sorted under +1 updates in O(1).

    Items with equal counts form one run of ``order``; an increment swaps the item with the first
    of its run, which then belongs to the run above. `add` puts an item last with count 0.

    >>> c = _Counts()
    >>> c.add("z")
    >>> for item in "abcbcc":
    ...     c.learn(item)
    >>> c.order, c.count("b"), c.total
    (['c', 'b', 'a', 'z'], 2, 6)
    """

    def __init__(self) -> None:
        self.order: list[str] = []
        self.total = 0
        self._at: dict[str, int] = {}
        self._count: dict[str, int] = {}
        self._first: dict[int, int] = {}  # count -> index of the first item with it

    def __contains__(self, item: object) -> bool:
        return item in self._at

    def count(self, item: str) -> int:
        return self._count.get(item, 0)

    def add(self, item: str) -> None:
        if item not in self._at:
            self._at[item] = len(self.order)
            self.order.append(item)
            self._first.setdefault(0, len(self.order) - 1)

    def learn(self, item: str) -> None:
        self.add(item)
        count = self._count.get(item, 0)
        at, first = self._at[item], self._first[count]
        other = self.order[first]
        self.order[first], self.order[at] = item, other
        self._at[item], self._at[other] = first, at
        # The run of `count` now starts one later (or is gone); `item` ends the run of count + 1.
        if first + 1 < len(self.order) and self._count.get(self.order[first + 1], 0) == count:
            self._first[count] = first + 1
        else:
            del self._first[count]
        self._first.setdefault(count + 1, first)
        self._count[item] = count + 1
        self.total += 1


def _visible(ranked: Iterable[str], n: int, profile: UserProfile, unavailable: set[str]) -> Iterator[str]:
    """The first ``n`` of ``ranked`` the user has not consumed and that are available."""
    if n <= 0:
        return
    taken = 0
    for item in ranked:
        if item not in profile.consumed and item not in unavailable:
            yield item
            taken += 1
            if taken == n:
                return


class _Catalog:
    """What every baseline keeps of the catalog: unavailable items (and the signal table)."""

    signal = staticmethod(signal_of)

    def __init__(self) -> None:
        self._unavailable: set[str] = set()

    def _availability(self, record: ItemRecord) -> None:
        if record.available:
            self._unavailable.discard(record.item_id)
        else:
            self._unavailable.add(record.item_id)

    def forget_user(self, user_id: str) -> None:
        """Nothing per user is kept (subclasses that keep some override this)."""


class PopularRecommender(_Catalog):
    """Decayed popularity: what is popular now (positives weighted by `signal_of`, with a half-life).

    The engine's day-one tier too.

    >>> pop = PopularRecommender()
    >>> for n, item in enumerate(["a", "b", "b"]):
    ...     e = Event(event_id=f"e{n}", user_id="x", item_id=item, type="click", ts=10**12)
    ...     pop.learn_one(e, UserProfile("x"))
    >>> [item for item, _ in pop.recommend(UserProfile("y"), 5)]
    ['b', 'a']
    """

    version = "popular-0.1"

    def __init__(self, *, half_life_ms: float = 6 * 3600 * 1000, seed: int = 0) -> None:
        super().__init__()
        self.half_life_ms = half_life_ms
        self.seed = seed
        self.popularity: DecayedPopularity = DecayedPopularity(half_life_ms)

    def learn_item(self, record: ItemRecord) -> None:
        self.popularity.add(record.item_id)
        self._availability(record)

    def learn_one(self, event: Event, profile: UserProfile) -> None:
        signal = signal_of(event)
        if signal.label == 1:
            self.popularity.learn_one(event.item_id, signal.weight, event.ts)

    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]:
        ranked = self.popularity.top(n + min(len(profile.consumed), 500) + len(self._unavailable))
        shown = [
            (i, round(s, 6)) for i, s in ranked if i not in profile.consumed and i not in self._unavailable
        ]
        return shown[:n]


class CountPopularity(_Catalog):
    """All-time popularity: the items with the most positives so far (one count per positive event).

    >>> pop = CountPopularity()
    >>> for n, item in enumerate(["a", "b", "b"]):
    ...     e = Event(event_id=f"e{n}", user_id="x", item_id=item, type="click", ts=10**12)
    ...     pop.learn_one(e, UserProfile("x"))
    >>> pop.recommend(UserProfile("y"), 5)
    [('b', 2.0), ('a', 1.0)]
    """

    version = "popularity-1"

    def __init__(self, *, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed
        self.counts = _Counts()

    def learn_item(self, record: ItemRecord) -> None:
        self.counts.add(record.item_id)
        self._availability(record)

    def learn_one(self, event: Event, profile: UserProfile) -> None:
        if signal_of(event).label == 1:
            self.counts.learn(event.item_id)

    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]:
        items = _visible(self.counts.order, n, profile, self._unavailable)
        return [(item, float(self.counts.count(item))) for item in items]


class CoOccurrenceRecommender(_Catalog):
    """Items consumed close to the user's latest positives by other users (a window of ``window``
    positives), the newest of the user's ``recent`` items counting most; popularity fills the rest.

    >>> co = CoOccurrenceRecommender()
    >>> profiles = {u: UserProfile(u) for u in ("a", "b")}
    >>> for n, (user, item) in enumerate([("a", "x"), ("a", "y"), ("b", "z"), ("b", "x")]):
    ...     e = Event(event_id=f"e{n}", user_id=user, item_id=item, type="click", ts=10**12 + n)
    ...     co.learn_one(e, profiles[user])
    ...     _ = profiles[user].observe(e, co.signal(e))
    >>> [item for item, _ in co.recommend(profiles["b"], 2)]
    ['y']
    """

    version = "cooccurrence-1"

    def __init__(self, *, window: int = 20, recent: int = 20, decay: float = 0.8, seed: int = 0) -> None:
        super().__init__()
        self.window = window
        self.recent = recent
        self.decay = decay
        self.seed = seed
        self._ids = Vocabulary()
        self.links = CoOccurrence(window=window)
        self.popularity = CountPopularity()

    def learn_item(self, record: ItemRecord) -> None:
        self._ids.id(record.item_id)
        self.popularity.learn_item(record)
        self._availability(record)

    def learn_one(self, event: Event, profile: UserProfile) -> None:
        if signal_of(event).label != 1:
            return
        self.popularity.learn_one(event, profile)
        item = self._ids.id(event.item_id)
        before = [self._ids.id(i) for i in profile.recent[-self.window :] if i != event.item_id]
        self.links.learn_one(before, item)

    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]:
        history = np.array([self._ids.get(i) for i in profile.recent if i in self._ids], dtype=np.int64)
        ids, weights = self.links.scores(history, self.recent, self.decay)
        totals = np.bincount(ids, weights=weights) if ids.size else np.zeros(0)
        order = np.argsort(-totals, kind="stable")[: np.count_nonzero(totals)]
        names = self._ids.names
        ranked = [(names[i], float(totals[i])) for i in order.tolist()]
        out = [
            (item, s) for item, s in ranked if item not in profile.consumed and item not in self._unavailable
        ]
        out = out[:n]
        if len(out) < n:
            shown = {item for item, _ in out}
            rest = (i for i in self.popularity.counts.order if i not in shown)
            out += [(item, 0.0) for item in _visible(rest, n - len(out), profile, self._unavailable)]
        return out


class TopCategoriesRecommender(_Catalog):
    """The user's ``top`` most consumed categories x popularity: an item of category c scores the
    user's share of positives in c times the item's share of c's positives (all-time counts);
    popularity fills the list when the user has too few categories or items.

    >>> rec = TopCategoriesRecommender()
    >>> for item, cat in [("a", "jazz"), ("b", "jazz"), ("c", "metal"), ("d", "pop")]:
    ...     rec.learn_item(ItemRecord(item_id=item, categories=[cat]))
    >>> profiles = {u: UserProfile(u) for u in ("x", "y")}
    >>> for n, (user, item) in enumerate([("x", "a"), ("x", "c"), ("x", "b"), ("y", "a"), ("y", "d")]):
    ...     e = Event(event_id=f"e{n}", user_id=user, item_id=item, type="click", ts=10**12 + n)
    ...     rec.learn_one(e, profiles[user])
    ...     _ = profiles[user].observe(e, rec.signal(e))
    >>> [item for item, _ in rec.recommend(profiles["y"], 3)]
    ['b', 'c']
    >>> rec.like_categories("new", ("pop",), 10**12)
    >>> [item for item, _ in rec.recommend(UserProfile("new"), 1)]
    ['d']
    """

    version = "top-categories-1"

    def __init__(self, *, top: int = 2, seed: int = 0) -> None:
        super().__init__()
        self.top = top
        self.seed = seed
        self._categories: dict[str, tuple[str, ...]] = {}
        self._by_category: dict[str, _Counts] = {}
        self._users: dict[str, dict[str, float]] = {}
        self.popularity = CountPopularity()

    def learn_item(self, record: ItemRecord) -> None:
        self._categories[record.item_id] = record.categories
        for category in record.categories:
            self._by_category.setdefault(category, _Counts()).add(record.item_id)
        self.popularity.learn_item(record)
        self._availability(record)

    def learn_one(self, event: Event, profile: UserProfile) -> None:
        if signal_of(event).label != 1:
            return
        self.popularity.learn_one(event, profile)
        mine = self._users.setdefault(event.user_id, {})
        for category in self._categories.get(event.item_id, ()):
            self._by_category.setdefault(category, _Counts()).learn(event.item_id)
            mine[category] = mine.get(category, 0.0) + 1.0

    def like_categories(self, user_id: str, categories: tuple[str, ...], ts: int) -> None:
        """Onboarding: each liked category counts as `LIKED_CATEGORY_WEIGHT` positives."""
        mine = self._users.setdefault(user_id, {})
        for category in categories:
            mine[category] = mine.get(category, 0.0) + LIKED_CATEGORY_WEIGHT

    def forget_user(self, user_id: str) -> None:
        self._users.pop(user_id, None)

    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]:
        mine = self._users.get(profile.user_id, {})
        total = sum(mine.values())
        favourites = sorted(mine, key=lambda c: (-mine[c], c))[: self.top]
        scores: dict[str, float] = {}
        for category in favourites:
            counts = self._by_category.get(category)
            if counts is None or not counts.total:
                continue
            share = mine[category] / total
            for item in _visible(counts.order, n, profile, self._unavailable):
                score = share * counts.count(item) / counts.total
                if score > scores.get(item, -1.0):
                    scores[item] = score
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:n]
        if len(ranked) < n:
            shown = set(scores)
            rest = (i for i in self.popularity.counts.order if i not in shown)
            ranked += [(item, 0.0) for item in _visible(rest, n - len(ranked), profile, self._unavailable)]
        return ranked
