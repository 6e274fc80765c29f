"""Serve-time diversity: re-rank a scored list so one category cannot fill it, and measure the result.

Pure: maximal marginal relevance over category sets (Jaccard similarity) plus a per-category cap.
Strength 0 with no cap leaves the order unchanged; nothing here reads Redis or knows about rules.
"""

from __future__ import annotations

__all__ = ["category_cap", "diversify", "intra_list_diversity", "jaccard"]

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import combinations

_NONE: frozenset[str] = frozenset()


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Overlap of two category sets, 0 (disjoint or either empty) to 1 (equal).

    >>> jaccard(frozenset("ab"), frozenset("bc")), jaccard(frozenset(), frozenset())
    (0.3333333333333333, 0.0)
    """
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def intra_list_diversity(categories: Sequence[frozenset[str]]) -> float | None:
    """1 - mean pairwise Jaccard of the items' categories (items without any are left out).

    None when fewer than two items have categories. 0 means every item shares the same categories.

    >>> intra_list_diversity([frozenset({"a"}), frozenset({"a"}), frozenset({"b"})])
    0.666...
    >>> intra_list_diversity([frozenset({"a"})]) is None
    True
    """
    known = [c for c in categories if c]
    if len(known) < 2:
        return None
    pairs = list(combinations(known, 2))
    return 1.0 - sum(jaccard(a, b) for a, b in pairs) / len(pairs)


def category_cap(n: int, strength: float, max_per_category: int | None = None) -> int:
    """Most places one category may take in a list of n: explicit, else ceil(n * (1 - strength)).

    >>> category_cap(10, 0.3), category_cap(10, 0.0), category_cap(10, 1.0), category_cap(10, 0.3, 2)
    (7, 10, 1, 2)
    """
    if max_per_category is not None:
        return max(1, max_per_category)
    return max(1, math.ceil(n * (1.0 - strength) - 1e-9))


def _relevance(scores: Sequence[float]) -> list[float]:
    lo, hi = min(scores), max(scores)
    return [1.0] * len(scores) if hi - lo <= 0 else [(s - lo) / (hi - lo) for s in scores]


def diversify(
    ranked: Sequence[tuple[str, float]],
    categories: Mapping[str, frozenset[str]],
    n: int,
    strength: float,
    max_per_category: int | None = None,
) -> list[tuple[str, float]]:
    """Pick n of ``ranked`` (best first) trading score for novelty; scores are kept as they were.

    Each pick maximises ``(1 - strength) * relevance - strength * max similarity to the picks so
    far`` (relevance: score scaled to 0..1), among items whose categories are all under the cap.
    Capped items fill the list only when nothing else is left.

    >>> ranked = [("a1", 0.9), ("a2", 0.8), ("a3", 0.7), ("b1", 0.1)]
    >>> cats = {"a1": frozenset("a"), "a2": frozenset("a"), "a3": frozenset("a"), "b1": frozenset("b")}
    >>> [i for i, _ in diversify(ranked, cats, 3, 0.0)]
    ['a1', 'a2', 'a3']
    >>> [i for i, _ in diversify(ranked, cats, 3, 0.5)]
    ['a1', 'b1', 'a2']
    """
    if n <= 0 or not ranked:
        return []
    if strength <= 0.0 and max_per_category is None:
        return list(ranked[:n])
    cap = category_cap(n, strength, max_per_category)
    cats = [categories.get(item, _NONE) for item, _ in ranked]
    relevance = _relevance([score for _, score in ranked])
    keep = 1.0 - strength
    closest = [0.0] * len(ranked)
    counts: Counter[str] = Counter()
    full: set[str] = set()  # categories at the cap
    remaining = list(range(len(ranked)))
    picked: list[int] = []
    while len(picked) < n and remaining:
        best, best_value = -1, -math.inf
        for index in remaining:
            if full and not cats[index].isdisjoint(full):
                continue
            value = keep * relevance[index] - strength * closest[index]
            if value > best_value:
                best, best_value = index, value
        if best < 0:
            break
        picked.append(best)
        remaining.remove(best)
        chosen = cats[best]
        counts.update(chosen)
        full.update(c for c in chosen if counts[c] >= cap)
        for index in remaining:  # only overlapping sets can raise the similarity: skip the rest cheaply
            if closest[index] < 1.0 and not chosen.isdisjoint(cats[index]):
                closest[index] = max(closest[index], jaccard(cats[index], chosen))
    picked += remaining[: n - len(picked)]  # only capped items are left: better than a short list
    return [ranked[index] for index in picked]
