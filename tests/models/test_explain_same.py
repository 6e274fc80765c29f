"""The compiled explanation path gives the very reasons (and stored bytes) of the first, per-item Python
path it replaced, kept below as the reference (issue G item 7), and the worker's token path stores the
same bytes: over seeded synthetic streams with onboarding likes, exploration places, unknown items and
items without any category; and a batch's lists explained in one pass (`models.explain_batch`) are
stored with the bytes of each explained alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from models.explain import CATEGORY_SIGNALS, ITEM_SIGNALS, Explanation, explain_tokens
from models.explain_batch import stored_reasons
from models.profile import UserProfile
from models.ranking_kernels import FEATURES
from models.recommender import CO_RECENT, HybridRecommender
from models.synth import Clickstream
from schemas.events import ItemRecord
from schemas.reasons import Reason, Stored, encode, encode_tokens


def _anchors(candidates: list[int], recent: list[int], row_of: Any, ids: Any, count: Any) -> list[int]:
    """Per candidate, the index in ``recent`` of the first item whose link row holds it, or -1."""
    out = [-1] * len(candidates)
    at = {item: c for c, item in enumerate(candidates) if item >= 0}
    for r, item in enumerate(recent):
        if item < 0 or item >= row_of.size or row_of[item] < 0:
            continue
        row = row_of[item]
        for j in range(count[row]):
            c = at.get(int(ids[row, j]), -1)
            if c >= 0 and out[c] < 0:
                out[c] = r
    return out


def _reference(
    wanted: list[int],
    ids: npt.NDArray[np.int32],
    table: npt.NDArray[np.floating],
    weights: npt.NDArray[np.float64],
    recent: list[int],
    links: Sequence[tuple[Any, ...]],
    matrix: npt.NDArray[np.int64],
    own: npt.NDArray[np.float64],
    category_names: Sequence[str],
    item_names: Sequence[str],
) -> list[Explanation]:
    """The first path's rules, item by item: two strongest lifts (stable ties), links in turn, the
    category with the most of the user's positives."""
    linked = [-1] * len(wanted)
    for row_of, link_ids, _, count, _ in links:
        unlinked = [n for n, link in enumerate(linked) if link < 0]
        found = _anchors([wanted[n] for n in unlinked], recent, row_of, link_ids, count)
        for n, link in zip(unlinked, found, strict=True):
            linked[n] = link
    data = np.asarray(table, dtype=np.float64)
    mean = data.mean(axis=0) if len(data) else np.zeros(len(weights))
    rows = {int(item): row for row, item in reversed(list(enumerate(ids.tolist())))}
    out = []
    for item, link in zip(wanted, linked, strict=True):
        if item not in rows:
            out.append(Explanation("exploring"))
            continue
        lifts = ((data[rows[item]] - mean) * weights).tolist()
        order = sorted(range(len(lifts)), key=lambda f: -lifts[f])
        top2 = [FEATURES[f] for f in order[:2] if lifts[f] > 0]
        signals = tuple(top2) if len(top2) == 2 or lifts[order[0]] <= 0 else tuple(top2[:1])
        top = signals[0] if signals else "popularity"
        mine = [(own[min(c, own.size - 1)] if own.size else 0.0, c) for c in matrix[item].tolist() if c >= 0]
        best = max(mine, key=lambda pair: pair[0], default=(0.0, -1))
        category = category_names[best[1]] if best[0] > 0 else None
        anchor = item_names[recent[link]] if link >= 0 else None
        if top in ITEM_SIGNALS:
            out.append(
                Explanation("item", anchor, signals)
                if anchor
                else Explanation("similar_users", None, signals)
            )
        elif top in CATEGORY_SIGNALS and category is not None:
            out.append(Explanation("category", category, signals))
        else:
            out.append(Explanation("well_rated" if top == "quality" else "popular", None, signals))
    return out


def _old_explain(model: HybridRecommender, profile: UserProfile, items: list[str]) -> list[Explanation]:
    """What `HybridRecommender.explain` handed the first path, read from the same model state."""
    ids, table = model._shown.get(profile.user_id, (np.zeros(0, np.int32), np.zeros((0, 0), np.float32)))
    known = (model._items.get(i) for i in reversed(profile.recent[-CO_RECENT:]))
    return _reference(
        [model._items.get(i) for i in items], ids, table, model.ranker.weights, [i for i in known if i >= 0],
        (model.cooccurrence.kernel_state(), model.content.kernel_state()), model.item_categories.matrix,
        model.shares.own(profile.user_id, len(model.affinity.categories)), model.affinity.categories.names,
        model._items.names,
    )  # fmt: skip


