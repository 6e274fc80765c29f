"""Tests for serve-time diversity (`engine.serving.diversity`): caps, strength 0, and the diversity metric."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from engine.serving.diversity import category_cap, diversify, intra_list_diversity


def world(seed: int, size: int = 30) -> tuple[list[tuple[str, float]], dict[str, frozenset[str]]]:
    """A ranked list where the best items crowd into few categories (as a real top-N tends to)."""
    rng = random.Random(seed)
    ranked = sorted(((f"i{k}", rng.random()) for k in range(size)), key=lambda pair: -pair[1])
    cats = {}
    for rank, (item, _) in enumerate(ranked):
        cat = "top" if rank < size // 2 and rng.random() < 0.8 else f"c{rng.randrange(5)}"
        cats[item] = frozenset({cat, "multi"} if rng.random() < 0.1 else {cat})
    return ranked, cats


@pytest.mark.parametrize("seed", range(5))
def test_strength_zero_keeps_the_order(seed: int) -> None:
    ranked, cats = world(seed)
    assert diversify(ranked, cats, 10, 0.0) == ranked[:10]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("strength", "cap"), [(0.3, None), (0.5, None), (0.0, 2), (0.8, 3)])
def test_caps_are_respected_while_alternatives_exist(seed: int, strength: float, cap: int | None) -> None:
    ranked, cats = world(seed)
    picked = diversify(ranked, cats, 10, strength, cap)
    limit = category_cap(10, strength, cap)
    counts = Counter(c for item, _ in picked for c in cats[item])
    assert len(picked) == 10 and len({i for i, _ in picked}) == 10
    assert all(count <= limit for count in counts.values()), counts
    assert set(picked) <= set(ranked)


def test_no_list_is_one_category_when_another_exists() -> None:
    ranked = [(f"a{k}", 1.0 - k / 100) for k in range(20)] + [("b", 0.0)]
    cats = {item: frozenset({item[0]}) for item, _ in ranked}
    for strength in (0.1, 0.3, 0.5, 1.0):
        assert "b" in [i for i, _ in diversify(ranked, cats, 10, strength)]


def test_capped_items_fill_the_list_when_nothing_else_is_left() -> None:
    ranked = [("a1", 3.0), ("a2", 2.0), ("a3", 1.0)]
    cats = {item: frozenset({"a"}) for item, _ in ranked}
    assert diversify(ranked, cats, 3, 0.5, max_per_category=1) == ranked


def test_more_strength_means_more_diverse_lists() -> None:
    means = []
    for strength in (0.0, 0.3, 0.7):
        scores = []
        for seed in range(20):
            ranked, cats = world(seed)
            picked = diversify(ranked, cats, 10, strength)
            value = intra_list_diversity([cats[item] for item, _ in picked])
            assert value is not None
            scores.append(value)
        means.append(sum(scores) / len(scores))
    assert means[0] < means[1] < means[2], means


def test_intra_list_diversity() -> None:
    a, b, ab = frozenset("a"), frozenset("b"), frozenset("ab")
    assert intra_list_diversity([a, a, a]) == 0.0
    assert intra_list_diversity([a, b]) == 1.0
    assert intra_list_diversity([a, ab]) == pytest.approx(0.5)
    assert intra_list_diversity([a, frozenset(), b]) == 1.0  # items without categories are left out
    assert intra_list_diversity([a]) is None
