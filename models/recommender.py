"""The hybrid online recommender: sequence neighbours, co-occurrence, transitions, content, tastes, trends.

Candidates come from what similar users consumed around the user's recent items, items related to
them, the user's favourite categories, what is popular now and fresh items still exploring; a blend of
the normalised signals, learned from what users take next, ranks them, and the list leans on the user's
two favourite categories as far as the data says that costs no hits (`models.focus`). Every part learns
from each event; no batch jobs.
"""

from __future__ import annotations

__all__ = ["MODEL_VERSION", "HybridRecommender", "warm_up"]

import itertools
import random
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import astuple

import numpy as np
import numpy.typing as npt

from models import bulk_learn, exploration, ranking_kernels
from models.affinity import CategoryAffinity
from models.arrays import Vocabulary, grown
from models.blend import Blend, OnlineBlend
from models.content import ContentLinks
from models.cooccurrence import CoOccurrence
from models.explain import ExplainInputs, Explanation, explain_list
from models.focus import Focus
from models.popular_heads import PopularHeads
from models.profile import UserProfile
from models.sequence import SequenceNeighbors
from models.signals import signal_of
from models.taste import CategoryShares, ItemCategories
from schemas.events import Context, Event, ItemRecord

MODEL_VERSION = "hybrid-0.7"

#: How deep popularity lists are kept for candidate generation (consumed items are skipped there).
POPULAR_DEPTH = 550
#: Candidates from the sequence signals kept for the full blend (the rest cannot reach the top n).
SHORTLIST = 300
#: How many of the user's latest items the sequence signals read.
RECENT = 15
#: Candidates (with features) kept from each user's latest ranking beyond the n asked for, to learn the
#: blend from what the user takes next and to explain the list; for how many users (LRU) below.
REMEMBERED = 50
#: How many of the user's latest items co-occurrence, transitions and content similarity (shared
#: tags) start from (co-occurrence 15 -> 10 read a third fewer links and gave HR@10 0.1698 -> 0.1702).
CO_RECENT = 10
#: Co-occurrence links seen this often or less are no candidates (HR as good, ranking ~6% cheaper).
CO_FLOOR = 1.0
TRANSITIONS_RECENT = 5
CONTENT_RECENT = 5
REMEMBERED_USERS = 20_000
#: Own positives at which a user's favourite categories are trusted half (focus, fit of item categories).
TRUST = 2.0
#: How far a score is put below the one above it when it would not be lower by itself.
STEP = 1e-6
_NO_ITEMS = np.zeros(0, dtype=np.int64)
_PRIOR_BLEND = Blend()  # the blend's prior weights unless a model is given others
#: The focus is judged on the top of the list, where hits are counted.
FOCUS_DEPTH = 10


