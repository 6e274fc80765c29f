"""Trending fed by the model's learning (unit level; the look-back reader is tested through the real
broker in tests/integration/test_trending.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from schemas.events import Context, Event
from streams import trending


class _Store:
    def __init__(self) -> None:
        self.lists: dict[str | None, list[str]] = {}

    async def publish_trending(self, items: list[tuple[str, float]], scope: str | None) -> None:
        self.lists[scope] = [item for item, _ in items]


class _Held:
    def __init__(self) -> None:
        self.now = True

    def held(self) -> bool:
        return self.now


def _click(n: int, item: str, kind: str = "click") -> Event:
    return Event(
        event_id=f"e{n}", user_id=f"u{n}", item_id=item, type=kind, ts=10**12 + n,
        context=Context(locale="pt-BR"),
    )  # fmt: skip


def _trending(monkeypatch: pytest.MonkeyPatch) -> tuple[trending.Trending, _Store, _Held, list[Any]]:
    started: list[Any] = []
    monkeypatch.setattr(trending.Trending, "_start", lambda self, ends: started.append(ends))
    store, held = _Store(), _Held()
    metrics = Metrics.create(CollectorRegistry(), "t", "v")
    fake_store: Any = store  # what Trending uses of a RedisStore, and of a Singleton below
    fake_singleton: Any = held
    job = trending.Trending(Settings(namespace="t"), fake_store, fake_singleton, metrics, lambda: {0: 7})
    return job, store, held, started


def test_only_positive_events_learned_while_the_job_is_held_count(monkeypatch: pytest.MonkeyPatch) -> None:
    job, store, held, started = _trending(monkeypatch)
    job.feed(_click(0, "before"))  # not counting yet: the look-back covers what the model held then
    asyncio.run(job())
    assert started == [{0: 7}] and store.lists == {}
    job.feed(_click(1, "hot"))
    job.feed(_click(2, "hot"))
    job.feed(_click(3, "meh"))
    job.feed(_click(4, "gone", kind="dismiss"))
    asyncio.run(job())
    assert store.lists == {None: ["hot", "meh"], "pt-BR": ["hot", "meh"], "pt": ["hot", "meh"]}
    held.now = False
    asyncio.run(job())
    job.feed(_click(5, "late"))  # another worker counts it now
    held.now = True
    asyncio.run(job())
    job.feed(_click(6, "late"))
    asyncio.run(job())
    assert store.lists[None] == ["late"], "a worker that lost the job starts afresh when it gains it again"


def test_events_learned_during_the_look_back_are_counted_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    job, store, _held, _started = _trending(monkeypatch)
    asyncio.run(job())
    job._pending = []  # as while the look-back reader has more to read
    job._consumer = object()  # type: ignore[assignment]
    monkeypatch.setattr(job, "_look_back", lambda: None)
    job.feed(_click(1, "meanwhile"))
    asyncio.run(job())
    assert store.lists == {} and [p[0] for p in job._pending or []] == ["meanwhile"]
    job._consumer = None  # the look-back has read up to the model's position
    asyncio.run(job())
    assert store.lists[None] == ["meanwhile"] and job._pending is None


def test_counting_starts_at_the_assignment_not_at_the_next_round(monkeypatch: pytest.MonkeyPatch) -> None:
    job, store, held, started = _trending(monkeypatch)
    learned = {0: 7}
    job.positions = lambda: dict(learned)
    held.now = False
    job.activate()  # assigned other partitions: nothing to do
    assert not job.active
    held.now = True
    job.activate()  # partition 0 assigned: the feed counts from the model's position now
    learned[0] = 9
    job.feed(_click(7, "early"))  # learned before the job's first round
    asyncio.run(job())
    assert started == [{0: 7}]  # the look-back stops where the feed began: nothing read twice
    assert store.lists[None] == ["early"]
