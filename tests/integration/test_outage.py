"""Dependency outages on real processes: Redis or the Kafka broker stopped and started again under a
running worker (and the HTTP API) while events flow.

The shared stack is never touched: a private redis-server, and for the Kafka case a private KRaft
broker, are started by `engine.ops.stack` in a tmp folder on free ports (the broker reuses the shared
stack's jars). Afterwards no event is lost (every user's ``events_seen`` equals what was sent), the
worker is still running, and the lists the outage affected are in Redis again within seconds of it
answering: without waiting for the users' next events, also when Redis came back without its data.

``OUTAGE_S`` (default 30) sets how long Redis stays away; ``OUTAGE_ROUNDS`` (default 1) repeats the
Redis pair of outages (a soak). The figures are printed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.exceptions
from prometheus_client.parser import text_string_to_metric_families

from engine.ingest.kafka import AsyncProducer
from engine.ingest.produce import ensure_engine_topics, send_event
from engine.ops import stack
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.synth import Clickstream
from schemas.events import encode
from tests.integration.conftest import Worker, free_port, make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

USERS, ITEMS, SEED = 60, 100, 23
#: Events per second while the stream flows (one at a time, each confirmed by the broker).
RATE = 20
OUTAGE_S = float(os.environ.get("OUTAGE_S", "30"))
ROUNDS = int(os.environ.get("OUTAGE_ROUNDS", "1"))
#: How long the broker stays away in the Kafka case (the API's answers meanwhile are what is tested).
KAFKA_OUTAGE_S = 20.0
KEY = f"p13n_it-{uuid.uuid4().hex}"


def private(tmp_path: Path, prefix: str, **update: object) -> Settings:
    """Settings of a namespace of its own whose stack folder (and so its private services) is ``tmp_path``."""
    settings = make_settings(f"{prefix}{uuid.uuid4().hex[:8]}")
    return settings.model_copy(
        update={"stack_dir": tmp_path / "stack", "checkpoint_dir": tmp_path / "checkpoints", **update}
    )


def start_worker(settings: Settings, log: Path, metrics_port: int) -> Worker:
    worker = Worker(settings, log)
    worker.env = lambda: {  # type: ignore[method-assign]
        **Worker.env(worker),
        "PERSONALIZE_METRICS_PORT": str(metrics_port),
        "PERSONALIZE_METRICS_PORT_SPAN": "1",
        "PERSONALIZE_SESSION_TIMEOUT_S": "10",
    }
    worker.start()
    return worker


async def scrape(port: int) -> dict[str, float]:
    """The worker's samples, ``name{label=value}`` -> value (labels sorted)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


async def caught_up(store: RedisStore, wanted: dict[str, int]) -> bool:
    """Whether every user's list counts at least ``wanted[user]`` events."""
    for user, count in wanted.items():
        seen = (await store.read(user, 1)).events_seen
        if seen is None or seen < count:
            return False
    return True


async def produce(settings: Settings, sent: Counter[str], stop: asyncio.Event) -> None:
    """A catalog, then the seeded clickstream at `RATE` until ``stop``; ``sent`` counts what the broker
    confirmed, per user."""
    world = Clickstream(USERS, ITEMS, n_categories=8, seed=SEED, start_ms=time.time_ns() // 1_000_000)
    async with AsyncProducer(settings.bootstrap) as producer:
        for record in world.items():
            await producer.send(settings.items_topic, encode(record), record.item_id.encode())
        for event in world.events(10**7):
            if stop.is_set():
                return
            await send_event(producer, settings, event)
            sent[event.user_id] += 1
            await asyncio.sleep(1 / RATE)


@dataclass(frozen=True)
class Round:
    """One Redis outage's figures."""

    data: str
    events_during: int
    affected_lists: int
    republished: float
    partitions_reset: float
    recovery_s: float


def _delta(before: dict[str, float], after: dict[str, float], prefix: str) -> float:
    return sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith(prefix))