class HybridRecommender:
    """Learns from events and item records; ranks items for a user profile.

    >>> from schemas.events import Event, ItemRecord
    >>> from models.profile import UserProfile
    >>> rec = HybridRecommender(seed=1)
    >>> for i, cat in [("i1", "jazz"), ("i2", "jazz"), ("i3", "metal"), ("i4", "jazz")]:
    ...     rec.learn_item(ItemRecord(item_id=i, categories=[cat]))
    >>> profiles = {u: UserProfile(u) for u in ("bob", "alice")}
    >>> for n, (user, item) in enumerate([("bob", "i1"), ("bob", "i4"), ("alice", "i1")]):
    ...     e = Event(event_id=f"e{n}", user_id=user, item_id=item, type="click", ts=10**12 + n)
    ...     rec.learn_one(e, profiles[user])
    ...     _ = profiles[user].observe(e, rec.signal(e))
    >>> [item for item, _ in rec.recommend(profiles["alice"], 2)]
    ['i4', 'i2']
    """

    version = MODEL_VERSION
    #: Times the catalog made an available item unavailable: a list ranked at n holds no unavailable item
    #: while it is still n (a class default, for models pickled before it).
    withdrawals = 0

    def __init__(
        self,
        *,
        blend: Blend = _PRIOR_BLEND,
        half_life_ms: float = 6 * 3600 * 1000,
        explore_slots: int = 1,
        seed: int = 0,
    ) -> None:
        warm_up()
        self.blend = blend
        #: The blend actually used: learned online from each user's next item, starting at ``blend``.
        self.ranker = OnlineBlend(astuple(blend))
        #: How much of each list goes to the user's favourite categories, learned likewise.
        self.focus = Focus()
        self._shown: OrderedDict[str, tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]] = OrderedDict()
        self.half_life_ms = half_life_ms
        self.explore_slots = explore_slots
        self.seed = seed
        # Items and categories get dense integer ids; the signals score arrays of ids.
        self._items = Vocabulary()
        self.heads = PopularHeads(half_life_ms, POPULAR_DEPTH)
        self.popularity = self.heads.overall
        self.cooccurrence = CoOccurrence(window=20)
        self.transitions = CoOccurrence(window=1, symmetric=False)
        self.sequence = SequenceNeighbors()
        self.content = ContentLinks()
        self.affinity = CategoryAffinity()
        self.shares = CategoryShares()
        #: Per item, its category ids (category ids are shared with the affinity model) and their fit.
        self.item_categories = ItemCategories()
        self._unavailable = np.zeros(64, dtype=bool)
        #: Scratch: set at the consumed items of the user being ranked, cleared after.
        self._hidden = np.zeros(64, dtype=bool)
        #: Per item: positives and events; the smoothed share of positives is its quality.
        self._positives = np.zeros(64)
        self._seen = np.zeros(64)
        #: Items in the catalog without any event yet, newest last: the exploration pool.
        self._fresh: dict[int, None] = {}
        self._newest: npt.NDArray[np.int64] | None = None  # the newest 50 of them, while they last
        self._rng = random.Random(seed)
        #: Scratch for `ranking_kernels.combine` (all zero between calls).
        self._values = np.zeros((64, 4))
        self._totals = np.zeros(64)

    signal = staticmethod(signal_of)

    # -- learning -------------------------------------------------------------------------------

    def _item(self, item_id: str, *, taken: bool = False) -> int:
        """The id of an item, making room for it in the per-item arrays when it is new; ``taken``: it
        has an event now, so it is no longer a fresh item (exploration)."""
        item = self._items.id(item_id)
        if taken and item in self._fresh:
            del self._fresh[item]
            self._newest = None
        size = item + 1
        if size > len(self._unavailable):
            self._unavailable = grown(self._unavailable, size)
            self._hidden = grown(self._hidden, size)
            self._values = grown(self._values, size)
            self._totals = grown(self._totals, size)
            self._positives = grown(self._positives, size)
            self._seen = grown(self._seen, size)
        self.item_categories.reserve(size)
        return item

    def learn_item(self, record: ItemRecord) -> None:
        """Take a catalog update: categories, tags and availability; a new item joins the exploration pool."""
        known = record.item_id in self._items
        item = self._item(record.item_id)
        if not known:
            self._fresh[item] = None
            self._newest = None
        ids = [self.affinity.category_id(c) for c in record.categories]
        self.item_categories.set(item, ids)
        self.heads.add(item, ids)
        if not record.available and not self._unavailable[item]:
            self.withdrawals += 1
        self._unavailable[item] = not record.available
        self.content.learn_item(item, record.tags)

    def learn_one(self, event: Event, profile: UserProfile) -> None:
        """Learn one event; ``profile`` is the user's state *before* this event (the model keeps what it
        needs of the user itself, so it reads nothing of it)."""
        self._learn(event)

    def _learn(self, event: Event) -> None:
        signal = signal_of(event)
        if signal.label is None:
            return
        item, user = self._item(event.item_id, taken=True), event.user_id
        shown = self._shown.pop(user, None) if signal.consumed else None
        evidence = self.shares.evidence(user)
        # One compiled call learns what `learn_others` learns; the user's shares before this event come
        # back: what their last ranking is judged with.
        shares, spread = bulk_learn.learn_owned(self, event, item, signal.label, signal.consumed, TRUST)
        if signal.label == 0:
            return
        categories = self.item_categories.lists[item]
        fractions = spread.tolist() if categories else None
        self.heads.learn_one(item, categories, signal.weight, event.ts, fractions)
        if shown is not None:
            if not categories and evidence > 0:
                shares = self.shares.vector(user, len(self.affinity.categories))
            self._learn_ranking(item, *shown, shares, evidence)

    def _learn_ranking(
        self, item: int, candidates: npt.NDArray[np.int32], table: npt.NDArray[np.float32],
        shares: npt.NDArray[np.float64], evidence: float,
    ) -> None:  # fmt: skip
        """The user took ``item``: teach the blend and the focus from the user's last ranking."""
        trust = evidence / (evidence + TRUST) if evidence > 0 and shares.size else 0.0
        counting = self.focus.count_state(self.item_categories, shares, trust, FOCUS_DEPTH)
        learned, segment, chosen = ranking_kernels.learn_taken(
            candidates, item, table, self.ranker.step_state(), counting
        )
        self.ranker.updates += int(learned)
        if segment >= 0:
            self.focus.settle(int(segment), float(chosen))

    def learn_others(self, events: Sequence[Event]) -> None:
        """Learn events (in order) of users this model does not rank (another worker's partitions), in
        bulk (`models.bulk_learn`): all `learn_one` learns but the blend, which learns only from rankings
        this model made (a ranking kept from when it ranked the user is dropped). Every worker pays it
        for every event of the others."""
        bulk_learn.learn_others(self, events, TRUST)

    def available(self, item_id: str) -> bool:
        """Whether the catalog does not mark the item unavailable (unknown items are available)."""
        item = self._items.get(item_id)
        return item < 0 or not bool(self._unavailable[item])

    def like_categories(self, user_id: str, categories: tuple[str, ...], ts: int) -> None:
        """Onboarding: the user says they like these categories (before any event)."""
        for category in categories:
            self.affinity.category_id(category)
            self.affinity.learn_one(user_id, [category], 1, None, ts, weight=3.0)
        self.shares.like(
            user_id, np.array([self.affinity.category_id(c) for c in categories], dtype=np.int64)
        )

    def forget_user(self, user_id: str) -> None:
        """Drop what the model holds about one user (reset or erasure); shared item state stays."""
        self.sequence.forget(user_id)
        self.affinity.forget(user_id)
        self.shares.forget_user(user_id)
        self._shown.pop(user_id, None)

    # -- ranking --------------------------------------------------------------------------------

    def popular(self, n: int) -> list[tuple[str, float]]:
        """The n most popular items now (relative score), best first."""
        names = self._items.names
        return [(names[item], score) for item, score in self.popularity.top(n)]

    def recommend(
        self, profile: UserProfile, n: int, context: Context | None = None, ts: int | None = None
    ) -> list[tuple[str, float]]:
        """Top-n (item_id, score) for the user, best first, without items the user consumed.

        Scores are the blend's, each kept strictly below the one above it (where the focus moved an item
        up, or an exploration place follows), so the scores alone keep the list's order.
        """
        if n <= 0:
            return []
        when = ts if ts is not None else (profile.last_ts or None)
        fallback = np.zeros(0, dtype=np.int64)
        if not self.sequence.has_history(profile.user_id):
            fallback = self._items.ids_of(profile.recent[-RECENT:])
            fallback = fallback[fallback >= 0]
        popularity, scale = self.popularity.raw()
        categories, user = self.item_categories, profile.user_id
        evidence = self.shares.evidence(user)
        head, table, shares, listed, totals, stepped, fresh = ranking_kernels.rank(
            RECENT, fallback,
            self.sequence.recent, self.sequence.kernel_state(user),
            CO_RECENT, 0.8, CO_FLOOR, self.cooccurrence.kernel_state(),
            TRANSITIONS_RECENT, 0.8, self.transitions.kernel_state(),
            CONTENT_RECENT, 0.8, self.content.kernel_state(),
            (self.ranker.weights, self._values, self._totals, self._hidden, self._unavailable, SHORTLIST),
            (*self.heads.kernel_state(), n),
            (self.affinity.predict_state(user, context, when), categories.matrix, popularity, scale,
             self._positives, self._seen, self.shares.kernel_state(user, len(self.affinity.categories)),
             self.heads.mass(), categories.fit, categories.PRIOR),
            self.focus.kernel_state(evidence / (evidence + TRUST)),
            (REMEMBERED + n, self._fresh_pool(n), STEP),
        )  # fmt: skip
        self._remember(user, head, table)
        names, hidden = self._items.names, profile.consumed
        first = list(map(names.__getitem__, listed[:n].tolist()))
        if len(first) == n and hidden.keys().isdisjoint(first):  # the usual case: nothing to skip
            return self._explore(list(zip(first, stepped[:n].tolist(), strict=True)), profile, n, fresh)
        ranked: list[tuple[str, float]] = []
        # Candidates are best first and the model's history is already hidden; what is left to
        # skip (items consumed before the model kept a history) is rare, so read a little past n.
        # The kernel sorted only the head (as far as it stepped scores): sort the rest here.
        rest = stepped.size + np.argsort(-totals[stepped.size :], kind="stable")
        listed = np.concatenate((listed[: stepped.size], listed[rest]))
        totals = np.concatenate((totals[: stepped.size], totals[rest]))
        ceiling = np.inf
        for start in range(0, len(listed), 2 * n):
            stop = start + 2 * n
            for item, value in zip(listed[start:stop].tolist(), totals[start:stop].tolist(), strict=True):
                name = names[item]
                if name not in hidden:
                    # Strictly below the one above: the scores alone keep the ranked order (serving re-sorts).
                    ceiling = value if value < ceiling else ceiling - STEP
                    ranked.append((name, ceiling))
                    if len(ranked) == n:
                        return self._explore(ranked, profile, n, fresh)
        return self._explore(ranked, profile, n, fresh)

    def explain(
        self, profile: UserProfile, items: list[str], context: Context | None = None, ts: int | None = None
    ) -> list[Explanation]:
        """Why each of ``items`` (the user's latest `recommend` result) was recommended.

        Reads the features kept from that ranking; items not among them were exploration places. An
        ``item`` reason names one of the user's own recent positives, a ``category`` reason a category
        of the user's own positives or onboarding likes.
        """
        return explain_list(self.explain_inputs(profile, items))

    def explain_inputs(self, profile: UserProfile, items: list[str]) -> ExplainInputs:
        """What `models.explain` reads to explain ``items`` of the user's latest ranking."""
        ids, table = self._shown.get(profile.user_id, (np.zeros(0, np.int32), np.zeros((0, 0), np.float32)))
        recent = self._items.ids_of(reversed(profile.recent[-CO_RECENT:]))
        recent, wanted = recent[recent >= 0], self._items.ids_of(items)
        links = (self.cooccurrence.kernel_state(), self.content.kernel_state())
        own = self.shares.own(profile.user_id, len(self.affinity.categories))
        return ExplainInputs(wanted, ids, table, self.ranker.weights, recent, links, self._totals,
            self.item_categories.matrix, own, self.affinity.categories.names, self._items.names)  # fmt: skip

    def _remember(self, user_id: str, head: npt.NDArray[np.int32], table: npt.NDArray[np.float32]) -> None:
        """Keep the head of this ranking (the kernel's copies) until the user's next event teaches it."""
        self._shown[user_id] = (head, table)
        self._shown.move_to_end(user_id)
        if len(self._shown) > REMEMBERED_USERS:
            self._shown.popitem(last=False)

    def _fresh_pool(self, n: int) -> npt.NDArray[np.int64]:
        """The fresh items (no events yet) a list of ``n`` may explore: the newest 50, read from the end
        (cost must not grow with the catalog) and kept until the fresh items change; none when the list
        explores nothing."""
        if not self._fresh or self.explore_slots <= 0 or n < 5:
            return _NO_ITEMS
        newest = getattr(self, "_newest", None)  # checkpoints of earlier releases lack it
        if newest is None:
            newest = self._newest = np.fromiter(itertools.islice(reversed(self._fresh), 50), np.int64)
        return newest

    def _explore(
        self, ranked: list[tuple[str, float]], profile: UserProfile, n: int, ordered: npt.NDArray[np.int64]
    ) -> list[tuple[str, float]]:
        """Give the last ``explore_slots`` places to fresh items (no events yet) ``ordered`` by the
        ranking kernel, the user's best category first."""
        if not ranked or not ordered.size:
            return ranked
        return exploration.splice(
            ranked, ordered, self._items.names, profile.consumed, n=n, slots=self.explore_slots, step=STEP
        )


