"""The hybrid online recommender: sequence neighbours, co-occurrence, transitions, content, trends.

Candidates come from what similar users consumed around the user's recent items, items related to
them, the user's favourite categories, what is popular now and fresh items still exploring; a blend of
the normalised signals ranks them. Every part learns from each event; no batch jobs.
"""

from __future__ import annotations

__all__ = ["MODEL_VERSION", "Blend", "HybridRecommender"]

import heapq
import itertools
import random
from dataclasses import dataclass

from models.affinity import CategoryAffinity
from models.cooccurrence import CoOccurrence
from models.popularity import DecayedPopularity
from models.profile import UserProfile
from models.sequence import SequenceNeighbors
from models.signals import signal_of
from schemas.events import Context, Event, ItemRecord

MODEL_VERSION = "hybrid-0.3"

#: How many consumed items candidate generation looks past in popularity lists.
MAX_SKIPPED = 500
#: Candidates from the sequence signals kept for the full blend (the rest cannot reach the top n).
SHORTLIST = 300


@dataclass(frozen=True, slots=True)
class Blend:
    """Weights of the signals in the final score; each signal is scaled to [0, 1] over the candidates.

    Chosen by replay on MovieLens (docs/models.md): sequence neighbours carry most of the signal,
    co-occurrence and transitions add to it, decayed popularity and the item's share of positive
    ratings (``quality``) break ties towards well-liked items; ``affinity`` is the context-aware
    category model, which carries new users and new items.
    """

    sequence: float = 1.0
    cooccurrence: float = 0.3
    transitions: float = 0.3
    popularity: float = 0.2
    quality: float = 0.8
    affinity: float = 0.6


