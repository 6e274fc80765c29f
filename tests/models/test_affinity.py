"""Tests for the context-aware category affinity in `models.affinity`."""

from __future__ import annotations

import random

from models.affinity import CategoryAffinity
from schemas.events import Context

TS = 1_700_000_000_000


def test_new_model_is_undecided() -> None:
    probs = CategoryAffinity().predict_many("u1", ["a", "b"], None, None)
    assert probs == {"a": 0.5, "b": 0.5}


def test_two_users_learn_opposite_tastes_independently() -> None:
    aff = CategoryAffinity()
    for _ in range(30):
        aff.learn_one("u1", ["jazz"], 1, None, TS)
        aff.learn_one("u1", ["metal"], 0, None, TS)
        aff.learn_one("u2", ["metal"], 1, None, TS)
        aff.learn_one("u2", ["jazz"], 0, None, TS)
    one = aff.predict_many("u1", ["jazz", "metal"], None, TS)
    two = aff.predict_many("u2", ["jazz", "metal"], None, TS)
    assert one["jazz"] > 0.7 and one["metal"] < 0.3
    assert two["metal"] > 0.7 and two["jazz"] < 0.3
    stranger = aff.predict_many("u3", ["jazz", "metal"], None, TS)
    assert abs(stranger["jazz"] - stranger["metal"]) < 0.2  # the shared effects cancel out


def test_learning_one_user_moves_that_user_most() -> None:
    aff = CategoryAffinity()
    before = aff.predict_many("u2", ["jazz"], None, None)
    for _ in range(20):
        aff.learn_one("u1", ["jazz"], 1, None, None)
    after_u1 = aff.predict_many("u1", ["jazz"], None, None)["jazz"]
    after_u2 = aff.predict_many("u2", ["jazz"], None, None)["jazz"]
    assert after_u1 > after_u2 >= before["jazz"]  # u2 gets shared effects at most


def test_a_device_specific_preference_is_learned() -> None:
    rng = random.Random(3)
    mobile, desktop = Context(device="mobile"), Context(device="desktop")
    aff = CategoryAffinity()
    for n in range(400):
        user = f"u{rng.randrange(200)}"
        on_mobile = rng.random() < 0.5
        context = mobile if on_mobile else desktop
        aff.learn_one(user, ["games"], int(on_mobile), context, TS + n)
        aff.learn_one(user, ["news"], int(not on_mobile), context, TS + n)
    on_mobile_probs = aff.predict_many("new-user", ["games", "news"], mobile, TS)
    on_desktop_probs = aff.predict_many("new-user", ["games", "news"], desktop, TS)
    assert on_mobile_probs["games"] > 0.6 > 0.4 > on_mobile_probs["news"]
    assert on_desktop_probs["news"] > 0.6 > 0.4 > on_desktop_probs["games"]
    no_device = aff.predict_many("new-user", ["games", "news"], Context(), TS)
    assert abs(no_device["games"] - no_device["news"]) < 0.2


def test_weight_strengthens_an_update() -> None:
    light, heavy = CategoryAffinity(), CategoryAffinity()
    light.learn_one("u1", ["a"], 1, None, None, weight=1.0)
    heavy.learn_one("u1", ["a"], 1, None, None, weight=3.0)
    assert heavy.predict_many("u1", ["a"], None, None)["a"] > light.predict_many("u1", ["a"], None, None)["a"]


def test_no_categories_learns_nothing() -> None:
    aff = CategoryAffinity()
    aff.learn_one("u1", [], 1, None, TS)
    assert aff.predict_many("u1", ["a"], None, TS) == {"a": 0.5}
