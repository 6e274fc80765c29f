"""Explanations: built from the ranking's own features, with the user's item they came from."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from models.explain import Explanation
from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.synth import Clickstream
from schemas.events import Event, ItemRecord

TS = 10**12


def _learn(rec: HybridRecommender, profile: UserProfile, item: str, n: int) -> None:
    event = Event(
        event_id=f"{profile.user_id}-{n}", user_id=profile.user_id, item_id=item, type="click", ts=TS + n
    )
    rec.learn_one(event, profile)
    profile.observe(event, rec.signal(event))


def test_an_item_linked_to_the_users_item_is_explained_by_it() -> None:
    rec = HybridRecommender(seed=0, explore_slots=0)
    for item in ("a", "b", "c", "d"):
        rec.learn_item(ItemRecord(item_id=item, categories=("x",)))
    others = [UserProfile(f"o{n}") for n in range(5)]
    for n, other in enumerate(others):
        _learn(rec, other, "a", 10 * n)
        _learn(rec, other, "b", 10 * n + 1)
    me = UserProfile("me")
    _learn(rec, me, "a", 100)
    items = [item for item, _ in rec.recommend(me, 3)]
    assert items[0] == "b"
    why = rec.explain(me, items)
    assert len(why) == len(items)
    assert why[0].reason == "item"
    assert why[0].anchor == "a"
    assert why[0].signals and why[0].signals[0] in {"sequence", "cooccurrence", "transitions"}


def test_exploration_places_are_explained_as_exploring() -> None:
    rec = HybridRecommender(seed=0, explore_slots=1)
    for n in range(8):
        rec.learn_item(ItemRecord(item_id=f"i{n}", categories=("x",)))
    users = [UserProfile(f"u{n}") for n in range(3)]
    for n in range(6):
        _learn(rec, users[n % 3], f"i{n}", n)
    rec.learn_item(ItemRecord(item_id="new", categories=("x",)))
    items = [item for item, _ in rec.recommend(users[0], 5)]
    assert items[-1] == "new"
    assert rec.explain(users[0], items)[-1] == Explanation("exploring")


def test_an_unknown_user_gets_an_explanation_per_item() -> None:
    rec = HybridRecommender(seed=0, explore_slots=0)
    for n in range(4):
        rec.learn_item(ItemRecord(item_id=f"i{n}", categories=("x",)))
    _learn(rec, UserProfile("u"), "i1", 0)
    nobody = UserProfile("nobody")
    items = [item for item, _ in rec.recommend(nobody, 3)]
    why = rec.explain(nobody, items)
    assert [w.reason for w in why][0] in {"popular", "well_rated", "category"}
    assert all(w.anchor is None or w.reason == "category" for w in why)


def test_items_without_any_category_are_explained() -> None:
    rec = HybridRecommender(seed=0, explore_slots=0)
    for n in range(4):
        rec.learn_item(ItemRecord(item_id=f"i{n}"))
    users = [UserProfile(f"u{n}") for n in range(3)]
    for n in range(6):
        _learn(rec, users[n % 3], f"i{n % 4}", n)
    items = [item for item, _ in rec.recommend(users[0], 3)]
    why = rec.explain(users[0], items)
    assert len(why) == len(items)
    assert all(w.reason != "category" for w in why)


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    users=st.integers(3, 30),
    items=st.integers(8, 60),
    onboarded=st.floats(0.0, 1.0),
)
def test_every_reason_of_every_list_is_true_to_the_users_own_history(
    seed: int, users: int, items: int, onboarded: float
) -> None:
    """A ``category`` reason names a category of the user's own positives or onboarding likes; an ``item``
    reason names one of the user's own positives: checked for every list after every event of a stream."""
    world = Clickstream(users, items, n_categories=5, seed=seed)
    rec = HybridRecommender(seed=seed)
    categories: dict[str, tuple[str, ...]] = {}
    for record in world.items():
        rec.learn_item(record)
        categories[record.item_id] = record.categories
    rng = random.Random(seed)
    positives: dict[str, set[str]] = {}
    liked: dict[str, set[str]] = {}
    profiles: dict[str, UserProfile] = {}
    checked = 0
    for event in world.events(400):
        user = event.user_id
        if user not in profiles:
            profiles[user] = UserProfile(user)
            if rng.random() < onboarded:  # onboarding likes before the first event, as an app sends them
                picks = tuple(rng.sample(world.categories, 2))
                rec.like_categories(user, picks, event.ts)
                liked.setdefault(user, set()).update(picks)
        profile = profiles[user]
        rec.learn_one(event, profile)
        profile.observe(event, rec.signal(event))
        if rec.signal(event).label == 1:
            positives.setdefault(user, set()).add(event.item_id)
        ranked = [item for item, _ in rec.recommend(profile, 10, event.context, event.ts)]
        mine = positives.get(user, set())
        interests = liked.get(user, set()) | {c for item in mine for c in categories[item]}
        for item, why in zip(ranked, rec.explain(profile, ranked, event.context, event.ts), strict=True):
            if why.reason == "item":
                assert why.anchor in mine, (user, item, why)
            if why.reason == "category":
                assert why.anchor in interests, (user, item, why)
            checked += 1
    assert checked > 0
