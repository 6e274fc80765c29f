"""Tests for the decayed popularity in `models.popularity`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.popularity import DecayedPopularity, ItemPopularity

HALF = 1_000


def test_score_halves_per_half_life() -> None:
    pop: DecayedPopularity = DecayedPopularity(half_life_ms=HALF)
    pop.learn_one("old", 1.0, ts=0)
    pop.learn_one("mid", 1.0, ts=HALF)
    pop.learn_one("new", 1.0, ts=3 * HALF)
    assert pop.score("new") == 1.0
    assert pop.score("mid") == pytest.approx(0.25)
    assert pop.score("old") == pytest.approx(0.125)


def test_weights_add_up_within_an_item() -> None:
    pop: DecayedPopularity = DecayedPopularity(half_life_ms=HALF)
    pop.learn_one("a", 1.0, ts=0)
    pop.learn_one("a", 1.0, ts=HALF)  # 0.5 + 1.0 in today's terms
    pop.learn_one("b", 2.0, ts=HALF)
    assert pop.score("a") == pytest.approx(0.75)


def test_rescale_keeps_ratios_over_very_long_spans() -> None:
    pop: DecayedPopularity = DecayedPopularity(half_life_ms=HALF)
    # 10,000 half-lives: 2**10000 would overflow a float without rescaling.
    for step in range(101):
        ts = step * 100 * HALF
        pop.learn_one(f"a{step}", 1.0, ts=ts)
        pop.learn_one(f"b{step}", 3.0, ts=ts)
    pop.learn_one("late", 1.0, ts=100 * 100 * HALF + HALF)
    assert all(math.isfinite(pop.score(f"{ab}{step}")) for ab in "ab" for step in range(101))
    assert pop.score("b100") == 1.0
    assert pop.score("a100") == pytest.approx(1 / 3)
    assert pop.score("late") == pytest.approx(2 / 3)  # one half-life later than b100's 3.0
    assert pop.score("b0") == 0.0  # forgotten, not overflowed
    assert [item for item, _ in pop.top(3)] == ["b100", "late", "a100"]


def test_a_single_huge_jump_forgets_the_past() -> None:
    pop: DecayedPopularity = DecayedPopularity(half_life_ms=HALF)
    pop.learn_one("a", 5.0, ts=0)
    pop.learn_one("b", 1.0, ts=5_000 * HALF)
    assert pop.score("b") == 1.0 and pop.score("a") == 0.0


def test_out_of_order_events_count_less() -> None:
    pop: DecayedPopularity = DecayedPopularity(half_life_ms=HALF)
    pop.learn_one("now", 1.0, ts=10 * HALF)
    pop.learn_one("earlier", 1.0, ts=9 * HALF)
    assert pop.score("earlier") == pytest.approx(0.5)


def test_top_is_ordered_and_relative() -> None:
    pop: DecayedPopularity = DecayedPopularity(half_life_ms=HALF, refresh_every=1)
    for item, weight in [("a", 1.0), ("b", 4.0), ("c", 2.0)]:
        pop.learn_one(item, weight, ts=0)
    assert pop.top(3) == [("b", 1.0), ("c", 0.5), ("a", 0.25)]
    assert pop.top(2) == [("b", 1.0), ("c", 0.5)]
    assert pop.top(10) == pop.top(3)


def test_top_cache_is_refreshed_after_refresh_every_updates() -> None:
    pop: DecayedPopularity = DecayedPopularity(half_life_ms=10**12, refresh_every=3)
    pop.learn_one("a", 1.0, ts=0)
    pop.learn_one("b", 2.0, ts=0)
    assert [item for item, _ in pop.top(2)] == ["b", "a"]
    pop.learn_one("a", 5.0, ts=0)
    pop.learn_one("a", 0.0, ts=0)
    assert [item for item, _ in pop.top(2)] == ["b", "a"]  # two updates: still the cached list
    pop.learn_one("a", 0.0, ts=0)
    assert [item for item, _ in pop.top(2)] == ["a", "b"]  # third update: rebuilt
    assert pop.score("a") == 1.0  # score() is never stale


def test_top_refreshes_when_more_items_are_asked_than_cached() -> None:
    pop: DecayedPopularity = DecayedPopularity(half_life_ms=HALF, refresh_every=1_000)
    pop.learn_one("a", 1.0, ts=0)
    assert pop.top(5) == [("a", 1.0)]
    pop.learn_one("b", 2.0, ts=0)
    assert [item for item, _ in pop.top(5)] == ["b", "a"]


def test_add_makes_cold_items_known_and_ranked_last() -> None:
    pop: DecayedPopularity = DecayedPopularity(half_life_ms=HALF)
    pop.learn_one("hot", 1.0, ts=0)
    pop.add("cold")
    pop.add("hot")  # known already: its score stays
    assert len(pop) == 2
    assert pop.score("cold") == 0.0 and pop.score("hot") == 1.0
    assert pop.top(5) == [("hot", 1.0), ("cold", 0.0)]


def test_empty_popularity() -> None:
    pop: DecayedPopularity = DecayedPopularity()
    assert len(pop) == 0 and pop.top(3) == [] and pop.score("x") == 0.0
    pop.add("x")
    assert pop.top(3) == [("x", 0.0)] and pop.score("x") == 0.0


def test_item_popularity_ranks_like_a_full_sort_of_the_known_items() -> None:
    rng = np.random.default_rng(7)
    pop = ItemPopularity(half_life_ms=10**9, refresh_every=1)
    pop._depth = 30  # a short head, so that items without interactions fill part of it
    known: set[int] = set()
    for step in range(400):
        item = int(rng.integers(0, 200))
        if rng.random() < 0.5:
            pop.add(item)
        else:
            pop.learn_one(item, float(rng.random()) + 0.1, ts=step)
        known.add(item)
        values = pop.raw()[0]
        expected = sorted(known, key=lambda i: (-values[i], i))[:30]
        assert pop.top_ids(30).tolist() == expected
