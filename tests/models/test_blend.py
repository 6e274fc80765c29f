"""The learned blend: listwise (softmax) updates towards the taken item, bounded by the prior."""

from __future__ import annotations

import numpy as np

from models.blend import OnlineBlend
from models.profile import UserProfile
from models.recommender import HybridRecommender
from schemas.events import Event, ItemRecord

SHOWN = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])


def test_taking_a_lower_item_moves_weight_to_its_features() -> None:
    blend = OnlineBlend([1.0, 1.0], learning_rate=0.5, pull=0.0)
    for _ in range(10):
        assert blend.learn_one(SHOWN, taken=2)
    first, second = blend.weights.tolist()
    assert second > 1.0 > first


def test_weights_stay_non_negative_and_reset_returns_to_the_prior() -> None:
    blend = OnlineBlend([0.1, 1.0], learning_rate=5.0, pull=0.0)
    for _ in range(50):
        blend.learn_one(SHOWN, taken=2)
    assert blend.weights.min() == 0.0
    blend.reset()
    assert blend.weights.tolist() == [0.1, 1.0]


def test_the_pull_keeps_weights_near_the_prior() -> None:
    loose = OnlineBlend([1.0, 1.0], learning_rate=0.5, pull=0.0)
    held = OnlineBlend([1.0, 1.0], learning_rate=0.5, pull=1.0)
    for _ in range(200):
        loose.learn_one(SHOWN, taken=2)
        held.learn_one(SHOWN, taken=2)
    assert abs(held.weights - 1.0).max() < abs(loose.weights - 1.0).max()


def test_nothing_is_learned_from_an_item_that_was_not_a_candidate() -> None:
    blend = OnlineBlend([1.0, 1.0])
    assert not blend.learn_one(SHOWN, taken=7)
    assert not blend.learn_one(SHOWN[:1], taken=0)
    assert blend.updates == 0


def test_the_recommender_learns_its_blend_from_the_users_next_item() -> None:
    rec = HybridRecommender(seed=3)
    profiles: dict[str, UserProfile] = {}
    items = [f"i{n}" for n in range(12)]
    for item in items:
        rec.learn_item(ItemRecord(item_id=item, categories=("c" + item[-1],)))
    ts = 10**12
    for round_ in range(6):
        for u in range(8):
            user = f"u{u}"
            profile = profiles.setdefault(user, UserProfile(user))
            rec.recommend(profile, 5)
            item = items[(u + round_ * 3) % len(items)]
            event = Event(event_id=f"{user}-{round_}", user_id=user, item_id=item, type="purchase", ts=ts)
            ts += 1000
            rec.learn_one(event, profile)
            profile.observe(event, rec.signal(event))
    assert rec.ranker.updates > 0
    assert not np.array_equal(rec.ranker.weights, np.array(rec.ranker.prior))


def test_a_feature_that_ranks_well_is_not_pushed_down_by_the_items_above_the_taken_one() -> None:
    # Ranked by feature 0; the user takes the third, which beats most of the list on feature 0 too.
    # Pairing it only with the two ranked above (the old rule) lowered weight 0: the blend drifted
    # away from the signal that ranks well. Against the whole list, both weights rise.
    shown = np.array([[1.0, 0.0], [0.9, 0.0], [0.8, 1.0]] + [[0.1 * k, 0.0] for k in range(7)])
    blend = OnlineBlend([1.0, 1.0], learning_rate=0.5, pull=0.0)
    for _ in range(50):
        blend.learn_one(shown, taken=2)
    first, second = blend.weights.tolist()
    assert first > 1.0 and second > 1.0


def test_a_non_finite_feature_teaches_the_blend_nothing() -> None:
    # One -inf feature once made every weight NaN for good, and NaN scores then broke the shortlist.
    blend = OnlineBlend([1.0, 0.5], learning_rate=0.5, pull=0.0)
    shown = np.array([[1.0, -np.inf], [0.2, 1.0]])
    assert not blend.learn_one(shown, taken=1)
    assert blend.weights.tolist() == [1.0, 0.5]


def test_an_item_known_without_any_category_gets_the_no_category_affinity() -> None:
    from models.ranking_kernels import _best, features

    relative = np.array([0.5, 1.0, 0.75, -np.inf])  # two categories, then no-category, then padding
    matrix = np.array([[0, -1], [-1, -1], [-2, -1]])  # item 1: padding only (no categories at all)
    table = features(
        np.array([0, 1, 2]), np.zeros((3, 4)), relative, matrix, np.ones(3), 1.0, np.zeros(3),
        np.zeros(3), np.array([0.5, 0.5]), np.ones(2), np.zeros((3, 2)), 1.0,
    )  # fmt: skip
    assert np.isfinite(table).all()
    assert table[:, 6].tolist() == [0.5, 0.75, 0.75]
    # And the shortlist never hands out an unset index, NaN scores or not.
    assert sorted(_best(np.array([0.3, np.nan, 0.9, 0.1]), 2).tolist()) == [0, 2]
    assert sorted(_best(np.array([np.nan, np.nan, 0.9]), 2).tolist()) == [0, 2]


def test_the_shortlist_and_the_sorted_head_match_a_full_stable_sort() -> None:
    """`_best` (branch-free quickselect) and `_head_first` against numpy's stable sort, on scores with
    many ties and some NaN (which rank last)."""
    from models.ranking_kernels import _best, _head_first

    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 40, 700):
        scores = np.round(rng.random(size) * rng.choice([3, 1000]), 0)
        scores[rng.random(size) < 0.05] = np.nan
        full = np.argsort(-np.where(np.isnan(scores), -np.inf, scores), kind="stable")
        for k in {1, size // 3 + 1, size - 1, size} - {0}:
            assert sorted(_best(scores, k).tolist()) == sorted(full[:k].tolist()), (size, k)
            order = _head_first(scores, k)
            assert order[:k].tolist() == full[:k].tolist(), (size, k)
            assert sorted(order.tolist()) == list(range(size))
