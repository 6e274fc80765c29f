"""Two tenants side by side on the real broker and Redis: one API process, a worker per tenant, each
tenant with its own API key and its own Redis ACL user (`personalize tenant add`'s rules).

No read, write or erasure crosses over: through the API, tenant A's key only ever reaches A's data (the
same user id in both tenants stays two users); through Redis, A's credentials get NOPERM for every one
of B's keys and for SCAN, and B's the same for A's, while each reaches its own. Both workers and the API
run with the tenants' credentials only. The ACL users are deleted at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError

from engine.api.auth import Scope, key_entry
from engine.ingest.kafka import AsyncProducer
from engine.ops.settings import Settings
from engine.store import tenant_acl
from engine.store.redis_store import RedisStore
from schemas import keys
from schemas.events import ItemRecord, encode
from tests.integration.conftest import (
    Worker,
    api_server,
    make_settings,
    processed,
    topic_size,
    until_beating,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SHARED = "u-shared@example.com"  # the same user id in both tenants


@dataclass
class Tenant:
    """One tenant of the test: its settings (admin connection), key, Redis URL (its ACL user) and worker."""

    name: str
    settings: Settings
    key: str
    url: str
    admin: RedisStore

    @property
    def auth(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


class _TenantWorker(Worker):
    """A worker that reaches Redis only as its tenant's ACL user."""

    def __init__(self, tenant: Tenant, log: Any) -> None:
        super().__init__(tenant.settings, log)
        self.url = tenant.url

    def env(self) -> dict[str, str]:
        return {**super().env(), "PERSONALIZE_REDIS_URL": self.url}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def tenants(live_stack: None) -> AsyncIterator[tuple[Tenant, Tenant]]:
    """Two fresh namespaces, each with an ACL user made as `personalize tenant add` makes it; the users
    are deleted (ACL DELUSER) when the module ends."""
    run = uuid.uuid4().hex[:8]
    made: list[Tenant] = []
    admin = aioredis.Redis.from_url(make_settings(f"tn{run}a").redis, decode_responses=True)
    try:
        for side in ("a", "b"):
            settings = make_settings(f"tn{run}{side}")
            password = await tenant_acl.add_tenant(admin, settings.namespace)
            url = tenant_acl.tenant_url(settings.redis, settings.namespace, password)
            store = RedisStore.from_url(settings.redis, settings.namespace)
            made.append(Tenant(side, settings, f"p13n_it-{side}-{uuid.uuid4().hex}", url, store))
        yield made[0], made[1]
    finally:
        for tenant in made:
            await tenant.admin.close()
            assert await tenant_acl.remove_tenant(admin, tenant.settings.namespace)
        left = await tenant_acl.tenant_users(admin)
        assert not {t.settings.namespace for t in made} & set(left)
        await admin.aclose()


@pytest.fixture(scope="module")
def workers(
    tenants: tuple[Tenant, Tenant], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Worker]]:
    started: list[Worker] = [
        _TenantWorker(t, tmp_path_factory.mktemp(f"tenant-{t.name}") / "worker.log") for t in tenants
    ]
    for worker in started:
        worker.start()
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def api_url(tenants: tuple[Tenant, Tenant], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One API: its own namespace is A's (A's key an old-style entry), B's key names B; the API reaches
    Redis as each tenant's user only (A's URL for its own namespace too)."""
    a, b = tenants
    entries = [
        key_entry("a-app", list(Scope), a.key),
        key_entry("b-app", list(Scope), b.key, tenant=b.settings.namespace),
    ]
    urls = ",".join(f"{t.settings.namespace}={t.url}" for t in tenants)
    log = tmp_path_factory.mktemp("tenant-api") / "api.log"
    env = {"PERSONALIZE_API_KEY_HASHES": ",".join(entries), "PERSONALIZE_TENANT_REDIS_URLS": urls}
    with api_server(a.settings, log, **env) as url:
        yield url


def _event(event_id: str, user: str, item: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user,
        "item_id": item,
        "type": "click",
        "ts": time.time_ns() // 10**6,
    }


async def _catalog(tenant: Tenant) -> None:
    async with AsyncProducer(tenant.settings.bootstrap) as producer:
        for n in range(8):
            record = ItemRecord(item_id=f"{tenant.name}-i{n}", categories=(f"{tenant.name}-c{n % 2}",))
            await producer.send(tenant.settings.items_topic, encode(record), record.item_id.encode())


def _records(tenant: Tenant) -> int:
    """Records in the tenant's events topic so far."""
    return topic_size(tenant.settings, tenant.settings.events_topic)


