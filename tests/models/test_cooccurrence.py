"""Tests for the recency-weighted item co-occurrence in `models.cooccurrence`."""

from __future__ import annotations

import math

import pytest

from models.cooccurrence import CoOccurrence


def _strengths(co: CoOccurrence, item: str) -> dict[str, float]:
    return dict(co.neighbors(item, 100))


def test_recent_history_counts_more() -> None:
    co = CoOccurrence(window=10, decay=0.5)
    co.learn_one(["old", "mid", "new"], "x", 1.0)
    s = _strengths(co, "x")
    assert s["new"] > s["mid"] > s["old"]
    assert s["mid"] / s["new"] == pytest.approx(0.5)
    assert s["old"] / s["new"] == pytest.approx(0.25)


def test_weight_scales_strength() -> None:
    light, heavy = CoOccurrence(), CoOccurrence()
    light.learn_one(["a"], "b", 1.0)
    heavy.learn_one(["a"], "b", 3.0)
    assert _strengths(heavy, "a")["b"] == pytest.approx(3 * _strengths(light, "a")["b"])


def test_only_the_window_is_related() -> None:
    co = CoOccurrence(window=2)
    co.learn_one(["a", "b", "c"], "x", 1.0)
    assert set(_strengths(co, "x")) == {"b", "c"}
    assert co.neighbors("a", 5) == []


def test_relation_is_symmetric() -> None:
    co = CoOccurrence(window=5)
    co.learn_one(["a"], "b", 1.0)
    co.learn_one(["a", "b"], "c", 2.0)
    co.learn_one(["c"], "a", 1.0)
    for x in "abc":
        for y in "abc":
            if x != y:
                assert _strengths(co, x)[y] == pytest.approx(_strengths(co, y)[x])


def test_an_item_is_never_its_own_neighbour() -> None:
    co = CoOccurrence()
    co.learn_one(["a", "b", "a"], "a", 1.0)
    assert set(_strengths(co, "a")) == {"b"}


def test_unknown_item_has_no_neighbours() -> None:
    assert CoOccurrence().neighbors("nope", 3) == []


def test_neighbors_returns_at_most_k_best_first() -> None:
    co = CoOccurrence(window=10, decay=0.9)
    co.learn_one([f"h{n}" for n in range(8)], "x", 1.0)
    best = co.neighbors("x", 3)
    assert [item for item, _ in best] == ["h7", "h6", "h5"]
    assert [s for _, s in best] == sorted((s for _, s in best), reverse=True)


def test_pruning_caps_neighbours_and_keeps_the_strongest() -> None:
    co = CoOccurrence(window=100, decay=1.0, max_neighbors=3)
    for _ in range(5):
        co.learn_one(["strong"], "x", 1.0)  # x-strong: weight 5
    for n in range(20):
        co.learn_one([f"weak{n}"], "x", 0.1)
    row = _strengths(co, "x")
    assert len(row) <= 2 * co.max_neighbors
    assert "strong" in row
    assert len(co.neighbors("x", 100)) <= 6


def test_normalisation_lowers_very_popular_items() -> None:
    co = CoOccurrence(window=5)
    for n in range(50):  # "hit" is liked after everything
        co.learn_one([f"other{n}"], "hit", 1.0)
    co.learn_one(["a"], "hit", 1.0)
    co.learn_one(["a"], "niche", 1.0)  # same raw count with "a" as "hit" has
    s = _strengths(co, "a")
    assert s["niche"] > s["hit"]
    assert s["hit"] / s["niche"] == pytest.approx(math.sqrt(1 / 51))
