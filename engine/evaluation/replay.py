"""Replay evaluation: run the worker's model over a history file in-process and score it prequentially.

Test-then-learn: each positive of a user with an earlier positive is first ranked against the catalog
known so far (minus what the user already rated), then learned. Baselines run in the same pass. No
Kafka, no Redis: the same model code as the worker, driven directly.
"""

from __future__ import annotations

__all__ = ["ReplayReport", "Scoreboard", "replay"]

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from models.arrays import Vocabulary
from models.popularity import ItemPopularity
from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.signals import signal_of
from schemas.events import Event, ItemRecord

#: Half-life of decayed popularity in replay (event time): MovieLens spans decades, not hours.
REPLAY_HALF_LIFE_MS = 180 * 24 * 3600 * 1000.0


@dataclass(slots=True)
class Scoreboard:
    """Hits and discounted gains of one ranker.

    >>> board = Scoreboard()
    >>> board.score(["a", "b"], "b"); board.score(["a"], "z")
    >>> board.hr, round(board.ndcg, 3)
    (0.5, 0.315)
    """

    scored: int = 0
    hits: int = 0
    gain: float = 0.0
    shown: set[str] = field(default_factory=set)

    def score(self, ranked: list[str], target: str) -> None:
        self.scored += 1
        self.shown.update(ranked)
        if target in ranked:
            self.hits += 1
            self.gain += 1.0 / math.log2(ranked.index(target) + 2)

    @property
    def hr(self) -> float:
        return self.hits / self.scored if self.scored else 0.0

    @property
    def ndcg(self) -> float:
        return self.gain / self.scored if self.scored else 0.0


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The result of one replay (the JSON of `personalize replay --json`)."""

    k: int
    events: int
    events_scored: int
    hr: float
    ndcg: float
    coverage: float
    seconds: float
    model_version: str
    baselines: dict[str, tuple[float, float]]

    @property
    def events_per_s(self) -> float:
        """Scored events per second of the whole run (learning every event included)."""
        return self.events_scored / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "k": self.k,
            "events": self.events,
            "events_scored": self.events_scored,
            "hr": round(self.hr, 4),
            "ndcg": round(self.ndcg, 4),
            "coverage": round(self.coverage, 4),
            "events_per_s": round(self.events_per_s, 1),
            "seconds": round(self.seconds, 2),
            "model_version": self.model_version,
            "baselines": {
                name: {"hr": round(hr, 4), "ndcg": round(ndcg, 4)}
                for name, (hr, ndcg) in self.baselines.items()
            },
        }


class _Counts:
    """Items in descending order of an integer count, kept sorted under +1 updates in O(1).

    Items with equal counts form one run of ``order``; an increment swaps the item with the first
    of its run, which then belongs to the run above.

    >>> c = _Counts()
    >>> for item in "abcbcc":
    ...     c.learn(item)
    >>> c.order
    ['c', 'b', 'a']
    """

    def __init__(self) -> None:
        self.order: list[str] = []
        self._at: dict[str, int] = {}
        self._count: dict[str, int] = {}
        self._first: dict[int, int] = {}  # count -> index of the first item with it

    def learn(self, item: str) -> None:
        count = self._count.get(item, 0)
        if count == 0:
            self._at[item] = len(self.order)
            self.order.append(item)
            self._first.setdefault(0, len(self.order) - 1)
        at, first = self._at[item], self._first[count]
        other = self.order[first]
        self.order[first], self.order[at] = item, other
        self._at[item], self._at[other] = first, at
        # The run of `count` now starts one later (or is gone); `item` ends the run of count + 1.
        if first + 1 < len(self.order) and self._count.get(self.order[first + 1], 0) == count:
            self._first[count] = first + 1
        else:
            del self._first[count]
        self._first.setdefault(count + 1, first)
        self._count[item] = count + 1


class _Popular:
    """Baseline: the most popular items (all-time counts, or decayed) the user has not rated."""

    def __init__(self, half_life_ms: float | None) -> None:
        self.decayed = ItemPopularity(half_life_ms) if half_life_ms else None
        self.ids = Vocabulary()
        self.counts = _Counts()

    def learn(self, item: str, ts: int) -> None:
        if self.decayed is not None:
            self.decayed.learn_one(self.ids.id(item), 1.0, ts)
        else:
            self.counts.learn(item)

    def rank(self, k: int, rated: set[str]) -> list[str]:
        best: Iterable[str] = self.counts.order
        if self.decayed is not None:
            best = self._decayed(k + len(rated))
        out: list[str] = []
        for item in best:
            if item not in rated:
                out.append(item)
                if len(out) == k:
                    break
        return out

    def _decayed(self, depth: int) -> Iterator[str]:
        """The decayed top, read in chunks: most calls stop after the first few items."""
        assert self.decayed is not None
        ids, names = self.decayed.top_ids(depth), self.ids.names
        for start in range(0, len(ids), 64):
            yield from map(names.__getitem__, ids[start : start + 64].tolist())


def replay(
    events: Iterable[Event],
    items: dict[str, ItemRecord],
    *,
    k: int = 10,
    from_ts: int | None = None,
    model: HybridRecommender | None = None,
    progress: Callable[[int], None] = lambda _: None,
) -> ReplayReport:
    """Prequential evaluation of ``model`` (a fresh `HybridRecommender` by default) over ``events``.

    ``events`` must be in timestamp order; ``items`` maps item ids to their catalog records, each
    learned just before the item's first event (so "known so far" means seen in the history so far).
    Metrics count events with ``ts >= from_ts`` only; every event is learned.
    """
    rec = model or HybridRecommender(half_life_ms=REPLAY_HALF_LIFE_MS)
    baselines = {"popularity": _Popular(None), "decayed_popularity": _Popular(REPLAY_HALF_LIFE_MS)}
    boards = {name: Scoreboard() for name in ("model", *baselines)}
    profiles: dict[str, UserProfile] = {}
    rated: dict[str, set[str]] = {}
    known: set[str] = set()
    has_positive: set[str] = set()
    started, count = time.perf_counter(), 0
    for count, event in enumerate(events, 1):
        user, item = event.user_id, event.item_id
        profile = profiles.get(user) or profiles.setdefault(user, UserProfile(user))
        seen = rated.setdefault(user, set())
        signal = signal_of(event)
        if signal.label == 1 and user in has_positive and (from_ts is None or event.ts >= from_ts):
            ranked = [i for i, _ in rec.recommend(profile, k + 10, event.context, event.ts) if i not in seen]
            boards["model"].score(ranked[:k], item)
            for name, baseline in baselines.items():
                boards[name].score(baseline.rank(k, seen), item)
        if item not in known:
            known.add(item)
            rec.learn_item(items.get(item) or ItemRecord(item_id=item))
        rec.learn_one(event, profile)
        profile.observe(event, signal)
        seen.add(item)
        if signal.label == 1:
            has_positive.add(user)
            for baseline in baselines.values():
                baseline.learn(item, event.ts)
        if count % 1000 == 0:
            progress(1000)
    progress(count % 1000)
    board = boards.pop("model")
    return ReplayReport(
        k=k,
        events=count,
        events_scored=board.scored,
        hr=board.hr,
        ndcg=board.ndcg,
        coverage=len(board.shown) / len(known) if known else 0.0,
        seconds=time.perf_counter() - started,
        model_version=rec.version,
        baselines={name: (b.hr, b.ndcg) for name, b in boards.items()},
    )


def load_movielens(
    ratings: Path, movies: Path | None = None, tags: Path | None = None
) -> tuple[list[Event], dict[str, ItemRecord]]:
    """Events (timestamp order, ties in file order) and catalog records of a MovieLens history."""
    from engine.ingest import backfill

    catalog = backfill.movielens_items(ratings, movies, tags)
    return backfill.movielens_events(ratings), {record.item_id: record for record in catalog}