class HybridRecommender:
    """Learns from events and item records; ranks items for a user profile.

    >>> from schemas.events import Event, ItemRecord
    >>> from models.profile import UserProfile
    >>> rec = HybridRecommender(seed=1)
    >>> for i, cat in [("i1", "jazz"), ("i2", "jazz"), ("i3", "metal"), ("i4", "jazz")]:
    ...     rec.learn_item(ItemRecord(item_id=i, categories=[cat]))
    >>> profiles = {u: UserProfile(u) for u in ("bob", "alice")}
    >>> for n, (user, item) in enumerate([("bob", "i1"), ("bob", "i4"), ("alice", "i1")]):
    ...     e = Event(event_id=f"e{n}", user_id=user, item_id=item, type="click", ts=10**12 + n)
    ...     rec.learn_one(e, profiles[user])
    ...     _ = profiles[user].observe(e, rec.signal(e))
    >>> [item for item, _ in rec.recommend(profiles["alice"], 2)]
    ['i4', 'i2']
    """

    version = MODEL_VERSION

    def __init__(
        self,
        *,
        blend: Blend = Blend(),
        half_life_ms: float = 6 * 3600 * 1000,
        explore_slots: int = 1,
        seed: int = 0,
    ) -> None:
        self.blend = blend
        self.half_life_ms = half_life_ms
        self.explore_slots = explore_slots
        self.seed = seed
        self.popularity = DecayedPopularity(half_life_ms)
        self.cooccurrence = CoOccurrence(window=30)
        self.transitions = CoOccurrence(window=1, symmetric=False)
        self.sequence = SequenceNeighbors()
        self.affinity = CategoryAffinity()
        self._categories: dict[str, tuple[str, ...]] = {}
        self._by_category: dict[str, DecayedPopularity] = {}
        self._unavailable: set[str] = set()
        #: Per item: (positives, events); the smoothed share of positives is its quality.
        self._counts: dict[str, tuple[int, int]] = {}
        #: Items in the catalog without any event yet, newest last: the exploration pool.
        self._fresh: dict[str, None] = {}
        self._rng = random.Random(seed)

    signal = staticmethod(signal_of)

    # -- learning -------------------------------------------------------------------------------

    def learn_item(self, record: ItemRecord) -> None:
        """Take a catalog update: categories and availability; a new item joins the exploration pool."""
        if record.item_id not in self._categories and record.item_id not in self._counts:
            self._fresh[record.item_id] = None
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
        item, user = event.item_id, event.user_id
        self._fresh.pop(item, None)
        positives, seen = self._counts.get(item, (0, 0))
        self._counts[item] = (positives + signal.label, seen + 1)
        if signal.consumed:
            history = self.sequence.history(user)
            self.cooccurrence.learn_one(history, item)
            self.transitions.learn_one(history, item)
            self.sequence.learn_one(user, item)
        categories = self._categories.get(item, ())
        self.affinity.learn_one(user, categories, signal.label, event.context, event.ts)
        if signal.label == 1:
            self.popularity.learn_one(item, signal.weight, event.ts)
            for category in categories:
                self._by_category[category].learn_one(item, signal.weight, event.ts)
            negative = self._negative_category(categories)
            if negative is not None:
                self.affinity.learn_one(user, [negative], 0, event.context, event.ts)

    def like_categories(self, user_id: str, categories: tuple[str, ...], ts: int) -> None:
        """Onboarding: the user says they like these categories (before any event)."""
        for category in categories:
            self._by_category.setdefault(category, DecayedPopularity(self.half_life_ms))
            self.affinity.learn_one(user_id, [category], 1, None, ts, weight=3.0)

    def forget_user(self, user_id: str) -> None:
        """Drop what the model holds about one user (reset or erasure); shared item state stays."""
        self.sequence.forget(user_id)
        self.affinity.forget(user_id)

    def _negative_category(self, positives: tuple[str, ...]) -> str | None:
        """One category the user did not pick, as the implicit negative of a positive event."""
        if not positives or len(self._by_category) <= len(positives):
            return None
        while True:
            category = self._rng.choice(list(self._by_category))
            if category not in positives:
                return category

    # -- ranking --------------------------------------------------------------------------------

    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]:
        """Top-n (item_id, score) for the user, best first, without items the user consumed."""
        when = ts if ts is not None else (profile.last_ts or None)
        history = self.sequence.history(profile.user_id) or profile.recent
        signals = (
            (self.blend.sequence, self.sequence.scores(history, profile.user_id)),
            (self.blend.cooccurrence, self.cooccurrence.scores(history, recent=15)),
            (self.blend.transitions, self.transitions.scores(history, recent=5)),
        )
        category_prob = self.affinity.predict_many(profile.user_id, self._by_category, context, when)
        scores: dict[str, float] = {}
        for weight, signal in signals:
            top = max(signal.values(), default=0.0)
            if top > 0 and weight:
                scale = weight / top
                for item, value in signal.items():
                    scores[item] = scores.get(item, 0.0) + value * scale
        if len(scores) > SHORTLIST:
            scores = dict(heapq.nlargest(SHORTLIST, scores.items(), key=lambda kv: kv[1]))
        self._add_popular(scores, profile, n, category_prob)
        ranked = heapq.nlargest(n, self._final(scores, profile, category_prob))
        return self._explore([(item, round(score, 6)) for score, item in ranked], profile, n, category_prob)

    def _final(
        self, scores: dict[str, float], profile: UserProfile, category_prob: dict[str, float]
    ) -> list[tuple[float, str]]:
        """Add popularity, quality and (relative) category affinity; drop what the user may not see."""
        b = self.blend
        top_prob = max(category_prob.values(), default=1.0) or 1.0
        relative = {c: p / top_prob for c, p in category_prob.items()}
        fallback = sum(relative.values()) / len(relative) if relative else 0.0
        popularity, counts, categories = self.popularity.score, self._counts, self._categories
        hidden, unavailable = profile.consumed, self._unavailable
        # Items share few category combinations: compute each combination's affinity once per call.
        by_combination: dict[tuple[str, ...], float] = {}
        out = []
        for item, value in scores.items():
            if item in hidden or item in unavailable:
                continue
            positives, seen = counts.get(item, (0, 0))
            cats = categories.get(item, ())
            affinity = by_combination.get(cats)
            if affinity is None:
                affinity = by_combination[cats] = b.affinity * max(
                    (relative[c] for c in cats), default=fallback
                )
            value += b.popularity * popularity(item) + b.quality * (positives + 1) / (seen + 2)
            out.append((value + affinity, item))
        return out

    def _add_popular(
        self, scores: dict[str, float], profile: UserProfile, n: int, category_prob: dict[str, float]
    ) -> None:
        """Candidates beyond the user's sequence: popular now, overall and in favourite categories."""
        depth = n + min(len(profile.consumed), MAX_SKIPPED)
        self._add_unhidden(scores, profile, self.popularity.top(depth), n)
        favourites = heapq.nlargest(3, category_prob, key=category_prob.__getitem__)
        for category in favourites:
            self._add_unhidden(scores, profile, self._by_category[category].top(depth), n // 2 + 1)

    def _add_unhidden(
        self, scores: dict[str, float], profile: UserProfile, ranked: list[tuple[str, float]], k: int
    ) -> None:
        for item, _ in ranked:
            if k == 0:
                return
            if item not in profile.consumed and item not in self._unavailable:
                scores.setdefault(item, 0.0)
                k -= 1

    def _explore(
        self, ranked: list[tuple[str, float]], profile: UserProfile, n: int, category_prob: dict[str, float]
    ) -> list[tuple[str, float]]:
        """Give the last ``explore_slots`` places to fresh items (no events yet), best category first."""
        if not self._fresh or not ranked or self.explore_slots <= 0 or n < 5:
            return ranked
        shown = {item for item, _ in ranked}
        hidden, unavailable = profile.consumed, self._unavailable
        # The newest 50 fresh items, read from the end: cost must not grow with the catalog.
        newest = itertools.islice(reversed(self._fresh), 50)
        pool = [i for i in newest if i not in shown and i not in hidden and i not in unavailable]
        if not pool:
            return ranked
        pool.sort(
            key=lambda i: -max((category_prob.get(c, 0.0) for c in self._categories.get(i, ())), default=0)
        )
        keep = ranked[: max(len(ranked) - self.explore_slots, n - self.explore_slots)]
        floor = keep[-1][1] if keep else 0.0
        return keep + [(item, floor) for item in pool[: n - len(keep)]]
