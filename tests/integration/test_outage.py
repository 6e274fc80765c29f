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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis.exceptions
from prometheus_client.parser import text_string_to_metric_families

from engine.api import hash_key
from engine.ingest.kafka import AsyncProducer
from engine.ingest.produce import ensure_engine_topics, send_event
from engine.ops import stack
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.synth import Clickstream
from schemas.events import encode
from tests.integration.conftest import ROOT, Worker, api_server, free_port, make_settings, wait_for

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


async def send_catalog(settings: Settings) -> None:
    """The seeded world's catalog (its producer goes when this returns: no client left retrying)."""
    async with AsyncProducer(settings.bootstrap) as producer:
        for record in Clickstream(USERS, ITEMS, n_categories=8, seed=SEED).items():
            await producer.send(settings.items_topic, encode(record), record.item_id.encode())


async def produce(settings: Settings, sent: Counter[str], stop: asyncio.Event) -> None:
    """A catalog, then the seeded clickstream at `RATE` until ``stop``; ``sent`` counts what the broker
    confirmed, per user."""
    world = Clickstream(USERS, ITEMS, n_categories=8, seed=SEED, start_ms=time.time_ns() // 1_000_000)
    await send_catalog(settings)
    async with AsyncProducer(settings.bootstrap) as producer:
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


@dataclass
class Posting:
    """What the API client saw: events accepted per user, 503s and their Retry-After, reads meanwhile."""

    sent: Counter[str] = field(default_factory=Counter)
    unavailable: int = 0
    without_retry_after: int = 0
    last_accepted: float = 0.0
    reads: Counter[int] = field(default_factory=Counter)


async def post_events(url: str, posting: Posting, stop: asyncio.Event) -> None:
    """POST one event at a time at `RATE`, each retried after a 503 (as its Retry-After says) until the
    API accepts it; the same event_id each time, so a record that did reach Kafka is not counted twice."""
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as http:
        n = 0
        while not stop.is_set():
            user = f"ku{n % USERS}"
            body = {"event_id": f"k{n}", "user_id": user, "item_id": f"i{n % ITEMS + 1}", "type": "click",
                    "ts": time.time_ns() // 1_000_000}  # fmt: skip
            while True:
                try:
                    answer = await http.post("/v1/events", json=body)
                except httpx.TransportError:
                    await asyncio.sleep(0.5)
                    continue
                if answer.status_code == 202:
                    break
                assert answer.status_code == 503, answer.text
                posting.unavailable += 1
                wait = answer.headers.get("Retry-After")
                posting.without_retry_after += wait is None
                await asyncio.sleep(min(5.0, float(wait or 1)))
            posting.sent[user] += 1
            posting.last_accepted = time.monotonic()
            n += 1
            await asyncio.sleep(1 / RATE)


async def read_recommendations(url: str, posting: Posting, stop: asyncio.Event) -> None:
    """Read a user's list twice a second; the status codes are counted."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while not stop.is_set():
            posting.reads[(await http.get("/v1/recommendations/ku1")).status_code] += 1
            await asyncio.sleep(0.5)


async def test_kafka_broker_away_then_back_loses_nothing_and_the_api_says_retry(tmp_path: Path) -> None:
    settings = private(
        tmp_path, "outk", kafka_port=free_port(), kafka_controller_port=free_port(), kafka_heap="384m",
        partitions=4,
    )  # fmt: skip
    kafka_dir = settings.stack_dir / "kafka"
    kafka_dir.mkdir(parents=True)
    (kafka_dir / "libs").symlink_to((ROOT / ".stack" / "kafka" / "libs").resolve())  # the shared jars
    await asyncio.to_thread(stack.start, settings, stack.Service.KAFKA, lambda _m: None)
    worker: Worker | None = None
    store = RedisStore.from_url(settings.redis, settings.namespace)
    stop_posting, stop_reading = asyncio.Event(), asyncio.Event()
    posting = Posting()
    tasks: list[asyncio.Task[None]] = []
    try:
        await ensure_engine_topics(settings)
        await send_catalog(settings)
        worker = start_worker(settings, tmp_path / "worker.log", metrics_port=0)
        api_env = {"PERSONALIZE_API_KEY_HASHES": hash_key(KEY), "PERSONALIZE_API_TIMEOUT_S": "2"}
        with api_server(settings, tmp_path / "api.log", **api_env) as url:
            await wait_for(lambda: _beating(store), 120, "the worker's first heartbeat")
            tasks = [asyncio.create_task(post_events(url, posting, stop_posting))]
            await wait_for(
                lambda: caught_up(store, {f"ku{n}": 1 for n in range(USERS)}), 120, "every user's first list"
            )
            accepted_before = sum(posting.sent.values())
            await asyncio.to_thread(stack.stop, settings, stack.Service.KAFKA)
            tasks.append(asyncio.create_task(read_recommendations(url, posting, stop_reading)))
            await asyncio.sleep(KAFKA_OUTAGE_S)
            stop_reading.set()
            accepted_during = sum(posting.sent.values()) - accepted_before
            back = time.monotonic()
            await asyncio.to_thread(stack.start, settings, stack.Service.KAFKA, lambda _m: None)
            await wait_for(_accepted_since(posting, back), 120, "the API accepting events again")
            accepting_s = posting.last_accepted - back
            await asyncio.sleep(5)  # events flow with the broker back
            stop_posting.set()
            await asyncio.gather(*tasks)
            await wait_for(lambda: caught_up(store, dict(posting.sent)), 180, "every accepted event, counted")
            recovery_s = time.monotonic() - back
            mismatches = [u for u, n in posting.sent.items() if (await store.read(u, 1)).events_seen != n]
        print(
            f"\nkafka outage ({KAFKA_OUTAGE_S:.0f} s): {sum(posting.sent.values())} events accepted, "
            f"{accepted_during} while the broker was away, {posting.unavailable} answers 503 "
            f"({posting.without_retry_after} without Retry-After), reads meanwhile {dict(posting.reads)}, "
            f"mismatches {len(mismatches)}, accepting again {accepting_s:.1f} s and every event counted "
            f"{recovery_s:.1f} s after the broker's start command"
        )
        assert mismatches == []
        assert worker.proc is not None and worker.proc.poll() is None, "the worker stopped"
        assert posting.unavailable > 0 and posting.without_retry_after == 0
        assert posting.reads[200] > 0 and set(posting.reads) == {200}, posting.reads
        # aiokafka retries without a pause while the broker is away (two error lines per try, thousands a
        # second); the worker lets one line of each kind through per 10 s.
        retries = (tmp_path / "worker.log").read_text().count("Unable to update metadata from")
        assert 0 < retries <= 2 + KAFKA_OUTAGE_S / 10 * 2, (
            f"{retries} metadata retry lines in the worker's log"
        )
    finally:
        stop_posting.set()
        stop_reading.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        if worker is not None:
            worker.stop()
        await store.close()
        await asyncio.to_thread(stack.stop, settings, stack.Service.KAFKA)


def _accepted_since(posting: Posting, since: float) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return posting.last_accepted > since

    return check
