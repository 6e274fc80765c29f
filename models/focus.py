"""How much of a list goes to the user's two favourite categories, chosen from what users take next.

A top-10 list summarises a taste, it does not sample it: a user whose shares are 45% / 20% / 10% ...
is better shown mostly their first two categories, unless the data says that costs hits. The `Focus`
keeps, for a few levels, how often the user's next item would have been in the top of the list focused
at that level (replayed on each user's remembered ranking) and serves the most focused level that
hits within a small tolerance of the best, per segment of users by how concentrated their taste is.
Each level is scaled per user by how much their shares rest on their own positives. Kernels and
counters only; no I/O.
"""

from __future__ import annotations

__all__ = ["LEVELS", "SEGMENTS", "Focus", "favourites", "focus_order", "focused", "liked_mask"]

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

#: Shares of a list's every prefix that go to the favourite categories, tried side by side.
LEVELS = (0.0, 0.5, 0.7, 0.8, 0.9, 1.0)
#: Segments of users by the share of their two favourite categories in their taste.
SEGMENTS = (0.45, 0.65)


@njit(cache=True, nogil=True)
def liked_mask(candidates, matrix, fit, prior, favourites):  # type: ignore[no-untyped-def]
    """Per candidate: whether most of its take (its categories' fit, plus ``prior`` each) falls in
    ``favourites`` (category ids); rows of ``matrix`` are -1 padded.

    >>> m = np.array([[0, -1], [1, 2], [-2, -1]])
    >>> liked_mask(np.array([0, 1, 2]), m, np.array([[0.0, 0], [3.0, 0], [0, 0]]), 0.5, np.array([1]))
    array([False,  True, False])
    """
    out = np.zeros(candidates.size, np.bool_)
    for i in range(candidates.size):
        item = candidates[i]
        total, inside = 0.0, 0.0
        for j in range(matrix.shape[1]):
            c = matrix[item, j]
            if c == -1:
                break
            if c < 0:
                continue
            w = fit[item, j] + prior
            total += w
            for f in favourites:
                inside += w * (c == f)
        out[i] = total > 0.0 and inside >= 0.5 * total
    return out


@njit(cache=True, nogil=True)
def focus_order(liked, share, n):  # type: ignore[no-untyped-def]
    """Positions of the candidates (best first; ``liked`` per candidate) in a list where each prefix
    of length p holds at most ``round((1 - share) * p)`` others while liked ones remain; the first ``n``
    places chosen so, then the rest in their order.

    >>> focus_order(np.array([False, False, True, False, True]), 0.8, 4)
    array([2, 4, 0, 1, 3])
    >>> focus_order(np.array([False, False, True]), 0.0, 3)
    array([0, 1, 2])
    """
    size = liked.size
    taken = np.zeros(size, np.bool_)
    out = np.empty(size, np.int64)
    best, best_liked, others = 0, 0, 0
    for p in range(min(n, size)):
        while taken[best]:
            best += 1
        while best_liked < size and (taken[best_liked] or not liked[best_liked]):
            best_liked += 1
        pick = best
        if not liked[best] and others + 1 > np.floor((1.0 - share) * (p + 1) + 0.5) and best_liked < size:
            pick = best_liked
        taken[pick] = True
        others += not liked[pick]
        out[p] = pick
    c = min(n, size)
    for i in range(size):
        if not taken[i]:
            out[c] = i
            c += 1
    return out


@njit(cache=True, nogil=True)
def favourites(shares):  # type: ignore[no-untyped-def]
    """The two largest ``shares`` (ids, ties: the lower id) and their sum.

    >>> ids, total = favourites(np.array([0.1, 0.5, 0.1, 0.3]))
    >>> ids.tolist(), round(total, 2)
    ([1, 3], 0.8)
    """
    out = np.full(min(2, shares.size), -1, np.int64)
    for k in range(out.size):
        best = -1
        for c in range(shares.size):
            if (k == 0 or c != out[0]) and (best < 0 or shares[c] > shares[best]):
                best = c
        out[k] = best
    total = 0.0
    for k in range(out.size):
        total += shares[out[k]]
    return out, total


@njit(cache=True, nogil=True)
def _segment(bounds, concentration):  # type: ignore[no-untyped-def]
    segment = 0
    for bound in bounds:
        segment += concentration >= bound
    return segment


@njit(cache=True, nogil=True)
def focused(items, totals, head, matrix, fit, prior, shares, levels_now, bounds, trust, n):  # type: ignore[no-untyped-def]
    """``items`` (best first) and their ``totals`` as the user's list: the first ``head`` reordered by
    `focus_order` for the user's favourite categories at the level of their segment times ``trust``
    (copies; the ranking itself is left alone)."""
    listed, listed_totals = items.copy(), totals.copy()
    best, concentration = favourites(shares)
    share = levels_now[_segment(bounds, concentration)] * trust
    head = min(head, items.size)
    if share > 0.0 and head > 0:
        order = focus_order(liked_mask(items[:head], matrix, fit, prior, best), share, n)
        listed[:head] = items[:head][order]
        listed_totals[:head] = totals[:head][order]
    return listed, listed_totals


