"""Every recommender the engine can run, by name, and the contract they share.

The worker and the replay evaluator pick a model from `RECOMMENDERS`; the contract checks in
tests/models/test_contracts.py run over all of them, so a new model cannot skip them.
"""

from __future__ import annotations

__all__ = ["RECOMMENDERS", "PopularRecommender", "Recommender"]

from collections.abc import Callable
from typing import Protocol

from models.popularity import DecayedPopularity
from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.signals import Signal, signal_of
from schemas.events import Context, Event, ItemRecord


class Recommender(Protocol):
    """What the worker needs from a model (River style: learn one record, then predict)."""

    version: str

    def signal(self, event: Event) -> Signal: ...
    def learn_item(self, record: ItemRecord) -> None: ...
    def learn_one(self, event: Event, profile: UserProfile) -> None: ...
    def forget_user(self, user_id: str) -> None: ...
    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]: ...


class PopularRecommender:
    """The day-one tier: what is popular now, minus what the user consumed or cannot get.

    >>> from schemas.events import Event
    >>> pop = PopularRecommender()
    >>> for n, item in enumerate(["a", "b", "b"]):
    ...     e = Event(event_id=f"e{n}", user_id="x", item_id=item, type="click", ts=10**12)
    ...     pop.learn_one(e, UserProfile("x"))
    >>> [item for item, _ in pop.recommend(UserProfile("y"), 5)]
    ['b', 'a']
    """

    version = "popular-0.1"

    def __init__(self, *, half_life_ms: float = 6 * 3600 * 1000, seed: int = 0) -> None:
        self.half_life_ms = half_life_ms
        self.seed = seed
        self.popularity: DecayedPopularity = DecayedPopularity(half_life_ms)
        self._unavailable: set[str] = set()

    signal = staticmethod(signal_of)

    def learn_item(self, record: ItemRecord) -> None:
        self.popularity.add(record.item_id)
        if record.available:
            self._unavailable.discard(record.item_id)
        else:
            self._unavailable.add(record.item_id)

    def learn_one(self, event: Event, profile: UserProfile) -> None:
        signal = signal_of(event)
        if signal.label == 1:
            self.popularity.learn_one(event.item_id, signal.weight, event.ts)

    def forget_user(self, user_id: str) -> None:
        """Nothing per user is kept here."""

    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]:
        ranked = self.popularity.top(n + min(len(profile.consumed), 500) + len(self._unavailable))
        shown = [
            (i, round(s, 6)) for i, s in ranked if i not in profile.consumed and i not in self._unavailable
        ]
        return shown[:n]


#: Model name -> factory taking a seed.
RECOMMENDERS: dict[str, Callable[[int], Recommender]] = {
    "hybrid": lambda seed: HybridRecommender(seed=seed),
    "popular": lambda seed: PopularRecommender(seed=seed),
}
