"""Compiled ranking of one request (numba): blend the signals, cut the shortlist, final scores.

`rank` runs the whole candidate pipeline in one call, reading the state kernels of
`models.kernels`; scratch arrays it gets are all-zero on entry and on exit.
"""

from __future__ import annotations

__all__ = [
    "combine",
    "final_scores",
    "rank",
]

import numpy as np
from numba import njit

from models.kernels import links_of, newest, sequence_scores


@njit(cache=True, nogil=True)
def combine(  # type: ignore[no-untyped-def]
    items, weights, bounds, blend, sums, totals, hidden, unavailable, shortlist,
    heads, head_bounds, head_sizes,
):  # fmt: skip
    """Sum each signal's pairs per item, scale each signal to max 1 times its blend weight, add them.

    Signal s is ``items[bounds[s]:bounds[s+1]]``. Items marked in ``hidden`` or ``unavailable`` are
    dropped; the best ``shortlist`` remain, as (items, scores). Then, with score 0, from each ranked
    list h in ``heads[head_bounds[h]:head_bounds[h+1]]`` (popular items) its first ``head_sizes[h]``
    items not dropped, unless already there. ``sums`` and ``totals`` are per-item scratch arrays.
    """
    candidates = np.empty(items.size, np.int64)
    n = 0
    distinct = np.empty(items.size, np.int64)
    for s in range(bounds.size - 1):
        d = 0
        for i in range(bounds[s], bounds[s + 1]):
            item = items[i]
            if sums[item] == 0.0:
                distinct[d] = item
                d += 1
            sums[item] += weights[i]
        top = 0.0
        for k in range(d):
            top = max(top, sums[distinct[k]])
        scale = blend[s] / top if top > 0.0 else 0.0
        for k in range(d):
            item = distinct[k]
            if scale > 0.0:
                if totals[item] == 0.0:
                    candidates[n] = item
                    n += 1
                totals[item] += sums[item] * scale
            sums[item] = 0.0
    kept_items = np.empty(n, np.int64)
    kept_scores = np.empty(n)
    k = 0
    for i in range(n):
        item = candidates[i]
        if not hidden[item] and not unavailable[item]:
            kept_items[k] = item
            kept_scores[k] = totals[item]
            k += 1
        totals[item] = 0.0
    extra = _visible_heads(heads, head_bounds, head_sizes, hidden, unavailable)
    return _with_extra(kept_items[:k], kept_scores[:k], _best(kept_scores[:k], shortlist), extra, sums)


@njit(cache=True, nogil=True)
def _visible_heads(heads, bounds, sizes, hidden, unavailable):  # type: ignore[no-untyped-def]
    out = np.empty(heads.size, np.int64)
    c = 0
    for h in range(bounds.size - 1):
        taken = 0
        for i in range(bounds[h], bounds[h + 1]):
            if taken == sizes[h]:
                break
            if not hidden[heads[i]] and not unavailable[heads[i]]:
                out[c] = heads[i]
                c += 1
                taken += 1
    return out[:c]


@njit(cache=True, nogil=True)
def _best(scores, k):  # type: ignore[no-untyped-def]
    """Indices of the ``k`` highest scores, in no particular order (ties: the earliest)."""
    if scores.size <= k:
        return np.arange(scores.size)
    threshold = np.partition(scores, scores.size - k)[scores.size - k]
    out = np.empty(k, np.int64)
    c = 0
    for i in range(scores.size):
        if scores[i] > threshold:
            out[c] = i
            c += 1
    for i in range(scores.size):
        if c == k:
            break
        if scores[i] == threshold:
            out[c] = i
            c += 1
    return out


