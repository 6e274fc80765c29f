"""`models.bulk_learn`: learning other workers' events in bulk leaves the model exactly as learning them
one by one does (the path a worker's own events take)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from models import bulk_learn
from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.synth import Clickstream
from schemas.events import Event, ItemRecord


def _stream(seed: int) -> tuple[list[ItemRecord], list[Event]]:
    """Synthetic traffic (views, clicks, carts, impressions, dismissals, with contexts) plus what it
    lacks: low and high ratings, items without categories and items the catalog never listed."""
    world = Clickstream(120, 160, seed=seed)
    items = world.items() + [ItemRecord(item_id=f"bare{n}") for n in range(5)]
    rng = random.Random(seed)
    events = list(world.events(6_000))
    for n in range(600):
        user, ts = f"u{rng.randrange(120)}", events[rng.randrange(len(events))].ts
        item = rng.choice([f"bare{rng.randrange(5)}", f"new{n}", items[rng.randrange(160)].item_id])
        rating = float(rng.choice([1, 2, 3, 4, 5]))
        events.insert(rng.randrange(len(events)), Event(
            event_id=f"x{n}", user_id=user, item_id=item, type="rating", value=rating, ts=ts))  # fmt: skip
    return items, events


def _state(model: HybridRecommender) -> dict[str, np.ndarray]:
    """The learned arrays, trimmed to what is used (capacities may differ)."""
    items = len(model._items)  # noqa: SLF001
    overall, by_category = model.heads.kernel_state()
    return {
        "positives": model._positives[:items],  # noqa: SLF001
        "seen": model._seen[:items],  # noqa: SLF001
        "fit": model.item_categories.fit[:items],
        "shares": model.shares.kernel_state("", len(model.affinity.categories))[1],
        "affinity": model.affinity.learn_state()[0],
        "context": model.affinity.learn_state()[1],
        "intercept": model.affinity.learn_state()[2],
        "heads": by_category,
        "overall": overall,
        "mass": model.heads.mass(),
        "cooccurrence": model.cooccurrence.kernel_state()[2],
        "transitions": model.transitions.kernel_state()[2],
    }


@pytest.mark.parametrize("chunk", [1, 37, 10_000])
def test_bulk_is_one_by_one(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    items, events = _stream(seed=chunk)
    one, bulk = HybridRecommender(seed=3), HybridRecommender(seed=3)
    for record in items:
        one.learn_item(record)
        bulk.learn_item(record)
    for event in events:
        one.learn_one(event, UserProfile(event.user_id))  # never ranked: no blend to learn either way
    calls: list[int] = []
    kernel = bulk_learn.learn_events

    def counted(*args: object) -> int:
        calls.append(int(args[0]))  # type: ignore[call-overload]
        return int(kernel(*args))

    monkeypatch.setattr(bulk_learn, "learn_events", counted)
    for start in range(0, len(events), chunk):
        bulk.learn_others(events[start : start + chunk])
    if chunk > 1_000:  # the arrays start small: the run stopped for room and went on
        assert len(calls) > 1 and calls[0] == 0 and calls[1] > 0
    expected, got = _state(one), _state(bulk)
    for name, array in expected.items():
        trimmed = got[name][: len(array)] if array.ndim else got[name]
        assert np.array_equal(array, trimmed), name
    profiles: dict[str, UserProfile] = {}
    for event in events:
        profiles.setdefault(event.user_id, UserProfile(event.user_id)).observe(event, one.signal(event))
    for profile in profiles.values():
        assert one.recommend(profile, 20) == bulk.recommend(profile, 20), profile.user_id


def test_a_ranking_kept_from_before_is_dropped_not_learned() -> None:
    items, events = _stream(seed=5)
    model = HybridRecommender(seed=3)
    for record in items:
        model.learn_item(record)
    for event in events[:2_000]:
        model.learn_one(event, UserProfile(event.user_id))
    user = events[2_000].user_id
    model.recommend(UserProfile(user), 20)
    weights = model.ranker.weights.copy()
    model.learn_others([e for e in events[2_000:3_000] if e.user_id == user])
    assert np.array_equal(weights, model.ranker.weights)
    assert user not in model._shown  # noqa: SLF001
    model.learn_others([])  # nothing to learn is no error
