"""Why an item was recommended: its strongest signals and, where one exists, the item it came from.

Built from what the ranking already computed (each candidate's features and the blend's weights),
plus one bounded look-up of the user's recent positives in the item links, so an explanation costs a
few microseconds per item and can be stored with every list. It never claims more than the user's
own history says: an ``item`` reason names one of the user's positives, a ``category`` reason a
category the user took positively or said they like.
"""

from __future__ import annotations

__all__ = ["Explanation", "anchors", "explain_list", "explain_rows"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from models.ranking_kernels import FEATURES

#: Signals that point at one of the user's own items ("because you liked X").
ITEM_SIGNALS = frozenset({"sequence", "cooccurrence", "transitions", "content"})
#: Signals that point at one of the user's categories ("because you like C").
CATEGORY_SIGNALS = frozenset({"affinity", "taste"})


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

    >>> w = np.array([1.0, 0.3, 0.3, 0.2, 0.2, 0.8, 0.6, 0.5])
    >>> table = np.array([
    ...     [0.9, 0.9, 0, 0, 0.1, 0.8, 0.2, 0],
    ...     [0.1, 0, 0, 0, 0.1, 0.8, 0.9, 0],
    ...     [0.2, 0, 0, 0, 0.9, 0.8, 0.2, 0],
    ... ])
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
        elif top in CATEGORY_SIGNALS and categories[i] is not None:
            reason = Explanation("category", categories[i], signals)
        elif top == "quality":
            reason = Explanation("well_rated", None, signals)
        else:
            reason = Explanation("popular", None, signals)
        out.append(reason)
    return out


def explain_list(
    wanted: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int32],
    table: npt.NDArray[np.floating],
    weights: npt.NDArray[np.float64],
    recent: npt.NDArray[np.int64],
    links: Sequence[tuple[Any, ...]],
    scratch: npt.NDArray[np.float64],
    matrix: npt.NDArray[np.int64],
    own: npt.NDArray[np.float64],
    category_names: Sequence[str],
    item_names: Sequence[str],
) -> list[Explanation]:
    """Explanations of the items ``wanted`` of a list, from the ranking that made it: its candidates
    ``ids`` with their features ``table``; ``weights`` of the blend.

    ``recent`` are the user's latest positives (newest first), looked up in the rows of each of
    ``links`` in turn (`models.kernels.links_of` states, e.g. co-occurrence then content) for the item
    a candidate came from; ``scratch`` a per-item all-zero array. A candidate's category is, among its
    row of ``matrix``, the one with the most of the user's ``own`` positives (none if all are zero).
    Items not among ``ids`` were exploration places.
    """
    out = [EXPLORING] * len(wanted)
    linked = np.full(len(wanted), -1, dtype=np.int64)
    for row_of, link_ids, _, count, _ in links:
        unlinked = linked < 0
        if unlinked.any():
            linked[unlinked] = anchors(wanted[unlinked], recent, row_of, link_ids, count, scratch)
    # Each wanted item's row among the remembered candidates (-1: not there, an exploration place).
    match = wanted[:, None] == ids[None, :]
    at = np.where(match.any(axis=1), match.argmax(axis=1), -1) if ids.size else np.full(len(wanted), -1)
    known = np.flatnonzero(at >= 0).tolist()
    if not known:
        return out
    anchor_names = [item_names[int(recent[a])] if a >= 0 else None for a in linked[known].tolist()]
    rows = matrix[wanted[known]]
    mine = np.where(rows >= 0, np.take(own, rows, mode="clip") if own.size else 0.0, 0.0)
    best = rows[np.arange(len(known)), np.argmax(mine, axis=1)]
    best_names = [
        category_names[c] if has else None
        for c, has in zip(best.tolist(), (mine.max(axis=1) > 0).tolist(), strict=True)
    ]
    explained = explain_rows(table, at[known].tolist(), weights, anchor_names, best_names)
    for place, explanation in zip(known, explained, strict=True):
        out[place] = explanation
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
