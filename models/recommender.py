"""The first hybrid recommender: co-occurrence + context-aware category affinity + decayed popularity.

Candidates come from the user's recent items' neighbours, their favourite categories and what is
popular now; each candidate's score blends the three signals. Learns from every event; no batch jobs.
"""

from __future__ import annotations

__all__ = ["MODEL_VERSION", "HybridRecommender"]

import heapq
import random
from dataclasses import dataclass

from models.affinity import CategoryAffinity
from models.cooccurrence import CoOccurrence
from models.popularity import DecayedPopularity
from models.profile import UserProfile
from models.signals import signal_of
from schemas.events import Context, Event, ItemRecord

MODEL_VERSION = "hybrid-0.1"

#: Candidate generation: neighbours of this many recent positives, this many neighbours each.
RECENT_FOR_CANDIDATES = 8
NEIGHBORS_PER_ITEM = 20
#: How many consumed items candidate generation looks past in popularity lists.
MAX_SKIPPED = 500


@dataclass(frozen=True, slots=True)
class Blend:
    """Weights of the three signals in the final score (each signal is scaled to [0, 1] first)."""

    # Chosen on the synthetic clickstream (200 users, 300 items, 10k events): HR@10 0.120 and 68% of
    # the top 10 in the user's two favourite categories, against 0.110 / 46% for 0.4/0.4/0.2.
    cooccurrence: float = 0.15
    affinity: float = 0.7
    popularity: float = 0.15


class HybridRecommender:
    """Learns from events and item records; ranks items for a user profile.

    >>> from schemas.events import Event, ItemRecord
    >>> from models.profile import UserProfile
    >>> rec = HybridRecommender(seed=1)
    >>> for i, cat in [("i1", "jazz"), ("i2", "jazz"), ("i3", "metal"), ("i4", "jazz")]:
    ...     rec.learn_item(ItemRecord(item_id=i, categories=[cat]))
    >>> alice = UserProfile("alice")
    >>> for n, item in enumerate(["i1", "i2"]):
    ...     e = Event(event_id=f"e{n}", user_id="alice", item_id=item, type="click", ts=10**12 + n)
    ...     rec.learn_one(e, alice)
    ...     _ = alice.observe(e, rec.signal(e))
    >>> [item for item, _ in rec.recommend(alice, 2)]
    ['i4', 'i3']
    """

    version = MODEL_VERSION

    def __init__(
        self,
        *,
        blend: Blend = Blend(),
        half_life_ms: float = 6 * 3600 * 1000,
        window: int = 20,
        seed: int = 0,
    ) -> None:
        self.blend = blend
        self.half_life_ms = half_life_ms
        self.window = window
        self.seed = seed
        self.popularity = DecayedPopularity(half_life_ms)
        self.cooccurrence = CoOccurrence(window=window)
        self.affinity = CategoryAffinity()
        self._categories: dict[str, tuple[str, ...]] = {}
        self._by_category: dict[str, DecayedPopularity] = {}
        self._unavailable: set[str] = set()
        self._rng = random.Random(seed)

    signal = staticmethod(signal_of)

    # -- learning -------------------------------------------------------------------------------

    def learn_item(self, record: ItemRecord) -> None:
        """Take a catalog update: categories (plus tags, as content) and availability."""
        self._categories[record.item_id] = record.categories
        self.popularity.add(record.item_id)
        for category in record.categories:
            self._by_category.setdefault(category, DecayedPopularity(self.half_life_ms)).add(record.item_id)
        if record.available:
            self._unavailable.discard(record.item_id)
        else:
            self._unavailable.add(record.item_id)

    def learn_one(self, event: Event, profile: UserProfile) -> None:
        """Learn one event; ``profile`` is the user's state *before* this event."""
        signal = signal_of(event)
        if signal.label is None:
            return
        categories = self._categories.get(event.item_id, ())
        self.affinity.learn_one(event.user_id, categories, signal.label, event.context, event.ts)
        if signal.label == 1:
            self.popularity.learn_one(event.item_id, signal.weight, event.ts)
            for category in categories:
                self._by_category[category].learn_one(event.item_id, signal.weight, event.ts)
            self.cooccurrence.learn_one(profile.recent, event.item_id, signal.weight)
            negative = self._negative_category(categories)
            if negative is not None:
                self.affinity.learn_one(event.user_id, [negative], 0, event.context, event.ts)

    def _negative_category(self, positives: tuple[str, ...]) -> str | None:
        """One category the user did not pick, as the implicit negative of a positive event."""
        others = [c for c in self._by_category if c not in positives] if positives else []
        return self._rng.choice(others) if others else None

    # -- ranking --------------------------------------------------------------------------------

    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]:
        """Top-n (item_id, score) for the user, best first, without items the user consumed."""
        when = ts if ts is not None else (profile.last_ts or None)
        category_prob = self.affinity.predict_many(profile.user_id, self._by_category, context, when)
        candidates = self._candidates(profile, n, category_prob)
        if not candidates:
            return []
        co_max = max(candidates.values()) or 1.0
        # Affinity relative to the user's favourite category: what ranks is how much more this user
        # likes one category than another, not the model's absolute confidence.
        top_prob = max(category_prob.values(), default=1.0) or 1.0
        category_prob = {c: p / top_prob for c, p in category_prob.items()}
        default_prob = sum(category_prob.values()) / len(category_prob) if category_prob else 0.5
        b = self.blend
        co_weight, aff_weight, pop_weight = b.cooccurrence / co_max, b.affinity, b.popularity
        categories, popularity = self._categories, self.popularity.score
        scored = []
        for item, co in candidates.items():
            cats = categories.get(item, ())
            if len(cats) == 1:
                affinity = category_prob[cats[0]]
            else:
                affinity = max((category_prob[c] for c in cats), default=default_prob)
            scored.append((co_weight * co + aff_weight * affinity + pop_weight * popularity(item), item))
        best = heapq.nlargest(n, scored)
        return [(item, round(score, 6)) for score, item in best]

    def _candidates(self, profile: UserProfile, n: int, category_prob: dict[str, float]) -> dict[str, float]:
        """Candidate items mapped to their co-occurrence strength with the user's recent positives."""
        strength: dict[str, float] = {}
        for age, item in enumerate(reversed(profile.recent[-RECENT_FOR_CANDIDATES:])):
            for other, w in self.cooccurrence.neighbors(item, NEIGHBORS_PER_ITEM):
                strength[other] = strength.get(other, 0.0) + w * 0.8**age
        for item in [i for i in strength if self._hidden(profile, i)]:
            del strength[item]
        # Deep enough that a heavy user still gets n items once their consumed ones are skipped.
        depth = n + min(len(profile.consumed), MAX_SKIPPED)
        self._add_unhidden(strength, profile, self.popularity.top(depth), n)
        favourites = sorted(category_prob, key=lambda c: -category_prob[c])[:3]
        for category in favourites:
            self._add_unhidden(strength, profile, self._by_category[category].top(depth), n // 2 + 1)
        return strength

    def _hidden(self, profile: UserProfile, item: str) -> bool:
        return item in profile.consumed or item in self._unavailable

    def _add_unhidden(
        self, strength: dict[str, float], profile: UserProfile, ranked: list[tuple[str, float]], k: int
    ) -> None:
        """Add the first k items of ``ranked`` the user may be shown."""
        for item, _ in ranked:
            if k == 0:
                return
            if not self._hidden(profile, item):
                strength.setdefault(item, 0.0)
                k -= 1
