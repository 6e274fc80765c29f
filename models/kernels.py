"""Compiled inner loops of the recommender (numba): sequence neighbours, item links, signal blending.

Each kernel reads and writes plain numpy arrays owned by the Python classes that call it
(`models.sequence`, `models.cooccurrence`, `models.recommender`); kernels never allocate state that
outlives a call, and every scratch array they get is all-zero on entry and on exit. Callers make
room in the arrays (`models.arrays.grown`) before a kernel may write past the end.
"""

from __future__ import annotations

__all__ = [
    "affinity_learn",
    "affinity_predict",
    "append",
    "combine",
    "final_scores",
    "link",
    "links_of",
    "newest",
    "rank",
    "read_history",
    "sequence_scores",
]

import numpy as np
from numba import njit

#: A user's history is a ring of PAGES pages of PAGE items (see `models.sequence`).
PAGE_BITS = 6
PAGE = 1 << PAGE_BITS
PAGES = 32
MAX_HISTORY = PAGE * PAGES


@njit(cache=True, nogil=True)
def read_history(user, first, last, table, pages):  # type: ignore[no-untyped-def]
    """Items at absolute positions first..last-1 of one user's history."""
    out = np.empty(max(last - first, 0), np.int64)
    for i in range(out.size):
        slot = (first + i) & (MAX_HISTORY - 1)
        out[i] = pages[table[user, slot >> PAGE_BITS], slot & (PAGE - 1)]
    return out


@njit(cache=True, nogil=True)
def _matches(recent, me, decay, occ_slab, occ_users, occ_positions, occ_count, start):  # type: ignore[no-untyped-def]
    """(user, position, recency) of every occurrence of ``recent`` items in other users' histories."""
    capacity = occ_users.shape[1]
    total = 0
    for item in recent:
        if occ_slab[item] >= 0:
            total += min(occ_count[occ_slab[item]], capacity)
    users = np.empty(total, np.int64)
    positions = np.empty(total, np.int64)
    recency = np.empty(total)
    m = 0
    weight = 1.0
    for item in recent:
        slab = occ_slab[item]
        for j in range(min(occ_count[slab], capacity) if slab >= 0 else 0):
            user, position = occ_users[slab, j], occ_positions[slab, j]
            if user != me and position >= start[user]:
                users[m], positions[m], recency[m] = user, position, weight
                m += 1
        weight *= decay
    return users[:m], positions[:m], recency[:m]


@njit(cache=True, nogil=True)
def _similarity(users, recency, neighbors, sim, excluded):  # type: ignore[no-untyped-def]
    """Sum recencies per user into ``sim``; mark all but the top ``neighbors`` users ``excluded``.

    Returns the distinct users, so the caller can clear both scratch arrays.
    """
    distinct = np.empty(users.size, np.int64)
    d = 0
    for i in range(users.size):
        if sim[users[i]] == 0.0:
            distinct[d] = users[i]
            d += 1
        sim[users[i]] += recency[i]
    if d > neighbors:
        order = np.argsort(-sim[distinct[:d]], kind="mergesort")
        for k in range(neighbors, d):
            excluded[distinct[order[k]]] = True
    return distinct[:d]


@njit(cache=True, nogil=True)
def sequence_scores(  # type: ignore[no-untyped-def]
    recent, me, decay, occ_slab, occ_users, occ_positions, occ_count,
    start, end, table, pages, neighbors, offsets, after_weight, before_weight, sim, excluded,
):  # fmt: skip
    """(item, weight) pairs around the positions where other users consumed the ``recent`` items.

    ``recent`` is newest first; a match's recency is ``decay ** age``. Users are weighted by the sum
    of their matches' recencies, and only the top ``neighbors`` users count. ``sim`` (float) and
    ``excluded`` (bool) are per-user scratch arrays.
    """
    users, positions, recency = _matches(
        recent, me, decay, occ_slab, occ_users, occ_positions, occ_count, start
    )
    distinct = _similarity(users, recency, neighbors, sim, excluded)
    width = offsets.size
    out_items = np.empty(users.size * width, np.int64)
    out_weights = np.empty(users.size * width)
    c = 0
    for i in range(users.size):
        user = users[i]
        if excluded[user]:
            continue
        for k in range(width):
            q = positions[i] + offsets[k]
            if start[user] <= q < end[user]:
                slot = q & (MAX_HISTORY - 1)
                out_items[c] = pages[table[user, slot >> PAGE_BITS], slot & (PAGE - 1)]
                out_weights[c] = sim[user] * (recency[i] * after_weight[k] + before_weight[k])
                c += 1
    sim[distinct] = 0.0
    excluded[distinct] = False
    return out_items[:c], out_weights[:c]


@njit(cache=True, nogil=True)
def link(window, item, symmetric, row_of, ids, weights, count, total, used, keep):  # type: ignore[no-untyped-def]
    """Count ``item`` as a neighbour of each item in ``window`` (and, symmetric, the reverse).

    Rows live in slabs: ``row_of[item]`` is the item's slab or -1; ``used[0]`` slabs are taken.
    A row that fills its slab keeps its ``keep`` strongest links. Returns the ``row_of`` size and
    slab count needed when they are too small (and changes nothing), else (0, 0).
    """
    top = item
    for other in window:
        top = max(top, other)
    if top >= row_of.size or used[0] + window.size + 1 > ids.shape[0]:
        return top + 1, used[0] + window.size + 1
    for other in window:
        if other == item:
            continue
        _add(other, item, row_of, ids, weights, count, total, used, keep)
        if symmetric:
            _add(item, other, row_of, ids, weights, count, total, used, keep)
    return 0, 0


