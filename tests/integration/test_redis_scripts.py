"""The store's scripts against the real redis-server: reads give the same answers as the plain commands,
the list-replacing script writes what readers get and refuses lists older than the stored one or than
the user's tombstone, and policy snapshots are published by compare-and-set; a server that lost its
script cache is given the scripts again."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any, cast

import pytest

from engine.store import scripts as redis_scripts
from engine.store.item_meta import FIELDS, from_hash
from engine.store.policy_store import PolicyStore
from engine.store.redis_store import Recommendations, RedisStore, UserList
from schemas import keys
from schemas.events import ItemRecord
from schemas.keys import PolicyField
from schemas.reasons import Reason

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

_META: dict[str, Any] = {"model_version": "m1", "last_event_ts": 1, "events_seen": 1}


async def test_a_users_list_meta_and_preferences_read_by_script_match_the_plain_reads(
    store: RedisStore,
) -> None:
    user = f"scripts-{uuid.uuid4().hex[:8]}"
    items = [("b", 0.5), ("a", 0.912345678), ("c", 0.5), ("d", 1e-9), ("e", 3.0)]
    why = [Reason("exploring"), Reason("item", "i0", ("sequence",)), None, Reason("popular"), None]
    await store.publish(user, items, model_version="m1", last_event_ts=17, events_seen=5, reasons=why)
    await store.update_preferences(user, {"muted_category:jazz": "1", "hidden_item:x:y": "2"}, [])
    for n in (1, 3, 5, 50):
        recs, prefs = await store.read_with_preferences(user, n)
        assert recs == await store.read(user, n)
        assert prefs == await store.read_preferences(user)
    assert prefs.hidden_items == frozenset({"x:y"}) and len(recs.items) == 5 and recs.events_seen == 5
    nobody = f"nobody-{uuid.uuid4().hex}"
    assert await store.read_with_preferences(nobody, 10) == (
        await store.read(nobody, 10),
        await store.read_preferences(nobody),
    )


async def test_item_hashes_read_by_script_match_hmget(store: RedisStore) -> None:
    records = [
        ItemRecord(
            item_id=f"s{i}", categories=[f"c{i % 3}"], available=i % 2 == 0, regions=["GB"] * (i % 4 == 0)
        )
        for i in range(redis_scripts.ITEMS_PER_CALL + 20)
    ]
    await store.publish_items(records)
    ids = [r.item_id for r in records] + ["never-written"]
    expected = {
        item: from_hash(
            cast(list[str | None], await store.client.hmget(keys.item(store.namespace, item), list(FIELDS)))
        )
        for item in ids
    }
    assert await store.read_items(ids) == expected
    assert not expected["s1"].available and expected["s4"].regions == frozenset({"gb"})


async def test_a_script_the_server_has_not_seen_is_loaded_once(store: RedisStore) -> None:
    fresh = redis_scripts.Script(f"-- {uuid.uuid4().hex}\n{redis_scripts.READ_USER.text}")
    user_keys = [keys.user_list(store.namespace, "u"), keys.preferences("x", "u")]
    assert (await store.client.script_exists(fresh.sha)) == [False]
    assert await redis_scripts.run(store.client, fresh, user_keys) == [None, []]
    assert (await store.client.script_exists(fresh.sha)) == [True]


async def test_a_list_replaces_the_previous_one_whole_with_its_reasons(store: RedisStore) -> None:
    why = [Reason("item", "i0", ("sequence",)), Reason("popular"), Reason("exploring")]
    old = UserList("script-u1", [("x", 3.0), ("y", 2.0), ("z", 1.0)], "m1", 10, 1, why)
    await store.publish_lists([old, UserList("script-u2", [("a", 0.5)], "m1", 11, 2)])
    got = await store.read("script-u1")
    assert got.items == [("x", 3.0), ("y", 2.0), ("z", 1.0)] and got.model_version == "m1"
    assert got.reasons["x"] == Reason("item", "i0", ("sequence",)) and got.reasons["z"].code == "exploring"
    assert (await store.read("script-u2")).items == [("a", 0.5)]

    # A new list without reasons: no member and no reason of the old one survives.
    published = await store.publish(
        "script-u1", [("w", 0.123456789)], model_version="m2", last_event_ts=20, events_seen=2
    )
    updated = published.updated_ms
    got = await store.read("script-u1")
    assert got.items == [("w", 0.123)] and got.reasons == {}
    assert (got.updated_ms, got.last_event_ts, got.events_seen, got.model_version) == (updated, 20, 2, "m2")
    stored = await store.client.get(keys.user_list(store.namespace, "script-u1"))
    assert stored == f"0\t{updated}\t20\t2\tm2\nw\n0.123\n"

    # An empty list: no items, the metadata stays.
    await store.publish("script-u1", [], model_version="m2", last_event_ts=21, events_seen=3)
    got = await store.read("script-u1")
    assert got.items == [] and got.events_seen == 3 and got.last_event_ts == 21


async def test_a_user_ttl_is_set_by_the_write_itself(store: RedisStore) -> None:
    user = f"ttl-{uuid.uuid4().hex[:8]}"
    expiring = RedisStore(store.client, store.namespace, user_ttl_s=60)
    await expiring.publish(user, [("a", 1.0)], **_META)
    assert 0 < await store.client.ttl(keys.user_list(store.namespace, user)) <= 60
    await store.publish(user, [("b", 1.0)], **_META)  # without a TTL: the key keeps none
    assert await store.client.ttl(keys.user_list(store.namespace, user)) == -1


async def test_lists_of_the_earlier_two_key_form_are_deleted_once(store: RedisStore) -> None:
    upgraded = RedisStore(store.client, f"legacy{uuid.uuid4().hex[:8]}")
    ns, client = upgraded.namespace, store.client
    for n in range(3):  # what a release before the one-string list left: a sorted set and a meta hash
        await client.zadd(f"p13n:v1:{ns}:recs:u{n}", {"a": 1.0, "b": 0.5})
        await client.hset(f"p13n:v1:{ns}:meta:u{n}", mapping={"model_version": "old", "events_seen": 2})
    await upgraded.hold_lists([0, 1])
    await upgraded.publish("u0", [("c", 1.0)], **_META)  # a list in today's form stays
    other = RedisStore(store.client, f"other{uuid.uuid4().hex[:8]}")
    await client.zadd(f"p13n:v1:{other.namespace}:recs:u0", {"a": 1.0})  # another namespace's: untouched
    try:
        assert await upgraded.drop_legacy_lists(chunk=2) == 6
        assert [k async for k in client.scan_iter(match=f"p13n:v1:{ns}:recs:*")] == []
        assert [k async for k in client.scan_iter(match=f"p13n:v1:{ns}:meta:*")] == []
        assert await upgraded.lists_held([0, 1]) == set()  # every partition's users republished
        assert (await upgraded.read("u0", 5)).items[0][0] == "c"
        assert await client.exists(f"p13n:v1:{other.namespace}:recs:u0") == 1
        await upgraded.hold_lists([0])
        assert await upgraded.drop_legacy_lists() == 0 and await upgraded.lists_held([0]) == {0}
    finally:
        await client.delete(f"p13n:v1:{other.namespace}:recs:u0")
        async for key in client.scan_iter(match=keys.namespace_pattern(ns)):
            await client.delete(key)


async def test_a_server_that_lost_its_scripts_gets_the_script_again(store: RedisStore) -> None:
    await store.client.script_flush()
    await store.publish("script-u3", [("q", 1.0)], model_version="m1", last_event_ts=1, events_seen=1)
    assert (await store.read("script-u3")).items == [("q", 1.0)]


async def test_served_items_counted_by_script_match_pfadd(store: RedisStore) -> None:
    ids = [f"served-{i}" for i in range(redis_scripts.SERVED_PER_CALL * 2 + 500)]
    hour = int(uuid.uuid4().int % 1_000_000)  # an hour no other test counts in
    await store.count_served(ids, hour, 60)
    by_hand = keys.served(store.namespace, hour + 1)
    await store.client.pfadd(by_hand, *ids)
    assert await store.served_distinct([hour]) == await store.client.pfcount(by_hand)
    assert 0 < await store.client.ttl(keys.served(store.namespace, hour)) <= 60


async def test_a_list_older_than_the_stored_one_is_refused_and_an_equal_one_written(
    store: RedisStore,
) -> None:
    user = f"fence-{uuid.uuid4().hex[:8]}"
    assert (await store.publish(user, [("a", 1.0)], **_META, position=10)).refused == {}
    refused = await store.publish(user, [("old", 1.0)], **_META, position=9)
    assert refused.refused == {user: "stale"}
    got = await store.read(user)
    assert got.items == [("a", 1.0)] and got.position == 10
    assert (await store.publish(user, [("again", 1.0)], **_META, position=10)).refused == {}
    assert (await store.read(user)).items == [("again", 1.0)]
    # Offsets up to 2^53 (16 digits) are read whole from the stored list's first bytes.
    far = 2**53 - 2
    assert (await store.publish(user, [("far", 1.0)], **_META, position=far)).refused == {}
    assert (await store.publish(user, [("old", 1.0)], **_META, position=far - 1)).refused == {user: "stale"}
    assert (await store.read(user)).position == far


async def test_a_batch_over_several_script_calls_writes_and_refuses_each_list_on_its_own(
    store: RedisStore,
) -> None:
    run = uuid.uuid4().hex[:8]
    users = [f"batch-{run}-{n}" for n in range(redis_scripts.LISTS_PER_CALL + 5)]
    stale, erased = users[3], users[redis_scripts.LISTS_PER_CALL + 2]  # one in each call
    await store.publish(stale, [("newer", 1.0)], **_META, position=50)
    await store.fence_users({erased: 50}, 60)
    lists = [UserList(user, [(f"i{n}", 1.0)], "m1", 1, 1, position=40) for n, user in enumerate(users)]
    published = await store.publish_lists(lists)
    assert published.refused == {stale: "stale", erased: "erased"}
    found = {user: await store.read(user) for user in users}
    assert found[stale].items == [("newer", 1.0)] and found[erased].items == []
    written = [user for user in users if user not in (stale, erased)]
    assert all(found[u].items == [(f"i{users.index(u)}", 1.0)] and found[u].position == 40 for u in written)


async def test_an_erasure_fence_deletes_older_lists_and_refuses_them_until_it_expires(
    store: RedisStore,
) -> None:
    user, back = f"erased-{uuid.uuid4().hex[:8]}", f"back-{uuid.uuid4().hex[:8]}"
    await store.publish(user, [("a", 1.0)], **_META, position=5)
    await store.update_preferences(user, {"muted_category:x": "1"}, [])
    assert await store.forget_user(user, (20, 60)) == 2  # list, preferences
    assert await store.read(user) == Recommendations(user, [], None, None, None, None)
    tombstone = keys.tombstone(store.namespace, user)
    assert await store.client.get(tombstone) == "20" and 0 < await store.client.ttl(tombstone) <= 60
    assert user not in tombstone
    # A worker still holding the user's earlier events: refused, nothing re-created.
    assert (await store.publish(user, [("b", 1.0)], **_META, position=19)).refused == {user: "erased"}
    assert not await store.client.exists(keys.user_list(store.namespace, user))
    # Records after the erasure write again; a later fence at an older position changes nothing.
    assert (await store.publish(user, [("c", 1.0)], **_META, position=21)).refused == {}
    await store.fence_users({user: 20}, 60)
    assert (await store.read(user)).items == [("c", 1.0)] and await store.client.get(tombstone) == "20"
    # A list that reflects records after the erasure survives it (the worker fenced later than the API).
    await store.publish(back, [("d", 1.0)], **_META, position=31)
    assert await store.forget_user(back, (30, 60)) == 0
    assert (await store.read(back)).items == [("d", 1.0)]
    # The tombstone expires: then only the stored list's own position fences.
    await store.fence_users({back: 40}, 1)
    assert not await store.client.exists(keys.user_list(store.namespace, back))
    await store.client.pexpire(keys.tombstone(store.namespace, back), 1)
    await asyncio.sleep(0.05)
    assert (await store.publish(back, [("e", 1.0)], **_META, position=35)).refused == {}


async def test_fencing_scripts_are_loaded_again_after_the_server_lost_them(store: RedisStore) -> None:
    user = f"flushed-{uuid.uuid4().hex[:8]}"
    await store.client.script_flush()
    await store.fence_users({user: 7}, 60)
    await store.client.script_flush()
    assert (await store.publish(user, [("a", 1.0)], **_META, position=6)).refused == {user: "erased"}
    await store.client.script_flush()
    assert (await store.publish(user, [("a", 1.0)], **_META, position=7)).refused == {}
    await store.client.script_flush()
    assert await store.forget_user(user, (8, 60)) == 1
    policies = PolicyStore(store.client, store.namespace)
    await store.client.script_flush()
    assert await policies.publish(f"p-{user}", b"blob", 1, expected=0) == 1


async def test_a_policy_snapshot_is_written_only_on_top_of_the_version_it_was_learned_from(
    store: RedisStore,
) -> None:
    policies = PolicyStore(store.client, store.namespace)
    policy = f"cas-{uuid.uuid4().hex[:8]}"
    assert await policies.publish(policy, b"first", 1, expected=0) == 1
    assert await policies.publish(policy, b"second", 2, expected=1) == 2
    assert await policies.publish(policy, b"stale", 9, expected=1) is None  # an older owner
    assert await policies.publish(policy, b"skipped", 9, expected=5) is None
    stored = await store.client.hgetall(keys.policy(store.namespace, policy))
    assert stored[PolicyField.VERSION] == "2" and stored[PolicyField.REWARDS] == "2"
    assert base64.b64decode(stored[PolicyField.SNAPSHOT]) == b"second"
