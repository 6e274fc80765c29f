"""Compiled ranking of one request (numba): blend the signals, cut the shortlist, final scores.

`rank` runs the whole candidate pipeline in one call, reading the state kernels of
`models.kernels`; scratch arrays it gets are all-zero on entry and on exit.
"""

from __future__ import annotations

__all__ = [
    "FEATURES",
    "combine",
    "explore_order",
    "features",
    "learn_taken",
    "popular",
    "rank",
]

import numpy as np
from numba import njit

from models.blend import _step
from models.focus import _count_ranking, focused
from models.kernels import affinity_predict, links_of, newest, read_history, sequence_scores
from models.taste import shares_of


@njit(cache=True, nogil=True)
def combine(  # type: ignore[no-untyped-def]
    items, weights, bounds, blend, values, totals, hidden, unavailable, shortlist, extra,
):  # fmt: skip
    """Sum each signal's pairs per item, scale each signal to max 1, blend them, keep the best.

    Signal s is ``items[bounds[s]:bounds[s+1]]``; an item's value of it lands in ``values[item, s]``
    and ``blend[s]`` times that in its total. Items marked in ``hidden`` or ``unavailable`` are
    dropped; the best ``shortlist`` by total remain. Then, with all values 0, the ``extra`` items
    (popular ones) not already there. Returns (items, their signal values). ``values``
    (items x signals) and ``totals`` (per item) are scratch arrays.
    """
    # Branch-free bookkeeping below: whether an item is new to a list is data, not control flow
    # (the branches mispredict about half the time and cost more than the arithmetic).
    candidates = np.empty(items.size, np.int64)
    n = 0
    distinct = np.empty(items.size, np.int64)
    for s in range(bounds.size - 1):
        d = 0
        for i in range(bounds[s], bounds[s + 1]):
            item = items[i]
            distinct[d] = item
            d += values[item, s] == 0.0
            values[item, s] += weights[i]
        top = 0.0
        for k in range(d):
            top = max(top, values[distinct[k], s])
        scale = 1.0 / top if top > 0.0 else 0.0
        for k in range(d):
            item = distinct[k]
            candidates[n] = item
            n += totals[item] == 0.0
            values[item, s] *= scale
            # A tiny floor keeps "is a candidate" readable from totals when a blend weight is 0.
            totals[item] += max(blend[s] * values[item, s], 1e-12)
    kept = np.empty(n, np.int64)
    kept_totals = np.empty(n)
    k = 0
    for i in range(n):
        item = candidates[i]
        kept[k] = item
        kept_totals[k] = totals[item]
        k += not (hidden[item] or unavailable[item])
        totals[item] = 0.0
    chosen = _best(kept_totals[:k], shortlist)
    best = np.empty(chosen.size, np.int64)
    for i in range(chosen.size):
        best[i] = kept[chosen[i]]
    out = _with_extra(best, extra, totals)
    # Element loops: numba's row slices (``values[item] = 0.0``) make a view per row, which cost more.
    signals = np.zeros((out.size, bounds.size - 1))
    for i in range(best.size):
        for s in range(bounds.size - 1):
            signals[i, s] = values[best[i], s]
    for i in range(n):
        for s in range(bounds.size - 1):
            values[candidates[i], s] = 0.0
    return out, signals


@njit(cache=True, nogil=True)
def _visible(head, take, hidden, unavailable, out, c):  # type: ignore[no-untyped-def]
    """Append to ``out`` from ``c`` on the first ``take`` items of ``head`` (-1 ends it) that are
    neither hidden nor unavailable; returns the new end."""
    taken = 0
    for item in head:
        if item < 0 or taken == take:
            break
        if not (hidden[item] or unavailable[item]):
            out[c] = item
            c += 1
            taken += 1
    return c


