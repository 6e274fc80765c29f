"""Tests for `engine.store.redis_store` with an in-memory fake client (no Redis server)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from engine.store.redis_store import Recommendations, RedisStore, UserList
from engine.store.scripts import (
    ITEMS_PER_CALL,
    LISTS_PER_CALL,
    READ_ITEMS,
    READ_USER,
    REFUSED_ERASED,
    REFUSED_STALE,
    REPLACE_LISTS,
)
from schemas import keys
from schemas.reasons import Reason, Tokens
from tests.engine.fake_redis import FakeRedis


@dataclass
class FakePipeline:
    """Records queued commands; `execute` returns the canned ``results``."""

    transaction: bool
    results: list[Any]
    commands: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    executed: bool = False

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        def queue(*args: Any, **kwargs: Any) -> None:
            self.commands.append((name, args, kwargs))

        return queue

    async def execute(self) -> list[Any]:
        self.executed = True
        if self.results and isinstance(self.results[0], Exception):
            raise self.results[0]
        return self.results


@dataclass
class FakeClient:
    results: list[Any] = field(default_factory=list)
    pipelines: list[FakePipeline] = field(default_factory=list)

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        pipe = FakePipeline(transaction, self.results)
        self.pipelines.append(pipe)
        return pipe


def _store(client: FakeClient) -> RedisStore:
    return RedisStore(cast(aioredis.Redis, client), "shop")


def test_to_json_shape() -> None:
    recs = Recommendations(
        user_id="u1",
        items=[("i1", 0.9), ("i2", 0.5)],
        updated_ms=1_700_000_000_123,
        model_version="hybrid-0.1",
        events_seen=4,
        last_event_ts=1_700_000_000_000,
        reasons={"i1": Reason("item", "i0", ("cooccurrence",))},
    )
    because = {"reason": "because you liked i0", "reason_code": "item", "anchor": "i0"}
    unknown: dict[str, object] = {"reason": None, "reason_code": None, "anchor": None, "signals": []}
    assert recs.to_json() == {
        "user_id": "u1",
        "items": [
            {"item_id": "i1", "score": 0.9, **because, "signals": ["cooccurrence"]},
            {"item_id": "i2", "score": 0.5, **unknown},
        ],
        "updated_ms": 1_700_000_000_123,
        "model_version": "hybrid-0.1",
        "events_seen": 4,
        "last_event_ts": 1_700_000_000_000,
        "position": None,
    }


def test_to_json_of_an_unknown_user() -> None:
    recs = Recommendations("u9", [], None, None, None, None)
    assert recs.to_json() == {
        "user_id": "u9",
        "items": [],
        "updated_ms": None,
        "model_version": None,
        "events_seen": None,
        "last_event_ts": None,
        "position": None,
    }


async def test_publish_replaces_the_stored_list_with_a_script_call() -> None:
    client = FakeClient(results=[[1]])
    published = await _store(client).publish(
        "u1", [("i1", 0.9), ("i2", 0.4)], model_version="m1", last_event_ts=123, events_seen=7, position=41
    )
    [pipe] = client.pipelines
    assert pipe.executed and not pipe.transaction  # each call is atomic on its own
    [(name, args, _)] = pipe.commands
    tombstone = "p13n:v1:shop:tombstone:bb82030dbc2bcaba32a90bf2e207a84a"
    assert (name, args[:4]) == ("evalsha", (REPLACE_LISTS.sha, 2, "p13n:v1:shop:list:u1", tombstone))
    updated = published.updated_ms
    # No TTL; then the list, its metadata and (none here) its reasons in one value, and the position.
    assert args[4:] == (0, f"41\t{updated}\t123\t7\tm1\ni1\ti2\n0.9\t0.4\n", 41)
    assert updated > 1_600_000_000_000 and published.refused == {}


async def test_a_user_ttl_goes_with_the_write() -> None:
    client = FakeClient(results=[[1]])
    store = RedisStore(cast(aioredis.Redis, client), "shop", user_ttl_s=3600)
    await store.publish("u1", [("i1", 0.5)], model_version="m1", last_event_ts=1, events_seen=1)
    [pipe] = client.pipelines  # no second round trip for the TTL
    assert pipe.commands[0][1][4] == 3600


async def test_lists_the_fence_refuses_are_named_with_the_reason() -> None:
    client = FakeClient(results=[[1, REFUSED_ERASED, REFUSED_STALE]])
    lists = [UserList(f"u{n}", [("i1", 1.0)], "m1", n, n, position=n) for n in range(3)]
    published = await _store(client).publish_lists(lists)
    assert published.refused == {"u1": "erased", "u2": "stale"}


async def test_publish_lists_writes_every_user_in_one_round_trip_of_few_script_calls() -> None:
    n_lists = LISTS_PER_CALL + 3
    client = FakeClient(results=[[1] * LISTS_PER_CALL, [1, REFUSED_STALE, 1]])
    lists = [UserList(f"u{n}", [("i1", 1.0 / (n + 1))], "m1", n, n) for n in range(n_lists)]
    published = await _store(client).publish_lists(lists)
    [pipe] = client.pipelines
    first, second = [args for _, args, _ in pipe.commands]
    # Keys in pairs (list, tombstone); the TTL, then a value and a position per list.
    assert first[1] == 2 * LISTS_PER_CALL and second[1] == 6
    assert [first[2 + 2 * n] for n in range(LISTS_PER_CALL)] == [
        f"p13n:v1:shop:list:u{n}" for n in range(LISTS_PER_CALL)
    ]
    assert second[2:8:2] == tuple(f"p13n:v1:shop:list:u{n}" for n in range(LISTS_PER_CALL, n_lists))
    assert len(second) == 2 + 6 + 1 + 6
    assert published.refused == {f"u{LISTS_PER_CALL + 1}": "stale"}


async def test_publish_keeps_scores_to_three_significant_digits() -> None:
    client = FakeClient(results=[[1]])
    await _store(client).publish(
        "u1", [("i2", 1234.5), ("i1", 0.123456789)], model_version="m1", last_event_ts=1, events_seen=1
    )
    value = client.pipelines[0].commands[0][1][5]
    assert value.split("\n")[2] == "1.23e+03\t0.123"


@pytest.mark.parametrize("form", ["reasons", "tokens"])
async def test_publish_stores_the_list_best_first_with_its_reasons(form: str) -> None:
    client = FakeClient(results=[[1]])
    items = [("b", 0.5), ("a", 0.9), ("c", 0.5), ("d", 0.1)]
    why: list[Reason | None] | Tokens = [
        Reason("exploring"), Reason("item", "i0", ("sequence", "cooccurrence")), Reason("popular"), None
    ]  # fmt: skip
    if form == "tokens":  # the worker's form: the same reasons as tokens
        why = Tokens(["E", "Isc0", "P", "-"], ["i0"])
    await _store(client).publish("u1", items, model_version="m1", last_event_ts=1, events_seen=1, reasons=why)
    [(_, args, _)] = client.pipelines[0].commands
    ids, _scores, stored = args[5].split("\n")[1:]
    # Best first, equal scores in the order given (b before c), and the reasons follow the items.
    assert ids == "a\tb\tc\td"
    assert stored == "Isc0 E P -\t0123\ti0"
    assert len(stored) < len(items) * 10


async def test_a_server_without_the_script_is_given_it_and_every_list_is_written_again() -> None:
    client = FakeClient()
    client.results = [NoScriptError("NOSCRIPT")]
    store = _store(client)
    loaded: list[str] = []

    async def script_load(text: str) -> str:
        loaded.append(text)
        client.results = [[1]]
        return REPLACE_LISTS.sha

    client.script_load = script_load  # type: ignore[attr-defined]
    await store.publish("u1", [("i1", 0.5)], model_version="m1", last_event_ts=1, events_seen=1)
    assert loaded == [REPLACE_LISTS.text] and len(client.pipelines) == 2
    assert client.pipelines[1].commands == client.pipelines[0].commands


@dataclass
class ScriptClient(FakeClient):
    """Answers EVALSHA with ``reply``; NOSCRIPT until SCRIPT LOAD when ``loaded`` is False."""

    reply: Any = None
    loaded: bool = True
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def evalsha(self, *args: Any) -> Any:
        self.calls.append(("evalsha", *args))
        if not self.loaded:
            raise NoScriptError("NOSCRIPT No matching script.")
        return self.reply

    async def script_load(self, text: str) -> str:
        self.calls.append(("script_load", text))
        self.loaded = True
        return hashlib.sha1(text.encode()).hexdigest()


STORED = "8\t1\t5\t2\tm1\na\tc\tb\n0.9\t0.5\t0.5\nIsc0 P E\t012\ti0"


async def test_read_with_preferences_is_one_script_call_pairing_the_stored_reasons_with_the_list() -> None:
    client = ScriptClient(reply=[STORED, ["muted_category:jazz"]])
    recs, prefs = await _store(client).read_with_preferences("u1", 3)
    assert recs.items == [("a", 0.9), ("c", 0.5), ("b", 0.5)]
    assert (recs.updated_ms, recs.model_version, recs.events_seen, recs.position) == (1, "m1", 2, 8)
    assert recs.last_event_ts == 5
    assert recs.reasons == {
        "a": Reason("item", "i0", ("sequence", "cooccurrence")),
        "c": Reason("popular"),
        "b": Reason("exploring"),
    }
    assert prefs.muted_categories == frozenset({"jazz"})
    user_keys = ("p13n:v1:shop:list:u1", "p13n:v1:shop:prefs:u1")
    assert client.calls == [("evalsha", READ_USER.sha, 2, *user_keys)]


async def test_a_read_takes_the_head_of_the_stored_list_with_its_reasons() -> None:
    recs, _ = await _store(ScriptClient(reply=[STORED, []])).read_with_preferences("u1", 2)
    assert recs.items == [("a", 0.9), ("c", 0.5)] and set(recs.reasons) == {"a", "c"}


async def test_a_script_the_server_does_not_know_is_loaded_and_run_again() -> None:
    client = ScriptClient(reply=[None, []], loaded=False)
    recs, _ = await _store(client).read_with_preferences("nobody", 10)
    assert recs == Recommendations("nobody", [], None, None, None, None)
    assert [call[0] for call in client.calls] == ["evalsha", "script_load", "evalsha"]
    assert client.calls[1][1] == READ_USER.text


async def test_read_items_is_one_script_call_per_chunk() -> None:
    class Client(ScriptClient):
        async def evalsha(self, *args: Any) -> Any:
            await super().evalsha(*args)
            return [['["jazz"]', "[]", "0", None, None]] * args[1]  # one HMGET answer per key

    client = Client()
    metas = await _store(client).read_items([f"i{n}" for n in range(ITEMS_PER_CALL + 1)])
    assert len(metas) == ITEMS_PER_CALL + 1 and not metas["i0"].available
    assert [call[2] for call in client.calls] == [ITEMS_PER_CALL, 1]  # keys declared per call
    assert client.calls[1][1:4] == (READ_ITEMS.sha, 1, f"p13n:v1:shop:item:i{ITEMS_PER_CALL}")
    assert await _store(client).read_items([]) == {}


async def test_read_is_one_get_decoded() -> None:
    got: list[str] = []

    class Client(FakeClient):
        async def get(self, key: str) -> str | None:
            got.append(key)
            return STORED if key.endswith(":u1") else None

    recs = await _store(Client()).read("u1", n=2)
    assert recs.items == [("a", 0.9), ("c", 0.5)]
    assert (recs.updated_ms, recs.model_version, recs.events_seen, recs.last_event_ts) == (1, "m1", 2, 5)
    assert got == ["p13n:v1:shop:list:u1"]
    assert await _store(Client()).read("nobody") == Recommendations("nobody", [], None, None, None, None)


async def test_publish_trending_replaces_the_locale_list_in_one_transaction() -> None:
    client = FakeClient()
    await _store(client).publish_trending([("i1", 2.0), ("i2", 1.0)], locale="en-GB")
    await _store(client).publish_trending([])
    first, second = client.pipelines
    assert first.transaction and first.executed
    assert first.commands == [
        ("delete", ("p13n:v1:shop:trending:en-GB",), {}),
        ("zadd", ("p13n:v1:shop:trending:en-GB", {"i1": 2.0, "i2": 1.0}), {}),
    ]
    assert second.commands == [("delete", ("p13n:v1:shop:trending:_global",), {})]


async def test_read_trending_reads_the_scope_best_first() -> None:
    calls: list[tuple[Any, ...]] = []

    class Client(FakeClient):
        async def zrevrange(self, *args: Any, **kwargs: Any) -> list[tuple[str, float]]:
            calls.append((*args, kwargs))
            return [("i1", 2.0)]

    assert await _store(Client()).read_trending(3, "de") == [("i1", 2.0)]
    assert calls == [("p13n:v1:shop:trending:de", 0, 2, {"withscores": True})]


def test_workers_are_found_through_their_index_and_gone_ones_leave_it() -> None:
    """No SCAN (a tenant's Redis user may not run it): heartbeats are found by the workers' index, and an
    id whose heartbeat expired is dropped from the index when read."""

    async def run() -> None:
        redis = FakeRedis()
        store = RedisStore(cast(aioredis.Redis, redis), "shop")
        await store.heartbeat("hostA-1", {"pid": 1}, ttl_s=5)
        await store.heartbeat("hostA-12", {"pid": 12}, ttl_s=5)
        await store.heartbeat("hostA-b-3", {"pid": 3}, ttl_s=5)
        assert set(await store.workers_by_id()) == {"hostA-1", "hostA-12", "hostA-b-3"}
        assert set(await store.workers_on("hostA")) == {"hostA-1", "hostA-12"}
        await redis.delete(keys.worker("shop", "hostA-12"))  # as if it expired
        await store.forget_worker("hostA-1")
        assert set(await store.workers_by_id()) == {"hostA-b-3"}
        assert await redis.zrange(keys.workers("shop"), 0, -1) == ["hostA-b-3"]

    asyncio.run(run())
