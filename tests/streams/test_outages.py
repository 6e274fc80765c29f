"""Kafka or Redis failing under the worker: nothing read is taken as empty, nothing handled is left
unflushed, a hung Redis does not hold a batch forever, and lists Redis did not get are written again
once it answers (no Kafka, no real Redis: fakes and a silent socket)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import redis.exceptions
from prometheus_client import CollectorRegistry

from engine.ops.metrics import Metrics
from engine.store.redis_store import RedisStore
from models.recommender import HybridRecommender
from schemas.errors import DeliveryError
from schemas.events import Event, ItemRecord, encode
from streams import gaps
from streams.batches import Incoming, handle_batch
from streams.catchup import CatchUp
from streams.changelog import BatchWrites, FakeTable
from streams.gaps import GapReader, OffsetGuard, Record, offset_key
from streams.pipeline import Pipeline
from streams.republish import Republisher, partition_of, pending_key
from tests.streams.model_state import differences
from tests.streams.test_checkpointer import TS, KeyedReader, Worker
from tests.streams.test_pipeline import FakeStore

PARTITIONS = 4


# -- Kafka: a failed read is retried, then raised; never taken as empty ---------------------------


class FlakyReader(KeyedReader):
    """A KeyedReader whose next ``failures`` reads fail as a Kafka outage does."""

    failures = 0

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        if self.failures:
            self.failures -= 1
            raise DeliveryError("kafka topic events[0]", "no record at all in time")
        return await super().read(partition, start, end)


async def test_a_failed_replay_read_moves_no_checkpoint_offset(tmp_path: Path) -> None:
    log = [encode(Event(event_id=f"e{n}", user_id=f"u{n % 3}", item_id=f"i{n % 9}", type="click",
                        ts=TS + n)) for n in range(12)]  # fmt: skip
    profiles: dict[str, Any] = {}
    first = Worker(tmp_path, log, profiles, restored=False)
    for offset in range(5):
        await first.on_message(offset, log[offset])
    await first.checkpointer.checkpoint()
    for offset in range(5, 10):
        await first.on_message(offset, log[offset])

    second = Worker(tmp_path, log, copy.deepcopy(profiles), restored=True)
    reader = FlakyReader(log, first.guard.reader.topic)
    reader.failures = 1
    second.catchup.events_reader = cast(GapReader, reader)
    with pytest.raises(DeliveryError):  # Kafka away for longer than the reader's patience
        await second.on_message(10, log[10])
    assert second.checkpointer.position(first.guard.reader.topic, 0) == 5  # not past what it missed
    await second.on_message(10, log[10])  # the agent's next try, Kafka back: the replay resumes
    await first.on_message(10, log[10])
    assert differences(second.model, first.model, ["u0", "u1", "u2"], TS) == []
    assert second.checkpointer.position(first.guard.reader.topic, 0) == 11


async def test_the_gap_reader_retries_with_backoff_then_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gaps, "FIRST_BACKOFF_S", 0.01)
    metrics = Metrics.create(CollectorRegistry(), "t", "m")
    reader = GapReader("127.0.0.1:1", "events", "g", patience_s=5.0, metrics=metrics)
    calls: list[int] = []

    def flaky(partition: int, start: int, end: int) -> list[Record]:
        calls.append(start)
        if len(calls) < 3:
            raise DeliveryError("kafka topic events[0]", "broker away")
        return [Record(start, b"k", b"v", False)]

    monkeypatch.setattr(reader, "_read", flaky)
    assert await reader.read(0, 7, 8) == [Record(7, b"k", b"v", False)]
    assert calls == [7, 7, 7]
    assert metrics.registry.get_sample_value("personalize_kafka_read_failures_total") == 2

    def down(partition: int, start: int, end: int) -> list[Record]:
        raise DeliveryError("kafka topic events[0]", "broker away")

    monkeypatch.setattr(reader, "_read", down)
    reader.patience_s = 0.05
    with pytest.raises(DeliveryError, match="broker away"):
        await reader.read(0, 7, 8)


# -- the batch: what was handled before a failure is flushed ------------------------------------


class NoCatchUp:
    async def events(self, partition: int, profiles: Any) -> None:
        return None


def make_pipeline(store: FakeStore, metrics: Metrics) -> Pipeline:
    model = HybridRecommender(seed=1)
    for n in range(1, 9):
        model.learn_item(ItemRecord(item_id=f"i{n}", categories=("a" if n % 2 else "b",)))

    async def send(topic: str, key: bytes | None, value: bytes) -> None:
        return None

    return Pipeline(
        model=model, store=cast(RedisStore, store), metrics=metrics, send=send, events_topic="events",
        dead_letter_topic="dead", top_n=5,
    )  # fmt: skip


def raw(n: int, user: str) -> bytes:
    return encode(Event(event_id=f"e{n}", user_id=user, item_id=f"i{n % 8 + 1}", type="click", ts=TS + n))


async def test_a_gap_read_failure_is_raised_after_the_batch_is_flushed() -> None:
    metrics = Metrics.create(CollectorRegistry(), "t", "m")
    store, table = FakeStore(), FakeTable()
    writes, pipeline = BatchWrites(table), make_pipeline(store, metrics)
    reader = FlakyReader([raw(n, "u1") for n in range(4)], "events")
    reader.failures = 1

    async def process(partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        await pipeline.consume_event(value, key, writes, topic="events", partition=partition, offset=offset)

    guard = OffsetGuard(cast(GapReader, reader), writes, process, metrics)
    reader.committed_offset = 0
    batch = [Incoming(0, 0, b"u1", raw(0, "u1"), False), Incoming(0, 3, b"u1", raw(3, "u1"), False)]
    with pytest.raises(DeliveryError):  # offset 3 finds 1..2 missing and cannot read them
        await handle_batch(batch, lock=asyncio.Lock(), catchup=cast(CatchUp, NoCatchUp()), guard=guard,
                           pipeline=pipeline, writes=writes)  # fmt: skip
    [written] = store.calls  # offset 0's list reached Redis ...
    assert written.user_id == "u1" and written.events_seen == 1 and written.position == 0
    sent = {key: value for _, key, value in table.sent}  # ... and its profile and offset the changelog
    assert sent[offset_key(0)] == 1 and sent["u1"]["events_seen"] == 1


# -- Redis: bounded calls, failed lists queued durably and written again --------------------------


@dataclass
class LosingStore(FakeStore):
    """FakeStore with the partition markers, that can lose all it holds like a restarted empty Redis."""

    held: set[int] = field(default_factory=set)

    async def lists_held(self, partitions: Sequence[int]) -> set[int]:
        if self.error is not None:
            raise self.error
        return self.held & set(partitions)

    async def hold_lists(self, partitions: Sequence[int]) -> None:
        self.held |= set(partitions)

    #: What `drop_legacy_lists` finds (it drops the markers with them), or the error it raises.
    legacy: int | Exception = 0
    legacy_calls: int = 0

    async def drop_legacy_lists(self) -> int:
        self.legacy_calls += 1
        if isinstance(self.legacy, Exception):
            raise self.legacy
        found, self.legacy = self.legacy, 0
        if found:  # an upgraded Redis: no list in today's form yet, markers that spoke of the old ones
            self.held.clear()
            self.positions.clear()
        return found

    def lose_everything(self) -> None:
        for kept in (self.held, self.calls, self.positions, self.fences):
            kept.clear()


@dataclass
class Harness:
    store: LosingStore
    table: FakeTable
    writes: BatchWrites
    pipeline: Pipeline
    republisher: Republisher
    metrics: Metrics

    async def event(self, n: int, user: str) -> None:
        self.writes.partition = partition_of(user, PARTITIONS)
        await self.pipeline.consume_event(
            raw(n, user), user.encode(), self.writes, topic="events", partition=self.writes.partition,
            offset=n,
        )  # fmt: skip

    async def batch_end(self) -> None:
        await self.pipeline.flush()
        self.writes.flush()

    def queued(self) -> dict[str, int]:
        return {u: p for part in range(PARTITIONS) for u, p in self.republisher.pending(part).items()}

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.metrics.registry.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def harness() -> Harness:
    metrics = Metrics.create(CollectorRegistry(), "t", "m")
    store, table = LosingStore(held=set(range(PARTITIONS))), FakeTable()
    writes, pipeline = BatchWrites(table), make_pipeline(store, metrics)
    republisher = Republisher(
        pipeline=pipeline, profiles=writes, store=cast(RedisStore, store), metrics=metrics,
        lock=asyncio.Lock(), partitions=PARTITIONS, owned=lambda: range(PARTITIONS),
    )  # fmt: skip
    pipeline.published = republisher.published
    return Harness(store, table, writes, pipeline, republisher, metrics)


USERS = [f"user{n}" for n in range(8)]


async def test_lists_whose_write_failed_are_kept_and_written_once_redis_answers(harness: Harness) -> None:
    for n, user in enumerate(USERS):
        await harness.event(n, user)
    await harness.batch_end()
    harness.store.calls.clear()
    harness.store.error = redis.exceptions.ConnectionError("Redis is down")
    for n, user in enumerate(USERS[:5], start=10):
        await harness.event(n, user)
    await harness.batch_end()
    await harness.republisher()  # Redis still away: the queue waits
    assert harness.queued() == {user: n for n, user in enumerate(USERS[:5], start=10)}
    queued_keys = [(p, k) for p, k, v in harness.table.sent if k.startswith("\x00republish")]
    # Each queue on its own partition's changelog.
    assert queued_keys and all(p is not None and k == pending_key(p) for p, k in queued_keys)

    harness.store.error = None
    await harness.republisher()
    assert harness.queued() == {}
    assert sorted(c.user_id for c in harness.store.calls) == USERS[:5]
    assert all(c.events_seen == 2 and c.position >= 10 for c in harness.store.calls)
    assert harness.sample("personalize_republished_total", {"cause": "failed"}) == 5
    assert harness.sample("personalize_republish_pending") == 0
    assert harness.table.sent[-1][1].startswith("\x00republish")  # the emptied queue reached the changelog


async def test_a_later_successful_write_takes_the_user_off_the_queue(harness: Harness) -> None:
    harness.store.error = redis.exceptions.TimeoutError("Timeout reading from socket")
    await harness.event(1, "user1")
    await harness.batch_end()
    assert harness.queued() == {"user1": 1}
    harness.store.error = None
    await harness.event(2, "user1")
    await harness.batch_end()
    assert harness.queued() == {}


async def test_redis_back_without_its_data_gets_every_list_again(harness: Harness) -> None:
    for n, user in enumerate(USERS):
        await harness.event(n, user)
    await harness.event(20, "gone")
    await harness.batch_end()
    del harness.writes["gone"]  # erased since (the pipeline drops an erased user's profile)
    harness.store.lose_everything()
    await harness.republisher()
    assert sorted(c.user_id for c in harness.store.calls) == USERS
    assert harness.store.held == set(range(PARTITIONS))
    assert harness.sample("personalize_redis_resets_total") == PARTITIONS
    assert harness.sample("personalize_republished_total", {"cause": "reset"}) == len(USERS)
    harness.store.calls.clear()
    await harness.republisher()  # markers back: nothing more to do
    assert harness.store.calls == [] and harness.queued() == {}


async def test_lists_of_the_earlier_two_key_form_are_replaced_once(harness: Harness) -> None:
    for n, user in enumerate(USERS):
        await harness.event(n, user)
    await harness.batch_end()
    harness.store.calls.clear()
    harness.store.legacy = 16
    await harness.republisher()
    assert sorted(c.user_id for c in harness.store.calls) == USERS
    await harness.republisher()
    assert harness.store.legacy_calls == 1


async def test_a_worker_that_may_not_scan_still_republishes(harness: Harness) -> None:
    for n, user in enumerate(USERS):
        await harness.event(n, user)
    await harness.batch_end()
    harness.store.lose_everything()
    harness.store.legacy = redis.exceptions.NoPermissionError("this user has no permissions to run 'scan'")
    await harness.republisher()  # a tenant's ACL user: no SCAN, the lost lists come back all the same
    assert sorted(c.user_id for c in harness.store.calls) == USERS
    await harness.republisher()
    assert harness.store.legacy_calls == 1


async def test_a_hung_redis_fails_the_flush_in_bounded_time(harness: Harness) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)  # accepts, never answers: a stopped (SIGSTOP) or wedged Redis

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", "t", timeout_s=0.2)
    harness.pipeline.store = store
    try:
        await harness.event(1, "user1")
        # Liveness only (no timing claim): without the client's timeouts this flush never returns.
        await asyncio.wait_for(harness.pipeline.flush(), timeout=30)
    finally:
        server.close()
        await store.close()
    assert harness.queued() == {"user1": 1}
    assert harness.sample("personalize_publish_errors_total") == 1


async def test_an_erased_users_queued_list_is_not_written_again(harness: Harness) -> None:
    harness.store.error = redis.exceptions.ConnectionError("Redis is down")
    await harness.event(1, "user1")
    await harness.event(2, "user2")
    await harness.batch_end()
    del harness.writes["user1"]
    harness.store.error = None
    await harness.republisher()
    assert [c.user_id for c in harness.store.calls] == ["user2"]
    assert harness.queued() == {}


def test_a_partitions_queue_reaches_the_changelog_before_its_offset() -> None:
    table = FakeTable()
    writes = BatchWrites(table)
    writes.partition = 2
    writes[offset_key(2)] = 9  # the guard's, written first in the batch
    writes["user1"] = {"events_seen": 1}
    writes.put(2, pending_key(2), {"user1": 8})  # at the batch's flush
    writes.flush()
    # A crash in the middle of the flush can leave the offset behind the queue, never ahead of it.
    assert [key for _, key, _ in table.sent] == ["user1", pending_key(2), offset_key(2)]
