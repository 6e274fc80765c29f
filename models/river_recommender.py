"""The hybrid recommender with a River model as its second stage (`PERSONALIZE_RIVER_RERANKER`).

The built-in kernels rank as always; a `RiverReranker` then re-orders the head of each list by its
estimator's probability that the user takes the item, from the candidate features the kernels kept.
It learns where the built-in blend learns (the user's next consumed item among the remembered
candidates), so the worker, the replay and the checkpoints use it without any other change. The
list's scores stay the blend's values, in place: the items move, the decreasing scores do not, so a
sorted set of them keeps the re-ranked order. Exploration places and items beyond the reranker's
``top`` keep their slots. Its `version` names the built-in model, River's version and the spec's
hash: a checkpoint of another spec is another model version and is not restored.

>>> from schemas.events import Event, ItemRecord
>>> from models.profile import UserProfile
>>> rec = RiverRecommender({"river.linear_model.LogisticRegression": {}}, seed=1)
>>> rec.version.startswith("hybrid-0.7+river-")
True
>>> for i, cat in [("i1", "jazz"), ("i2", "jazz"), ("i3", "metal"), ("i4", "jazz")]:
...     rec.learn_item(ItemRecord(item_id=i, categories=[cat]))
>>> profiles = {u: UserProfile(u) for u in ("bob", "alice")}
>>> for n, (user, item) in enumerate([("bob", "i1"), ("bob", "i4"), ("alice", "i1")]):
...     e = Event(event_id=f"e{n}", user_id=user, item_id=item, type="click", ts=10**12 + n)
...     _ = rec.recommend(profiles[user], 3)  # the list the user saw before this event
...     rec.learn_one(e, profiles[user])
...     _ = profiles[user].observe(e, rec.signal(e))
>>> rec.reranker.updates  # each event's item was on the list its user had just been shown
3
>>> sorted(item for item, _ in rec.recommend(profiles["alice"], 2))
['i2', 'i4']
"""

from __future__ import annotations

__all__ = ["RiverRecommender", "new_model", "version_for"]

from typing import Any

import numpy as np
import numpy.typing as npt

from models.profile import UserProfile
from models.recommender import MODEL_VERSION, HybridRecommender
from models.river_ranker import RiverReranker, version_of
from schemas.events import Context


class RiverRecommender(HybridRecommender):
    """`HybridRecommender` whose lists' heads a River estimator re-orders (see the module docstring)."""

    def __init__(
        self, spec: Any, *, top: int = 50, seed: int = 0, half_life_ms: float = 6 * 3600 * 1000
    ) -> None:
        super().__init__(seed=seed, half_life_ms=half_life_ms)
        self.reranker = RiverReranker(spec, top=top)
        self.version = version_for(spec)

    def _learn_ranking(
        self,
        item: int,
        candidates: npt.NDArray[np.int32],
        table: npt.NDArray[np.float32],
        shares: npt.NDArray[np.float64],
        evidence: float,
    ) -> None:
        super()._learn_ranking(item, candidates, table, shares, evidence)
        at = np.flatnonzero(candidates == item)
        if at.size:
            self.reranker.learn_one(table, int(at[0]))

    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]:
        ranked = super().recommend(profile, n, context, ts)
        shown = self._shown.get(profile.user_id)
        if shown is None or not self.reranker.updates:
            return ranked  # nothing learned yet: the built-in order
        candidates, table = shown
        head = candidates[: self.reranker.top].tolist()
        row_of = {item: row for row, item in enumerate(head)}
        # The list's slots that hold a head candidate, and those candidates' rows in the table.
        slots, rows = [], []
        for slot, (name, _) in enumerate(ranked):
            row = row_of.get(self._items.get(name), -1)
            if row >= 0:
                slots.append(slot)
                rows.append(row)
        if len(rows) < 2:
            return ranked
        order, _ = self.reranker.rerank(table[np.array(rows)])
        moved = list(ranked)
        for slot, pick in zip(slots, order.tolist(), strict=True):
            moved[slot] = (ranked[slots[pick]][0], ranked[slot][1])
        return moved


def version_for(spec: Any | None) -> str:
    """The model version of a recommender with this River spec (None: the built-in model alone)."""
    return MODEL_VERSION if spec is None else f"{MODEL_VERSION}+{version_of(spec)}"


def new_model(spec: Any | None, *, top: int = 50) -> HybridRecommender:
    """A fresh model: the built-in one, or with ``spec``'s River estimator re-ranking each list's head."""
    return HybridRecommender() if spec is None else RiverRecommender(spec, top=top)