_warm = False


def warm_up() -> None:
    """Compile (or load from numba's disk cache) every kernel, once per process.

    Run by the first model built, so no event ever waits for a compiler: about 20 s the very first
    time on a machine (`make install` does it), about 1 s per process after that.
    """
    global _warm
    if _warm:
        return
    _warm = True
    model = HybridRecommender(seed=0)
    profiles = {user: UserProfile(user) for user in ("a", "b")}
    for n, (user, item) in enumerate([("a", "x"), ("a", "y"), ("b", "x"), ("b", "z"), ("a", "z")]):
        model.learn_item(ItemRecord(item_id=item, categories=("c1", "c2") if item == "x" else ()))
        event = Event(event_id=f"w{n}", user_id=user, item_id=item, type="click", ts=10**12 + n)
        model.learn_one(event, profiles[user])
        profiles[user].observe(event, model.signal(event))
        model.explain(profiles[user], [item for item, _ in model.recommend(profiles[user], 5)])
    model.learn_item(ItemRecord(item_id="fresh", categories=("c1",)))  # compiles the exploration kernel
    model.learn_others([Event(event_id="w9", user_id="c", item_id="x", type="rating", value=1, ts=10**12)])
    model.recommend(profiles["a"], 5)
    # The blend's and the focus's learning as the worker calls it (the events above may not reach it).
    rows = np.zeros((2, len(model.ranker.prior)), np.float32)
    model._learn_ranking(1, np.arange(2, dtype=np.int32), rows, np.full(2, 0.5), 1.0)
