"""Tests for item relations (co-occurrence and transitions) in `models.cooccurrence`."""

from __future__ import annotations

import pytest

from models.cooccurrence import CoOccurrence


def test_weight_scales_strength() -> None:
    light, heavy = CoOccurrence(), CoOccurrence()
    light.learn_one(["a"], "b", 1.0)
    heavy.learn_one(["a"], "b", 3.0)
    assert light.neighbors("a")["b"] == pytest.approx(1 / 2)
    assert heavy.neighbors("a")["b"] == pytest.approx(3 / 4)


def test_only_the_window_is_related() -> None:
    co = CoOccurrence(window=2)
    co.learn_one(["a", "b", "c"], "x")
    assert set(co.neighbors("x")) == {"b", "c"}
    assert co.neighbors("a") == {}


def test_symmetric_counts_are_symmetric() -> None:
    co = CoOccurrence(window=5)
    co.learn_one(["a"], "b")
    co.learn_one(["a", "b"], "c", 2.0)
    co.learn_one(["c"], "a")
    for x in "abc":
        for y in "abc":
            if x != y:
                assert (y in co.neighbors(x)) == (x in co.neighbors(y))


def test_transitions_point_forward_only() -> None:
    nxt = CoOccurrence(window=1, symmetric=False)
    for history, item in [(["a"], "b"), (["a", "b"], "c"), (["x"], "b")]:
        nxt.learn_one(history, item)
    assert set(nxt.neighbors("a")) == {"b"}
    assert set(nxt.neighbors("b")) == {"c"}
    assert nxt.neighbors("c") == {}


def test_an_item_is_never_its_own_neighbour() -> None:
    co = CoOccurrence()
    co.learn_one(["a", "b", "a"], "a")
    assert set(co.neighbors("a")) == {"b"}


def test_rows_are_pruned_to_the_strongest_links() -> None:
    co = CoOccurrence(window=1, max_neighbors=3)
    for n in range(10):
        for _ in range(n + 1):
            co.learn_one(["hub"], f"i{n}")
    row = co.neighbors("hub")
    assert len(row) <= 2 * 3
    assert {"i9", "i8", "i7"} <= set(row)


def test_scores_weight_recent_items_more() -> None:
    co = CoOccurrence(window=1)
    co.learn_one(["old"], "x")
    co.learn_one(["new"], "y")
    scores = co.scores(["old", "new"], decay=0.5)
    assert scores["y"] == pytest.approx(2 * scores["x"])
    assert co.scores(["unknown"]) == {}
