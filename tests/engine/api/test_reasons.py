"""Reasons on ``GET /v1/recommendations`` and in the SDK over HTTP, and their OpenAPI description."""

from __future__ import annotations

import httpx

from engine.api.bodies import RecommendationsBody
from engine.sdk.client import AsyncClient
from engine.store.item_meta import ItemMeta
from schemas.reasons import Reason
from tests.engine.api.fakes import FakeProducer, FakeStore, make_app, running

LIKED = Reason("item", "i0", ("cooccurrence", "sequence"))


def _store() -> FakeStore:
    return FakeStore(
        recs={"u1": [("a1", 0.9), ("b1", 0.5), ("x1", 0.2)]},
        reasons={"u1": {"a1": LIKED, "b1": Reason("category", "Comedy", ("affinity", "quality"))}},
        trending={"en-GB": [("t1", 3.0)]},
        items={"a1": ItemMeta(frozenset({"drama"})), "b1": ItemMeta(frozenset({"Comedy"}))},
    )


async def test_each_item_has_its_reason_and_the_body_matches_the_documented_schema() -> None:
    async with running(make_app(_store(), FakeProducer(), diversity_strength=0.0)) as api:
        body = (await api.get("/v1/recommendations/u1")).json()
        fallback = (await api.get("/v1/recommendations/new?locale=en-GB")).json()
    RecommendationsBody.model_validate(body)
    assert body["items"] == [
        {
            "item_id": "a1",
            "score": 0.9,
            "reason": "because you liked i0",
            "reason_code": "item",
            "anchor": "i0",
            "signals": ["cooccurrence", "sequence"],
        },
        {
            "item_id": "b1",
            "score": 0.5,
            "reason": "because you like Comedy",
            "reason_code": "category",
            "anchor": "Comedy",
            "signals": ["affinity", "quality"],
        },
        {"item_id": "x1", "score": 0.2, "reason": None, "reason_code": None, "anchor": None, "signals": []},
    ]
    RecommendationsBody.model_validate(fallback)
    [trending] = fallback["items"]
    assert (trending["reason"], trending["reason_code"], trending["anchor"]) == (
        "popular in your region",
        "trending",
        "en-GB",
    )


async def test_the_openapi_document_describes_the_reason_fields() -> None:
    async with running(make_app(_store(), FakeProducer())) as api:
        doc = (await api.get("/openapi.json")).json()
    item = doc["components"]["schemas"]["ItemScore"]
    assert {"reason", "reason_code", "anchor", "signals"} <= set(item["required"])
    assert item["properties"]["signals"]["type"] == "array"
    assert "similar_users" in item["properties"]["reason_code"]["description"]
    assert "pinned" in item["properties"]["reason_code"]["description"]


async def test_the_sdk_over_http_exposes_the_reasons() -> None:
    app = make_app(_store(), FakeProducer(), diversity_strength=0.0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://api", transport=transport) as client:
            served = await client.recommend("u1", n=3)
    assert served.reasons["a1"] == LIKED and served.reasons["a1"].text == "because you liked i0"
    assert served.reasons["b1"].code == "category" and "x1" not in served.reasons
