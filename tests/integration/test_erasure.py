"""Erasure complete and confirmed, through a real API process, Kafka, a real worker (signed checkpoints) and
Redis: after a user is erased (through the API, and through ``personalize forget``) and the status says
done, every store we keep is searched for the user's id: every key and value of the namespace in Redis,
every checkpoint file on disk (the newest, written after the erasure, loaded with its key: model,
quality state and learned ids), and the profile table's changelog (its last record of the user is a
delete); the audit trail and the status name who asked, when, and what each step removed.

Own namespace, worker (checkpoint every 2 s into its own folder, signed) and API. Prints the figures:
milliseconds from the request to done, at idle.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import httpx
import orjson
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from engine.ingest.kafka import AsyncProducer
from engine.ops.checkpoints import CheckpointStore
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas import keys
from schemas.events import Event, encode
from tests.integration.conftest import (
    EXPERIMENTS,
    ROOT,
    Worker,
    api_server,
    child_env,
    make_settings,
    until_beating,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KEY = f"p13n_it-{uuid.uuid4().hex}"
AUTH = {"X-API-Key": KEY}
CHECKPOINT_KEY = uuid.uuid4().hex * 2


class _Signed(Worker):
    def __init__(self, settings: Settings, log_path: Path, folder: Path) -> None:
        super().__init__(settings, log_path)
        self.folder = folder

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "PERSONALIZE_CHECKPOINT_DIR": str(self.folder),
            "PERSONALIZE_CHECKPOINT_EVERY_S": "2",
            "PERSONALIZE_CHECKPOINT_KEY": CHECKPOINT_KEY,
        }


@pytest.fixture(scope="module")
def ee_settings(live_stack: None) -> Settings:
    return make_settings(f"ee{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def ee_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ee-checkpoints")


@pytest.fixture(scope="module")
def ee_worker(
    ee_settings: Settings, ee_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_Signed]:
    worker = _Signed(ee_settings, tmp_path_factory.mktemp("ee-worker") / "worker.log", ee_folder)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def ee_api(
    ee_settings: Settings, ee_worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("ee-api") / "api.log"
    entry = f"ops:admin:{hashlib.sha256(KEY.encode()).hexdigest()}"
    with api_server(
        ee_settings, log, PERSONALIZE_API_KEY_HASHES=entry, PERSONALIZE_EXPERIMENTS=EXPERIMENTS
    ) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def ee_store(ee_settings: Settings) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(ee_settings.redis, ee_settings.namespace)
    yield store
    await store.close()


async def _send(settings: Settings, user: str, count: int, items: str = "i") -> None:
    ts = time.time_ns() // 1_000_000
    async with AsyncProducer(settings.bootstrap) as producer:
        for n in range(count):
            # Event ids that do not contain the user's id: a search for the id must not find them.
            event = Event(
                event_id=uuid.uuid4().hex, user_id=user, item_id=f"{items}{n % 30}", type="click", ts=ts + n
            )
            await producer.send(settings.events_topic, encode(event), user.encode())


async def _redis_traces(settings: Settings, user: str) -> list[str]:
    """Every key of the namespace whose name or value holds the user's id (values read by type)."""
    client = aioredis.Redis.from_url(settings.redis)  # bytes: HyperLogLogs are not text
    needle, found = user.encode(), []
    try:
        async for key in client.scan_iter(match=keys.namespace_pattern(settings.namespace)):
            found_type = await client.type(key)
            kind = found_type.decode() if isinstance(found_type, bytes) else found_type
            if kind == "string":
                value: Any = await client.get(key)
            elif kind == "hash":
                value = await client.hgetall(key)
            elif kind == "set":
                value = await client.smembers(key)
            elif kind == "zset":
                value = await client.zrange(key, 0, -1)
            elif kind == "list":
                value = await client.lrange(key, 0, -1)
            elif kind == "stream":
                value = await client.xrange(key)
            else:
                raise AssertionError(f"a key of an unexpected type: {key!r} {kind}")
            if needle in key or needle in repr(value).encode():
                found.append(f"{key.decode()} ({kind})")
    finally:
        await client.aclose()
    return found