async def _list_items(http: httpx.AsyncClient, tenant: Tenant, user: str) -> tuple[str, list[str]]:
    answer = await http.get(f"/v1/recommendations/{user}", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["source"], [entry["item_id"] for entry in body["items"]]


async def test_no_read_write_or_erasure_crosses_between_tenants(
    tenants: tuple[Tenant, Tenant], workers: list[Worker], api_url: str
) -> None:
    a, b = tenants
    for tenant, worker in zip(tenants, workers, strict=True):
        await until_beating(worker, tenant.admin)
        await _catalog(tenant)
    tried = refused = 0
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        # Each tenant's users, the shared id in both, learned by each tenant's own worker.
        for tenant in tenants:
            own = f"u-{tenant.name}"
            batch = [
                _event(f"{tenant.name}-{u}-{n}", u, f"{tenant.name}-i{n}")
                for u in (SHARED, own)
                for n in range(4)
            ]
            answer = await http.post("/v1/events", json=batch, headers=tenant.auth)
            assert answer.status_code == 202 and answer.json()["accepted"] == 8, answer.text

        async def learned() -> bool:
            users = [(t, u) for t in tenants for u in (SHARED, f"u-{t.name}")]
            return all([(await t.admin.read(u)).events_seen == 4 for t, u in users])

        await wait_for(learned, 120, "both tenants' lists (4 events per user)")

        async def counted() -> bool:  # the heartbeats' counters follow the lists by up to a beat
            return all([await processed(t.admin) == 8 for t in tenants])

        await wait_for(counted, 30, "both workers' heartbeats counting their 8 events")
        for tenant in tenants:
            source, items = await _list_items(http, tenant, SHARED)
            assert source == "personalized" and items, (tenant.name, source)
            assert all(item.startswith(f"{tenant.name}-") for item in items), (tenant.name, items)
        # No key: the API's own namespace (A's) only.
        keyless = (await http.get(f"/v1/recommendations/{SHARED}")).json()
        assert keyless["items"] and all(i["item_id"].startswith("a-") for i in keyless["items"])

        # A's key on B's users: every read, write and erasure stays in A (or is refused).
        b_list = await b.admin.read("u-b")
        a_records, b_records = _records(a), _records(b)
        a_processed, b_processed = await processed(a.admin), await processed(b.admin)
        for path in ("/v1/recommendations/u-b", "/v1/users/u-b/preferences", "/v1/users/u-b/erasure"):
            answer = await http.get(path, headers=a.auth)
            tried += 1
            refused += answer.status_code in (403, 404)
            assert "b-i" not in answer.text, (path, answer.text)
        writes = [
            http.post("/v1/events", json=_event("a-on-b-1", "u-b", "a-i1"), headers=a.auth),
            http.put("/v1/users/u-b/preferences", json={"muted_categories": ["b-c0"]}, headers=a.auth),
            http.put("/v1/users/u-b/consent", json={"granted": False}, headers=a.auth),
            http.delete("/v1/users/u-b", headers=a.auth),
            http.delete(f"/v1/users/{SHARED}", headers=a.auth),
        ]
        for write in writes:
            answer = await write
            tried += 1
            assert answer.status_code < 300, answer.text
        for key in ("p13n_not-a-key", b.key.replace("-b-", "-a-")):  # unknown keys are refused
            answer = await http.post(
                "/v1/events", json=_event("x-1", "u-b", "b-i1"), headers={"X-API-Key": key}
            )
            tried += 1
            refused += answer.status_code == 403
            assert answer.status_code == 403

        # Every record A's key caused went to A's topic (202 means Kafka confirmed it): B's got none.
        assert _records(b) == b_records and _records(a) >= a_records + 5
        before = a_processed

        async def a_worker_learned_the_write() -> bool:
            return await processed(a.admin) > before

        await wait_for(a_worker_learned_the_write, 60, "A's worker reading the event A's key sent")
        # B is untouched: its u-b list, preferences, consent, and its copy of the shared user.
        assert await processed(b.admin) == b_processed
        after = await b.admin.read("u-b")
        assert (after.items, after.events_seen) == (b_list.items, b_list.events_seen)
        assert not await b.admin.client.exists(keys.preferences(b.settings.namespace, "u-b"))
        assert not await b.admin.client.exists(keys.consent(b.settings.namespace, "u-b"))
        assert not await b.admin.client.exists(keys.tombstone(b.settings.namespace, "u-b"))
        source, items = await _list_items(http, b, SHARED)
        assert source == "personalized" and all(i.startswith("b-") for i in items)
        source, items = await _list_items(http, a, SHARED)
        assert source != "personalized" and not any(i.startswith("b-") for i in items)
        # And the other way: B's key on A's shared user after A erased it sees B's copy, never a tombstone.
        assert (await http.get(f"/v1/users/{SHARED}/erasure", headers=b.auth)).status_code == 404
        tried += 1
        refused += 1
    print(
        f"\ntenant isolation through the API: {tried} cross-tenant requests tried, {refused} refused "
        f"(403/404), the other {tried - refused} answered from the caller's own tenant only"
    )


async def _denied(call: Any) -> bool:
    try:
        await call
    except NoPermissionError:
        return True
    return False


async def test_a_tenants_redis_user_reaches_its_own_keys_and_none_of_the_others(
    tenants: tuple[Tenant, Tenant], workers: list[Worker]
) -> None:
    checked = 0
    for tenant, worker in zip(tenants, workers, strict=True):
        await until_beating(worker, tenant.admin)
    for mine, theirs in (tenants, tenants[::-1]):
        client = aioredis.Redis.from_url(mine.url, decode_responses=True)
        try:
            others = [
                k
                async for k in theirs.admin.client.scan_iter(
                    match=keys.namespace_pattern(theirs.settings.namespace)
                )
            ]
            own = [
                k
                async for k in mine.admin.client.scan_iter(
                    match=keys.namespace_pattern(mine.settings.namespace)
                )
            ]
            assert others and own
            for key in others:
                assert await _denied(client.dump(key)), key
                assert await _denied(client.delete(key)), key
                assert await _denied(client.set(key, "x")), key
                checked += 1
            assert await _denied(client.get(keys.user_list(theirs.settings.namespace, SHARED)))
            assert await _denied(client.scan(0, match=keys.namespace_pattern(theirs.settings.namespace)))
            assert await _denied(client.scan(0))  # SCAN names any key, whatever the user's patterns
            assert await _denied(client.flushdb())
            for key in own:
                assert await client.dump(key) is not None or not await mine.admin.client.exists(key), key
            probe = keys.user_list(mine.settings.namespace, f"probe-{uuid.uuid4().hex}")
            assert await client.set(probe, "1") and await client.get(probe) == "1"
            assert await client.delete(probe) == 1
        finally:
            await client.aclose()
        print(
            f"\nRedis as tenant {mine.name}: {len(others)} of {theirs.name}'s keys each refused DUMP, SET "
            f"and DEL (NOPERM), SCAN refused, {len(own)} own keys readable, own SET/GET/DEL allowed"
        )
    assert checked > 0
