"""Compare what two recommenders have learned, through their public state accessors.

Recommendations alone are not enough after a restore: the popularity lists are cached and refreshed
every few updates, so two models with the same learned state can rank from differently aged caches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from models.recommender import HybridRecommender


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def differences(a: HybridRecommender, b: HybridRecommender, users: Iterable[str], ts: int) -> list[str]:
    """Names of the learned parts in which ``a`` and ``b`` differ (empty: the same)."""
    parts: dict[str, tuple[Any, Any]] = {
        "popularity": (a.popularity.raw(), b.popularity.raw()),
        "cooccurrence": (a.cooccurrence.kernel_state(), b.cooccurrence.kernel_state()),
        "transitions": (a.transitions.kernel_state(), b.transitions.kernel_state()),
        "blend": (a.ranker.weights, b.ranker.weights),
        "focus": (a.focus.hits, b.focus.hits),
        "category mass": (a.heads.mass(), b.heads.mass()),
        "category fit": (a.item_categories.fit, b.item_categories.fit),
    }
    for user in users:
        parts[f"history {user}"] = (a.sequence.history(user), b.sequence.history(user))
        parts[f"affinity {user}"] = (
            a.affinity.predict_vector(user, None, ts),
            b.affinity.predict_vector(user, None, ts),
        )
        n = len(a.affinity.categories)
        parts[f"shares {user}"] = (a.shares.vector(user, n), b.shares.vector(user, n))
    return [name for name, (x, y) in parts.items() if not _equal(x, y)]
