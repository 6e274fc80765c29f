"""Tests for item relations (co-occurrence and transitions) in `models.cooccurrence`."""

from __future__ import annotations

import numpy as np
import pytest

from models.cooccurrence import CoOccurrence

A, B, C, X, Y = 1, 2, 3, 10, 11


def _summed(co: CoOccurrence, history: list[int], decay: float = 0.8) -> dict[int, float]:
    ids, weights = co.scores(np.array(history, dtype=np.int64), decay=decay)
    out: dict[int, float] = {}
    for item, weight in zip(ids.tolist(), weights.tolist(), strict=True):
        out[item] = out.get(item, 0.0) + weight
    return out


def test_repeated_links_grow_stronger() -> None:
    co = CoOccurrence()
    co.learn_one([A], B)
    assert co.neighbors(A)[B] == pytest.approx(1 / 2)
    co.learn_one([A], B)
    co.learn_one([A], B)
    assert co.neighbors(A)[B] == pytest.approx(3 / 4)


def test_only_the_window_is_related() -> None:
    co = CoOccurrence(window=2)
    co.learn_one([A, B, C], X)
    assert set(co.neighbors(X)) == {B, C}
    assert co.neighbors(A) == {}


def test_symmetric_counts_are_symmetric() -> None:
    co = CoOccurrence(window=5)
    co.learn_one([A], B)
    co.learn_one([A, B], C)
    co.learn_one([C], A)
    for x in (A, B, C):
        for y in (A, B, C):
            if x != y:
                assert (y in co.neighbors(x)) == (x in co.neighbors(y))


def test_transitions_point_forward_only() -> None:
    nxt = CoOccurrence(window=1, symmetric=False)
    for history, item in [([A], B), ([A, B], C), ([X], B)]:
        nxt.learn_one(history, item)
    assert set(nxt.neighbors(A)) == {B}
    assert set(nxt.neighbors(B)) == {C}
    assert nxt.neighbors(C) == {}


def test_an_item_is_never_its_own_neighbour() -> None:
    co = CoOccurrence()
    co.learn_one([A, B, A], A)
    assert set(co.neighbors(A)) == {B}


def test_rows_are_pruned_to_the_strongest_links() -> None:
    co = CoOccurrence(window=1, max_neighbors=3)
    hub = 0
    for n in range(10):
        for _ in range(n + 1):
            co.learn_one([hub], 100 + n)
    row = co.neighbors(hub)
    assert len(row) <= 2 * 3
    assert {109, 108, 107} <= set(row)


def test_scores_weight_recent_items_more() -> None:
    co = CoOccurrence(window=1)
    co.learn_one([A], X)
    co.learn_one([B], Y)
    scores = _summed(co, [A, B], decay=0.5)
    assert scores[Y] == pytest.approx(2 * scores[X])
    assert _summed(co, [999]) == {}
