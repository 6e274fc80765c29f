"""Tenants: key entries naming a namespace, the settings that go with them, and one API routing each
request to its key's tenant (Redis and Kafka faked; the real services: tests/integration/test_tenants.py)."""

from __future__ import annotations

from typing import Any, cast

import orjson
import pydantic
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from engine.api import create_api, hash_key
from engine.api.auth import Keyring, Scope, key_entry, parse_entry
from engine.ingest.kafka import AsyncProducer
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas.errors import RequestRejectedError
from tests.engine.api.fakes import KEY, FakeProducer, FakeStore, running, settings

SHOP_KEY = "p13n_shop-key"
SHOP_ENTRY = key_entry("app", list(Scope), SHOP_KEY, tenant="shop")
URLS = "shop=redis://p13n-shop:pw@127.0.0.1:16379/0"


def test_an_entry_names_its_tenant_and_old_entries_name_none() -> None:
    assert SHOP_ENTRY.startswith("shop:app:events+read+admin:")
    key = parse_entry(SHOP_ENTRY)
    assert (key.tenant, key.name, key.label) == ("shop", "app", "shop/app")
    assert parse_entry(key_entry("app", [Scope.READ], KEY)).tenant is None
    assert parse_entry(hash_key(KEY)).tenant is None


def test_two_tenants_keys_of_the_same_name_have_their_own_rate_limit() -> None:
    entries = [key_entry("app", [Scope.READ], "k1", tenant="a"), key_entry("app", [Scope.READ], "k2")]
    ring = Keyring(entries, rate=1.0, burst=1, clock=lambda: 0.0)
    assert ring.check("k1", Scope.READ).tenant == "a"
    assert ring.check("k2", Scope.READ).tenant is None  # not the first key's bucket
    with pytest.raises(RequestRejectedError):
        ring.check("k1", Scope.READ)


def test_a_tenant_named_by_a_key_needs_its_redis_url_and_urls_must_parse() -> None:
    with pytest.raises(pydantic.ValidationError, match="tenant.s. shop without a Redis URL"):
        Settings(namespace="unit", api_key_hashes=(SHOP_ENTRY,))
    with pytest.raises(pydantic.ValidationError, match="entry 2 is not") as caught:
        Settings(tenant_redis_urls=URLS + ",bad=http://secret-pw@h")
    assert "secret-pw" not in str(caught.value)
    with pytest.raises(pydantic.ValidationError, match="named twice"):
        Settings(tenant_redis_urls=URLS + "," + URLS)
    settings = Settings(namespace="unit", api_key_hashes=(SHOP_ENTRY,), tenant_redis_urls=URLS)
    assert settings.tenants == {"unit", "shop"}
    assert settings.redis_of("shop") == URLS.split("=", 1)[1]
    assert settings.redis_of("unit") == settings.redis
    assert "pw@" not in repr(settings)
    # A key naming the API's own namespace needs no URL: it is an ordinary key.
    assert Settings(namespace="shop", api_key_hashes=(SHOP_ENTRY,)).tenants == {"shop"}


class ClosingStore(FakeStore):
    closed = False

    async def close(self) -> None:
        self.closed = True


def stores() -> tuple[FakeStore, ClosingStore]:
    """The API's own namespace's store and the shop tenant's: the same user id in both, different lists."""
    home = FakeStore(recs={"u1": [("home-item", 1.0)]}, trending={None: [("home-trend", 1.0)]})
    shop = ClosingStore(recs={"u1": [("shop-item", 1.0)]}, trending={None: [("shop-trend", 1.0)]})
    return home, shop


def make_tenant_app(
    home: FakeStore, shop: FakeStore, producer: FakeProducer, opened: list[str], **overrides: Any
) -> FastAPI:
    async def open_store(tenant: Settings) -> RedisStore:
        opened.append(tenant.namespace)
        assert tenant.namespace == "shop" and tenant.events_topic == "p13n.shop.events"
        return cast(RedisStore, shop)

    entries = {"api_key_hashes": (hash_key(KEY), SHOP_ENTRY), "tenant_redis_urls": URLS}
    return create_api(
        settings(**entries, **overrides),
        CollectorRegistry(),
        store=cast(RedisStore, home),
        producer=cast(AsyncProducer, producer),
        open_store=open_store,
    )


@pytest.mark.parametrize("read_auth", [False, True])
@pytest.mark.parametrize("query", ["", "?n=05"])  # the lean path, then (n=05) the FastAPI route
async def test_each_key_reads_its_own_tenant_and_no_key_the_apis_own(read_auth: bool, query: str) -> None:
    (home, shop), producer = stores(), FakeProducer()
    opened: list[str] = []
    app = make_tenant_app(home, shop, producer, opened, api_read_auth=read_auth)
    async with running(app) as api:

        async def items(key: str | None) -> list[str]:
            headers = {"X-API-Key": key} if key else {}
            answer = await api.get(f"/v1/recommendations/u1{query}", headers=headers)
            assert answer.status_code == 200, answer.text
            return [entry["item_id"] for entry in answer.json()["items"]]

        assert await items(SHOP_KEY) == ["shop-item"]
        assert await items(KEY) == ["home-item"]
        if read_auth:
            assert (await api.get(f"/v1/recommendations/u1{query}")).status_code == 401
            assert (await api.get("/v1/recommendations/u1", headers={"X-API-Key": "nope"})).status_code == 403
        else:
            assert await items(None) == ["home-item"]
            assert await items("p13n_not-a-configured-key") == ["home-item"]
        health = (await api.get("/v1/health", headers={"X-API-Key": SHOP_KEY})).json()
        assert health["namespace"] == "shop"
        assert (await api.get("/v1/health")).json()["namespace"] == "unit"
    assert opened == ["shop"]  # opened once, at its first request
    assert shop.closed  # and closed with the app


async def test_writes_and_erasures_reach_only_the_keys_tenant() -> None:
    (home, shop), producer = stores(), FakeProducer()
    opened: list[str] = []
    home.prefs["u1"] = {"muted_category:a": "1"}
    shop.prefs["u1"] = {"muted_category:b": "1"}
    app = make_tenant_app(home, shop, producer, opened)
    async with running(app) as api:
        event = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "view", "ts": 1_700_000_000_000}
        assert (await api.post("/v1/events", json=event, headers={"X-API-Key": SHOP_KEY})).status_code == 202
        assert (await api.post("/v1/events", json=event, headers={"X-API-Key": KEY})).status_code == 202
        erased = await api.delete("/v1/users/u1", headers={"X-API-Key": SHOP_KEY})
        assert erased.status_code == 202 and erased.json()["deleted_keys"] == 2
    topics = [topic for topic, _, _ in producer.sent]
    assert topics == ["p13n.shop.events", "p13n.unit.events", "p13n.shop.events"]
    assert orjson.loads(producer.sent[2][1])["type"] == "erasure"
    assert "u1" not in shop.recs and "u1" not in shop.prefs
    assert home.recs["u1"] == [("home-item", 1.0)] and home.prefs["u1"] == {"muted_category:a": "1"}