@njit(cache=True, nogil=True)
def popular(overall, by_category, probabilities, n, hidden, unavailable):  # type: ignore[no-untyped-def]
    """Popular candidates: the first ``n`` visible items of the ``overall`` head, and ``n // 2 + 1``
    of the heads (rows of ``by_category``) of the three categories the user likes best."""
    rows = min(by_category.shape[0], probabilities.size)
    favourites = np.argsort(-probabilities[:rows], kind="mergesort")[:3]
    out = np.empty(n + favourites.size * (n // 2 + 1), np.int64)
    c = _visible(overall, n, hidden, unavailable, out, 0)
    for category in favourites:
        c = _visible(by_category[category], n // 2 + 1, hidden, unavailable, out, c)
    return out[:c]


@njit(cache=True, nogil=True)
def _kth_largest(values, k):  # type: ignore[no-untyped-def]
    """The k-th largest of ``values`` (1 <= k <= size; no NaN), by quickselect.

    Each round splits the values around a median-of-three pivot without a branch per value: every
    value is written to both ends of a scratch array and only the counters say which copy stays (the
    comparisons are unpredictable, and branching on them cost about twice as much; numba's
    ``np.partition`` about three times). The pivot is one of the values, so each round shrinks.

    >>> _kth_largest(np.array([0.5, 0.1, 0.9, 0.5, 0.3]), 3)
    0.5
    """
    a, b = values.copy(), np.empty(values.size)
    m, target = a.size, k
    while True:
        x, y, z = a[0], a[m >> 1], a[m - 1]
        pivot = max(min(x, y), min(max(x, y), z))
        above, below = 0, 0
        for i in range(m):
            value = a[i]
            b[above] = value
            above += value > pivot
            b[m - 1 - below] = value
            below += value < pivot
        if target <= above:  # among those above the pivot, now at the front of b
            a, b = b, a
            m = above
        elif target > m - below:  # among those below it, at the back of b
            target -= m - below
            a[:below] = b[m - below : m]
            m = below
        else:
            return pivot


@njit(cache=True, nogil=True)
def _best(scores, k):  # type: ignore[no-untyped-def]
    """Indices of the ``k`` highest scores: those above the k-th highest, then the earliest of those
    equal to it, each in index order (NaN ranks last).

    >>> _best(np.array([0.2, 0.9, 0.4, 0.9, 0.4]), 3)
    array([1, 3, 2])
    """
    if scores.size <= k:
        return np.arange(scores.size)
    nan = False
    for i in range(scores.size):
        nan |= np.isnan(scores[i])
    if nan:  # NaN has no order: it ranks last
        scores = np.where(np.isnan(scores), -np.inf, scores)
    threshold = _kth_largest(scores, k)
    # Branch-free as above: at most k - 1 scores are above the threshold, so every write is in bounds.
    out = np.empty(k + 1, np.int64)
    c = 0
    for i in range(scores.size):
        out[c] = i
        c += scores[i] > threshold
    for i in range(scores.size):
        out[c] = i
        c += (scores[i] == threshold) & (c < k)
    return out[:k]


@njit(cache=True, nogil=True)
def _head_first(scores, k):  # type: ignore[no-untyped-def]
    """Indices of ``scores``: the ``k`` highest first, as a stable sort by score descending puts them
    (NaN last), then the others in index order, unsorted (sorting all cost twice as much, and callers
    rarely read past the head).

    >>> _head_first(np.array([0.2, 0.9, 0.4, 0.9, 0.1]), 3)
    array([1, 3, 2, 0, 4])
    """
    top = _best(scores, k)
    keys = np.empty(top.size)
    for i in range(top.size):
        keys[i] = -scores[top[i]]
    ranked = np.argsort(keys, kind="mergesort")
    order = np.empty(scores.size + 1, np.int64)
    rest = np.ones(scores.size, np.bool_)
    for i in range(top.size):
        order[i] = top[ranked[i]]
        rest[top[i]] = False
    c = top.size
    for i in range(scores.size):
        order[c] = i
        c += rest[i]
    return order[: scores.size]


@njit(cache=True, nogil=True)
def _with_extra(best, extra, mark):  # type: ignore[no-untyped-def]
    """The ``best`` items, then the ``extra`` items not among them (``mark``: zero scratch)."""
    out = np.empty(best.size + extra.size, np.int64)
    out[: best.size] = best
    for i in range(best.size):
        mark[best[i]] = 1.0
    c = best.size
    for item in extra:
        out[c] = item
        c += mark[item] == 0.0
        mark[item] = 1.0
    for i in range(c):
        mark[out[i]] = 0.0
    return out[:c]


#: Features of a candidate, in the order of the columns `rank` returns (and of the blend weights).
FEATURES = (
    "sequence", "cooccurrence", "transitions", "content", "popularity", "quality", "affinity", "taste",
)  # fmt: skip


@njit(cache=True, nogil=True)
def features(  # type: ignore[no-untyped-def]
    candidates, signals, relative, category_matrix, popularity, popularity_scale, positives, seen,
    shares, mass, fits, fit_prior,
):  # fmt: skip
    """One row of `FEATURES` per candidate: its sequence signals, then popularity, quality
    (smoothed share of positives), category affinity and taste.

    An item's affinity is the best ``relative`` value among its categories (row of
    ``category_matrix``; -1 pads, -2 means no category and reads ``relative[-2]``). Its taste sums,
    over its categories c, the user's share of c (``shares``) times the item's share of c's
    popularity: its ``popularity`` value, times the fit of c among its categories (row of ``fits``,
    plus ``fit_prior`` each, normalised), over ``mass[c]``; scaled to max 1 over the candidates.
    """
    out = np.empty((candidates.size, signals.shape[1] + 4))
    out[:, : signals.shape[1]] = signals
    width, no_category, last = category_matrix.shape[1], relative.size - 2, signals.shape[1]
    categories = min(shares.size, mass.size)
    top = 0.0
    for i in range(candidates.size):
        item = candidates[i]
        value = max(popularity[item], 0.0) if item < popularity.size else 0.0
        affinity = -np.inf
        taste, fit_total = 0.0, 0.0
        for j in range(width):
            category = category_matrix[item, j]
            if category == -1:
                break
            affinity = max(affinity, relative[no_category if category == -2 else category])
            fit = fits[item, j] + fit_prior
            fit_total += fit
            if 0 <= category < categories and mass[category] > 0.0:
                taste += shares[category] * fit / mass[category]
        if affinity == -np.inf:  # a row of padding only (an item known without any category)
            affinity = relative[no_category]
        taste = taste * value / fit_total if fit_total > 0.0 else 0.0
        out[i, last] = value * popularity_scale
        out[i, last + 1] = (positives[item] + 1.0) / (seen[item] + 2.0)
        out[i, last + 2] = affinity
        out[i, last + 3] = taste
        top = max(top, taste)
    if top > 0.0:
        out[:, last + 3] /= top
    return out


@njit(cache=True, nogil=True)
def rank(  # type: ignore[no-untyped-def]
    recent, fallback, sequence_recent, sequence, co_recent, co_decay, co_floor, cooccurrence,
    transitions_recent, transitions_decay, transitions, content_recent, content_decay, content,
    blending, heads, final, focusing, keeping,
):  # fmt: skip
    """The whole candidate pipeline of one request: signals, blend, shortlist, features, scores, list.

    The signals start from the user's ``recent`` latest items (``fallback`` when the model has none).
    ``sequence`` is the `sequence_scores` state, ``cooccurrence``, ``transitions`` and ``content``
    the `links_of` states, each read for its number of recent items (co-occurrence links of weight
    ``co_floor`` or less left out). ``blending`` is (weights of
    `FEATURES`, values, totals, hidden, unavailable, shortlist); ``heads`` is (overall head, heads
    by category, n) for `popular`, which takes the heads of the user's three largest shares;
    ``final`` is (the `affinity_predict` arguments, then the `features` arguments from the category
    matrix on, with the `models.taste.shares_of` arguments for the shares); ``focusing`` the last
    arguments of `models.focus.focused`, which makes the list from the first 4n of the ranking;
    ``keeping`` is (how many of the ranking's head to return, the fresh items to order for
    exploration: `explore_order`, the step that keeps listed scores strictly falling). The user's
    consumed items are hidden for the call. Returns the head of the ranking (items as int32, their
    features as float32, copies), the user's category shares, (items, scores) in the order of the list
    for as many as there are stepped scores (at least the head; max(keep, 4n) in all) and unsorted after
    them, the stepped scores, and the fresh items in their exploration order. A stepped score is the
    score kept strictly below the stepped one above it (``step`` below it where it would not be lower).
    """
    weights, values, totals, hidden, unavailable, shortlist = blending
    # The user's consumed items (hidden from the ranking) and latest ``recent`` of them (the signals'
    # starting points), read from the sequence state; ``fallback`` when the model has no history yet.
    me, start, end, table, pages = sequence[0], sequence[6], sequence[7], sequence[8], sequence[9]
    consumed = read_history(me, start[me], end[me], table, pages) if me >= 0 else np.empty(0, np.int64)
    history = consumed[max(consumed.size - recent, 0) :].copy() if consumed.size else fallback
    one_i, one_w = sequence_scores(newest(history, sequence_recent, sequence[2].size), *sequence)
    two_i, two_w = links_of(
        newest(history, co_recent, cooccurrence[0].size), co_decay, co_floor, *cooccurrence
    )
    three_i, three_w = links_of(
        newest(history, transitions_recent, transitions[0].size), transitions_decay, 0.0, *transitions
    )
    four_i, four_w = links_of(newest(history, content_recent, content[0].size), content_decay, 0.0, *content)
    bounds = np.cumsum(np.array([0, one_i.size, two_i.size, three_i.size, four_i.size]))
    affinity, category_matrix, popularity, scale, positives, seen, taste, mass, fit, fit_prior = final
    probabilities = affinity_predict(*affinity)
    shares = shares_of(*taste)
    hidden[consumed] = True
    overall, by_category, n = heads
    extra = popular(overall, by_category, shares, n, hidden, unavailable)
    items, signals = combine(
        np.concatenate((one_i, two_i, three_i, four_i)), np.concatenate((one_w, two_w, three_w, four_w)),
        bounds,
        weights, values, totals, hidden, unavailable, shortlist, extra,
    )  # fmt: skip
    hidden[consumed] = False
    # Relative affinity per category id; the last two slots: the mean (items without a category
    # point there) and -inf (padding).
    relative = np.empty(probabilities.size + 2)
    top = probabilities.max() if probabilities.size and probabilities.max() > 0 else 1.0
    relative[:-2] = probabilities / top
    relative[-2] = relative[:-2].mean() if probabilities.size else 0.0
    relative[-1] = -np.inf
    table = features(
        items,
        signals,
        relative,
        category_matrix,
        popularity,
        scale,
        positives,
        seen,
        shares,
        mass,
        fit,
        fit_prior,
    )
    total = np.empty(items.size)
    for i in range(items.size):
        value = 0.0
        for j in range(weights.size):
            value += weights[j] * table[i, j]
        total[i] = value
    keep, fresh, step = keeping
    # Only the head the caller reads is put in order; the rest follows unsorted.
    sorted_head = min(items.size, max(keep, 4 * n))
    order = _head_first(total, sorted_head)
    items, total = items[order], total[order]
    levels, bounds, trust = focusing
    listed, listed_total = focused(
        items, total, 4 * n, category_matrix, fit, fit_prior, shares, levels, bounds, trust, n
    )
    stepped = np.empty(sorted_head)
    ceiling = np.inf
    for i in range(sorted_head):
        value = listed_total[i]
        ceiling = value if value < ceiling else ceiling - step
        stepped[i] = ceiling
    head = min(keep, items.size)
    head_items = items[:head].astype(np.int32)
    head_table = np.empty((head, table.shape[1]), np.float32)
    for i in range(head):
        for j in range(table.shape[1]):
            head_table[i, j] = table[order[i], j]
    ordered = explore_order(fresh, unavailable, category_matrix, shares) if fresh.size else fresh
    return head_items, head_table, shares, listed, listed_total, stepped, ordered


@njit(cache=True, nogil=True)
def explore_order(newest, unavailable, matrix, prob):  # type: ignore[no-untyped-def]
    """The available items of ``newest`` (newest first), best liked first: by the user's highest
    probability ``prob`` over each item's row of the category ``matrix`` (-1 padded; 0 without a
    category), ties kept newest first.

    >>> m = np.array([[0, -1], [1, -1], [1, 0], [-1, -1]])
    >>> explore_order(np.array([3, 2, 1, 0]), np.array([False, True, False, False]), m, np.array([0.2, 0.7]))
    array([2, 0, 3])
    """
    liked = np.full(newest.size, -1.0)
    for j in range(newest.size):
        item = newest[j]
        if unavailable[item]:
            continue
        best = 0.0
        for c in matrix[item]:
            if 0 <= c < prob.size and prob[c] > best:
                best = prob[c]
        liked[j] = best
    order = np.argsort(-liked, kind="mergesort")
    return newest[order[: (liked >= 0.0).sum()]]


@njit(cache=True, nogil=True)
def learn_taken(candidates, item, table, blend, focusing):  # type: ignore[no-untyped-def]
    """What the user's taking ``item`` teaches from their remembered ranking (``candidates`` best first,
    their feature ``table``), in one call: one step of the blend (`models.blend.OnlineBlend.learn_one`:
    not from fewer than two rows nor from a non-finite feature), then, for a ``focusing`` confidence
    above 0, the focus's counts (`models.focus.Focus.learn` for the candidates' fit to the user's
    favourite categories in ``shares``). ``blend`` is
    `OnlineBlend.step_state`, ``focusing`` `Focus.count_state`. Returns (whether the blend learned, the
    focus's segment and chosen level, or -1 and 0 when it did not count); nothing is learned when
    ``item`` is not a candidate.
    """
    taken = -1
    for i in range(candidates.size):
        if candidates[i] == item:
            taken = i
            break
    if taken < 0:
        return False, -1, 0.0
    weights, prior, learning_rate, pull = blend
    learned = taken < table.shape[0] and table.shape[0] >= 2 and np.isfinite(table).all()
    if learned:
        _step(table, taken, weights, prior, learning_rate, pull)
    hits, levels, bounds, matrix, fit, fit_prior, shares, confidence, depth, decay, tolerance = focusing
    if confidence <= 0.0:
        return learned, -1, 0.0
    segment, chosen = _count_ranking(
        hits, levels, bounds, candidates, taken, matrix, fit, fit_prior, shares, confidence, depth, decay,
        tolerance,
    )  # fmt: skip
    return learned, segment, chosen
