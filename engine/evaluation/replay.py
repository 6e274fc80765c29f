"""Replay evaluation: run the worker's model over an event log in-process and score it prequentially.

Test-then-learn: each positive of a user with an earlier positive (or onboarding likes), for an item the
user has not consumed yet, is first ranked against the catalog known so far (minus what the user
consumed), then learned. Simple baselines (`models.baselines`) are scored on the same events in the same
pass, per cold-start slice too; with the users' true tastes (a synthetic log), each ranker's final lists
are checked against them. No Kafka, no Redis: the same model code as the worker, driven directly.
"""

from __future__ import annotations

__all__ = ["NEW_ITEM_MS", "NEW_USER_EVENTS", "ReplayReport", "baselines", "load_movielens", "replay"]

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.evaluation.scoreboard import Board, taste_share
from engine.ingest.logs import Record
from models.baselines import (
    CoOccurrenceRecommender,
    CountPopularity,
    PopularRecommender,
    TopCategoriesRecommender,
)
from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.registry import Recommender
from models.signals import signal_of
from schemas.errors import DataFormatError
from schemas.events import Context, Event, EventType, ItemRecord
from schemas.users import ErasureRecord, PreferencesRecord

#: Half-life of decayed popularity in replay (event time): MovieLens spans decades, not hours.
REPLAY_HALF_LIFE_MS = 180 * 24 * 3600 * 1000.0
#: Cold-start slices: a user's first events, an item's first day.
NEW_USER_EVENTS = 5
NEW_ITEM_MS = 24 * 3600 * 1000
#: Users with at least this many events have their final list checked against their true tastes.
SHARE_MIN_EVENTS = 15


def baselines(seed: int = 0) -> dict[str, Recommender]:
    """The simple rankers every replay scores beside the model, by name."""
    return {
        "popularity": CountPopularity(seed=seed),
        "decayed_popularity": PopularRecommender(half_life_ms=REPLAY_HALF_LIFE_MS, seed=seed),
        "cooccurrence": CoOccurrenceRecommender(seed=seed),
        "top_categories": TopCategoriesRecommender(seed=seed),
    }


@dataclass(slots=True)
class ReplayReport:
    """The result of one replay (the JSON of `personalize replay --json`); ``boards["model"]`` is ours."""

    k: int
    events: int
    boards: dict[str, Board]
    known_items: int
    seconds: float
    model_seconds: float
    model_version: str
    invalid: int = 0
    first_invalid: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def model(self) -> Board:
        return self.boards["model"]

    @property
    def events_scored(self) -> int:
        return self.model.overall.scored

    @property
    def events_per_s(self) -> float:
        """Scored events per second of the whole run (learning every event and the baselines included)."""
        return self.events_scored / self.seconds if self.seconds else 0.0

    @property
    def model_us_per_event(self) -> float:
        """Microseconds the model alone spent per event of the log (learning all, ranking the scored)."""
        return self.model_seconds / self.events * 1e6 if self.events else 0.0

    def to_json(self) -> dict[str, object]:
        ours = self.model.to_json(self.known_items)
        return {
            "k": self.k,
            "events": self.events,
            "events_scored": self.events_scored,
            "invalid": self.invalid,
            **ours,
            "events_per_s": round(self.events_per_s, 1),
            "model_us_per_event": round(self.model_us_per_event, 1),
            "seconds": round(self.seconds, 2),
            "model_version": self.model_version,
            "baselines": {
                name: board.to_json(self.known_items)
                for name, board in self.boards.items()
                if name != "model"
            },
            **self.extra,
        }


