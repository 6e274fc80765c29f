"""Explanations are true (issue F): over synthetic streams, every ``category`` reason names a category
the user showed interest in (a category of an item they liked, or one of their onboarding likes) and
every ``item`` reason names an item the user consumed."""

from __future__ import annotations

import pytest

from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.synth import Clickstream


@pytest.mark.parametrize(
    ("seed", "users", "items", "events"), [(7, 200, 300, 6_000), (1, 120, 200, 4_000), (3, 60, 150, 1_500)]
)
def test_every_reason_points_at_the_users_own_history(seed: int, users: int, items: int, events: int) -> None:
    world = Clickstream(users, items, n_categories=12, seed=seed)
    categories = {record.item_id: set(record.categories) for record in world.items()}
    model = HybridRecommender(seed=seed)
    for record in world.items():
        model.learn_item(record)
    onboarding = {"u1": ("c01", "c02"), "u2": ("c11",)}
    for user, liked_categories in onboarding.items():
        model.like_categories(user, liked_categories, world.start_ms)
    profiles: dict[str, UserProfile] = {}
    interest: dict[str, set[str]] = {u: set(c) for u, c in onboarding.items()}
    consumed: dict[str, set[str]] = {}
    for event in world.events(events):
        profile = profiles.setdefault(event.user_id, UserProfile(event.user_id))
        signal = model.signal(event)
        model.learn_one(event, profile)
        profile.observe(event, signal)
        if signal.label == 1:
            interest.setdefault(event.user_id, set()).update(categories[event.item_id])
        if signal.consumed:
            consumed.setdefault(event.user_id, set()).add(event.item_id)
    checked = {"item": 0, "category": 0}
    for user, profile in profiles.items():
        listed = [item for item, _ in model.recommend(profile, 10)]
        for item, why in zip(listed, model.explain(profile, listed), strict=True):
            if why.reason == "category":
                checked["category"] += 1
                assert why.anchor in interest.get(user, set()), (
                    user,
                    item,
                    why,
                    sorted(interest.get(user, ())),
                )
                assert why.anchor in categories[item]
            elif why.reason == "item":
                checked["item"] += 1
                assert why.anchor in consumed.get(user, set()), (user, item, why)
    assert checked["item"] > 50 and checked["category"] > 20, checked  # the property was exercised
