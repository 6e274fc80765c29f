"""Why an item was recommended: its strongest signals and, where one exists, the item it came from.

Built from what the ranking already computed (each candidate's features and the blend's weights),
plus one bounded look-up of the user's recent items in the item links, so an explanation costs a
few microseconds per item and can be stored with every list.
"""

from __future__ import annotations

__all__ = ["Explanation", "anchors", "explain_rows"]

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from models.ranking_kernels import FEATURES

#: Signals that point at one of the user's own items ("because you liked X").
ITEM_SIGNALS = frozenset({"sequence", "cooccurrence", "transitions", "content"})


@dataclass(frozen=True, slots=True)
class Explanation:
    """``reason`` is one of: ``item`` (because you liked ``anchor``), ``category`` (you like the
    category ``anchor``), ``popular``, ``well_rated``, ``similar_users``, ``exploring`` (a new item
    getting its first impressions); ``signals`` are the strongest features, strongest first.

    >>> Explanation("item", "i7", ("cooccurrence", "sequence")).to_json()
    {'reason': 'item', 'anchor': 'i7', 'signals': ['cooccurrence', 'sequence']}
    """

    reason: str
    anchor: str | None = None
    signals: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"reason": self.reason}
        if self.anchor is not None:
            out["anchor"] = self.anchor
        out["signals"] = list(self.signals)
        return out


EXPLORING = Explanation("exploring", None, ())


def explain_rows(
    table: npt.NDArray[np.floating],
    rows: list[int],
    weights: npt.NDArray[np.float64],
    anchors: list[str | None],
    categories: list[str | None],
) -> list[Explanation]:
    """Explanations of the candidates at ``rows`` of ``table`` (features in `FEATURES` order, one
    row per candidate of the ranking), with each one's linked item of the user and best category.

    A signal explains an item by how much it lifts the item above the average candidate (its
    weighted value minus the mean over the table): a signal every candidate shares, such as a high
    quality, explains none of them.

    >>> w = np.array([1.0, 0.3, 0.3, 0.2, 0.2, 0.8, 0.6])
    >>> table = np.array(
    ...     [[0.9, 0.9, 0, 0, 0.1, 0.8, 0.2], [0.1, 0, 0, 0, 0.1, 0.8, 0.9], [0.2, 0, 0, 0, 0.9, 0.8, 0.2]]
    ... )
    >>> [e.reason for e in explain_rows(table, [0, 1, 2], w, ["i3", None, None], [None, "jazz", None])]
    ['item', 'category', 'popular']
    """
    data = np.asarray(table, dtype=np.float64)
    lift = (data[rows] - data.mean(axis=0)) * weights
    order = np.argsort(-lift, axis=1, kind="stable")[:, :2]
    # Python lists from here: indexing numpy scalars one at a time costs more than the whole sort.
    best = np.take_along_axis(lift, order, axis=1).tolist()
    out = []
    for i, ((first, second), (lift1, lift2)) in enumerate(zip(order.tolist(), best, strict=True)):
        if lift2 > 0:
            signals: tuple[str, ...] = (FEATURES[first], FEATURES[second])
        else:
            signals = (FEATURES[first],) if lift1 > 0 else ()
        top = signals[0] if signals else "popularity"
        if top in ITEM_SIGNALS:
            reason = (
                Explanation("item", anchors[i], signals)
                if anchors[i]
                else Explanation("similar_users", None, signals)
            )
        elif top == "affinity" and categories[i] is not None:
            reason = Explanation("category", categories[i], signals)
        elif top == "quality":
            reason = Explanation("well_rated", None, signals)
        else:
            reason = Explanation("popular", None, signals)
        out.append(reason)
    return out


@njit(cache=True, nogil=True)
def anchors(candidates, recent, row_of, ids, count, mark):  # type: ignore[no-untyped-def]
    """Per candidate, the index in ``recent`` (newest first) of the first item whose link row
    holds it, or -1; rows as in `models.kernels.links_of`. ``mark`` is a per-item float scratch
    array, all zero on entry and on exit."""
    out = np.full(candidates.size, -1, np.int64)
    for c in range(candidates.size):
        if 0 <= candidates[c] < mark.size:
            mark[candidates[c]] = c + 1
    for r in range(recent.size):
        item = recent[r]
        if item < 0 or item >= row_of.size or row_of[item] < 0:
            continue
        row = row_of[item]
        for j in range(count[row]):
            linked = ids[row, j]
            if linked < mark.size and mark[linked] > 0:
                c = int(mark[linked]) - 1
                if out[c] < 0:
                    out[c] = r
    for c in range(candidates.size):
        if 0 <= candidates[c] < mark.size:
            mark[candidates[c]] = 0.0
    return out
