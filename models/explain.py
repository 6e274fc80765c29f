"""Why an item was recommended: its strongest signals and, where one exists, the item it came from.

Built from what the ranking already computed (each candidate's features and the blend's weights),
plus one bounded look-up of the user's recent items in the item links, so an explanation costs a
few microseconds per item and can be stored with every list.
"""

from __future__ import annotations

__all__ = ["Explanation", "anchors", "explain_row"]

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


def explain_row(
    features: npt.NDArray[np.floating],
    weights: npt.NDArray[np.float64],
    anchor: str | None,
    category: str | None,
) -> Explanation:
    """The explanation of one candidate from its feature row (`FEATURES` order) and the blend.

    ``anchor`` is the user's item the candidate is linked to (or None), ``category`` the user's
    best-liked category among the item's.

    >>> w = np.array([1.0, 0.3, 0.3, 0.2, 0.2, 0.8, 0.6])
    >>> explain_row(np.array([0.0, 0.9, 0.0, 0.0, 0.1, 0.5, 0.2]), w, "i3", "jazz")
    Explanation(reason='well_rated', anchor=None, signals=('quality', 'cooccurrence'))
    >>> explain_row(np.array([0.9, 0.9, 0.0, 0.0, 0.1, 0.5, 0.2]), w, "i3", "jazz").reason
    'item'
    """
    contributions = np.asarray(features, dtype=np.float64) * weights
    order = np.argsort(-contributions, kind="stable")
    signals = tuple(FEATURES[i] for i in order[:2].tolist() if contributions[i] > 0)
    top = signals[0] if signals else "popularity"
    if top in ITEM_SIGNALS:
        if anchor is not None:
            return Explanation("item", anchor, signals)
        return Explanation("similar_users", None, signals)
    if top == "affinity" and category is not None:
        return Explanation("category", category, signals)
    if top == "quality":
        return Explanation("well_rated", None, signals)
    return Explanation("popular", None, signals)


@njit(cache=True, nogil=True)
def anchors(candidates, recent, row_of, ids, count):  # type: ignore[no-untyped-def]
    """Per candidate, the index in ``recent`` (newest first) of the first item whose link row
    holds it, or -1; rows as in `models.kernels.links_of`."""
    out = np.full(candidates.size, -1, np.int64)
    for r in range(recent.size):
        item = recent[r]
        if item < 0 or item >= row_of.size or row_of[item] < 0:
            continue
        row = row_of[item]
        for j in range(count[row]):
            linked = ids[row, j]
            for c in range(candidates.size):
                if out[c] < 0 and candidates[c] == linked:
                    out[c] = r
    return out