@njit(cache=True, nogil=True)
def _add(a, b, row_of, ids, weights, count, total, used, keep):  # type: ignore[no-untyped-def]
    slab = row_of[a]
    if slab < 0:
        slab = used[0]
        used[0] += 1
        row_of[a] = slab
    total[slab] += 1.0
    n = count[slab]
    for i in range(n):
        if ids[slab, i] == b:
            weights[slab, i] += 1.0
            return
    ids[slab, n] = b
    weights[slab, n] = 1.0
    n += 1
    if n == ids.shape[1]:
        best = np.argsort(-weights[slab, :n], kind="mergesort")[:keep]
        kept_ids, kept_weights = ids[slab, best], weights[slab, best]
        ids[slab, :keep] = kept_ids
        weights[slab, :keep] = kept_weights
        n = keep
    count[slab] = n


@njit(cache=True, nogil=True)
def links_of(recent, decay, row_of, ids, weights, count, total):  # type: ignore[no-untyped-def]
    """(item, weight) pairs: the rows of ``recent`` (newest first), each scaled to its share of the
    row's links and by ``decay ** age``."""
    size = 0
    for item in recent:
        if row_of[item] >= 0:
            size += count[row_of[item]]
    out_items = np.empty(size, np.int64)
    out_weights = np.empty(size)
    c = 0
    scale = 1.0
    for item in recent:
        slab = row_of[item]
        if slab >= 0:
            share = scale / (total[slab] + 1.0)
            for i in range(count[slab]):
                out_items[c] = ids[slab, i]
                out_weights[c] = weights[slab, i] * share
                c += 1
        scale *= decay
    return out_items, out_weights


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
    for i in range(candidates.size):
        item = candidates[i]
        affinity = -np.inf
        for category in category_matrix[item]:
            if category == -1:
                break
            affinity = max(affinity, relative[category])
        known = max(popularity[item], 0.0) * popularity_scale if item < popularity.size else 0.0
        quality = (positives[item] + 1.0) / (seen[item] + 2.0)
        total[i] = (
            scores[i] + popularity_weight * known + quality_weight * quality + affinity_weight * affinity
        )
    return total


@njit(cache=True, nogil=True)
def affinity_learn(  # type: ignore[no-untyped-def]
    user, categories, shared, label, weight, personal, common, intercept, learning_rate, intercept_lr, scale,
):  # fmt: skip
    """One SGD step of the logistic category affinity (`models.affinity`) per category."""
    for c in categories:
        z = intercept[0] + personal[user, c]
        for p in shared:
            z += scale * common[p, c]
        gradient = (1.0 / (1.0 + np.exp(-z)) - label) * weight
        intercept[0] -= intercept_lr * gradient
        personal[user, c] -= learning_rate * gradient
        for p in shared:
            common[p, c] -= learning_rate * gradient * scale


@njit(cache=True, nogil=True)
def newest(history, n, limit):  # type: ignore[no-untyped-def]
    """The last ``n`` items of ``history``, newest first, without ids >= ``limit`` (no state yet)."""
    out = np.empty(min(n, history.size), np.int64)
    c = 0
    for i in range(history.size - 1, history.size - 1 - out.size, -1):
        if history[i] < limit:
            out[c] = history[i]
            c += 1
    return out[:c]


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


@njit(cache=True, nogil=True)
def affinity_predict(user, shared, personal, common, intercept, n, scale):  # type: ignore[no-untyped-def]
    """P(positive) of the first ``n`` categories for ``user`` (-1: unknown) in a context."""
    out = np.empty(n)
    for c in range(n):
        z = intercept[0] + (personal[user, c] if user >= 0 else 0.0)
        for p in shared:
            z += scale * common[p, c]
        out[c] = 1.0 / (1.0 + np.exp(-z))
    return out


@njit(cache=True, nogil=True)
def append(user, item, start, end, table, pages, pages_used, slab_of, occ_users, occ_positions, occ_count):  # type: ignore[no-untyped-def]
    """Add ``item`` to the user's history ring and to the item's occurrence ring.

    Needs room for one more page and one more slab; ``pages_used`` is [pages taken, slabs taken].
    """
    position = end[user]
    slot = position & (MAX_HISTORY - 1)
    page = table[user, slot >> PAGE_BITS]
    if page < 0:
        page = table[user, slot >> PAGE_BITS] = pages_used[0]
        pages_used[0] += 1
    pages[page, slot & (PAGE - 1)] = item
    end[user] = position + 1
    start[user] = max(start[user], position + 1 - MAX_HISTORY)
    slab = slab_of[item]
    if slab < 0:
        slab = slab_of[item] = pages_used[1]
        pages_used[1] += 1
    ring = occ_count[slab] % occ_users.shape[1]
    occ_users[slab, ring] = user
    occ_positions[slab, ring] = position
    occ_count[slab] += 1
