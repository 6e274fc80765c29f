"""`engine.serving.recommend.recommend` over `RedisStore` with the in-memory fake Redis: reasons written
with a list come back with it, survive serve-time rules, and pins, boosts and the trending fallback
get their own."""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis

from engine.serving.recommend import ServingPolicy, recommend
from engine.serving.rules import Boost, Pin, RuleSet, SurfaceRules
from engine.store.redis_store import RedisStore
from schemas.events import ItemRecord
from schemas.reasons import Reason
from tests.engine.fake_redis import FakeRedis

LIKED = Reason("item", "i0", ("cooccurrence", "sequence"))
JAZZ = Reason("category", "jazz", ("affinity",))
NEW = Reason("exploring")


async def _store() -> RedisStore:
    store = RedisStore(cast(aioredis.Redis, FakeRedis()), "unit")
    await store.publish_items(
        [
            ItemRecord(item_id="a", categories=["jazz"]),
            ItemRecord(item_id="b", categories=["jazz"]),
            ItemRecord(item_id="c", categories=["rock"]),
            ItemRecord(item_id="sale", categories=["sale"]),
            ItemRecord(item_id="p", categories=["promo"]),
        ]
    )
    # Ties at 0.5: the list in Redis reads b, c (equal scores keep the order given), a first.
    items = [("b", 0.5), ("a", 0.9), ("c", 0.5), ("sale", 0.1)]
    await store.publish(
        "u1", items, model_version="m1", last_event_ts=1, events_seen=3, reasons=[JAZZ, LIKED, NEW, None]
    )
    return store


def _why(served: Any) -> dict[str, str | None]:
    return {item["item_id"]: item["reason_code"] for item in served.to_json()["items"]}


async def test_each_item_keeps_the_reason_stored_with_it() -> None:
    served = await recommend(await _store(), "u1", 4, policy=ServingPolicy(strength=0.0))
    assert served.source == "personalized"
    assert served.items == [("a", 0.9), ("b", 0.5), ("c", 0.5), ("sale", 0.1)]
    assert served.reasons == {"a": LIKED, "b": JAZZ, "c": NEW}
    first = served.to_json()["items"][0]
    assert first == {
        "item_id": "a",
        "score": 0.9,
        "reason": "because you liked i0",
        "reason_code": "item",
        "anchor": "i0",
        "signals": ["cooccurrence", "sequence"],
    }
    assert served.to_json()["items"][3]["reason"] is None  # published without one


async def test_reordering_keeps_reasons_and_pins_and_boosts_get_their_own() -> None:
    home = SurfaceRules(
        boost=(Boost(items=("c",), multiply=3.0), Boost(items=("b",), multiply=0.5)),
        pin=(Pin(item="p", position=1),),
    )
    policy = ServingPolicy(RuleSet(version=1, default=home), strength=0.0)
    served = await recommend(await _store(), "u1", 4, policy=policy)
    assert [item for item, _ in served.items] == ["p", "c", "a", "b"]
    assert served.reasons == {
        "p": Reason("pinned"),
        "c": Reason("promoted"),  # raised by a boost; its own signals (none for exploring) kept
        "a": LIKED,
        "b": JAZZ,  # lowered by a boost: still the model's reason
    }


async def test_the_trending_fallback_says_where_it_is_popular() -> None:
    store = await _store()
    await store.publish_trending([("t1", 2.0)], locale="pt-BR")
    await store.publish_trending([("t2", 2.0)])
    regional = await recommend(store, "stranger", 3, "pt-BR")
    everywhere = await recommend(store, "stranger", 3, "ja-JP")
    assert (regional.source, regional.reasons) == ("trending:pt-BR", {"t1": Reason("trending", "pt-BR")})
    assert regional.to_json()["items"][0]["reason"] == "popular in your region"
    assert everywhere.reasons == {"t2": Reason("trending")}


async def test_a_list_published_without_reasons_drops_the_previous_ones() -> None:
    store = await _store()
    await store.publish("u1", [("a", 0.9)], model_version="m2", last_event_ts=2, events_seen=4)
    served = await recommend(store, "u1", 4, policy=ServingPolicy(strength=0.0))
    assert served.items == [("a", 0.9)] and served.reasons == {}
    assert _why(served) == {"a": None}
