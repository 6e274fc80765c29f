"""The replica reader over a fake Kafka consumer: every record of a partition this worker does not own is
learned once into the model, the catalog whole, and a partition that moves between the agent and the
reader is neither skipped nor learned twice (no Kafka, no Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import confluent_kafka
import pytest
from prometheus_client import CollectorRegistry

from engine.ops.checkpoints import CheckpointStore
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.recommender import MODEL_VERSION, HybridRecommender
from schemas.events import Event, ItemRecord, encode
from streams import replica
from streams.checkpointer import Checkpointer
from streams.gaps import CONTROL_HEADER
from streams.pipeline import Pipeline
from streams.replica import Replica
from tests.streams.test_pipeline import FakeStore

EVENTS, ITEMS = "p13n.t.events", "p13n.t.items"
TS = 1_700_000_000_000


@dataclass
class Message:
    topic_: str
    partition_: int
    offset_: int
    key_: bytes | None = None
    value_: bytes | None = None
    headers_: list[tuple[str, bytes]] | None = None
    eof: bool = False

    def error(self) -> Any:
        if not self.eof:
            return None
        return SimpleNamespace(code=lambda: confluent_kafka.KafkaError._PARTITION_EOF)

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self.headers_

    def timestamp(self) -> tuple[int, int]:
        return confluent_kafka.TIMESTAMP_CREATE_TIME, self.offset_  # written in offset order


@dataclass
class FakeConsumer:
    """Logs per (topic, partition); `consume` reads the assigned ones from their positions in turn."""

    logs: dict[tuple[str, int], list[Message]]
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    assigns: list[list[tuple[str, int, int]]] = field(default_factory=list)
    at_end: set[tuple[str, int]] = field(default_factory=set)

    def list_topics(self, topic: str, timeout: float) -> Any:
        parts = {p: None for (t, p) in self.logs if t == topic}
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions=parts)})

    def get_watermark_offsets(self, tp: Any, timeout: float | None = None, cached: bool = False) -> Any:
        return 0, len(self.logs[(tp.topic, tp.partition)])

    def incremental_assign(self, tps: list[Any]) -> None:
        self.assigns.append([(tp.topic, tp.partition, tp.offset) for tp in tps])
        for tp in tps:
            start = 0 if tp.offset == confluent_kafka.OFFSET_BEGINNING else tp.offset
            self.positions[(tp.topic, tp.partition)] = start
            self.at_end.discard((tp.topic, tp.partition))

    def incremental_unassign(self, tps: list[Any]) -> None:
        for tp in tps:
            self.positions.pop((tp.topic, tp.partition), None)

    def consume(self, num: int, timeout: float) -> list[Message]:
        out: list[Message] = []
        for key, start in sorted(self.positions.items()):
            log = self.logs[key]
            taken = log[start : start + num - len(out)]
            out += taken
            self.positions[key] = start + len(taken)
            if self.positions[key] == len(log) and key not in self.at_end:
                self.at_end.add(key)
                out.append(Message(key[0], key[1], len(log), eof=True))
        return out

    def close(self) -> None:
        pass


def event(n: int, user: str, item: str) -> bytes:
    return encode(Event(event_id=f"e{n}", user_id=user, item_id=item, type="click", ts=TS + n))


def log_of(topic: str, partition: int, values: Sequence[tuple[bytes | None, bytes]]) -> list[Message]:
    return [Message(topic, partition, n, key, value) for n, (key, value) in enumerate(values)]


@dataclass
class World:
    replica: Replica
    consumer: FakeConsumer
    checkpointer: Checkpointer
    model: HybridRecommender
    pipeline: Pipeline


@pytest.fixture
def world(tmp_path: Path) -> World:
    # Users a and b write to events partition 0, c and d to 1; the catalog has two partitions.
    p0 = [(b"a", event(0, "a", "i1")), (b"b", event(1, "b", "i2")), (b"a", event(2, "a", "i3"))]
    p1 = [(b"c", event(10, "c", "i1")), (b"d", event(11, "d", "i4")), (b"c", event(12, "c", "i2"))]
    p1.append((b"x", event(13, "c", "i5")))  # keyed wrong: the owner re-keys it, nobody learns this copy
    catalog = [ItemRecord(item_id=f"i{n}", categories=(f"k{n % 2}",), available=n != 4) for n in range(1, 7)]
    consumer = FakeConsumer(
        {
            (EVENTS, 0): log_of(EVENTS, 0, p0),
            (EVENTS, 1): log_of(EVENTS, 1, p1),
            (ITEMS, 0): log_of(ITEMS, 0, [(r.item_id.encode(), encode(r)) for r in catalog[:3]]),
            (ITEMS, 1): log_of(ITEMS, 1, [(r.item_id.encode(), encode(r)) for r in catalog[3:]]),
            (ITEMS, 2): [],  # a catalog partition nothing was written to yet
        }
    )
    consumer.logs[(EVENTS, 1)].append(Message(EVENTS, 1, 4, None, b"", [(CONTROL_HEADER, b"nudge")]))
    model = HybridRecommender(seed=0)
    metrics = Metrics.create(CollectorRegistry(), "t", MODEL_VERSION)

    async def send(topic: str, key: bytes | None, value: bytes) -> None:
        return None

    async def flush() -> None:
        return None

    pipeline = Pipeline(
        model=model, store=cast(RedisStore, FakeStore()), metrics=metrics, send=send,
        events_topic=EVENTS, dead_letter_topic="dead", top_n=5,
    )  # fmt: skip
    checkpointer = Checkpointer(
        model=model, store=CheckpointStore(tmp_path, "t"), metrics=metrics,
        settings=Settings(namespace="t"), flush=flush,
    )  # fmt: skip
    pipeline.learned = checkpointer.learned
    replica = Replica(
        bootstrap="unused", events_topic=EVENTS, items_topic=ITEMS, checkpointer=checkpointer,
        pipeline=pipeline, metrics=metrics, client=consumer,
    )  # fmt: skip
    return World(replica, consumer, checkpointer, model, pipeline)


def histories(model: HybridRecommender) -> dict[str, list[str]]:
    names = model._items.names  # noqa: SLF001 - item names of the model's ids
    return {u: [names[i] for i in model.sequence.history(u).tolist()] for u in "abcd"}


async def test_the_catalog_is_read_whole_before_any_event_and_then_others_events_once(world: World) -> None:
    await world.replica.step()
    assert world.replica.ready.is_set()  # the whole catalog: both partitions, to their ends
    assert not world.model.available("i4") and world.model.available("i5")
    assert world.checkpointer.position(ITEMS, 0) == 3 and world.checkpointer.position(ITEMS, 1) == 3
    assert histories(world.model) == {"a": [], "b": [], "c": [], "d": []}  # no assignment known yet

    world.replica.assigned([0])  # the group gives this worker partition 0: the reader follows 1
    counted = world.checkpointer.counted
    for _ in range(3):
        await world.replica.step()
    # Another worker's events move the checkpoint's offsets but not its count trigger (the catalog's do).
    assert world.checkpointer.counted == counted and world.checkpointer.pending > counted
    assert histories(world.model) == {"a": [], "b": [], "c": ["i1", "i2"], "d": ["i4"]}
    assert world.checkpointer.position(EVENTS, 1) == 5  # past the re-keyed copy and the control record
    assert world.checkpointer.position(EVENTS, 0) is None  # the agent's
    assert world.checkpointer.known("c", "e12") and not world.checkpointer.known("c", "e13")
    get = world.replica.metrics.registry.get_sample_value
    assert get("personalize_replica_records_total", {"topic": "items"}) == 6
    assert get("personalize_replica_records_total", {"topic": "events"}) == 3  # not the re-keyed copy


async def test_a_partition_moving_between_agent_and_reader_is_learned_once(world: World) -> None:
    world.replica.assigned([0])
    await world.replica.step()
    # The agent learned the first two records of partition 0 before the rebalance.
    for raw in (event(0, "a", "i1"), event(1, "b", "i2")):
        world.pipeline.learn_others(raw, raw.split(b'"user_id":"')[1][:1], world.checkpointer.known)
    world.checkpointer.advance(EVENTS, 0, 2)

    world.replica.assigned([1])  # partition 0 goes to another worker, 1 comes here
    await world.replica.step()
    assert (EVENTS, 0, 2) in world.consumer.assigns[-1]  # followed from the model's position
    assert (EVENTS, 1) not in world.consumer.positions  # no longer followed: the agent's now
    await world.replica.step()
    assert histories(world.model)["a"] == ["i1", "i3"] and histories(world.model)["b"] == ["i2"]
    assert world.checkpointer.position(EVENTS, 0) == 3

    # Records of a partition fetched just before it became this worker's are left to the agent.
    world.replica.assigned([0, 1])
    world.replica._apply([Message(EVENTS, 0, 3, b"a", event(3, "a", "i6"))])  # noqa: SLF001 - that race
    assert histories(world.model)["a"] == ["i1", "i3"]
    assert world.checkpointer.position(EVENTS, 0) == 3


async def test_the_items_agent_learns_the_next_catalog_record_at_once_and_the_reader_skips_it(
    world: World,
) -> None:
    await world.replica.step()  # the catalog to its end: positions 3 and 3
    late = ItemRecord(item_id="i7", categories=("k1",))
    world.consumer.logs[(ITEMS, 0)].append(Message(ITEMS, 0, 3, b"i7", encode(late)))
    assert not world.replica.take_item(0, 4, encode(late))  # not the next one: left to the reader
    assert world.model._items.get("i7") < 0  # noqa: SLF001
    assert world.replica.take_item(0, 3, encode(late))
    assert world.model._items.get("i7") >= 0 and world.checkpointer.position(ITEMS, 0) == 4  # noqa: SLF001
    assert world.replica.take_item(1, 3, b"{")  # invalid: skipped (the agent dead-letters it), position moves
    assert world.checkpointer.position(ITEMS, 1) == 4
    assert world.checkpointer.position(ITEMS, 2) == 0  # empty at the start: its first record is next
    assert world.replica.take_item(2, 0, encode(ItemRecord(item_id="i8", categories=("k0",))))
    await world.replica.step()
    get = world.replica.metrics.registry.get_sample_value
    assert get("personalize_replica_records_total", {"topic": "items"}) == 6  # i7 not learned twice
    assert get("personalize_items_total") == 8


async def test_while_the_agent_takes_batches_fetched_events_wait_for_its_turn(world: World) -> None:
    await world.replica.step()  # the catalog, learned by the reader itself: the agent has had no batch
    world.replica.assigned([0])
    world.replica.agent_turn()  # the agent's first batch: nothing fetched yet
    await world.replica.step()
    assert histories(world.model)["c"] == []  # fetched, left for the agent's next turn
    assert world.checkpointer.position(EVENTS, 1) is None
    world.replica.agent_turn()
    assert histories(world.model) == {"a": [], "b": [], "c": ["i1", "i2"], "d": ["i4"]}
    assert world.checkpointer.position(EVENTS, 1) == 5
    world.consumer.logs[(EVENTS, 1)].append(Message(EVENTS, 1, 5, b"d", event(14, "d", "i6")))
    world.replica._agent_at -= replica.AGENT_TURN_S  # noqa: SLF001 - the agent idle that long
    await world.replica.step()  # so the reader learns what it fetched on its own again
    assert histories(world.model)["d"] == ["i4", "i6"] and world.checkpointer.position(EVENTS, 1) == 6


def test_a_polls_partitions_are_learned_in_the_order_they_were_written() -> None:
    # librdkafka returns a fetched chunk per partition: all of partition 0's, then partition 1's.
    chunked = [Message("events", 0, offset) for offset in (1, 2, 7)] + [
        Message("events", 1, offset) for offset in (3, 4, 8)
    ]
    merged = replica._in_time_order(chunked)
    assert [(m.partition(), m.offset()) for m in merged] == [(0, 1), (0, 2), (1, 3), (1, 4), (0, 7), (1, 8)]
