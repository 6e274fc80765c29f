"""Explanations through the real services: events in Kafka -> worker -> list and reasons in one Redis write
-> ``GET /v1/recommendations`` and the SDK, each item with why it is there."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as aioredis

from engine.ingest.kafka import AsyncProducer
from engine.ops.settings import Settings
from engine.sdk.client import AsyncClient
from engine.store.redis_store import RedisStore
from schemas import keys
from schemas.events import Event, ItemRecord, encode
from schemas.reasons import Reason
from schemas.users import PreferencesRecord, encode_user_record
from tests.integration.conftest import Worker, api_server, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

RUN = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def api_url(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with api_server(settings, tmp_path_factory.mktemp("api-reasons") / "api.log") as url:
        yield url


async def test_a_co_consumed_item_arrives_because_the_user_liked_its_partner(
    settings: Settings, ready_worker: Worker, store: RedisStore, api_url: str
) -> None:
    film, sequel = f"{RUN}-film", f"{RUN}-sequel"
    others = [f"{RUN}-i{n}" for n in range(8)]
    fans, user = [f"{RUN}-fan{n}" for n in range(4)], f"{RUN}-user"
    ts = time.time_ns() // 1_000_000
    events: list[Event] = []
    for n, fan in enumerate(fans):  # every fan watches the film, then its sequel
        for k, item in enumerate((film, sequel, others[n])):
            events.append(Event(event_id=f"{fan}-{k}", user_id=fan, item_id=item, type="click", ts=ts + k))
    events.append(Event(event_id=f"{user}-0", user_id=user, item_id=film, type="click", ts=ts + 10))
    async with AsyncProducer(settings.bootstrap) as producer:
        for item in (film, sequel, *others):
            record = ItemRecord(item_id=item, categories=["drama"])
            await producer.send(settings.items_topic, encode(record), item.encode())
        for fan_event in events[:-1]:
            await producer.send(settings.events_topic, encode(fan_event), fan_event.user_id.encode())

        async def fans_learned() -> bool:
            return [(await store.read(fan)).events_seen for fan in fans] == [3] * len(fans)

        await wait_for(fans_learned, 90, "the fans' events learned")
        await producer.send(settings.events_topic, encode(events[-1]), user.encode())

    async def listed() -> bool:
        return (await store.read(user)).events_seen == 1

    await wait_for(listed, 60, "the user's list published")
    recs = await store.read(user, settings.top_n)
    assert recs.items and set(recs.reasons) == {item for item, _ in recs.items}  # every item explained
    assert recs.reasons[sequel].code == "item" and recs.reasons[sequel].anchor == film

    async with httpx.AsyncClient(base_url=api_url) as http:
        body = (await http.get(f"/v1/recommendations/{user}", params={"n": 20})).json()
    by_id = {item["item_id"]: item for item in body["items"]}
    assert body["source"] == "personalized"
    assert by_id[sequel]["reason"] == f"because you liked {film}"
    assert (by_id[sequel]["reason_code"], by_id[sequel]["anchor"]) == ("item", film)
    assert by_id[sequel]["signals"] and set(by_id[sequel]["signals"]) <= {
        "sequence",
        "cooccurrence",
        "transitions",
        "content",
        "popularity",
        "quality",
        "affinity",
        "taste",
    }
    assert all(item["reason_code"] is not None for item in body["items"])

    async with AsyncClient(redis_url=settings.redis, namespace=settings.namespace) as sdk:
        direct = await sdk.recommend(user, n=20)
    assert direct.reasons[sequel] == recs.reasons[sequel]


async def test_a_newcomer_with_only_onboarding_likes_gets_those_categories_first(
    settings: Settings, ready_worker: Worker, store: RedisStore
) -> None:
    """Onboarding through the real services: a preferences record on the events topic -> the worker ->
    a list in Redis led by the liked categories, each category reason naming one of them."""
    kinds = [f"{RUN}-{name}" for name in ("rock", "pop", "jazz", "folk")]
    liked = {kinds[2], kinds[3]}  # the two least popular: popularity alone would not lead with them
    catalog = {f"{kind}-{n}": kind for kind in kinds for n in range(6)}
    fans = [f"{RUN}-listener{n}" for n in range(6)]
    ts = time.time_ns() // 1_000_000
    events = []
    for n, fan in enumerate(fans):
        taken = [f"{kinds[0]}-{k}" for k in range(4)] + [f"{kinds[1]}-{k}" for k in range(3)]
        taken += [f"{kinds[2 + n % 2]}-{n % 3}"]
        for k, item in enumerate(taken):
            events.append(Event(event_id=f"{fan}-{k}", user_id=fan, item_id=item, type="click", ts=ts + k))
    newcomer = f"{RUN}-newcomer"
    likes = PreferencesRecord(
        event_id=f"{newcomer}-p", user_id=newcomer, ts=ts + 50, liked_categories=sorted(liked)
    )
    async with AsyncProducer(settings.bootstrap) as producer:
        for item, kind in catalog.items():
            await producer.send(
                settings.items_topic, encode(ItemRecord(item_id=item, categories=[kind])), item.encode()
            )
        for event in events:
            await producer.send(settings.events_topic, encode(event), event.user_id.encode())

        async def fans_learned() -> bool:
            return [(await store.read(fan)).events_seen for fan in fans] == [8] * len(fans)

        await wait_for(fans_learned, 90, "the listeners' events learned")
        await producer.send(settings.events_topic, encode_user_record(likes), newcomer.encode())

    async def listed() -> bool:
        return bool((await store.read(newcomer, 10)).items)

    await wait_for(listed, 60, "the newcomer's list published")
    recs = await store.read(newcomer, 10)
    top = [item for item, _ in recs.items]
    assert all(catalog.get(item) in liked for item in top[:5]), top
    for item in top:
        reason = recs.reasons.get(item)
        assert reason is None or reason.code != "item"
        assert reason is None or reason.code != "category" or reason.anchor in liked, (item, reason)


async def test_reasons_pair_with_the_stored_order_of_tied_scores(
    settings: Settings, store: RedisStore
) -> None:
    """The stored list is best first, equal scores in the order given (ids that sort differently as
    bytes and as text), and the reasons follow it; checked through the real server."""
    user = f"{RUN}-ties"
    items = [("b", 0.5), ("a", 0.5), ("B", 0.5), ("ab", 0.5), ("z", 0.9), ("é", 0.5)]
    why = [Reason("item", f"for-{item}") for item, _ in items]
    await store.publish(user, items, model_version="m", last_event_ts=1, events_seen=1, reasons=why)
    recs = await store.read(user, 10)
    assert [item for item, _ in recs.items] == ["z", "b", "a", "B", "ab", "é"]
    assert {item: r.anchor for item, r in recs.reasons.items()} == {item: f"for-{item}" for item, _ in items}
    client = aioredis.Redis.from_url(settings.redis)
    try:
        stored = await client.get(keys.user_list(settings.namespace, user))
    finally:
        await client.aclose()
    assert isinstance(stored, bytes)
    reasons = stored.decode().split("\n")[3]
    assert reasons.startswith("I0 I1 I2") and len(reasons) < 120