async def redis_outage(
    settings: Settings, store: RedisStore, sent: Counter[str], port: int, wipe: bool
) -> Round:
    """Stop Redis for `OUTAGE_S` (then delete its files if ``wipe``), start it again, and wait until
    every affected list is back: users with events meanwhile, or every user when Redis lost its data."""
    before_m, before = await scrape(port), Counter(sent)
    await asyncio.to_thread(stack.stop, settings, stack.Service.REDIS)
    if wipe:  # Redis comes back without its data: no append-only file, no dump
        redis_dir = settings.stack_dir / "redis"
        shutil.rmtree(redis_dir / "appendonlydir", ignore_errors=True)
        (redis_dir / "dump.rdb").unlink(missing_ok=True)
    await asyncio.sleep(OUTAGE_S)
    during = sent - before
    # Recovery is timed from the start command: Redis's own start-up (~0.5 s) counts in it.
    back = time.monotonic()
    await asyncio.to_thread(stack.start, settings, stack.Service.REDIS, lambda _m: None)
    at_back = dict(sent)
    affected = {u: at_back[u] for u in (at_back if wipe else during)}
    if not wipe:
        lost = [u for u in at_back if (await store.read(u, 1)).events_seen is None]
        assert lost == [], f"Redis came back without the lists of {lost[:5]}"
    await wait_for(lambda: caught_up(store, affected), 60, "the affected lists, republished")
    recovery_s = time.monotonic() - back
    after_m = await scrape(port)
    return Round(
        data="without" if wipe else "with",
        events_during=sum(during.values()),
        affected_lists=len(affected),
        republished=_delta(before_m, after_m, "personalize_republished_total"),
        partitions_reset=_delta(before_m, after_m, "personalize_redis_resets_total"),
        recovery_s=round(recovery_s, 1),
    )


async def test_redis_away_with_and_without_its_data_loses_nothing_and_republishes(tmp_path: Path) -> None:
    settings = private(tmp_path, "outr", redis_port=free_port())
    await asyncio.to_thread(stack.start, settings, stack.Service.REDIS, lambda _m: None)
    await ensure_engine_topics(settings)
    metrics_port = free_port()
    worker = start_worker(settings, tmp_path / "worker.log", metrics_port)
    store = RedisStore.from_url(settings.redis, settings.namespace, timeout_s=2.0)
    sent: Counter[str] = Counter()
    stop = asyncio.Event()
    producing = asyncio.create_task(produce(settings, sent, stop))
    rounds: list[Round] = []
    try:
        await wait_for(lambda: _beating(store), 120, "the worker's first heartbeat")

        async def everyone_listed() -> bool:  # the stream's first events are one per user
            return len(sent) == USERS and await caught_up(store, {u: 1 for u in sent})

        await wait_for(everyone_listed, 120, "every user's first list")
        for _ in range(ROUNDS):
            for wipe in (False, True):
                rounds.append(await redis_outage(settings, store, sent, metrics_port, wipe))
                assert worker.proc is not None and worker.proc.poll() is None, "the worker stopped"
                await asyncio.sleep(3)  # events flow with Redis back
        stop.set()
        await producing
        await wait_for(lambda: caught_up(store, dict(sent)), 120, "every event sent, counted")
        mismatches = [u for u, n in sent.items() if (await store.read(u, 1)).events_seen != n]
        final = await scrape(metrics_port)
        failed = final.get("personalize_publish_errors_total", 0)
        print(
            f"\nredis outages ({OUTAGE_S:.0f} s each): {sum(sent.values())} events, {len(sent)} users, "
            f"mismatches {len(mismatches)}, failed list writes {failed:.0f}, rounds {rounds}"
        )
        assert mismatches == []
        assert worker.proc is not None and worker.proc.poll() is None, "the worker stopped"
        assert all(r.events_during > 0 and r.republished > 0 for r in rounds), rounds
        assert [r.partitions_reset > 0 for r in rounds] == [False, True] * ROUNDS, rounds
        assert final.get("personalize_republish_pending", -1) == 0
    finally:
        stop.set()
        await asyncio.gather(producing, return_exceptions=True)
        worker.stop()
        await store.close()
        await asyncio.to_thread(stack.stop, settings, stack.Service.REDIS)


async def _beating(store: RedisStore) -> bool:
    try:
        return bool(await store.workers())
    except (redis.exceptions.RedisError, OSError):
        return False