@dataclass(slots=True)
class _Users:
    """Per-user bookkeeping of the replay (the rankers keep their own state)."""

    profiles: dict[str, UserProfile] = field(default_factory=dict)
    consumed: dict[str, set[str]] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    has_positive: set[str] = field(default_factory=set)
    onboarded: set[str] = field(default_factory=set)
    context: dict[str, tuple[Context | None, int]] = field(default_factory=dict)

    def profile(self, user: str) -> UserProfile:
        return self.profiles.get(user) or self.profiles.setdefault(user, UserProfile(user))

    def reset(self, user: str) -> None:
        self.profiles[user] = UserProfile(user)
        self.consumed.pop(user, None)
        self.has_positive.discard(user)


class _Replay:
    """One pass over a log: the rankers, the users and the catalog as known so far."""

    def __init__(self, rankers: dict[str, Recommender], items: Mapping[str, ItemRecord], k: int) -> None:
        self.rankers, self.items, self.k = rankers, items, k
        self.model = rankers["model"]
        self.boards = {name: Board() for name in rankers}
        self.users = _Users()
        self.categories: dict[str, tuple[str, ...]] = {}
        self.born: dict[str, int] = {}
        self.last_ts: int | None = None
        self.model_seconds = 0.0

    def item(self, record: ItemRecord) -> None:
        """A catalog record: every ranker learns it now."""
        if self.last_ts is not None:
            self.born.setdefault(record.item_id, self.last_ts)
        self.categories[record.item_id] = record.categories
        for name, ranker in self.rankers.items():
            started = time.perf_counter()
            ranker.learn_item(record)
            if name == "model":
                self.model_seconds += time.perf_counter() - started

    def user_record(self, record: PreferencesRecord | ErasureRecord) -> None:
        """Onboarding, overrides, reset or erasure, applied as the worker applies them."""
        user = record.user_id
        if isinstance(record, ErasureRecord) or record.reset:
            for ranker in self.rankers.values():
                ranker.forget_user(user)
            self.users.reset(user)
        if isinstance(record, ErasureRecord):
            return
        if record.liked_categories:
            for ranker in self.rankers.values():
                like = getattr(ranker, "like_categories", None)
                if like is not None:
                    like(user, record.liked_categories, record.ts)
        implied = [(item, EventType.CLICK) for item in record.liked_items]
        implied += [(item, EventType.DISMISS) for item in record.hidden_items]
        for n, (item, kind) in enumerate(implied):
            event = Event(
                event_id=f"{record.event_id}:{n}", user_id=user, item_id=item, type=kind, ts=record.ts
            )
            self.learn(event)
        if record.liked_categories or record.liked_items:
            self.users.onboarded.add(user)
            self.users.has_positive.add(user)

    def learn(self, event: Event) -> None:
        """Every ranker learns the event; the user's profile observes it."""
        user, item = event.user_id, event.item_id
        if item not in self.categories:
            self.item(self.items.get(item) or ItemRecord(item_id=item))
        profile = self.users.profile(user)
        for name, ranker in self.rankers.items():
            started = time.perf_counter()
            ranker.learn_one(event, profile)
            if name == "model":
                self.model_seconds += time.perf_counter() - started
        signal = signal_of(event)
        profile.observe(event, signal)
        if signal.consumed:
            self.users.consumed.setdefault(user, set()).add(item)
        if signal.label == 1:
            self.users.has_positive.add(user)

    def event(self, event: Event, scored: bool) -> None:
        """Score the event (if ``scored`` and a positive the rankers could have ranked), then learn it."""
        user, item = event.user_id, event.item_id
        self.born.setdefault(item, event.ts)
        consumed = self.users.consumed.get(user, set())
        signal = signal_of(event)
        if scored and signal.label == 1 and user in self.users.has_positive and item not in consumed:
            slices = []
            if self.users.events.get(user, 0) < NEW_USER_EVENTS:
                slices.append("new_users")
                if user in self.users.onboarded:
                    slices.append("onboarded_new_users")
            if event.ts - self.born[item] < NEW_ITEM_MS:
                slices.append("new_items")
            profile = self.users.profile(user)
            for name, ranker in self.rankers.items():
                started = time.perf_counter()
                ranked = ranker.recommend(profile, self.k + 10, event.context, event.ts)
                if name == "model":
                    self.model_seconds += time.perf_counter() - started
                top = [i for i, _ in ranked if i not in consumed][: self.k]
                self.boards[name].score(top, item, slices)
        self.learn(event)
        self.users.events[user] = self.users.events.get(user, 0) + 1
        self.users.context[user] = (event.context, event.ts)
        self.last_ts = event.ts

    def share(self, tastes: Mapping[str, Mapping[str, float]]) -> None:
        """Each ranker's final top k (ranked as when scoring) for users with enough events, against their
        true top-2 categories."""
        shares: dict[str, list[float]] = {name: [] for name in self.rankers}
        for user, profile in self.users.profiles.items():
            if profile.events_seen < SHARE_MIN_EVENTS or user not in tastes:
                continue
            taste = tastes[user]
            liked = set(sorted(taste, key=lambda c: -taste[c])[:2])
            context, ts = self.users.context.get(user, (None, profile.last_ts))
            consumed = self.users.consumed.get(user, set())
            for name, ranker in self.rankers.items():
                ranked = ranker.recommend(profile, self.k + 10, context, ts)
                items = [i for i, _ in ranked if i not in consumed][: self.k]
                shares[name].append(taste_share(items, liked, self.categories))
        for name, values in shares.items():
            self.boards[name].top2_share = sum(values) / len(values) if values else 0.0
            self.boards[name].share_users = len(values)


