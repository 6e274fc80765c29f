"""Learning events in compiled calls: many events of users a model does not rank in one call per run of
events (`learn_others`), and each event of a user it ranks in one call (`learn_owned`), through the same
kernel (`learn_event`).

Every worker learns every other worker's events (docs/scale-out.md), so the bulk path's cost is paid
once per worker per event and bounds the cluster. A Python pass gives each event its ids (making rows
for new users, items and context parts, in the order the one-by-one path makes them), one kernel then
learns the whole run (popularity counts, the user's history with its co-occurrences and transitions,
category shares and fit, affinity), and the popularity heads, plain Python objects, follow event by
event. The owner's path learns the same per event, then the heads and, from the user's last ranking,
the blend and the focus (`HybridRecommender.learn_one`).

The bulk result is the one-by-one path's exactly (`tests/models/test_bulk_learn.py`): same arithmetic in
the same order, the implicit negatives drawn from the same random stream.
"""

from __future__ import annotations

__all__ = ["Learner", "learn_event", "learn_events", "learn_others", "learn_owned"]

import random
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from numba import njit

from models import kernels, taste
from models.affinity import CategoryAffinity
from models.arrays import Vocabulary
from models.cooccurrence import CoOccurrence
from models.popular_heads import PopularHeads
from models.sequence import SequenceNeighbors
from models.signals import signal_of
from schemas.events import Event

_NONE = np.zeros(0, dtype=np.int64)


class Learner(Protocol):
    """The state of `models.recommender.HybridRecommender` this module learns into (its own state: this
    is the bulk half of the recommender's learning, kept apart for size)."""

    heads: PopularHeads
    sequence: SequenceNeighbors
    cooccurrence: CoOccurrence
    transitions: CoOccurrence
    shares: taste.CategoryShares
    affinity: CategoryAffinity
    item_categories: taste.ItemCategories
    _items: Vocabulary
    _shown: OrderedDict[str, Any]
    _rng: random.Random
    _positives: npt.NDArray[np.float64]
    _seen: npt.NDArray[np.float64]

    def _item(self, item_id: str, *, taken: bool = False) -> int: ...


@njit(cache=True, nogil=True)
def _room(sequence, cooccurrence, transitions):  # type: ignore[no-untyped-def]
    """Whether `kernels.consume` has room for one more item (what the reserve calls make)."""
    pages, used, occ_count = sequence[3], sequence[4], sequence[8]
    if used[0] >= pages.shape[0] or used[1] >= occ_count.size:
        return False
    for links in (cooccurrence, transitions):
        if links[7][0] + links[0] + 1 > links[3].shape[0]:
            return False
    return True


@njit(cache=True, nogil=True, inline="always")
def learn_event(  # type: ignore[no-untyped-def]
    item, label, consumed, rows, negative, parts, counts, sequence, cooccurrence, transitions, shares,
    affinity,
):  # fmt: skip
    """Learn one event; returns (whether it was learned: False, with nothing changed, when the history
    has no room for it (`_room`); the user's category shares before it, as `taste.learn_positive`
    gives them; how a positive was spread over the item's categories; both empty where the event
    teaches no shares).

    ``rows`` are its user's (sequence, shares, affinity) rows, ``negative`` the implicit negative
    category (-1: none), ``parts`` its shared context ids; the states are as in `learn_events`.
    """
    positives, seen = counts
    matrix, fit, fit_prior, keep, share_counts, totals, everyone, known, prior, trust = shares
    personal, common, intercept, learning_rate, intercept_lr, scale = affinity
    if consumed and not _room(sequence, cooccurrence, transitions):
        return False, np.zeros(0), np.zeros(0)
    positives[item] += label
    seen[item] += 1
    if consumed:
        kernels.consume(rows[0], item, sequence, cooccurrence, transitions)
    row = matrix[item]
    size = 0
    while size < row.size and row[size] >= 0:
        size += 1
    if size == 0:
        return True, np.zeros(0), np.zeros(0)
    if label == 0:
        kernels.affinity_learn(
            rows[2], row[:size], np.zeros(size), parts, 1.0, personal, common, intercept, learning_rate,
            intercept_lr, scale,
        )  # fmt: skip
        return True, np.zeros(0), np.zeros(0)
    before, spread = taste.learn_positive(
        rows[1], row, fit[item], fit_prior, keep, share_counts, totals, everyone, known, prior, trust,
    )  # fmt: skip
    extra = 1 if negative >= 0 else 0
    ids = np.empty(size + extra, np.int64)
    ids[:size] = row[:size]
    targets = np.ones(size + extra)
    if extra:
        ids[size] = negative
        targets[size] = 0.0
    kernels.affinity_learn(
        rows[2], ids, targets, parts, 1.0, personal, common, intercept, learning_rate, intercept_lr, scale
    )  # fmt: skip
    return True, before, spread


@njit(cache=True, nogil=True)
def learn_events(  # type: ignore[no-untyped-def]
    start, items, labels, consumed, users, negatives, shared, shared_at, counts,
    sequence, cooccurrence, transitions, shares, affinity, fractions,
):  # fmt: skip
    """Learn events ``start``.. in order (`learn_event` each); returns where it stopped: ``items.size``
    when done, an earlier index when that event needs history room the caller must make first.

    Per event: item id, label (0, 1), whether it is consumed, its user's (sequence, shares, affinity)
    rows, the implicit negative category (-1: none) and its shared context ids
    (``shared[shared_at[i]:shared_at[i + 1]]``). ``counts`` is (positives, seen); the states are
    `SequenceNeighbors.append_state`, `CoOccurrence.link_state` (twice), (item category matrix, fit,
    its prior, then `CategoryShares`' keep, counts, totals, everyone, known categories, prior, trust)
    and `CategoryAffinity.learn_state`. Each positive's spread over its categories goes to
    ``fractions[i]``.
    """
    for i in range(start, items.size):
        learned, _, spread = learn_event(
            items[i], labels[i], consumed[i], users[i], negatives[i], shared[shared_at[i] : shared_at[i + 1]],
            counts, sequence, cooccurrence, transitions, shares, affinity,
        )  # fmt: skip
        if not learned:
            return i
        fractions[i, : spread.size] = spread
    return items.size


