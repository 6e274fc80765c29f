"""Producing traffic into Kafka: the synthetic clickstream and history backfills.

Both send catalog records first, then events keyed by user_id, through `AsyncProducer` with delivery
confirmed before returning, so "sent" means the broker has it. User ids are pseudonymized and events of
users without consent left out first (`engine.ingest.edge`).
"""

from __future__ import annotations

__all__ = ["backfill", "ensure_engine_topics", "send_event", "simulate", "topic_configs"]

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from engine.ingest import backfill as history
from engine.ingest.edge import ConsentGate, pseudonymize, pseudonymize_record
from engine.ingest.kafka import AsyncProducer, Delivery, ensure_topics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.synth import Clickstream
from schemas.events import Event, ItemRecord, encode

#: Outstanding unconfirmed sends before we wait for the broker (bounds memory, keeps throughput).
_WINDOW = 10_000


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Each topic of the namespace and the configs it is created with: records about users (events,
    dead letters, decisions, rewards, bandit examples, drift) kept for ``topic_retention_hours``; the
    catalog, which names no user, compacted and kept for good (every worker reads it whole from the
    start: each item's latest record).

    >>> configs = topic_configs(Settings(namespace="shop", topic_retention_hours=24))
    >>> configs["p13n.shop.events"], configs["p13n.shop.items"]
    ({'retention.ms': '86400000'}, {'retention.ms': '-1', 'cleanup.policy': 'compact'})
    """
    kept = {"retention.ms": str(round(settings.topic_retention_hours * 3_600_000))}
    about_users = [settings.events_topic, settings.dead_letter_topic, settings.decisions_topic]
    about_users += [settings.rewards_topic, settings.bandit_examples_topic, settings.drift_topic]
    catalog = {"retention.ms": "-1", "cleanup.policy": "compact"}
    return {settings.items_topic: catalog} | {topic: kept for topic in about_users}


async def ensure_engine_topics(settings: Settings) -> None:
    """The namespace's topics (events, items, dead letters, decisions, rewards, bandit examples, drift),
    created with their retention (`topic_configs`)."""
    configs = topic_configs(settings)
    await ensure_topics(settings.bootstrap, configs, settings.partitions, configs)


def send_event(producer: AsyncProducer, settings: Settings, event: Event) -> asyncio.Future[Delivery]:
    """Queue one event on the events topic keyed by its user_id; the future completes once the broker has it.

    Every producer of live events (simulate, the HTTP API) goes through here, so all key the same way.
    """
    return producer.send_nowait(settings.events_topic, encode(event), event.user_id.encode())


@contextlib.asynccontextmanager
async def _consent_gate(settings: Settings) -> AsyncIterator[ConsentGate]:
    """The run's consent gate over the namespace's Redis (closed after the run)."""
    store = RedisStore.from_url(settings.redis, settings.namespace)
    try:
        yield ConsentGate(store, settings.consent_required)
    finally:
        await store.close()


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


async def _send_catalog(producer: AsyncProducer, settings: Settings, records: Iterable[ItemRecord]) -> int:
    futures = [producer.send_nowait(settings.items_topic, encode(r), r.item_id.encode()) for r in records]
    await asyncio.gather(*futures)
    return len(futures)


class _Window:
    """Keeps at most `_WINDOW` sends in flight."""

    def __init__(self) -> None:
        self.pending: list[asyncio.Future[Delivery]] = []

    async def add(self, future: asyncio.Future[Delivery]) -> None:
        self.pending.append(future)
        if len(self.pending) >= _WINDOW:
            await self.drain()

    async def drain(self) -> None:
        await asyncio.gather(*self.pending)
        self.pending.clear()


async def simulate(
    settings: Settings,
    *,
    users: int,
    items: int,
    events: int,
    rate: float | None,
    seed: int,
    categories: int,
    console: Console,
    drift_at: int | None = None,
    drift_fraction: float = 0.5,
    unavailable: Collection[str] = (),
) -> dict[str, Any]:
    """Send a synthetic catalog and clickstream; returns the manifest (events sent per user...).

    With ``drift_at``, a ``drift_fraction`` share of users change tastes from that event on. Items in
    ``unavailable`` are sent marked unavailable (out of stock: users still click them, lists must not
    hold them).
    """
    await ensure_engine_topics(settings)
    world = Clickstream(
        users, items, n_categories=categories, seed=seed, drift_at=drift_at, drift_fraction=drift_fraction
    )
    run = f"sim-{uuid.uuid4().hex[:12]}"
    per_user: Counter[str] = Counter()
    last_ts: dict[str, int] = {}
    started = time.monotonic()
    pseudonyms = settings.pseudonyms
    async with AsyncProducer(settings.bootstrap) as producer, _consent_gate(settings) as gate:
        off = set(unavailable)
        catalog = [
            r.model_copy(update={"available": False}) if r.item_id in off else r for r in world.items()
        ]
        n_items = await _send_catalog(producer, settings, catalog)
        window = _Window()
        with _progress(console) as progress:
            task = progress.add_task("events", total=events)
            for index, event in enumerate(world.events(events)):
                if rate is not None:
                    ahead = started + index / rate - time.monotonic()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                # A fresh event_id per run: the same seed twice is new traffic, not redelivery.
                live = event.model_copy(
                    update={"ts": time.time_ns() // 1_000_000, "event_id": f"{run}-{index}"}
                )
                live = pseudonymize(live, pseudonyms)
                if not await gate.admits(live.user_id):
                    continue
                await window.add(send_event(producer, settings, live))
                per_user[live.user_id] += 1
                last_ts[live.user_id] = live.ts
                if index % 500 == 0:
                    progress.update(task, completed=index)
            await window.drain()
            progress.update(task, completed=events)
    return {
        "seed": seed,
        "drift_at": drift_at,
        "users": users,
        "items": n_items,
        "unavailable": sorted(off),
        "events": sum(per_user.values()),
        "seconds": time.monotonic() - started,
        # Keyed by the user ids as sent (pseudonyms when PERSONALIZE_PSEUDONYM_KEY is set).
        "events_per_user": dict(per_user),
        "last_event_ts": last_ts,
        "pseudonymized": pseudonyms.enabled,
        "dropped_no_consent": gate.dropped,
    }


async def backfill(settings: Settings, path: Path, fmt: str, *, console: Console) -> dict[str, int]:
    """Send a MovieLens ratings file (with its catalog) or a JSON Lines file of events."""
    await ensure_engine_topics(settings)
    pseudonyms = settings.pseudonyms
    async with AsyncProducer(settings.bootstrap) as producer, _consent_gate(settings) as gate:
        n_items = 0
        if fmt == "movielens":
            n_items = await _send_catalog(producer, settings, history.movielens_items(path))
            events = (pseudonymize(e, pseudonyms) for e in history.movielens_events(path))
            records: list[tuple[bytes | None, bytes]] = [(e.user_id.encode(), encode(e)) for e in events]
        else:
            records = [pseudonymize_record(r, pseudonyms) for r in history.jsonl_records(path)]
        records = [r for r in records if await gate.admits_record(r)]
        window = _Window()
        with _progress(console) as progress:
            task = progress.add_task(path.name, total=len(records))
            for index, (key, value) in enumerate(records):
                await window.add(producer.send_nowait(settings.events_topic, value, key))
                if index % 1000 == 0:
                    progress.update(task, completed=index)
            await window.drain()
            progress.update(task, completed=len(records))
    return {"items": n_items, "events": len(records), "dropped_no_consent": gate.dropped}
