"""Tests for the hybrid recommender in `models.recommender`, trained on seeded synthetic traffic."""

from __future__ import annotations

import pickle
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from models import ranking_kernels
from models.profile import UserProfile
from models.recommender import MODEL_VERSION, HybridRecommender
from models.synth import Clickstream
from schemas.events import Event, EventType, ItemRecord

SEED = 2


@dataclass(frozen=True)
class World:
    """A recommender trained on background traffic, kept pickled so every test gets a fresh copy."""

    model_bytes: bytes
    profiles: dict[str, UserProfile]
    items: list[ItemRecord]
    last_ts: int

    def model(self) -> HybridRecommender:
        model = pickle.loads(self.model_bytes)
        assert isinstance(model, HybridRecommender)
        return model

    def profile(self, user_id: str) -> UserProfile:
        return UserProfile.from_dict(self.profiles[user_id].to_dict())


def _train(seed: int = SEED) -> tuple[HybridRecommender, dict[str, UserProfile], Clickstream, int]:
    stream = Clickstream(100, 200, n_categories=6, seed=seed)
    model = HybridRecommender(seed=seed)
    for item in stream.items():
        model.learn_item(item)
    profiles: dict[str, UserProfile] = {}
    last_ts = 0
    for event in stream.events(5000):
        profile = profiles.setdefault(event.user_id, UserProfile(event.user_id))
        model.learn_one(event, profile)
        profile.observe(event, model.signal(event))
        last_ts = event.ts
    return model, profiles, stream, last_ts


@pytest.fixture(scope="module")
def world() -> World:
    model, profiles, stream, last_ts = _train()
    return World(pickle.dumps(model), profiles, stream.items(), last_ts)


def _learn(
    model: HybridRecommender, profile: UserProfile, item: str, n: int, ts: int, kind: str = "click"
) -> None:
    event = Event(event_id=f"{profile.user_id}-{n}", user_id=profile.user_id, item_id=item, type=kind, ts=ts)
    model.learn_one(event, profile)
    profile.observe(event, model.signal(event))


def _ids(recs: list[tuple[str, float]]) -> list[str]:
    return [item for item, _ in recs]


def test_version_is_exposed() -> None:
    assert HybridRecommender().version == MODEL_VERSION


def test_consumed_items_are_never_recommended(world: World) -> None:
    model = world.model()
    checked = 0
    for user_id in sorted(world.profiles):
        profile = world.profile(user_id)
        recs = _ids(model.recommend(profile, 20))
        assert not set(recs) & set(profile.consumed), user_id
        checked += len(profile.consumed) > 0
    assert checked > 50


def test_items_the_profile_consumed_before_the_model_knew_it_are_skipped_and_scores_keep_falling(
    world: World,
) -> None:
    model, profile = world.model(), world.profile("u1")
    ranked = _ids(model.recommend(profile, 10))
    # Consumed as far as the profile knows (e.g. a list restored from an older model), not in its history.
    for item in ranked[1:4]:
        profile.consumed[item] = None
    again = model.recommend(profile, 10)
    assert [item for item, _ in again][:1] == ranked[:1] and not set(ranked[1:4]) & set(_ids(again))
    assert len(again) == 10 and all(a[1] > b[1] for a, b in zip(again, again[1:], strict=False))