def _event_rows(
    model: Learner, event: Event, item: int, label: int, consumed: bool, known: int
) -> tuple[int, int, int, int, npt.NDArray[np.int64]]:
    """An event's (sequence, shares, affinity) rows of its user (-1: none; made if new, with room),
    its implicit negative category (-1: none, else drawn from the model's random stream) and its
    shared context ids, in the order the one-by-one path makes them."""
    user, categories = event.user_id, model.item_categories.lists[item]
    sequence_row = model.sequence.reserve(user, item) if consumed else -1
    shares_row, negative, affinity_row, parts = -1, -1, -1, _NONE
    if categories:
        if label == 1:
            shares_row = model.shares.row(user, known - 1)
            if known > len(categories):
                negative = categories[0]
                while negative in categories:
                    negative = model._rng.randrange(known)
        affinity_row = model.affinity.row(user)
        parts = model.affinity.shared_ids(event.context, event.ts)
    return sequence_row, shares_row, affinity_row, negative, parts


def _shares_state(model: Learner, known: int, trust: float) -> tuple[Any, ...]:
    """What `learn_event` takes for the category shares and fit."""
    categories = model.item_categories
    return (categories.matrix, categories.fit, categories.PRIOR, 1.0 - model.shares.forget,
            *model.shares.kernel_state("", known)[1:], trust)  # fmt: skip


def learn_owned(
    model: Learner, event: Event, item: int, label: int, consumed: bool, trust: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """One event of a user the model ranks, learned as `learn_others` learns each (one compiled call;
    the caller learns the popularity heads and the blend); returns `learn_event`'s (shares before it,
    spread of a positive)."""
    known = len(model.affinity.categories)
    sequence_row, shares_row, affinity_row, negative, parts = _event_rows(
        model, event, item, label, consumed, known
    )
    if consumed:
        model.cooccurrence.reserve(len(model._items))
        model.transitions.reserve(len(model._items))
    learned, before, spread = learn_event(
        item, label, consumed, np.array((sequence_row, shares_row, affinity_row)), negative, parts,
        (model._positives, model._seen), model.sequence.append_state(), model.cooccurrence.link_state(),
        model.transitions.link_state(), _shares_state(model, known, trust), model.affinity.learn_state(),
    )  # fmt: skip
    if not learned:  # a bug, not bad input: the reserve calls above make the room
        raise RuntimeError(f"no room reserved to learn item {event.item_id!r}")
    return before, spread


def learn_others(model: Learner, events: Sequence[Event], trust: float) -> None:
    """Learn ``events`` (in order) as `HybridRecommender.learn_others` one by one would."""
    learned: list[tuple[Event, int, int, float, list[int]]] = []
    #: Per learned event: item, label, its user's sequence, shares and affinity rows (-1: none), the
    #: implicit negative category (-1: none).
    columns: list[tuple[int, int, int, int, int, int]] = []
    shared: list[npt.NDArray[np.int64]] = []
    known = len(model.affinity.categories)
    shown, lists = model._shown, model.item_categories.lists
    for event in events:
        shown.pop(event.user_id, None)
        signal = signal_of(event)
        label = signal.label
        if label is None:
            continue
        item = model._item(event.item_id, taken=True)
        sequence_row, shares_row, affinity_row, negative, parts = _event_rows(
            model, event, item, label, signal.consumed, known
        )
        shared.append(parts)
        learned.append((event, item, label, signal.weight, lists[item]))
        columns.append((item, label, sequence_row, shares_row, affinity_row, negative))
    if not learned:
        return
    model.cooccurrence.reserve(len(model._items))
    model.transitions.reserve(len(model._items))
    at = np.zeros(len(shared) + 1, dtype=np.int64)
    np.cumsum([parts.size for parts in shared], out=at[1:])
    flat = np.concatenate(shared)
    table = np.array(columns, dtype=np.int64)
    items, labels, users, wanted = (
        table[:, 0].copy(),
        table[:, 1].copy(),
        table[:, 2:5].copy(),
        table[:, 5].copy(),
    )
    consumed = users[:, 0] >= 0
    fractions = np.zeros((len(learned), model.item_categories.matrix.shape[1]))
    start = 0
    while start < len(learned):
        stop = learn_events(
            start, items, labels, consumed, users, wanted, flat, at, (model._positives, model._seen),
            model.sequence.append_state(), model.cooccurrence.link_state(), model.transitions.link_state(),
            _shares_state(model, known, trust), model.affinity.learn_state(), fractions,
        )  # fmt: skip
        for n in range(start, stop):
            event, item, label, weight, categories = learned[n]
            if label == 1:
                spread = fractions[n, : len(categories)].tolist() if categories else None
                model.heads.learn_one(item, categories, weight, event.ts, spread)
        if stop < len(learned):  # the history needs room: make it as the one-by-one path would
            model.sequence.reserve(learned[stop][0].user_id, learned[stop][1])
            model.cooccurrence.reserve(len(model._items))
            model.transitions.reserve(len(model._items))
        start = stop
