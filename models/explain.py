"""Why an item was recommended: its strongest signals and, where one exists, the item it came from.

Built from what the ranking already computed (each candidate's features and the blend's weights),
plus one bounded look-up of the user's recent positives in the item links, so an explanation costs a
few microseconds per item and can be stored with every list. It never claims more than the user's
own history says: an ``item`` reason names one of the user's positives, a ``category`` reason a
category the user took positively or said they like.
"""

from __future__ import annotations

__all__ = [
    "TOKEN_TABLE",
    "ExplainInputs",
    "Explanation",
    "best_category",
    "column_means",
    "explain_keys",
    "explain_list",
    "explain_rows",
    "explain_tokens",
    "linked_into",
    "reason_keys",
    "strongest",
]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

from models.ranking_kernels import FEATURES
from schemas.reasons import Tokens, token_letters

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


class ExplainInputs(NamedTuple):
    """What explaining a list reads: the items ``wanted`` of the list, and from the ranking that made it
    its candidates ``ids`` with their features ``table``; ``weights`` of the blend.

    ``recent`` are the user's latest positives (newest first), looked up in the rows of each of
    ``links`` in turn (`models.kernels.links_of` states, e.g. co-occurrence then content) for the item
    a candidate came from; ``scratch`` a per-item all-zero array. A candidate's category is, among its
    row of ``matrix``, the one with the most of the user's ``own`` positives (none if all are zero).
    """

    wanted: npt.NDArray[np.int64]
    ids: npt.NDArray[np.int32]
    table: npt.NDArray[np.floating]
    weights: npt.NDArray[np.float64]
    recent: npt.NDArray[np.int64]
    links: Sequence[tuple[Any, ...]]
    scratch: npt.NDArray[np.float64]
    matrix: npt.NDArray[np.int64]
    own: npt.NDArray[np.float64]
    category_names: Sequence[str]
    item_names: Sequence[str]


def explain_list(inputs: ExplainInputs) -> list[Explanation]:
    """Explanations of the items ``inputs.wanted`` of a list (see `ExplainInputs`).

    Items not among the ranking's candidates were exploration places. All the arithmetic and the choice
    of reason run in compiled code (`linked_into`, `reason_keys`); Python only names what they found,
    and an explanation without an anchor is made once per process, one with an anchor once per list.
    """
    found = _keys(inputs)
    plain = _BY_KEY
    out: list[Explanation] = []
    made: dict[tuple[int, int], Explanation] = {}
    for key, at in zip(found[0].tolist(), found[1].tolist(), strict=True):
        if at < 0:
            out.append(plain[key])
            continue
        one = made.get((key, at))
        if one is None:
            one = made[(key, at)] = _anchored(
                key, at, inputs.recent, inputs.category_names, inputs.item_names
            )
        out.append(one)
    return out


def explain_tokens(inputs: ExplainInputs) -> Tokens:
    """`explain_list`'s explanations straight in the stored form (`schemas.reasons.encode_tokens` of the
    result is `schemas.reasons.encode` of theirs), without an object per item: what the worker stores
    with every list."""
    found, letters = _keys(inputs), _LETTERS_BY_KEY
    tokens: list[str] = []
    anchors: dict[str, int] = {}
    for key, at in zip(found[0].tolist(), found[1].tolist(), strict=True):
        if at < 0:
            tokens.append(letters[key])
            continue
        kind, signals = divmod(key, len(_SIGNALS))
        anchor = inputs.item_names[int(inputs.recent[at])] if kind == _ITEM else inputs.category_names[at]
        if not anchor and kind == _ITEM:
            tokens.append(letters[_SIMILAR * len(_SIGNALS) + signals])
            continue
        tokens.append(letters[key] + str(anchors.setdefault(anchor, len(anchors))))
    return Tokens(tokens, list(anchors))