def test_a_list_read_past_the_sorted_head_takes_the_rest_best_first(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel sorts only the head of the ranking; a list that skips nearly all of it (items the
    profile consumed before the model knew) takes the rest by score, as a full sort would."""
    model, profile = world.model(), world.profile("u1")
    outputs: list[tuple[Any, ...]] = []
    real = ranking_kernels.rank

    def spy(*args: Any) -> tuple[Any, ...]:
        outputs.append(real(*args))
        return outputs[-1]

    monkeypatch.setattr(ranking_kernels, "rank", spy)
    model.recommend(profile, 10)
    listed, totals, stepped = outputs[-1][3:6]
    assert 0 < stepped.size < listed.size  # only the head came sorted
    names = model._items.names  # noqa: SLF001 - item names of the model's ids
    for item in listed[: stepped.size - 3].tolist():
        profile.consumed[names[item]] = None
    again = model.recommend(profile, 10)
    score = {names[item]: total for item, total in zip(listed.tolist(), totals.tolist(), strict=True)}
    left = [names[item] for item in listed.tolist() if names[item] not in profile.consumed]
    assert _ids(again) == sorted(left, key=lambda item: -score[item])[:10]
    assert all(a[1] > b[1] for a, b in zip(again, again[1:], strict=False))


def test_unavailable_items_are_not_recommended_until_available_again(world: World) -> None:
    model = world.model()
    profile = world.profile("u1")
    best = _ids(model.recommend(profile, 10))[0]
    record = next(item for item in world.items if item.item_id == best)
    before = model.withdrawals
    model.learn_item(record.model_copy(update={"available": False}))
    assert best not in _ids(model.recommend(profile, 50))
    assert best not in _ids(model.recommend(UserProfile("stranger"), 200))
    # Counted once (what tells the worker a list ranked before may hold it); a repeat is no withdrawal.
    model.learn_item(record.model_copy(update={"available": False}))
    assert model.withdrawals == before + 1
    model.learn_item(record)
    assert _ids(model.recommend(profile, 10))[0] == best and model.withdrawals == before + 1


@pytest.mark.parametrize("n", [0, 1, 7, 50, 1000])
def test_never_more_than_n(world: World, n: int) -> None:
    model = world.model()
    for user_id in ("u1", "u2", "u50", "stranger"):
        profile = world.profile(user_id) if user_id in world.profiles else UserProfile(user_id)
        recs = model.recommend(profile, n)
        assert len(recs) <= n
        assert len(set(_ids(recs))) == len(recs)
        assert [s for _, s in recs] == sorted((s for _, s in recs), reverse=True)
    if 0 < n <= 50:
        assert len(model.recommend(UserProfile("stranger"), n)) == n  # enough items to fill the list


def test_same_seed_same_recommendations() -> None:
    a, profiles_a, _, _ = _train()
    b, profiles_b, _, _ = _train()
    for user_id in ("u1", "u7", "u42"):
        assert profiles_a[user_id] == profiles_b[user_id]
        assert a.recommend(profiles_a[user_id], 15) == b.recommend(profiles_b[user_id], 15)


def test_unknown_user_gets_popular_items(world: World) -> None:
    model = world.model()
    recs = _ids(model.recommend(UserProfile("stranger"), 10))
    assert len(recs) == 10
    popular = _ids(model.popular(20))
    assert popular[0] in recs[:3]
    assert len(set(recs) & set(popular)) >= 7


def test_pickle_round_trip_gives_identical_recommendations(world: World) -> None:
    model = world.model()
    copy = pickle.loads(pickle.dumps(model))
    users = ["u1", "u3", "u99"]
    for user_id in users:
        assert copy.recommend(world.profile(user_id), 20) == model.recommend(world.profile(user_id), 20)
    # The copy also keeps learning exactly like the original (random state included).
    left, right = world.profile("u3"), world.profile("u3")
    for n, item in enumerate(["i5", "i17", "i120"]):
        _learn(model, left, item, n, world.last_ts + n + 1)
        _learn(copy, right, item, n, world.last_ts + n + 1)
    for user_id in users:
        assert copy.recommend(world.profile(user_id), 20) == model.recommend(world.profile(user_id), 20)
    assert copy.recommend(right, 20) == model.recommend(left, 20)


def test_a_user_who_likes_one_category_gets_mostly_that_category(world: World) -> None:
    model = world.model()
    target, _ = Counter(item.categories[0] for item in world.items).most_common(1)[0]
    only_target = [item.item_id for item in world.items if item.categories == (target,)]
    assert len(only_target) >= 25  # enough left to fill a top 10 after 15 clicks
    fan = UserProfile("fan")
    for n, item in enumerate(only_target[:15]):
        _learn(model, fan, item, n, world.last_ts + (n + 1) * 1000)
    categories = {item.item_id: item.categories for item in world.items}
    top = _ids(model.recommend(fan, 10))
    assert len(top) == 10
    assert sum(target in categories[item] for item in top) >= 7
    stranger_top = _ids(model.recommend(UserProfile("stranger"), 10))
    assert sum(target in categories[item] for item in stranger_top) < 7  # it is the fan's taste, not the base


def test_learning_one_event_changes_that_users_recommendations(world: World) -> None:
    model = world.model()
    profile = world.profile("u10")
    before = model.recommend(profile, 10)
    clicked = _ids(before)[0]
    _learn(model, profile, clicked, 0, world.last_ts + 1)
    after = model.recommend(profile, 10)
    assert after != before
    assert clicked not in _ids(after)


def test_an_impression_teaches_nothing(world: World) -> None:
    model = world.model()
    profile = world.profile("u10")
    before = model.recommend(profile, 10)
    shown = _ids(before)[0]
    _learn(model, profile, shown, 0, world.last_ts + 1, kind=EventType.IMPRESSION.value)
    assert model.recommend(profile, 10) == before


def test_a_dismissed_item_disappears(world: World) -> None:
    model = world.model()
    profile = world.profile("u10")
    dismissed = _ids(model.recommend(profile, 10))[0]
    _learn(model, profile, dismissed, 0, world.last_ts + 1, kind="dismiss")
    assert dismissed not in _ids(model.recommend(profile, 50))


def test_an_empty_model_recommends_nothing() -> None:
    assert HybridRecommender().recommend(UserProfile("u1"), 10) == []


def _small_world() -> tuple[HybridRecommender, UserProfile]:
    """x1, x2 are the most popular x items and alice consumed them; x3 is the x item left."""
    model = HybridRecommender(seed=0)
    for i in range(1, 4):
        model.learn_item(ItemRecord(item_id=f"x{i}", categories=("x",)))
    for i in range(1, 11):
        model.learn_item(ItemRecord(item_id=f"y{i}", categories=("y",)))
    ts = 10**12
    for i in range(1, 11):
        _learn(model, UserProfile("bob"), f"y{i}", i, ts + i)
    for n, item in enumerate(["x1", "x1", "x2", "x2", "x3"]):
        _learn(model, UserProfile("carol"), item, n, ts + 20 + n, kind="view")
    alice = UserProfile("alice")
    for n in range(20):
        _learn(model, alice, "x1" if n % 2 else "x2", n, ts + 40 + n)
    return model, alice


def test_the_best_item_is_found_with_a_larger_n() -> None:
    model, alice = _small_world()
    assert _ids(model.recommend(alice, 3))[0] == "x3"


def test_the_best_item_is_found_with_a_small_n() -> None:
    model, alice = _small_world()
    assert _ids(model.recommend(alice, 2))[0] == "x3"


def test_a_heavy_user_still_gets_a_full_list() -> None:
    model = HybridRecommender(seed=0)
    for i in range(40):
        model.learn_item(ItemRecord(item_id=f"i{i}", categories=("a" if i % 2 else "b",)))
    heavy = UserProfile("heavy")
    for i in range(30):
        _learn(model, heavy, f"i{i}", i, 10**12 + i)
    for n in (5, 10):
        recs = _ids(model.recommend(heavy, n))
        assert len(recs) == n and not set(recs) & set(heavy.consumed)


def test_the_exploration_place_goes_to_a_fresh_item_of_the_users_best_liked_category(world: World) -> None:
    model = world.model()
    user = sorted(world.profiles)[0]
    profile = world.profile(user)
    shares = model.shares.vector(user, len(model.affinity.categories)).tolist()
    names = model.affinity.categories.names
    best, worst = names[shares.index(max(shares))], names[shares.index(min(shares))]
    assert best != worst
    model.learn_item(ItemRecord(item_id="fresh-best", categories=(best,)))
    model.learn_item(ItemRecord(item_id="fresh-worst", categories=(worst,)))  # newest: first unsorted
    recs = _ids(model.recommend(profile, 10, None, world.last_ts))
    assert recs[-1] == "fresh-best" and "fresh-worst" not in recs


def test_a_user_with_only_onboarding_likes_gets_their_categories_at_the_top(world: World) -> None:
    model = world.model()
    categories = {item.item_id: set(item.categories) for item in world.items}
    popular = Counter(c for item, _ in model.popular(30) for c in categories[item])
    # The two categories least present among the popular items: popularity alone would not show them.
    liked = {c for c, _ in sorted(popular.items(), key=lambda kv: (kv[1], kv[0]))[:2]}
    model.like_categories("newcomer", tuple(sorted(liked)), world.last_ts)
    newcomer = UserProfile("newcomer")
    top = _ids(model.recommend(newcomer, 10, None, world.last_ts))
    assert len(top) == 10
    assert all(categories[item] & liked for item in top[:5]), top
    assert sum(bool(categories[item] & liked) for item in top) >= 7
    stranger = _ids(model.recommend(UserProfile("stranger"), 10, None, world.last_ts))
    assert sum(bool(categories[item] & liked) for item in stranger) <= 4  # the likes did it, not the base
    for why in model.explain(newcomer, top, None, world.last_ts):
        assert why.reason != "item" and (why.reason != "category" or why.anchor in liked)