@njit(cache=True, nogil=True)
def _with_extra(items, scores, best, extra, mark):  # type: ignore[no-untyped-def]
    """The ``best`` (items, scores), then the ``extra`` items not among them with score 0."""
    out_items = np.empty(best.size + extra.size, np.int64)
    out_scores = np.zeros(best.size + extra.size)
    for i in range(best.size):
        out_items[i] = items[best[i]]
        out_scores[i] = scores[best[i]]
        mark[out_items[i]] = 1.0
    c = best.size
    for item in extra:
        if mark[item] == 0.0:
            mark[item] = 1.0
            out_items[c] = item
            c += 1
    mark[out_items[:c]] = 0.0
    return out_items[:c], out_scores[:c]


@njit(cache=True, nogil=True)
def final_scores(  # type: ignore[no-untyped-def]
    candidates, scores, relative, category_matrix, popularity, popularity_scale, positives, seen,
    popularity_weight, quality_weight, affinity_weight,
):  # fmt: skip
    """Candidate scores plus popularity, quality (smoothed share of positives) and category affinity.

    An item's affinity is the best ``relative`` value among its categories (row of
    ``category_matrix``; -1 pads, -2 means no category and reads ``relative[-2]``).
    """
    total = np.empty(candidates.size)
    width, no_category = category_matrix.shape[1], relative.size - 2
    for i in range(candidates.size):
        item = candidates[i]
        affinity = -np.inf
        for j in range(width):
            category = category_matrix[item, j]
            if category == -1:
                break
            affinity = max(affinity, relative[no_category if category == -2 else category])
        known = max(popularity[item], 0.0) * popularity_scale if item < popularity.size else 0.0
        quality = (positives[item] + 1.0) / (seen[item] + 2.0)
        total[i] = (
            scores[i] + popularity_weight * known + quality_weight * quality + affinity_weight * affinity
        )
    return total


@njit(cache=True, nogil=True)
def rank(  # type: ignore[no-untyped-def]
    history, consumed, sequence_recent, sequence, co_recent, co_decay, cooccurrence,
    transitions_recent, transitions_decay, transitions, blending, heads, final,
):  # fmt: skip
    """The whole candidate pipeline of one request: signals, blend, shortlist, final scores.

    ``sequence`` is the `sequence_scores` state, ``cooccurrence`` and ``transitions`` the
    `links_of` states, each read for its number of recent items. ``blending`` is (weights, sums,
    totals, hidden, unavailable, shortlist); ``heads`` is what `combine` takes of popular lists;
    ``final`` is (category probabilities, category matrix, popularity, popularity scale, positives,
    seen, three weights). ``consumed`` items are hidden for the call. Returns (items, scores),
    best first.
    """
    weights, sums, totals, hidden, unavailable, shortlist = blending
    one_i, one_w = sequence_scores(newest(history, sequence_recent, sequence[2].size), *sequence)
    two_i, two_w = links_of(newest(history, co_recent, cooccurrence[0].size), co_decay, *cooccurrence)
    three_i, three_w = links_of(
        newest(history, transitions_recent, transitions[0].size), transitions_decay, *transitions
    )
    bounds = np.array([0, one_i.size, one_i.size + two_i.size, one_i.size + two_i.size + three_i.size])
    hidden[consumed] = True
    items, scores = combine(
        np.concatenate((one_i, two_i, three_i)), np.concatenate((one_w, two_w, three_w)), bounds,
        weights, sums, totals, hidden, unavailable, shortlist, *heads,
    )  # fmt: skip
    hidden[consumed] = False
    probabilities, category_matrix, popularity, scale, positives, seen, w_pop, w_quality, w_affinity = final
    # Relative affinity per category id; the last two slots: the mean (items without a category
    # point there) and -inf (padding).
    relative = np.empty(probabilities.size + 2)
    top = probabilities.max() if probabilities.size and probabilities.max() > 0 else 1.0
    relative[:-2] = probabilities / top
    relative[-2] = relative[:-2].mean() if probabilities.size else 0.0
    relative[-1] = -np.inf
    total = final_scores(
        items,
        scores,
        relative,
        category_matrix,
        popularity,
        scale,
        positives,
        seen,
        w_pop,
        w_quality,
        w_affinity,
    )
    order = np.argsort(-total, kind="mergesort")
    return items[order], total[order]
