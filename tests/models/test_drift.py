"""Tests for `models.drift` and `models.drift_response`: detection delay on an abrupt drop, silence on a
stationary stream of the same length, category-mix detection and the responses' effect on the model."""

from __future__ import annotations

import random

import pytest

from models.drift import DriftMonitor
from models.drift_response import DriftResponder
from models.recommender import HybridRecommender

N, CHANGE = 20_000, 10_000
#: Detection within this many scored events of an abrupt drop of the hit rate from 0.3 to 0.15.
MAX_DELAY = 1_500


def _hits(seed: int, before: float, after: float) -> list[bool]:
    rng = random.Random(seed)
    return [rng.random() < (before if t < CHANGE else after) for t in range(N)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adwin_detects_an_abrupt_drop_in_hit_rate_within_a_bounded_delay(seed: int) -> None:
    monitor = DriftMonitor()
    found = [r for t, hit in enumerate(_hits(seed, 0.3, 0.15)) for r in monitor.hit(hit, t)]
    adwin = [r for r in found if r.detector == "adwin" and r.signal == "hit_rate"]
    assert adwin, "no ADWIN detection"
    assert CHANGE < adwin[0].at <= CHANGE + MAX_DELAY
    assert adwin[0].after.mean > adwin[0].before.mean  # the miss rate went up
    assert all(r.at > CHANGE for r in found)  # nothing before the change


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_detection_on_a_stationary_stream_of_the_same_length(seed: int) -> None:
    monitor = DriftMonitor()
    found = [r for t, hit in enumerate(_hits(seed, 0.3, 0.3)) for r in monitor.hit(hit, t)]
    assert found == []


def test_category_mix_detects_a_change_of_favourite_categories_and_not_a_stable_mix() -> None:
    cats = [f"c{c}" for c in range(12)]
    stable, moved = [8, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8]
    rng = random.Random(5)
    calm, shifted = DriftMonitor(), DriftMonitor()
    calm_found, shifted_found = [], []
    for t in range(N):
        calm_found += calm.category((rng.choices(cats, stable)[0],), t)
        weights = stable if t < CHANGE else moved
        shifted_found += shifted.category((rng.choices(cats, weights)[0],), t)
    assert calm_found == []
    assert {r.detector for r in shifted_found} == {"adwin"}
    first = min(r.at for r in shifted_found)
    assert CHANGE < first < CHANGE + 500
    c0 = next(r for r in shifted_found if r.category == "c0")
    assert c0.before.mean > c0.after.mean  # the old favourite lost share


def test_reset_affinity_shrinks_personal_tastes_and_leaves_context_weights() -> None:
    model = HybridRecommender()
    for _ in range(5):
        model.affinity.learn_one("u1", ["jazz"], 1, None, 1_700_000_000_000)
    model.like_categories("u1", ("jazz",), 1_700_000_000_000)
    weights = model.affinity.weights
    personal, shared = "u=u1|c=jazz", next(n for n in weights if n.startswith("h="))
    before = weights[personal], weights[shared], model.shares.evidence("u1")
    assert DriftResponder(model, "reset_affinity", decay=0.5).respond(at=1)
    after = model.affinity.weights
    assert after[personal] == pytest.approx(before[0] / 2)
    assert after[shared] == before[1]
    assert model.shares.evidence("u1") == pytest.approx(before[2] / 2)  # the category shares too


def test_unknown_response_is_refused_and_none_does_nothing() -> None:
    with pytest.raises(ValueError, match="unknown drift response"):
        DriftResponder(HybridRecommender(), "retrain")
    assert not DriftResponder(HybridRecommender(), "none").respond(at=1)


@pytest.mark.parametrize("seed", [0, 1])
def test_taste_reports_users_leaving_their_categories_and_not_settling_into_them(seed: int) -> None:
    rng = random.Random(seed)
    worse, better = DriftMonitor(), DriftMonitor()
    worse_found, better_found = [], []
    for t in range(N):
        worse_found += worse.taste(rng.random() < (0.25 if t < CHANGE else 0.45), t)
        better_found += better.taste(rng.random() < (0.45 if t < CHANGE else 0.25), t)
    assert better_found == []  # fewer misses is no reason to act
    assert [r.signal for r in worse_found][:1] == ["taste"]
    assert CHANGE < worse_found[0].at <= CHANGE + 500
    assert all(r.at > CHANGE for r in worse_found)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_detection_reports_the_two_sides_of_the_detectors_cut(seed: int) -> None:
    monitor = DriftMonitor()
    found = [r for t, hit in enumerate(_hits(seed, 0.3, 0.15)) for r in monitor.hit(hit, t)]
    adwin = next(r for r in found if r.detector == "adwin")
    # ADWIN's first cut covers every value so far: the ones it dropped and the window it kept.
    assert adwin.before.n + adwin.after.n == adwin.at
    assert adwin.before.mean == pytest.approx(0.7, abs=0.03)  # the miss rate before the change
    # The kept window reaches back before the change (ADWIN drops only what its test tells apart), so
    # after is between the two rates: higher, not the new 0.85.
    assert adwin.before.mean < adwin.after.mean < 0.85
    for record in found:  # Page-Hinkley's sides split at the lowest point of its statistic
        assert record.before.n + record.after.n <= record.at
        assert record.after.mean > record.before.mean
