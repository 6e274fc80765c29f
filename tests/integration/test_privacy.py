"""Consent, pseudonymous ids and retention through the real broker, Redis, worker and API.

This module runs its own opt-in worker (PERSONALIZE_CONSENT_REQUIRED) and an API that pseudonymizes user
ids; the raw id must never show in the events topic, Redis or the worker's checkpoints, and a user's
events count only between their grant and their withdrawal, whichever way they reach Kafka.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import httpx
import orjson
import pytest
import pytest_asyncio
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource  # its package does not re-export it to mypy

from engine.api import hash_key
from engine.ingest.kafka import AsyncProducer
from engine.ops.settings import Settings
from engine.sdk.client import AsyncClient
from engine.store.redis_store import RedisStore
from schemas import keys
from schemas.events import Event, ItemRecord, encode
from schemas.pseudonyms import Pseudonyms
from tests.integration.conftest import Worker, api_server, processed, until_beating, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KEY = f"p13n_it-{uuid.uuid4().hex}"
AUTH = {"X-API-Key": KEY}
SECRET = f"it-pseudonym-key-{uuid.uuid4().hex}"
PRIVACY = {
    "PERSONALIZE_CONSENT_REQUIRED": "true",
    "PERSONALIZE_USER_TTL_S": "3600",
    "PERSONALIZE_TOPIC_RETENTION_HOURS": "48",
}
RAW = "alice.privacy@example.com"
ALICE = Pseudonyms(SECRET.encode()).of(RAW)


class _OptInWorker(Worker):
    def env(self) -> dict[str, str]:
        return {**super().env(), **PRIVACY, "PERSONALIZE_CHECKPOINT_EVERY_S": "1"}


@pytest.fixture(scope="module")
def opt_in_worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """The module's worker (not the session's: this one needs consent and a fast checkpoint)."""
    worker = _OptInWorker(settings, tmp_path_factory.mktemp("privacy-worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def ready(opt_in_worker: Worker, store: RedisStore) -> Worker:
    return await until_beating(opt_in_worker, store)


@pytest.fixture(scope="module")
def api_url(
    settings: Settings, opt_in_worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("privacy-api") / "api.log"
    env = {**PRIVACY, "PERSONALIZE_API_KEY_HASHES": hash_key(KEY), "PERSONALIZE_PSEUDONYM_KEY": SECRET}
    with api_server(settings, log, **env) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def http(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, headers=AUTH) as client:
        yield client


def _event(event_id: str, item: str, user: str = RAW) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user,
        "item_id": item,
        "type": "click",
        "ts": time.time_ns() // 10**6,
    }


async def _bypass(settings: Settings, event_ids: list[str]) -> None:
    """Events of ALICE produced straight to Kafka (as a producer that skips the edge's consent check)."""
    async with AsyncProducer(settings.bootstrap) as producer:
        for n, event_id in enumerate(event_ids):
            event = Event.model_validate(_event(event_id, f"pv{n % 5}", ALICE))
            await producer.send(settings.events_topic, encode(event), ALICE.encode())


async def _catalog(settings: Settings) -> None:
    async with AsyncProducer(settings.bootstrap) as producer:
        for n in range(20):
            record = ItemRecord(item_id=f"pv{n}", categories=(f"c{n % 3}",))
            await producer.send(settings.items_topic, encode(record), record.item_id.encode())


def _topic_values(settings: Settings) -> list[bytes]:
    """Every record value of the events topic so far."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": settings.bootstrap,
            "group.id": f"privacy-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.events_topic])
    values: list[bytes] = []
    idle_since = time.monotonic()
    try:
        while time.monotonic() - idle_since < 5:
            msg = consumer.poll(0.5)
            value = msg.value() if msg is not None and msg.error() is None else None
            if value:
                values.append(value)
                idle_since = time.monotonic()
    finally:
        consumer.close()
    return values


def _checkpoints_after(settings: Settings, since: float) -> list[Path]:
    # Each worker writes into a folder of its own (its identity) below the namespace's.
    folder = settings.checkpoint_folder
    return [p for p in folder.rglob("*.ckpt") if p.stat().st_mtime > since] if folder.exists() else []


async def test_topics_about_users_are_created_with_the_configured_retention(
    settings: Settings, ready: Worker
) -> None:
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    resources = [ConfigResource("topic", t) for t in (settings.events_topic, settings.items_topic)]
    futures = admin.describe_configs(resources)
    found = {r.name: (await asyncio.wrap_future(f))["retention.ms"].value for r, f in futures.items()}
    assert found == {settings.events_topic: str(48 * 3_600_000), settings.items_topic: "-1"}


async def test_a_user_is_learned_only_between_grant_and_withdrawal_and_only_by_pseudonym(
    settings: Settings, ready: Worker, store: RedisStore, http: httpx.AsyncClient
) -> None:
    run = uuid.uuid4().hex[:8]
    await _catalog(settings)
    # Before any grant: the edge drops, and the worker drops what skipped the edge.
    early = await http.post("/v1/events", json=[_event(f"{run}-early-{n}", f"pv{n}") for n in range(3)])
    assert early.json() == {"accepted": 0, "event_ids": [], "dropped": [f"{run}-early-{n}" for n in range(3)]}
    await _bypass(settings, [f"{run}-bypass-{n}" for n in range(2)])
    granted = await http.put(f"/v1/users/{RAW}/consent", json={"granted": True})
    assert granted.json()["admitted"] is True
    learned = [_event(f"{run}-ok-{n}", f"pv{n}") for n in range(4)]
    assert (await http.post("/v1/events", json=learned)).json()["accepted"] == 4

    async def listed() -> bool:
        return (await store.read(ALICE)).events_seen == 4

    await wait_for(listed, 60, "ALICE's list after her 4 events since the grant")
    served = (await http.get(f"/v1/recommendations/{RAW}")).json()
    assert served["source"] == "personalized" and served["user_id"] == RAW and served["items"]
    async with AsyncClient(
        redis_url=settings.redis, namespace=settings.namespace, pseudonym_key=SECRET
    ) as sdk:
        direct = await sdk.recommend(RAW, n=5)
    assert direct.source == "personalized" and direct.user_id == RAW
    assert (
        await http.put(f"/v1/users/{RAW}/preferences", json={"muted_categories": ["c2"]})
    ).status_code == 200
    for key in (keys.user_list, keys.preferences):
        assert 0 < await store.client.ttl(key(settings.namespace, ALICE)) <= 3600

    # Raw ids nowhere: a checkpoint written after the list holds the pseudonym and not the id.
    listed_at = time.time()

    async def checkpointed() -> bool:
        return bool(_checkpoints_after(settings, listed_at))

    await wait_for(checkpointed, 30, "a checkpoint after ALICE's events")
    newest = max(_checkpoints_after(settings, listed_at), key=lambda p: p.stat().st_mtime).read_bytes()
    assert ALICE.encode() in newest and RAW.encode() not in newest

    # The withdrawal: her keys go at once, later events are dropped at the edge and in the worker.
    withdrawn = await http.put(f"/v1/users/{RAW}/consent", json={"granted": False})
    assert withdrawn.json()["deleted_keys"] >= 2 and withdrawn.json()["admitted"] is False
    assert not await store.client.exists(keys.user_list(settings.namespace, ALICE))
    late = await http.post("/v1/events", json=[_event(f"{run}-late", "pv7")])
    assert late.json()["dropped"] == [f"{run}-late"]
    before = await processed(store)
    await _bypass(settings, [f"{run}-after-{n}" for n in range(3)])

    async def consumed() -> bool:  # the consent record and the 3 events, each counted once processed
        return await processed(store) >= before + 3

    await wait_for(consumed, 60, "the events after the withdrawal consumed")
    await asyncio.sleep(1.5)  # a batch's flush and a heartbeat later
    assert not await store.client.exists(keys.user_list(settings.namespace, ALICE))
    assert (await http.get(f"/v1/users/{RAW}/consent")).json()["granted"] is False

    values = await asyncio.to_thread(_topic_values, settings)
    ids = {orjson.loads(v).get("event_id") for v in values}
    assert not any(RAW.encode() in v for v in values)
    assert {f"{run}-early-0", f"{run}-late"}.isdisjoint(ids)  # dropped at the edge: never in Kafka
    assert {f"{run}-bypass-0", f"{run}-ok-0", f"{run}-after-0"} <= ids
    found = [k async for k in store.client.scan_iter(match=keys.namespace_pattern(settings.namespace))]
    assert found and not any(RAW in k for k in found)