def _files_naming(folder: Path, user: str) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.is_file() and user.encode() in p.read_bytes()]


def _changelog_of(settings: Settings, user: str) -> list[bytes | None]:
    """Values of the profile table's changelog records of the user, in order (None: a delete)."""
    topic = f"{settings.app_id}-profiles-changelog"
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": settings.bootstrap,
            "group.id": f"ee-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        values: list[bytes | None] = []
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, partition), 10)
            if high <= low:
                continue
            consumer.assign([confluent_kafka.TopicPartition(topic, partition, low)])
            at = low
            while at < high:
                for message in consumer.consume(500, 5.0):
                    if message.error() is None:
                        at = (message.offset() or 0) + 1
                        if message.key() == orjson.dumps(user):  # the table's keys are JSON
                            values.append(message.value())
        return values
    finally:
        consumer.close()


async def _ready_user(http: httpx.AsyncClient, settings: Settings, store: RedisStore, user: str) -> None:
    """The user with a list, onboarding likes, preferences and an experiment assignment."""
    await _send(settings, f"crowd-{uuid.uuid4().hex[:6]}", 20, items="j")  # items the user has not taken
    await _send(settings, user, 12)
    liked = {"liked_categories": ["c1"], "liked_items": ["i3"], "muted_categories": ["x"]}
    assert (await http.put(f"/v1/users/{user}/preferences", json=liked, headers=AUTH)).status_code == 200
    body = {"actions": [{"id": "a"}, {"id": "b"}], "user_id": user, "surface": "home"}
    assert (await http.post("/v1/rank", json=body, headers=AUTH)).status_code == 200

    async def listed() -> bool:
        found = await store.read(user)
        return found.events_seen == 12 + 1 and bool(found.items)  # the events and the liked item

    await wait_for(listed, 60, f"the list of {user}")


async def _done(http: httpx.AsyncClient, user: str) -> dict[str, Any]:
    status: dict[str, Any] = {}

    async def done() -> bool:
        status.clear()
        status.update((await http.get(f"/v1/users/{user}/erasure", headers=AUTH)).json())
        return status.get("status") == "done"

    await wait_for(done, 30, f"the erasure of {user} done")
    return status


async def _nothing_left(settings: Settings, folder: Path, user: str, status: dict[str, Any]) -> None:
    assert await _redis_traces(settings, user) == []
    assert _files_naming(folder, user) == [], "a checkpoint file still names the user"
    newest = CheckpointStore(
        folder / settings.namespace, settings.namespace, key=CHECKPOINT_KEY.encode()
    ).newest(CheckpointStore(folder / settings.namespace, settings.namespace).infos()[0].model_version)
    assert newest is not None and newest.info.seal == "valid"
    assert newest.info.created_ms >= status["requested_ms"], "no checkpoint written after the erasure"
    assert set(newest.state) >= {"model", "quality", "learned_ids"}
    assert user.encode() not in json.dumps([str(i) for i in newest.state["learned_ids"]]).encode()
    # The fence stays (named by a hash, no id): a worker behind cannot re-create the user's list.
    client = aioredis.Redis.from_url(settings.redis)
    try:
        assert await client.exists(keys.tombstone(settings.namespace, user)) == 1
    finally:
        await client.aclose()


