"""The HTTP API and the SDK against the live stack: a `personalize api` process on a free port.

Events posted must be in the namespace's Kafka topic; recommendations come from what `RedisStore` wrote;
schemathesis fuzzes the running API from its own OpenAPI document and must find no server error.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from engine.api import hash_key
from engine.ops.settings import Settings
from engine.sdk.client import AsyncClient, Client
from engine.store.redis_store import RedisStore
from tests.integration.conftest import api_server, read_until

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KEY = f"p13n_it-{uuid.uuid4().hex}"
AUTH = {"X-API-Key": KEY}
MAX_BODY = 65_536


def _event(event_id: str, user_id: str, **extra: Any) -> dict[str, Any]:
    ts = time.time_ns() // 1_000_000
    return {"event_id": event_id, "user_id": user_id, "item_id": "i1", "type": "click", "ts": ts, **extra}


@pytest.fixture(scope="module")
def api_url(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a `personalize api` subprocess serving the session's namespace."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    with api_server(
        settings, log, PERSONALIZE_API_KEY_HASHES=hash_key(KEY), PERSONALIZE_API_MAX_BODY_BYTES=str(MAX_BODY)
    ) as url:
        yield url


def _consume(
    settings: Settings, wanted: set[str], timeout_s: float = 60
) -> dict[str, tuple[bytes | None, Any]]:
    """Read the events topic from the start until every ``wanted`` event_id was seen: id -> (key, event)."""
    seen: dict[str, tuple[bytes | None, Any]] = {}

    def done(records: list[tuple[bytes | None, bytes]]) -> bool:
        # Called after each poll, which adds at most one record: the last is the only new one.
        if records:
            key, value = records[-1]
            event = orjson.loads(value)
            seen[event["event_id"]] = (key, event)
        return wanted <= seen.keys()

    read_until(settings, settings.events_topic, done, timeout_s)
    return seen


async def test_posted_events_land_in_the_topic_keyed_by_user(api_url: str, settings: Settings) -> None:
    run = uuid.uuid4().hex[:8]
    batch = [_event(f"{run}-{n}", f"api-user-{n}", value=2.0) for n in range(3)]
    async with httpx.AsyncClient(base_url=api_url) as http:
        one = await http.post("/v1/events", json=_event(f"{run}-single", "api-user-0"), headers=AUTH)
        many = await http.post("/v1/events", json=batch, headers=AUTH)
    assert one.status_code == 202, one.text
    assert many.json() == {"accepted": 3, "event_ids": [e["event_id"] for e in batch], "dropped": []}
    wanted = {e["event_id"] for e in batch} | {f"{run}-single"}
    seen = await asyncio.to_thread(_consume, settings, wanted)
    assert wanted <= seen.keys()
    for n in range(3):
        key, event = seen[f"{run}-{n}"]
        assert key == f"api-user-{n}".encode() and event["value"] == 2.0


async def test_a_batch_with_an_invalid_event_writes_none_of_it(api_url: str, settings: Settings) -> None:
    run = uuid.uuid4().hex[:8]
    good = _event(f"{run}-good", "api-atomic")
    async with httpx.AsyncClient(base_url=api_url) as http:
        rejected = await http.post(
            "/v1/events", json=[good, _event(f"{run}-bad", "api-atomic", ts=1_700_000_000)], headers=AUTH
        )
        sentinel = await http.post("/v1/events", json=_event(f"{run}-after", "api-atomic"), headers=AUTH)
    assert rejected.status_code == 422
    assert rejected.json()["problems"] == [
        {
            "field": "1.ts",
            "message": "1700000000 is before 1973 in epoch milliseconds; was it sent in seconds?",
        }
    ]
    assert sentinel.status_code == 202
    # Same user, so same partition: had the good event been written, it would come before the sentinel.
    seen = await asyncio.to_thread(_consume, settings, {f"{run}-after"})
    assert f"{run}-after" in seen and f"{run}-good" not in seen


async def test_writes_need_a_key_and_bodies_are_limited(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:
        assert (await http.post("/v1/events", json=_event("x", "u"))).status_code == 401
        wrong = await http.post("/v1/events", json=_event("x", "u"), headers={"X-API-Key": "p13n_nope"})
        assert wrong.status_code == 403
        big = await http.post("/v1/events", content=b" " * (MAX_BODY + 1), headers=AUTH)
        assert big.status_code == 413
        assert big.json()["error"] == "content_too_large"


async def test_recommendations_read_what_the_store_published(api_url: str, store: RedisStore) -> None:
    await store.publish(
        "api-known", [("i3", 0.3), ("i1", 0.9)], model_version="m-it", last_event_ts=1, events_seen=2
    )
    async with httpx.AsyncClient(base_url=api_url) as http:
        body = (await http.get("/v1/recommendations/api-known", params={"n": 5, "surface": "home"})).json()
    assert body["source"] == "personalized" and body["model_version"] == "m-it"
    none: dict[str, object] = {
        "reason": None,
        "reason_code": None,
        "anchor": None,
        "signals": [],
    }  # published without reasons
    assert body["items"] == [{"item_id": "i1", "score": 0.9, **none}, {"item_id": "i3", "score": 0.3, **none}]


async def test_unknown_users_get_locale_then_global_trending_then_nothing(
    api_url: str, store: RedisStore
) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:

        async def source(locale: str | None) -> tuple[str, list[str]]:
            params = {"locale": locale} if locale else {}
            body = (await http.get("/v1/recommendations/api-stranger", params=params)).json()
            return body["source"], [i["item_id"] for i in body["items"]]

        assert await source("pt-BR") == ("none", [])
        await store.publish_trending([("g1", 5.0), ("g2", 4.0)])
        await store.publish_trending([("pt1", 1.0)], locale="pt")
        await store.publish_trending([("br1", 9.0)], locale="pt-BR")
        assert await source("pt-BR") == ("trending:pt-BR", ["br1"])
        assert await source("pt-PT") == ("trending:pt", ["pt1"])
        assert await source("ja-JP") == ("trending", ["g1", "g2"])
        assert await source(None) == ("trending", ["g1", "g2"])


async def test_health_and_metrics(api_url: str, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=api_url) as http:
        health = await http.get("/v1/health")
        metrics = await http.get("/metrics")
    assert health.json() == {"status": "ok", "namespace": settings.namespace, "redis": "ok", "kafka": "ok"}
    assert 'personalize_api_requests_total{method="GET",route="/v1/health",status="200"}' in metrics.text
    assert f'personalize_api_info{{namespace="{settings.namespace}"}} 1.0' in metrics.text


async def test_sdk_sends_over_http_and_reads_redis_directly(
    api_url: str, settings: Settings, store: RedisStore
) -> None:
    await store.publish("sdk-user", [("i7", 1.0)], model_version="m-sdk", last_event_ts=1, events_seen=1)
    run = uuid.uuid4().hex[:8]
    async with AsyncClient(
        api_url, api_key=KEY, redis_url=settings.redis, namespace=settings.namespace
    ) as sdk:
        await sdk.track(_event(f"{run}-sdk", "sdk-user"))
        direct = await sdk.recommend("sdk-user", n=3)

    def sync_usage() -> tuple[int, list[tuple[str, float]]]:
        with Client(api_url, api_key=KEY) as client:
            sent = client.track_many([_event(f"{run}-sync", "sdk-user")])
            return sent, client.recommend("sdk-user", n=3).items

    sent, over_http = await asyncio.to_thread(sync_usage)
    assert (direct.source, direct.items) == ("personalized", [("i7", 1.0)])
    assert (sent, over_http) == (1, [("i7", 1.0)])
    seen = await asyncio.to_thread(_consume, settings, {f"{run}-sdk", f"{run}-sync"})
    assert {f"{run}-sdk", f"{run}-sync"} <= seen.keys()


async def test_schemathesis_finds_no_server_error(api_url: str, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [
        str(schemathesis),
        "run",
        f"{api_url}/openapi.json",
        "--header",
        f"X-API-Key: {KEY}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25",
        "--workers",
        "1",
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--no-color",
    ]
    out = await asyncio.to_thread(
        subprocess.run, command, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "No issues found" in out.stdout or "passed" in out.stdout
