"""Contract checks run over every registered recommender (in the style of River's ``checks``)."""

from __future__ import annotations

import copy
import pickle

import pytest

from models.profile import UserProfile
from models.registry import RECOMMENDERS, Recommender
from models.synth import Clickstream
from schemas.events import Event, ItemRecord

NAMES = sorted(RECOMMENDERS)


def _trained(name: str, seed: int = 3) -> tuple[Recommender, dict[str, UserProfile], list[ItemRecord]]:
    stream = Clickstream(40, 80, n_categories=5, seed=seed)
    model = RECOMMENDERS[name](seed)
    items = stream.items()
    for item in items:
        model.learn_item(item)
    profiles: dict[str, UserProfile] = {}
    for event in stream.events(1500):
        profile = profiles.setdefault(event.user_id, UserProfile(event.user_id))
        model.learn_one(event, profile)
        profile.observe(event, model.signal(event))
    return model, profiles, items


def _click(user: str, item: str, n: int) -> Event:
    return Event(event_id=f"c-{user}-{n}", user_id=user, item_id=item, type="click", ts=2 * 10**12 + n)


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_mutated(name: str) -> None:
    model, profiles, _ = _trained(name)
    profile = profiles["u1"]
    before = copy.deepcopy(profile.to_dict())
    event = _click("u1", "i3", 1)
    event_before = event.model_dump()
    model.recommend(profile, 10, event.context, event.ts)
    model.learn_one(event, profile)
    assert profile.to_dict() == before
    assert event.model_dump() == event_before


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_gives_identical_scores(name: str) -> None:
    model, profiles, _ = _trained(name)
    clone = pickle.loads(pickle.dumps(model))
    for user in ("u1", "u2", "u3"):
        assert clone.recommend(profiles[user], 10) == model.recommend(profiles[user], 10)
    event = _click("u1", "i5", 2)
    model.learn_one(event, profiles["u1"])
    clone.learn_one(event, profiles["u1"])
    assert clone.recommend(profiles["u1"], 10) == model.recommend(profiles["u1"], 10)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name: str) -> None:
    first, profiles, _ = _trained(name)
    second, _, _ = _trained(name)
    assert first.recommend(profiles["u4"], 10) == second.recommend(profiles["u4"], 10)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_user_and_item_are_handled(name: str) -> None:
    model, _, _ = _trained(name)
    stranger = UserProfile("never-seen")
    recs = model.recommend(stranger, 5)
    assert 0 < len(recs) <= 5
    event = _click("never-seen", "never-listed", 1)
    model.learn_one(event, stranger)
    stranger.observe(event, model.signal(event))
    assert all(item != "never-listed" for item, _ in model.recommend(stranger, 5))


@pytest.mark.parametrize("name", NAMES)
def test_learning_from_an_event_changes_that_users_scores(name: str) -> None:
    model, profiles, items = _trained(name)
    profile = profiles["u2"]
    before = model.recommend(profile, 20)
    target = before[0][0]
    for n in range(3):
        event = _click("u2", target, n) if n == 0 else _click(f"other{n}", items[-1].item_id, n)
        model.learn_one(event, profile if n == 0 else UserProfile(event.user_id))
        if n == 0:
            profile.observe(event, model.signal(event))
    after = model.recommend(profile, 20)
    assert after != before
    assert target not in [item for item, _ in after]


@pytest.mark.parametrize("name", NAMES)
def test_scores_are_ordered_and_bounded(name: str) -> None:
    model, profiles, _ = _trained(name)
    for n in (1, 5, 30):
        recs = model.recommend(profiles["u5"], n)
        assert len(recs) <= n
        scores = [s for _, s in recs]
        assert scores == sorted(scores, reverse=True)
        assert len({item for item, _ in recs}) == len(recs)
