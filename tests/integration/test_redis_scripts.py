"""The list-replacing script against the real redis-server: what it writes is what readers get."""

from __future__ import annotations

import pytest

from engine.redis_store import RedisStore, UserList
from schemas import keys
from schemas.keys import MetaField
from schemas.reasons import Reason

pytestmark = pytest.mark.integration


async def test_a_list_replaces_the_previous_one_whole_with_its_reasons(store: RedisStore) -> None:
    why = [Reason("item", "i0", ("sequence",)), Reason("popular"), Reason("exploring")]
    old = UserList("script-u1", [("x", 3.0), ("y", 2.0), ("z", 1.0)], "m1", 10, 1, why)
    await store.publish_lists([old, UserList("script-u2", [("a", 0.5)], "m1", 11, 2)])
    got = await store.read("script-u1")
    assert got.items == [("x", 3.0), ("y", 2.0), ("z", 1.0)] and got.model_version == "m1"
    assert got.reasons["x"] == Reason("item", "i0", ("sequence",)) and got.reasons["z"].code == "exploring"
    assert (await store.read("script-u2")).items == [("a", 0.5)]

    # A new list without reasons: no member and no reason of the old one survives.
    updated = await store.publish(
        "script-u1", [("w", 0.123456789)], model_version="m2", last_event_ts=20, events_seen=2
    )
    got = await store.read("script-u1")
    assert got.items == [("w", 0.12346)] and got.reasons == {}
    assert (got.updated_ms, got.last_event_ts, got.events_seen, got.model_version) == (updated, 20, 2, "m2")
    meta = await store.client.hgetall(keys.meta(store.namespace, "script-u1"))
    assert MetaField.REASONS not in meta

    # An empty list: the sorted set goes, the metadata stays.
    await store.publish("script-u1", [], model_version="m2", last_event_ts=21, events_seen=3)
    assert not await store.client.exists(keys.recs(store.namespace, "script-u1"))
    assert (await store.read("script-u1")).events_seen == 3


async def test_a_server_that_lost_its_scripts_gets_the_script_again(store: RedisStore) -> None:
    await store.client.script_flush()
    await store.publish("script-u3", [("q", 1.0)], model_version="m1", last_event_ts=1, events_seen=1)
    assert (await store.read("script-u3")).items == [("q", 1.0)]