def _keys(inputs: ExplainInputs) -> npt.NDArray[np.int64]:
    """`reason_keys` of the wanted items, each linked to the user's recent positive it came from."""
    found: npt.NDArray[np.int64] = explain_keys(
        inputs.wanted, inputs.ids, np.asarray(inputs.table), inputs.weights, inputs.recent,
        tuple(inputs.links), inputs.scratch, inputs.matrix, inputs.own, _ITEM_SIGNAL, _CATEGORY_SIGNAL,
        _QUALITY,
    )  # fmt: skip
    return found


@njit(cache=True, nogil=True)
def explain_keys(  # type: ignore[no-untyped-def]
    wanted, ids, data, weights, recent, links, mark, matrix, own, item_signal, category_signal, quality
):  # fmt: skip
    """`reason_keys` of ``wanted``, each linked (`linked_into`) to the first of the user's ``recent``
    positives whose row in ``links`` (link states, looked up in turn) holds it: one compiled call per
    list."""
    linked = np.full(wanted.size, -1, np.int64)
    for row_of, link_ids, _, count, _ in links:
        linked_into(linked, wanted, recent, row_of, link_ids, count, mark)
    return reason_keys(
        wanted, ids, data, weights, linked, matrix, own, item_signal, category_signal, quality
    )  # fmt: skip


#: Kinds of explanation the kernel chooses, in the order of `_KINDS` (``item`` and ``category`` carry
#: an anchor; an ``item`` whose anchor has an empty name falls back to ``similar_users``).
_KINDS = ("exploring", "item", "category", "similar_users", "well_rated", "popular")
_ITEM, _SIMILAR = 1, 3
_ITEM_SIGNAL = np.array([name in ITEM_SIGNALS for name in FEATURES])
_CATEGORY_SIGNAL = np.array([name in CATEGORY_SIGNALS for name in FEATURES])
_QUALITY = FEATURES.index("quality")
#: The signals of an explanation by signal index: the pairs (first * F + second), the single
#: strongest (F * F + first), then none (F * F + F).
_SIGNALS = [(a, b) for a in FEATURES for b in FEATURES] + [(a,) for a in FEATURES] + [()]
#: key (kind * len(_SIGNALS) + signal index) -> the explanation without an anchor, made once.
_BY_KEY = [Explanation(kind, None, signals) for kind in _KINDS for signals in _SIGNALS]
_BY_KEY[0] = EXPLORING
#: key -> the letters of its token in the stored form (``-`` where nothing is stored).
_LETTERS_BY_KEY = [token_letters(e.reason, e.signals) or "-" for e in _BY_KEY]
#: What `models.explain_batch` reads: each key's token letters, the keys per kind, the kind of an
#: ``item`` reason, and `reason_keys`' last three arguments.
TOKEN_TABLE = (_LETTERS_BY_KEY, len(_SIGNALS), _ITEM, (_ITEM_SIGNAL, _CATEGORY_SIGNAL, _QUALITY))