def _world(seed: int, users: int, items: int) -> tuple[Clickstream, HybridRecommender]:
    """A seeded stream and a model knowing its catalog, an item without any category, and onboarding
    likes of user u1."""
    world = Clickstream(users, items, n_categories=12, seed=seed)
    model = HybridRecommender(seed=seed)
    for record in world.items():
        model.learn_item(record)
    model.learn_item(ItemRecord(item_id="bare", categories=()))  # known, without any category
    model.like_categories("u1", ("c01", "c02"), world.start_ms)
    return world, model


@pytest.mark.parametrize(("seed", "users", "items", "events"), [(0, 150, 300, 5_000), (5, 60, 120, 1_200)])
def test_the_compiled_path_gives_the_reference_reasons(
    seed: int, users: int, items: int, events: int
) -> None:
    world, model = _world(seed, users, items)
    profiles: dict[str, UserProfile] = {}
    kinds: dict[str, int] = {}
    for n, event in enumerate(world.events(events)):
        profile = profiles.setdefault(event.user_id, UserProfile(event.user_id))
        signal = model.signal(event)
        model.learn_one(event, profile)
        profile.observe(event, signal)
        if n % 7:
            continue
        listed = [item for item, _ in model.recommend(profile, 20, event.context, event.ts)]
        for asked in (listed, [*listed[:3], "never-seen", "bare"]):
            new = model.explain(profile, asked, event.context, event.ts)
            old = _old_explain(model, profile, asked)
            assert new == old, (event.user_id, asked)
            stored = [Reason(e.reason, e.anchor, e.signals) for e in new]
            assert encode(stored) == encode([Reason(e.reason, e.anchor, e.signals) for e in old])
            # What the worker stores: the same bytes, made without an object per item.
            assert encode_tokens(*explain_tokens(model.explain_inputs(profile, asked))) == encode(stored)
            for e in new:
                kinds[e.reason] = kinds.get(e.reason, 0) + 1
    assert kinds.keys() == {"item", "category", "popular", "exploring", "similar_users", "well_rated"}, kinds


@pytest.mark.parametrize(("seed", "users", "items", "events"), [(1, 150, 300, 4_000), (6, 40, 80, 900)])
def test_a_batch_of_lists_is_stored_with_the_bytes_of_each_list_explained_alone(
    seed: int, users: int, items: int, events: int
) -> None:
    world, model = _world(seed, users, items)
    named = {record.item_id: record.categories for record in world.items()}
    for category in sorted({c for categories in named.values() for c in categories}):
        # Items named as categories: a list may name one as an item and as a category (explained alone).
        model.learn_item(ItemRecord(item_id=category, categories=(category,)))
    profiles: dict[str, UserProfile] = {}
    batch: list[tuple[UserProfile, list[tuple[str, float]]]] = []
    checked = fast = 0
    for n, event in enumerate(world.events(events)):
        profile = profiles.setdefault(event.user_id, UserProfile(event.user_id))
        model.learn_one(event, profile)
        profile.observe(event, model.signal(event))
        if n % 4 == 0 and named.get(event.item_id):
            also = event.model_copy(update={"event_id": f"x{n}", "item_id": named[event.item_id][0]})
            model.learn_one(also, profile)
            profile.observe(also, model.signal(also))
        ranked = model.recommend(profile, 20, event.context, event.ts)
        batch.append((profile, ranked if n % 3 else [*ranked[:3], ("never-seen", 0.1), ("bare", 0.0)]))
        batch.append((UserProfile(f"new-{n}", recent=["c03"]), [("c03", 1.0), ("bare", 0.5)]))
        if len(batch) < 40:
            continue
        # Each list's user ranked last for it, as at a flush (users repeat: their latest ranking).
        latest = {profile.user_id: (profile, listed) for profile, listed in batch}
        lists = list(latest.values())
        for (profile, listed), found in zip(lists, stored_reasons(model, lists), strict=True):
            alone = encode_tokens(*explain_tokens(model.explain_inputs(profile, [i for i, _ in listed])))
            assert (found.text if isinstance(found, Stored) else encode_tokens(*found)) == alone
            checked += 1
            fast += isinstance(found, Stored)
        batch.clear()
    assert checked > events // 2 and checked * 0.8 < fast < checked, (checked, fast)
