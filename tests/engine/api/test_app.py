"""Tests for the HTTP API (`engine.api`) through httpx's ASGI transport, with Redis and Kafka faked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio

from tests.engine.api.fakes import KEY, FakeProducer, FakeStore, make_app, running

EVENT = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "click", "ts": 1_700_000_000_000}
AUTH = {"X-API-Key": KEY}


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(
        recs={"u1": [("i9", 0.9), ("i8", 0.5)]},
        trending={"de-AT": [("t-at", 3.0)], "de": [("t-de", 2.0)], None: [("t-all", 1.0)]},
    )


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest_asyncio.fixture
async def api(store: FakeStore, producer: FakeProducer) -> AsyncIterator[Any]:
    async with running(make_app(store, producer, api_max_body_bytes=2048, api_max_batch=3)) as client:
        yield client


async def test_one_event_is_produced_keyed_by_user(api: Any, producer: FakeProducer) -> None:
    response = await api.post("/v1/events", json=EVENT, headers=AUTH)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "event_ids": ["e1"], "dropped": []}
    [(topic, value, key)] = producer.sent
    assert (topic, key) == ("p13n.unit.events", b"u1")
    assert orjson.loads(value)["event_id"] == "e1"


async def test_a_batch_with_one_invalid_event_writes_nothing_and_lists_every_problem(
    api: Any, producer: FakeProducer
) -> None:
    batch = [EVENT, {**EVENT, "ts": 1_700_000_000, "type": "wave"}, 7]
    response = await api.post("/v1/events", json=batch, headers=AUTH)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "unprocessable_content"
    assert [p["field"] for p in body["problems"]] == ["1.type", "1.ts", "2"]
    assert "seconds" in body["problems"][1]["message"]
    assert producer.sent == []


@pytest.mark.parametrize(
    ("body", "field"),
    [(b"{not json", ""), (b"[]", ""), (b'"text"', ""), (orjson.dumps([EVENT] * 4), "")],
)
async def test_bodies_that_are_not_events_are_422(api: Any, body: bytes, field: str) -> None:
    response = await api.post("/v1/events", content=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == field


async def test_writes_need_a_known_key(api: Any, producer: FakeProducer) -> None:
    assert (await api.post("/v1/events", json=EVENT)).status_code == 401
    response = await api.post("/v1/events", json=EVENT, headers={"X-API-Key": "p13n_wrong"})
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert producer.sent == []


async def test_a_body_over_the_limit_is_413_by_length_or_while_streaming(api: Any) -> None:
    big = orjson.dumps({**EVENT, "item_id": "x" * 3000})
    assert (await api.post("/v1/events", content=big, headers=AUTH)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b" " * 1000

    response = await api.post("/v1/events", content=chunks(), headers=AUTH)
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["message"]


async def test_kafka_failure_is_503_with_retry_after(store: FakeStore) -> None:
    async with running(make_app(store, FakeProducer(fail=True))) as api:
        response = await api.post("/v1/events", json=EVENT, headers=AUTH)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "kafka" in response.json()["message"]


@pytest.mark.parametrize(
    ("user", "query", "source", "first"),
    [
        ("u1", "", "personalized", "i9"),
        ("new", "?locale=de-AT", "trending:de-AT", "t-at"),
        ("new", "?locale=de-DE", "trending:de", "t-de"),
        ("new", "?locale=fr-FR&surface=home", "trending", "t-all"),
        ("new", "", "trending", "t-all"),
    ],
)
async def test_recommendations_fall_back_to_trending(
    api: Any, user: str, query: str, source: str, first: str
) -> None:
    response = await api.get(f"/v1/recommendations/{user}{query}")
    assert response.status_code == 200
    body = response.json()
    assert (body["source"], body["items"][0]["item_id"]) == (source, first)


async def test_no_list_and_no_trending_is_an_empty_answer(producer: FakeProducer) -> None:
    async with running(make_app(FakeStore(), producer)) as api:
        response = await api.get("/v1/recommendations/someone/with/slashes")
    assert response.status_code == 200
    assert response.json() == {
        "user_id": "someone/with/slashes",
        "items": [],
        "source": "none",
        "updated_ms": None,
        "model_version": None,
    }


async def test_n_limits_the_list_and_bad_parameters_are_422(api: Any) -> None:
    body = (await api.get("/v1/recommendations/u1?n=1")).json()
    assert [i["item_id"] for i in body["items"]] == ["i9"]
    response = await api.get("/v1/recommendations/u1?n=0")
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "query.n"


async def test_reads_need_a_key_when_configured(store: FakeStore, producer: FakeProducer) -> None:
    async with running(make_app(store, producer, api_read_auth=True)) as api:
        assert (await api.get("/v1/recommendations/u1")).status_code == 401
        assert (await api.get("/v1/recommendations/u1", headers=AUTH)).status_code == 200


async def test_redis_down_is_503_and_health_says_which(store: FakeStore, producer: FakeProducer) -> None:
    store.client.up = False
    async with running(make_app(store, producer)) as api:
        response = await api.get("/v1/recommendations/u1")
        assert response.status_code == 503
        assert "redis at fake:6379" in response.json()["message"]
        health = await api.get("/v1/health")
    assert health.status_code == 503
    assert health.json() == {
        "status": "unavailable",
        "namespace": "unit",
        "redis": "unavailable",
        "kafka": "ok",
    }


async def test_health_and_metrics(api: Any) -> None:
    health = await api.get("/v1/health")
    assert health.json()["status"] == "ok"
    await api.get("/v1/recommendations/u1")
    await api.get("/nowhere")
    text = (await api.get("/metrics")).text
    assert 'personalize_api_requests_total{method="GET",route="/v1/health",status="200"} 1.0' in text
    assert 'personalize_api_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'personalize_api_recommendations_total{source="personalized"} 1.0' in text


async def test_unknown_routes_and_methods_answer_json_errors(api: Any) -> None:
    missing = await api.get("/v2/events")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    wrong = await api.delete("/v1/events")
    assert wrong.status_code == 405
    assert "POST" in wrong.headers["allow"]


async def test_openapi_documents_every_route_and_the_event_contract(api: Any) -> None:
    doc = (await api.get("/openapi.json")).json()
    assert {"/v1/events", "/v1/recommendations/{user_id}", "/v1/health", "/metrics"} <= set(doc["paths"])
    assert {"/v1/rank", "/v1/reward", "/v1/experiments"} <= set(doc["paths"])
    assert {"Event", "Context", "EventType", "ErrorBody"} <= set(doc["components"]["schemas"])
    body = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][1]["maxItems"] == 3
    assert "APIKeyHeader" in doc["components"]["securitySchemes"]


async def test_delete_on_a_users_preferences_or_consent_is_405_not_an_erasure(
    api: Any, producer: FakeProducer
) -> None:
    for path in ("/v1/users/u1/preferences", "/v1/users/u1/consent"):
        response = await api.delete(path, headers=AUTH)
        assert (response.status_code, response.headers["allow"]) == (405, "GET, PUT")
    assert producer.sent == []  # schemathesis found these erased users "u1/preferences", "u1/consent"


async def test_a_body_fastapi_cannot_read_is_422_like_every_bad_body(api: Any) -> None:
    response = await api.put("/v1/users/u1/consent", content=b"\x08\xff\xfe{", headers=AUTH)
    assert response.status_code == 422 and response.json()["problems"][0]["field"] == "body"


async def test_the_document_links_a_users_calls_and_a_decision_to_its_reward(api: Any) -> None:
    doc = (await api.get("/openapi.json")).json()
    reward = doc["paths"]["/v1/rank"]["post"]["responses"]["200"]["links"]["Reward"]
    assert reward == {
        "operationRef": "#/paths/~1v1~1reward/post",
        "requestBody": {"decision_id": "$response.body#/decision_id", "reward": 1},
    }
    erase = doc["paths"]["/v1/users/{user_id}/consent"]["put"]["responses"]["200"]["links"]["Erase"]
    assert erase["parameters"] == {"user_id": "$request.path.user_id"}
