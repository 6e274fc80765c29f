"""The preferences and erasure routes, and recommendations shaped by rules (Redis and Kafka faked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import orjson

from engine.api import hash_key
from engine.store import erasures
from engine.store.item_meta import ItemMeta
from schemas import keys
from tests.engine.api.fakes import KEY, FakeProducer, FakeStore, make_app, running

AUTH = {"X-API-Key": KEY}
RULES = """version: 1
surfaces:
  home:
    filter: {deny: {items: [d1]}}
    boost: [{categories: [sale], multiply: 10}]
    pin: [{item: p1, position: 2}]
"""


def store_with_items() -> FakeStore:
    return FakeStore(
        recs={"u1": [("a1", 0.9), ("d1", 0.8), ("b1", 0.5), ("s1", 0.1)]},
        trending={None: [("t1", 3.0), ("a1", 2.0)]},
        items={
            "a1": ItemMeta(frozenset({"a"})),
            "b1": ItemMeta(frozenset({"b"})),
            "s1": ItemMeta(frozenset({"sale"})),
            "p1": ItemMeta(frozenset({"p"})),
            "t1": ItemMeta(frozenset({"t"})),
        },
    )


async def items_of(api: Any, user: str, **params: Any) -> tuple[str, list[str]]:
    body = (await api.get(f"/v1/recommendations/{user}", params=params)).json()
    return body["source"], [i["item_id"] for i in body["items"]]


async def test_surface_rules_filter_boost_and_pin(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    app = make_app(store_with_items(), FakeProducer(), rules_file=path, diversity_strength=0.0)
    async with running(app) as api:
        assert await items_of(api, "u1", surface="home", n=3) == ("personalized", ["s1", "p1", "a1"])
        assert await items_of(api, "u1", n=3) == ("personalized", ["a1", "d1", "b1"])
        metrics = (await api.get("/metrics")).text
    assert "personalize_api_list_diversity_count 2.0" in metrics


async def test_mute_hides_a_category_on_the_next_read_and_reset_falls_back_to_trending() -> None:
    store, producer = store_with_items(), FakeProducer()
    async with running(make_app(store, producer)) as api:
        put = await api.put("/v1/users/u1/preferences", json={"muted_categories": ["a"]}, headers=AUTH)
        assert put.status_code == 200, put.text
        assert put.json()["preferences"]["muted_categories"] == ["a"]
        assert "a1" not in (await items_of(api, "u1"))[1]
        got = await api.get("/v1/users/u1/preferences")
        assert got.json()["preferences"]["muted_categories"] == ["a"]
        reset = await api.put("/v1/users/u1/preferences", json={"reset": True}, headers=AUTH)
        assert reset.json()["preferences"]["muted_categories"] == []
        assert await items_of(api, "u1") == ("trending", ["t1", "a1"])
    [(topic, value, key), (_, reset_value, _)] = producer.sent
    assert (topic, key) == ("p13n.unit.events", b"u1")
    record = orjson.loads(value)
    assert record["type"] == "preferences" and record["muted_categories"] == ["a"]
    assert record["event_id"] == put.json()["event_id"]
    assert orjson.loads(reset_value)["reset"] is True
    assert store.fences == {"u1": 1}  # the reset record's offset: older lists are refused


async def test_preference_writes_need_a_key_and_a_change() -> None:
    store, producer = store_with_items(), FakeProducer()
    async with running(make_app(store, producer)) as api:
        body = {"hidden_items": ["a1"]}
        assert (await api.put("/v1/users/u1/preferences", json=body)).status_code == 401
        empty = await api.put("/v1/users/u1/preferences", json={}, headers=AUTH)
        assert empty.status_code == 422 and "changes nothing" in empty.json()["message"] + str(empty.json())
        bad = await api.put("/v1/users/u1/preferences", json={"muted": ["a"]}, headers=AUTH)
        assert bad.status_code == 422
    assert producer.sent == [] and store.prefs == {}


async def test_a_kafka_failure_is_503_after_redis_changed() -> None:
    store = store_with_items()
    async with running(make_app(store, FakeProducer(fail=True))) as api:
        put = await api.put("/v1/users/u1/preferences", json={"hidden_items": ["a1"]}, headers=AUTH)
    assert put.status_code == 503 and put.headers["retry-after"] == "1"
    assert "hidden_item:a1" in store.prefs["u1"]


async def test_erasure_removes_the_user_at_once_and_produces_a_record() -> None:
    store, producer = store_with_items(), FakeProducer()
    store.prefs["u1/x"] = {"muted_category:a": "1"}
    store.recs["u1/x"] = [("a1", 1.0)]
    async with running(make_app(store, producer)) as api:
        assert (await api.delete("/v1/users/u1/x")).status_code == 401
        erased = await api.delete("/v1/users/u1/x", headers=AUTH)
        assert erased.status_code == 202
        assert erased.json()["deleted_keys"] == 2
        assert (await items_of(api, "u1/x"))[0] == "trending"
    [(_, value, key)] = producer.sent
    assert key == b"u1/x" and orjson.loads(value)["type"] == "erasure"
    assert store.fences == {"u1/x": 0}  # the erasure record's offset


async def test_an_erasure_is_pending_until_the_owner_and_every_worker_beating_then_finish() -> None:
    store = store_with_items()
    store.workers = {"w-1": {}, "w-2": {}, "w-3": {}}
    client = cast(Any, store.client)
    async with running(make_app(store, FakeProducer())) as api:
        assert (await api.get("/v1/users/u1/erasure", headers=AUTH)).status_code == 404
        assert (await api.get("/v1/users/u1/erasure")).status_code == 401
        erased = (await api.delete("/v1/users/u1", headers=AUTH)).json()
        erasure = [("u1", erased["event_id"])]

        async def status() -> dict[str, Any]:
            return cast(dict[str, Any], (await api.get("/v1/users/u1/erasure", headers=AUTH)).json())

        pending = await status()
        assert pending["status"] == "pending" and pending["event_id"] == erased["event_id"]
        assert pending["by"] == f"key-{hash_key(KEY)[:8]}" and pending["done_ms"] is None
        assert pending["waiting"] == ["w-1", "w-2", "w-3"] and pending["removed"][0] == "user-keys:1"
        # The owner forgot the user, and two workers scrubbed: pending while w-3 beats.
        await erasures.forgotten(client, "unit", erasure, worker="w-1", now_ms=10**13)
        await erasures.scrubbed(client, "unit", erasure, worker="w-1", removed="model", now_ms=10**13 + 5)
        await erasures.scrubbed(client, "unit", erasure, worker="w-2", removed="model", now_ms=10**13 + 9)
        still = await status()
        assert (
            still["status"] == "pending" and still["waiting"] == ["w-3"] and still["forgotten_ms"] == 10**13
        )
        # w-3 stops beating without scrubbing: done, and the answer says it is gone.
        del store.workers["w-3"]
        done = await status()
    assert done["status"] == "done" and done["done_ms"] == 10**13 + 9 and done["gone"] == ["w-3"]
    assert done["workers"] == {"w-1": 10**13 + 5, "w-2": 10**13 + 9}
    audit = await store.client.xrange(keys.erasure_audit("unit"))
    assert [fields["step"] for _, fields in audit] == ["requested", "forgotten", "scrubbed", "scrubbed"]
    assert all("u1" != value for _, fields in audit for value in fields.values())


async def test_an_erasure_is_not_done_before_the_owner_forgot_the_user() -> None:
    store = store_with_items()
    async with running(make_app(store, FakeProducer())) as api:
        erased = (await api.delete("/v1/users/u1", headers=AUTH)).json()
        erasure = [("u1", erased["event_id"])]
        client = cast(Any, store.client)
        await erasures.scrubbed(client, "unit", erasure, worker="w-2", removed="model", now_ms=10**13)
        assert (await api.get("/v1/users/u1/erasure", headers=AUTH)).json()["status"] == "pending"
        await erasures.forgotten(client, "unit", erasure, worker="w-1", now_ms=10**13 + 1)
        # No worker beat at the request: the owner's step and one scrub complete it.
        assert (await api.get("/v1/users/u1/erasure", headers=AUTH)).json()["done_ms"] == 10**13 + 1


async def test_an_erasure_leaves_every_experiment_set() -> None:
    store = store_with_items()
    await store.client.sadd("p13n:v1:unit:experiment-users:home:a", "u1", "u2")
    variants = '[{"name": "a", "weight": 1}, {"name": "b", "weight": 1}]'
    doc = f'{{"experiments": [{{"name": "home", "variants": {variants}}}]}}'
    async with running(make_app(store, FakeProducer(), experiments=doc)) as api:
        erased = await api.delete("/v1/users/u1", headers=AUTH)
        status = (await api.get("/v1/users/u1/erasure", headers=AUTH)).json()
    assert erased.status_code == 202 and status["removed"][1] == "experiment-sets:1"
    assert store.client.sets["p13n:v1:unit:experiment-users:home:a"] == {"u2"}


async def test_an_erasure_kafka_does_not_confirm_still_deletes_at_once_and_is_503() -> None:
    store = store_with_items()
    async with running(make_app(store, FakeProducer(fail=True))) as api:
        erased = await api.delete("/v1/users/u1", headers=AUTH)
        assert erased.status_code == 503
        assert (await items_of(api, "u1"))[0] == "trending"
    assert store.fences == {}  # no record, no position to fence at
