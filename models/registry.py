"""Every recommender the engine can run, by name, and the contract they share.

The worker's model and the simple baselines it is measured against (`models.baselines`) by name; the
contract checks in tests/models/test_contracts.py run over all of them, so a new model cannot skip them.
``PopularRecommender`` (decayed popularity) is also the engine's day-one tier.
"""

from __future__ import annotations

__all__ = ["RECOMMENDERS", "PopularRecommender", "Recommender"]

from collections.abc import Callable
from typing import Protocol

from models.baselines import (
    CoOccurrenceRecommender,
    CountPopularity,
    PopularRecommender,
    TopCategoriesRecommender,
)
from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.signals import Signal
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


#: Model name -> factory taking a seed.
RECOMMENDERS: dict[str, Callable[[int], Recommender]] = {
    "hybrid": lambda seed: HybridRecommender(seed=seed),
    "popular": lambda seed: PopularRecommender(seed=seed),
    "popularity": lambda seed: CountPopularity(seed=seed),
    "cooccurrence": lambda seed: CoOccurrenceRecommender(seed=seed),
    "top_categories": lambda seed: TopCategoriesRecommender(seed=seed),
}