@njit(cache=True, nogil=True)
def _count(hits, levels, liked, taken, confidence, depth, segment, decay, tolerance):  # type: ignore[no-untyped-def]
    """Decay the segment's hit counts and add, per level, whether the top ``depth`` of the list focused
    at that level held the candidate at ``taken``; returns the level the counts now choose."""
    top = 0.0
    for i in range(levels.size):
        order = focus_order(liked, levels[i] * confidence, depth)
        hit = 0.0
        for p in range(min(depth, order.size)):
            hit += order[p] == taken
        hits[segment, i] = hits[segment, i] * decay + hit
        top = max(top, hits[segment, i])
    chosen = levels[0]
    for i in range(levels.size):
        if hits[segment, i] >= (1.0 - tolerance) * top:
            chosen = max(chosen, levels[i])
    return chosen


@njit(cache=True, nogil=True)
def _count_ranking(  # type: ignore[no-untyped-def]
    hits, levels, bounds, candidates, taken, matrix, fit, prior, shares, confidence, depth, decay, tolerance,
):  # fmt: skip
    """`_count` for a remembered ranking and the user's shares; returns (segment, chosen level)."""
    best, concentration = favourites(shares)
    segment = _segment(bounds, concentration)
    liked = liked_mask(candidates, matrix, fit, prior, best)
    return segment, _count(hits, levels, liked, taken, confidence, depth, segment, decay, tolerance)


class Focus:
    """The focus level served now per segment of users, learned from replaying each user's next item on
    their last ranking. Users are segmented by how concentrated their taste is (the share of their two
    favourite categories): a user with one dominant taste loses nothing to a focused list where one
    with broad tastes would.

    >>> focus = Focus(tolerance=0.0, decay=1.0, warm=1)
    >>> liked = np.array([False, True, False, True])
    >>> for _ in range(3):
    ...     focus.learn(liked, taken=3, confidence=1.0, depth=2, concentration=0.9)  # place 4 taken
    >>> focus.levels_now.tolist()
    [0.8, 0.8, 1.0]
    >>> focus.share(evidence=2.0, prior=2.0, concentration=0.9)
    0.5
    """

    def __init__(
        self, *, levels: tuple[float, ...] = LEVELS, bounds: tuple[float, ...] = SEGMENTS,
        tolerance: float = 0.02, decay: float = 0.999, warm: int = 100, start: float = 0.8,
    ) -> None:  # fmt: skip
        self.levels = levels
        self.bounds = bounds
        self.tolerance = tolerance
        self.decay = decay
        self.warm = warm
        self.start = start
        self._levels = np.array(levels)
        self._bounds = np.array(bounds)
        self.levels_now: npt.NDArray[np.float64] = np.full(len(bounds) + 1, start)
        self.updates = np.zeros(len(bounds) + 1, dtype=np.int64)
        self.hits: npt.NDArray[np.float64] = np.zeros((len(bounds) + 1, len(levels)))

    def share(self, evidence: float, prior: float, concentration: float) -> float:
        """The share of each prefix for a user whose shares rest on ``evidence`` own positives and give
        their two favourite categories ``concentration`` of the total."""
        if evidence <= 0:
            return 0.0
        level = float(self.levels_now[int(_segment(self._bounds, concentration))])
        return level * evidence / (evidence + prior)

    def kernel_state(self, trust: float) -> tuple[Any, ...]:
        """What `focused` takes after the shares, for a user whose shares are trusted ``trust``."""
        return self.levels_now, self._bounds, trust

    def count_state(self, categories: Any, shares: Any, confidence: float, depth: int) -> tuple[Any, ...]:
        """What the compiled count of a remembered ranking takes (`models.ranking_kernels.learn_taken`;
        `settle` takes its result): `learn` with the liked candidates and the concentration worked out
        from the user's category ``shares``, trusted ``confidence``."""
        return (
            self.hits, self._levels, self._bounds, categories.matrix, categories.fit, categories.PRIOR,
            shares, confidence, depth, self.decay, self.tolerance,
        )  # fmt: skip

    def learn(
        self, liked: npt.NDArray[np.bool_], taken: int, confidence: float, depth: int, concentration: float
    ) -> None:
        """The candidate at ``taken`` of a remembered ranking (``liked`` per candidate) was the user's next
        item: count, for each level, whether the top ``depth`` of the list focused so would have held it."""
        segment = int(_segment(self._bounds, concentration))
        chosen = _count(
            self.hits, self._levels, liked, taken, confidence, depth, segment, self.decay, self.tolerance
        )
        self.settle(segment, chosen)

    def settle(self, segment: int, chosen: float) -> None:
        """One more count of ``segment``, which now chooses level ``chosen`` (served once warm)."""
        self.updates[segment] += 1
        if self.updates[segment] >= self.warm:
            self.levels_now[segment] = chosen

    def reset(self) -> None:
        """Forget the counts (a drift response); the levels stay until they say otherwise."""
        self.hits[:] = 0.0
        self.updates[:] = 0