def _anchored(
    key: int, at: int, recent: npt.NDArray[np.int64], category_names: Sequence[str], item_names: Sequence[str]
) -> Explanation:
    """The explanation of kind and signals ``key`` whose anchor is ``at``: an index in ``recent`` for
    an ``item`` reason, a category id for a ``category`` one."""
    kind, signals = divmod(key, len(_SIGNALS))
    if kind == _ITEM:
        anchor = item_names[int(recent[at])]
        if not anchor:
            return _BY_KEY[_SIMILAR * len(_SIGNALS) + signals]
        return Explanation("item", anchor, _SIGNALS[signals])
    return Explanation("category", category_names[at], _SIGNALS[signals])


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
def reason_keys(wanted, ids, data, weights, linked, matrix, own, item_signal, category_signal, quality):  # type: ignore[no-untyped-def]
    """Per wanted item, ``[key, anchor]`` (two rows): which explanation it gets, as a `_BY_KEY` index,
    and its anchor (-1: none; an index in the user's recent positives for ``item``, a category id for
    ``category``).

    An item not among the ranking's candidates ``ids`` was an exploration place. Otherwise its two
    strongest features lift it above the candidates' mean (`strongest`); the strongest one that lifts
    it (``popularity`` if none does) picks the kind: an item signal names ``linked`` (the index of the
    user's recent positive it came from; ``similar_users`` without one), a category signal the item's
    category (among its row of ``matrix``, -1 padded) with the most of the user's ``own`` positives,
    first on ties (a category past ``own`` reads its last entry, as numpy's take with mode="clip");
    failing that ``well_rated`` for ``quality``, else ``popular``."""
    mean = column_means(data, weights.size)
    n_signals = weights.size * weights.size + weights.size + 1
    out = np.full((2, wanted.size), -1, np.int64)
    rows = np.full(1, -1, np.int64)
    for w in range(wanted.size):
        rows[0] = -1
        for i in range(ids.size):
            if ids[i] == wanted[w]:
                rows[0] = i
                break
        if rows[0] < 0:
            out[0, w] = 0
            continue
        found = strongest(data, rows, mean, weights)
        first, second = int(found[0, 0]), int(found[0, 1])
        if found[0, 3] > 0:
            signals, top = first * weights.size + second, first
        elif found[0, 2] > 0:
            signals, top = weights.size * weights.size + first, first
        else:
            signals, top = n_signals - 1, -1
        kind = 5
        if top >= 0 and item_signal[top]:
            kind = 1 if linked[w] >= 0 else 3
            if linked[w] >= 0:
                out[1, w] = linked[w]
        elif top >= 0 and category_signal[top]:
            best = best_category(matrix[wanted[w]], own)
            if best >= 0:
                kind = 2
                out[1, w] = best
        elif top == quality:
            kind = 4
        out[0, w] = kind * n_signals + signals
    return out


@njit(cache=True, nogil=True)
def column_means(data, width):  # type: ignore[no-untyped-def]
    """The mean of each column of ``data``, summed row by row as numpy's ``mean(axis=0)`` does (the
    same bits); ``width`` zeros when there is no row."""
    mean = np.zeros(data.shape[1] if data.shape[0] else width)
    for r in range(data.shape[0]):
        for f in range(mean.size):
            mean[f] += data[r, f]
    if data.shape[0]:
        mean /= data.shape[0]
    return mean


@njit(cache=True, nogil=True)
def best_category(row, own):  # type: ignore[no-untyped-def]
    """Among the category ids of ``row`` (-1 padded), the one with the most of the user's ``own``
    positives, first on ties; -1 when all have none. A category past ``own`` reads its last entry
    (numpy's take with mode="clip")."""
    best, most = -1, 0.0
    for c in row:
        mine = own[min(c, own.size - 1)] if c >= 0 and own.size else 0.0
        if mine > most:
            best, most = c, mine
    return best


@njit(cache=True, nogil=True)
def linked_into(linked, candidates, recent, row_of, ids, count, mark):  # type: ignore[no-untyped-def]
    """Fill each unlinked (-1) entry of ``linked`` with the index in ``recent`` (newest first) of the
    first item whose link row holds its candidate, if any; rows as in `models.kernels.links_of`.
    ``mark`` is a per-item float scratch array, all zero on entry and on exit."""
    for c in range(candidates.size):
        if linked[c] < 0 and 0 <= candidates[c] < mark.size:
            mark[candidates[c]] = c + 1
    for r in range(recent.size):
        item = recent[r]
        if item < 0 or item >= row_of.size or row_of[item] < 0:
            continue
        row = row_of[item]
        for j in range(count[row]):
            found = ids[row, j]
            if found < mark.size and mark[found] > 0:
                c = int(mark[found]) - 1
                if linked[c] < 0:
                    linked[c] = r
    for c in range(candidates.size):
        if 0 <= candidates[c] < mark.size:
            mark[candidates[c]] = 0.0
    return linked
