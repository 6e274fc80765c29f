"""The worker's own quality figure, computed in-process for any recommender over a stream of events.

HR@k as the worker counts it (`streams.quality`): a liked event of a user who already has a list, for an
item the user has not consumed, is a hit when the item is in the top ``k`` of the list published after
the user's previous event. Used to set a baseline's figure beside the engine's live one (the demo); no
Kafka, no Redis.
"""

from __future__ import annotations

__all__ = ["StreamScore", "score_stream"]

from collections.abc import Iterable
from dataclasses import dataclass, field

from models.profile import UserProfile
from models.registry import Recommender
from schemas.events import Event, ItemRecord


@dataclass(slots=True)
class StreamScore:
    """Hits over scored events, and each user's last list (for the share of tastes in it)."""

    hits: int = 0
    scored: int = 0
    lists: dict[str, list[str]] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.scored if self.scored else 0.0


def score_stream(
    model: Recommender, catalog: Iterable[ItemRecord], events: Iterable[Event], k: int = 10
) -> StreamScore:
    """Test, then learn, each event in order; the user's list is re-ranked after each of their events.

    >>> from models.registry import PopularRecommender
    >>> e = [Event(event_id=str(n), user_id=u, item_id=i, type="click", ts=10**12 + n)
    ...      for n, (u, i) in enumerate([("a", "x"), ("b", "y"), ("b", "x")])]
    >>> score = score_stream(PopularRecommender(), [], e, k=1)  # b was shown x, then took it
    >>> score.hits, score.scored, score.hit_rate
    (1, 1, 1.0)
    """
    for record in catalog:
        model.learn_item(record)
    out = StreamScore()
    profiles: dict[str, UserProfile] = {}
    for event in events:
        profile = profiles.setdefault(event.user_id, UserProfile(event.user_id))
        signal = model.signal(event)
        shown = out.lists.get(event.user_id)
        if signal.label == 1 and shown is not None and not profile.has_consumed(event.item_id):
            out.scored += 1
            out.hits += event.item_id in shown[:k]
        model.learn_one(event, profile)
        profile.observe(event, signal)
        out.lists[event.user_id] = [item for item, _ in model.recommend(profile, k, event.context, event.ts)]
    return out
