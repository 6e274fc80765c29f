"""Tests for the SDK (`engine.sdk.client`) against the API app over httpx's ASGI transport, services faked."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from engine.sdk.client import AsyncClient
from engine.serving.recommend import Served
from schemas.errors import ConfigError, InvalidEventError, RequestRejectedError, ServiceUnavailableError
from schemas.events import Event
from tests.engine.api.fakes import KEY, FakeProducer, FakeStore, make_app

EVENT = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "view", "ts": 1_700_000_000_000}


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest_asyncio.fixture
async def transport(producer: FakeProducer) -> AsyncIterator[httpx.ASGITransport]:
    app = make_app(FakeStore(recs={"a/b": [("i1", 1.0)]}, trending={None: [("t", 1.0)]}), producer)
    async with app.router.lifespan_context(app):
        yield httpx.ASGITransport(app=app)


async def test_track_and_track_many(transport: httpx.ASGITransport, producer: FakeProducer) -> None:
    async with AsyncClient("http://api", api_key=KEY, transport=transport) as client:
        await client.track(EVENT)
        sent = await client.track_many([Event.model_validate({**EVENT, "event_id": "e2"}), EVENT])
    assert sent == 2
    assert [key for _, _, key in producer.sent] == [b"u1", b"u1", b"u1"]


async def test_invalid_events_fail_before_any_request(
    transport: httpx.ASGITransport, producer: FakeProducer
) -> None:
    async with AsyncClient("http://api", api_key=KEY, transport=transport) as client:
        with pytest.raises(InvalidEventError) as info:
            await client.track_many([EVENT, {**EVENT, "type": "wave"}])
    assert [p.field for p in info.value.problems] == ["1.type"]
    assert producer.sent == []


async def test_http_errors_become_the_engine_errors(transport: httpx.ASGITransport) -> None:
    async with AsyncClient("http://api", api_key="p13n_wrong", transport=transport) as client:
        with pytest.raises(RequestRejectedError) as info:
            await client.track(EVENT)
    assert info.value.status == 403
    app = make_app(FakeStore(), FakeProducer(fail=True))
    async with app.router.lifespan_context(app):
        failing = httpx.ASGITransport(app=app)
        async with AsyncClient("http://api", api_key=KEY, transport=failing) as client:
            with pytest.raises(ServiceUnavailableError):
                await client.track(EVENT)


async def test_recommend_over_http_quotes_the_user_id(transport: httpx.ASGITransport) -> None:
    async with AsyncClient("http://api", transport=transport) as client:
        served = await client.recommend("a/b", n=5, surface="home", locale="en")
        unknown = await client.recommend("who?", n=5)
    assert served == Served("a/b", [("i1", 1.0)], "personalized", 1, "m1")
    assert (unknown.user_id, unknown.source) == ("who?", "trending")


async def test_a_client_needs_somewhere_to_talk_to() -> None:
    with pytest.raises(ConfigError):
        AsyncClient()
    async with AsyncClient(redis_url="redis://127.0.0.1:1/0") as client:
        with pytest.raises(ConfigError, match="base_url"):
            await client.track(EVENT)
