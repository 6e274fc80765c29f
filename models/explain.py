"""Why an item was recommended: its strongest signals and, where one exists, the item it came from.

Built from what the ranking already computed (each candidate's features and the blend's weights),
plus one bounded look-up of the user's recent positives in the item links, so an explanation costs a
few microseconds per item and can be stored with every list. It never claims more than the user's
own history says: an ``item`` reason names one of the user's positives, a ``category`` reason a
category the user took positively or said they like.
"""

from __future__ import annotations

__all__ = ["Explanation", "anchors", "explain_list", "explain_rows", "explained", "strongest"]

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
    found = strongest(data, np.asarray(rows, dtype=np.int64), data.mean(axis=0), weights)
    return [
        _explanation(first, second, lift1, lift2, anchor, category)
        for (first, second, lift1, lift2), anchor, category in zip(
            found.tolist(), anchors, categories, strict=True
        )
    ]


def _explanation(
    first: float, second: float, lift1: float, lift2: float, anchor: str | None, category: str | None
) -> Explanation:
    """The explanation of a candidate whose two strongest features (indices, as floats) lift it by
    ``lift1`` and ``lift2``; ``anchor`` its linked item of the user, ``category`` its best category."""
    signals = _PAIRS[int(first)][int(second)] if lift2 > 0 else _ONE[int(first)] if lift1 > 0 else ()
    top = signals[0] if signals else "popularity"
    if top in ITEM_SIGNALS:
        return Explanation("item", anchor, signals) if anchor else _plain("similar_users", signals)
    if top in CATEGORY_SIGNALS and category is not None:
        return Explanation("category", category, signals)
    return _plain("well_rated" if top == "quality" else "popular", signals)


#: The signals of an explanation by feature index: the two strongest, or the strongest alone.
_PAIRS = [[(a, b) for b in FEATURES] for a in FEATURES]
_ONE = [(a,) for a in FEATURES]
#: Explanations without an anchor, made once each (a few reasons times a few signal pairs): lists
#: repeat them, and a frozen dataclass costs about a microsecond to build.
_PLAIN: dict[tuple[str, tuple[str, ...]], Explanation] = {}


def _plain(reason: str, signals: tuple[str, ...]) -> Explanation:
    found = _PLAIN.get((reason, signals))
    if found is None:
        found = _PLAIN[(reason, signals)] = Explanation(reason, None, signals)
    return found


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
    Items not among ``ids`` were exploration places. The arithmetic runs in one compiled call
    (`explained`); Python only names what it found.
    """
    linked = np.full(len(wanted), -1, dtype=np.int64)
    for row_of, link_ids, _, count, _ in links:
        unlinked = linked < 0
        if unlinked.any():
            linked[unlinked] = anchors(wanted[unlinked], recent, row_of, link_ids, count, scratch)
    data = np.asarray(table, dtype=np.float64)
    mean = data.mean(axis=0) if len(data) else np.zeros(len(weights))
    found = explained(wanted, ids.astype(np.int64), data, mean, weights, matrix, own)
    out = []
    rows = zip(found.tolist(), linked.tolist(), strict=True)
    for (at, first, second, lift1, lift2, category), link in rows:
        if at < 0:
            out.append(EXPLORING)
            continue
        anchor = item_names[int(recent[link])] if link >= 0 else None
        named = category_names[int(category)] if category >= 0 else None
        out.append(_explanation(first, second, lift1, lift2, anchor, named))
    return out


@njit(cache=True, nogil=True)
def strongest(data, rows, mean, weights):  # type: ignore[no-untyped-def]
    """Per row of ``rows``: the indices of its two strongest features and their lifts (weighted value
    minus the column's ``mean``), as ``[first, second, lift1, lift2]``. Ties go to the lower index, as
    a stable sort would order them."""
    out = np.empty((rows.size, 4), np.float64)
    for r in range(rows.size):
        first, second = -1, -1
        lift1, lift2 = -np.inf, -np.inf
        for f in range(data.shape[1]):
            lift = (data[rows[r], f] - mean[f]) * weights[f]
            if lift > lift1:
                first, second, lift1, lift2 = f, first, lift, lift1
            elif lift > lift2:
                second, lift2 = f, lift
        out[r, 0], out[r, 1], out[r, 2], out[r, 3] = first, second, lift1, lift2
    return out


@njit(cache=True, nogil=True)
def explained(wanted, ids, data, mean, weights, matrix, own):  # type: ignore[no-untyped-def]
    """Per wanted item: ``[row, first, second, lift1, lift2, category]``: its row among the ranking's
    candidates ``ids`` (-1: an exploration place, the rest then unset), its two strongest features and
    their lifts (`strongest`), and among its categories (its row of ``matrix``, -1 padded) the one with
    the most of the user's ``own`` positives, first on ties (-1 when all have none)."""
    out = np.full((wanted.size, 6), -1.0)
    rows = np.full(1, -1, np.int64)
    for w in range(wanted.size):
        rows[0] = -1
        for i in range(ids.size):
            if ids[i] == wanted[w]:
                rows[0] = i
                break
        if rows[0] < 0:
            continue
        out[w, 0] = rows[0]
        out[w, 1:5] = strongest(data, rows, mean, weights)[0]
        best, most = -1, 0.0
        for c in matrix[wanted[w]]:
            # A category past ``own`` reads its last entry (numpy's take with mode="clip").
            mine = own[min(c, own.size - 1)] if c >= 0 and own.size else 0.0
            if mine > most:
                best, most = c, mine
        out[w, 5] = best
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
