"""Compiled inner loops of the model state (numba): histories, sequence neighbours, item links, affinity.

Each kernel reads and writes plain numpy arrays owned by the Python classes that call it
(`models.sequence`, `models.cooccurrence`, `models.affinity`); ranking is `models.ranking_kernels`.
Kernels never allocate state that
outlives a call, and every scratch array they get is all-zero on entry and on exit. Callers make
room in the arrays (`models.arrays.grown`) before a kernel may write past the end.
"""

from __future__ import annotations

__all__ = [
    "affinity_learn",
    "affinity_predict",
    "append",
    "consume",
    "link",
    "links_of",
    "newest",
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
def _filled(items, slab_of, count, capacity):  # type: ignore[no-untyped-def]
    """How many entries the slabs of ``items`` hold (at most ``capacity`` each; -1: no slab)."""
    total = 0
    for item in items:
        if slab_of[item] >= 0:
            total += min(count[slab_of[item]], capacity)
    return total


@njit(cache=True, nogil=True)
def _matches(recent, me, decay, occ_slab, occ_users, occ_positions, occ_count, start):  # type: ignore[no-untyped-def]
    """(user, position, recency) of every occurrence of ``recent`` items in other users' histories."""
    capacity = occ_users.shape[1]
    total = _filled(recent, occ_slab, occ_count, capacity)
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
    for i in range(users.size):  # branch-free: whether a user is new is data (it mispredicts often)
        distinct[d] = users[i]
        d += sim[users[i]] == 0.0
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
def link(window, item, symmetric, row_of, ids, weights, count, total, used, keep, slot):  # type: ignore[no-untyped-def]
    """Count ``item`` as a neighbour of each item in ``window`` (and, symmetric, the reverse).

    Rows live in slabs: ``row_of[item]`` is the item's slab or -1; ``used[0]`` slabs are taken.
    A row that fills its slab keeps its ``keep`` strongest links. ``slot`` (per item, all -1 on
    entry and exit) maps the links of ``item``'s own row while it takes the whole window. Returns
    the ``row_of`` size and slab count needed when they are too small (and changes nothing), else
    (0, 0).
    """
    top = item
    for other in window:
        top = max(top, other)
    if top >= row_of.size or used[0] + window.size + 1 > ids.shape[0]:
        return top + 1, used[0] + window.size + 1
    mine = -1
    if symmetric:
        mine = row_of[item] if row_of[item] >= 0 else _new_row(item, row_of, used)
        _map(mine, ids, count, slot, True)
    for other in window:
        if other != item:
            row = row_of[other] if row_of[other] >= 0 else _new_row(other, row_of, used)
            _add(row, item, ids, weights, count, total, keep)
            if symmetric:
                _add_mapped(mine, other, ids, weights, count, total, keep, slot)
    if symmetric:
        _map(mine, ids, count, slot, False)
    return 0, 0


@njit(cache=True, nogil=True)
def _map(row, ids, count, slot, on):  # type: ignore[no-untyped-def]
    """Point ``slot`` at the positions of the row's links (or back to -1)."""
    for i in range(count[row]):
        slot[ids[row, i]] = i if on else -1


@njit(cache=True, nogil=True)
def _add_mapped(row, b, ids, weights, count, total, keep, slot):  # type: ignore[no-untyped-def]
    """`_add` for the row whose links ``slot`` maps: no scan, and the map follows a pruning."""
    if slot[b] >= 0:
        weights[row, slot[b]] += 1.0
        total[row] += 1.0
        return
    full = count[row] + 1 == ids.shape[1]  # this link fills the row: it will be pruned
    if full:
        _map(row, ids, count, slot, False)
    _add(row, b, ids, weights, count, total, keep)
    if full:
        _map(row, ids, count, slot, True)
    else:
        slot[b] = count[row] - 1


@njit(cache=True, nogil=True)
def _new_row(item, row_of, used):  # type: ignore[no-untyped-def]
    row_of[item] = used[0]
    used[0] += 1
    return row_of[item]


@njit(cache=True, nogil=True)
def _add(slab, b, ids, weights, count, total, keep):  # type: ignore[no-untyped-def]
    """One more link slab -> b; True when the row filled up and was pruned to ``keep`` links."""
    total[slab] += 1.0
    n = count[slab]
    # The link's position, if any: a scan without an early exit compiles to vector compares, faster
    # over rows of ~140 links than stopping at the match (ids are distinct within a row).
    found = -1
    row = ids[slab]
    for i in range(n):
        found = i if row[i] == b else found
    if found >= 0:
        weights[slab, found] += 1.0
        return False
    ids[slab, n] = b
    weights[slab, n] = 1.0
    n += 1
    count[slab] = n
    if n < ids.shape[1]:
        return False
    best = np.argsort(-weights[slab, :n], kind="mergesort")[:keep]
    kept_ids, kept_weights = ids[slab, best], weights[slab, best]
    ids[slab, :keep] = kept_ids
    weights[slab, :keep] = kept_weights
    count[slab] = keep
    return True


@njit(cache=True, nogil=True)
def links_of(recent, decay, floor, row_of, ids, weights, count, total):  # type: ignore[no-untyped-def]
    """(item, weight) pairs: the rows of ``recent`` (newest first), each scaled to its share of the
    row's links and by ``decay ** age``; links of weight ``floor`` or less are left out."""
    size = _filled(recent, row_of, count, ids.shape[1])
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
                c += weights[slab, i] > floor
        scale *= decay
    return out_items[:c], out_weights[:c]


@njit(cache=True, nogil=True)
def affinity_learn(  # type: ignore[no-untyped-def]
    user, categories, labels, shared, weight, personal, common, intercept, learning_rate, intercept_lr,
    scale,
):  # fmt: skip
    """One SGD step of the logistic category affinity (`models.affinity`) per category, in order;
    ``labels[i]`` is the label of ``categories[i]``."""
    for i in range(categories.size):
        c = categories[i]
        z = intercept[0] + personal[user, c]
        for p in shared:
            z += scale * common[p, c]
        gradient = (1.0 / (1.0 + np.exp(-z)) - labels[i]) * weight
        intercept[0] -= intercept_lr * gradient
        personal[user, c] -= learning_rate * gradient
        for p in shared:
            common[p, c] -= learning_rate * gradient * scale


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
def consume(user, item, sequence, cooccurrence, transitions):  # type: ignore[no-untyped-def]
    """One consumed item, in one call: link it to the user's latest items (co-occurrence over its
    window, transitions from the last one), then append it to the user's history.

    ``sequence`` is the `append` state after (user, item); ``cooccurrence`` and ``transitions`` are
    (window, symmetric, then the `link` state after ``symmetric``). Callers make room first
    (`CoOccurrence.reserve`, `SequenceNeighbors.reserve`); returns False (and may have linked some)
    if that was not done.
    """
    start, end, table, pages = sequence[0], sequence[1], sequence[2], sequence[3]
    for links in (cooccurrence, transitions):
        window, symmetric = links[0], links[1]
        first = max(start[user], end[user] - window)
        history = read_history(user, first, end[user], table, pages)
        grow = link(history, item, symmetric, *links[2:])
        if grow[0] != 0:
            return False
    append(user, item, *sequence)
    return True
