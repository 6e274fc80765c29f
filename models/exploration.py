"""Exploration places at the end of a list: fresh items (no events yet), the user's best category first.

>>> import numpy as np
>>> names = ["a", "b", "new1", "new2"]
>>> ordered = np.array([3, 2])  # fresh items, best liked first (`ranking_kernels.explore_order`)
>>> splice([("a", 0.9), ("b", 0.8)], ordered, names, {}, n=2, slots=1, step=1e-6)
[('a', 0.9), ('new2', 0.899999)]
>>> splice([("a", 0.9), ("b", 0.8)], ordered, names, {"new2": None}, n=2, slots=1, step=1e-6)
[('a', 0.9), ('new1', 0.899999)]
"""

from __future__ import annotations

__all__ = ["splice"]

import operator
from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt


def splice(
    ranked: list[tuple[str, float]],
    ordered: npt.NDArray[np.int64],
    names: Sequence[str],
    hidden: Collection[str],
    *,
    n: int,
    slots: int,
    step: float,
) -> list[tuple[str, float]]:
    """``ranked`` (best first, n at most) with its last ``slots`` places given to the first items of
    ``ordered`` (item ids, named by ``names``) that are neither listed already nor ``hidden``; each
    scored ``step`` below the place above it. Fewer such items: fewer places change."""
    keep = ranked[: max(len(ranked) - slots, n - slots)]
    want = n - len(keep)
    if want <= 0:
        return ranked
    shown = set(map(operator.itemgetter(0), ranked))
    pool: list[str] = []
    for item in ordered.tolist():
        name = names[item]
        if name not in shown and name not in hidden:
            pool.append(name)
            if len(pool) == want:
                break
    if not pool:
        return ranked
    floor = keep[-1][1] if keep else 0.0
    return keep + [(name, floor - step * (k + 1)) for k, name in enumerate(pool)]