def replay(
    records: Iterable[Record | DataFormatError],
    items: Mapping[str, ItemRecord] | None = None,
    *,
    k: int = 10,
    from_ts: int | None = None,
    model: Recommender | None = None,
    compare: Mapping[str, Recommender] | None = None,
    tastes: Mapping[str, Mapping[str, float]] | None = None,
    progress: Callable[[int], None] = lambda _: None,
) -> ReplayReport:
    """Prequential evaluation of ``model`` (a fresh `HybridRecommender` by default) and of the ``compare``
    rankers (`baselines` by default) over ``records`` (a log in the order things happened).

    Catalog records in ``records`` are learned when they come; an item without one is learned from
    ``items`` (or bare) just after its first event is scored, so "known" means seen so far. Metrics count
    events with ``ts >= from_ts`` only; every event is learned. Lines that could not be read are counted.
    """
    rec = model or HybridRecommender(half_life_ms=REPLAY_HALF_LIFE_MS)
    rankers: dict[str, Recommender] = {"model": rec, **(baselines() if compare is None else compare)}
    run = _Replay(rankers, items or {}, k)
    started, count, invalid, first_invalid = time.perf_counter(), 0, 0, None
    for record in records:
        if isinstance(record, DataFormatError):
            invalid += 1
            first_invalid = first_invalid or str(record)
        elif isinstance(record, ItemRecord):
            run.item(record)
        elif isinstance(record, Event):
            count += 1
            run.event(record, from_ts is None or record.ts >= from_ts)
            if count % 1000 == 0:
                progress(1000)
        else:
            run.user_record(record)
    progress(count % 1000)
    if tastes is not None:
        run.share(tastes)
    return ReplayReport(
        k=k,
        events=count,
        boards=run.boards,
        known_items=len(run.categories),
        seconds=time.perf_counter() - started,
        model_seconds=run.model_seconds,
        model_version=rec.version,
        invalid=invalid,
        first_invalid=first_invalid,
    )


def load_movielens(
    ratings: Path, movies: Path | None = None, tags: Path | None = None
) -> tuple[list[Event], dict[str, ItemRecord]]:
    """Events (timestamp order, ties in file order) and catalog records of a MovieLens history."""
    from engine.ingest import backfill

    catalog = backfill.movielens_items(ratings, movies, tags)
    return backfill.movielens_events(ratings), {record.item_id: record for record in catalog}