async def test_an_erased_user_is_nowhere_we_keep_data_and_the_audit_says_who_when_and_what(
    ee_settings: Settings, ee_worker: _Signed, ee_api: str, ee_store: RedisStore, ee_folder: Path
) -> None:
    await until_beating(ee_worker, ee_store)
    user, bystander = f"gone-{uuid.uuid4().hex[:10]}", f"stays-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=ee_api, timeout=30) as http:
        await _ready_user(http, ee_settings, ee_store, bystander)
        await _ready_user(http, ee_settings, ee_store, user)

        async def checkpointed() -> bool:
            return bool(_files_naming(ee_folder, user))

        await wait_for(checkpointed, 30, "a checkpoint holding the user")  # so the search can fail
        before = await _redis_traces(ee_settings, user)
        assert len(before) == 3, before  # the list (with its metadata), preferences, an experiment set

        started = time.monotonic()
        erased = await http.delete(f"/v1/users/{user}", headers=AUTH)
        assert erased.status_code == 202, erased.text
        status = await _done(http, user)
        waited_ms = (time.monotonic() - started) * 1000
    await _nothing_left(ee_settings, ee_folder, user, status)
    assert await _redis_traces(ee_settings, bystander) != []  # the search finds what is there
    assert _files_naming(ee_folder, bystander) != []

    # The profile table: its changelog's last record of the user deletes them (compaction drops the rest).
    changelog = _changelog_of(ee_settings, user)
    assert changelog and changelog[-1] is None, changelog[-3:]

    # Status and audit: who (the key's name), when, what each step removed; the user only as a hash.
    worker_id = next(iter(await ee_store.workers_by_id()))
    assert status["by"] == "ops" and status["event_id"] == erased.json()["event_id"]
    assert status["workers"].keys() == {worker_id} and status["waiting"] == [] and status["gone"] == []
    assert status["removed"] == ["user-keys:2", "experiment-sets:1", "consent-grant"]
    audit: list[tuple[str, dict[str, str]]] = await ee_store.client.xrange(  # type: ignore[assignment]
        keys.erasure_audit(ee_settings.namespace)
    )
    mine = {f["step"]: f for _, f in audit if f["event_id"] == status["event_id"]}
    assert mine.keys() == {"requested", "forgotten", "scrubbed"}, audit
    assert mine["requested"]["by"] == "ops" and mine["scrubbed"]["worker"] == worker_id
    assert re.fullmatch(r"model,quality,learned-ids,checkpoints:\d+", mine["scrubbed"]["removed"]), mine
    assert all(user not in str(fields) for _, fields in audit)
    print(
        f"\nerasure through the API at idle: done {status['done_ms'] - status['requested_ms']} ms after "
        f"the request (owner {status['forgotten_ms'] - status['requested_ms']} ms), read done "
        f"{waited_ms:.0f} ms after the DELETE was sent"
    )


async def test_personalize_forget_erases_and_waits_until_done(
    ee_settings: Settings, ee_worker: _Signed, ee_api: str, ee_store: RedisStore, ee_folder: Path
) -> None:
    await until_beating(ee_worker, ee_store)
    user = f"cli-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=ee_api, timeout=30) as http:
        await _ready_user(http, ee_settings, ee_store, user)
    env = child_env(ee_settings, PERSONALIZE_EXPERIMENTS=EXPERIMENTS)
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "streams", "forget", user, "--json", "--wait", "30"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["status"] == "done" and answer["by"].startswith("cli:"), answer
    assert answer["removed"] == ["user-keys:2", "experiment-sets:1", "consent-grant"]
    await _nothing_left(ee_settings, ee_folder, user, answer)
    print(f"\npersonalize forget at idle: done {answer['done_ms'] - answer['requested_ms']} ms after request")


async def test_erasures_at_idle_each_done_within_seconds(
    ee_settings: Settings, ee_worker: _Signed, ee_api: str, ee_store: RedisStore
) -> None:
    """The figure for docs/privacy.md: five erasures one after another on an idle worker (printed, not
    asserted: timings belong to benchmarks)."""
    await until_beating(ee_worker, ee_store)
    users = [f"idle-{n}-{uuid.uuid4().hex[:8]}" for n in range(5)]
    took = []
    async with httpx.AsyncClient(base_url=ee_api, timeout=30) as http:
        for user in users:
            await _ready_user(http, ee_settings, ee_store, user)
        await asyncio.sleep(3)  # idle: the lists written, a checkpoint taken
        for user in users:
            assert (await http.delete(f"/v1/users/{user}", headers=AUTH)).status_code == 202
            status = await _done(http, user)
            took.append(status["done_ms"] - status["requested_ms"])
    print(f"\n5 erasures at idle: done after {sorted(took)} ms")
