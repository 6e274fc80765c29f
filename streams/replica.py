"""What a worker's model learns beyond its own users: the whole catalog and every other worker's events.

N workers behave as one engine (docs/scale-out.md): the consumer group gives each worker some events
partitions, whose users it ranks and publishes; item-side state (popularity, co-occurrence, transitions,
sequence neighbours, quality, the catalog) must reflect every event whatever the worker count. So beside
the group consumer, every worker runs one assign-only reader (no group, no commits) over the whole
catalog and over each events partition it does not own, and learns those records into its model only.
It never ranks, never writes a profile, Redis or a dead letter (the owner does), and learns under the
checkpointer's lock, so a checkpoint's offsets say exactly which records the model holds, whoever
learned them (this reader, or the events agent for owned partitions). While the events agent takes
batches, what this reader fetched is learned in the agent's turn after each batch (`agent_turn`).

Ownership moves at each rebalance: a partition handed to this worker stops being read here (the agent
catches the model up to the profile table, streams/catchup.py); a partition taken away is read here
again from the next offset the model lacks. The events agent waits for `ready`: the catalog read up to
where it ended when the worker started, so no list is ranked from a partial catalog.
"""

from __future__ import annotations

__all__ = ["AGENT_TURN_S", "CHUNK", "PENDING", "Replica"]

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any

import confluent_kafka

from engine.ops.metrics import Metrics
from schemas.errors import InvalidEventError
from streams.checkpointer import Checkpointer
from streams.gaps import is_control
from streams.pipeline import Pipeline
from streams.time_order import in_time_order

log = logging.getLogger(__name__)

#: Records learned per hold of the checkpointer's lock (the agents wait at most this long for it).
CHUNK = 200
#: Records fetched per poll, and how long a poll waits when there is nothing new.
FETCH, POLL_S = 1000, 0.2
#: Fetched records waiting for the events agent's turn beyond which no more are fetched meanwhile.
PENDING = 4 * FETCH
#: Seconds after the events agent's last turn during which fetched records wait for its next one. A full
#: batch takes longer (~0.15 s here), so the reader may learn a chunk as a batch ends, before the agent's
#: turn: neither falls in the next batch's fill (0.5 s measured no better in one run, session 23).
AGENT_TURN_S = 0.1
#: Seconds between refreshes of the topics' partition counts and of the lag gauges.
REFRESH_S = 5.0, 1.0


def _in_time_order(messages: list[Any]) -> list[Any]:
    """A poll's messages merged by their Kafka timestamps, each partition's in its order
    (`streams.time_order`): librdkafka returns them one fetched chunk per partition after the other."""
    partitions: dict[tuple[str, int], list[Any]] = {}
    for message in messages:
        partitions.setdefault((message.topic(), message.partition()), []).append(message)
    if len(partitions) < 2:
        return messages
    return list(in_time_order(partitions.values(), lambda message: int(message.timestamp()[1])))


class Replica:
    """The assign-only reader of one worker; `run` is its task."""

    def __init__(
        self,
        *,
        bootstrap: str,
        events_topic: str,
        items_topic: str,
        checkpointer: Checkpointer,
        pipeline: Pipeline,
        metrics: Metrics,
        client: Any = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.events_topic = events_topic
        self.items_topic = items_topic
        self.checkpointer = checkpointer
        self.pipeline = pipeline
        self.metrics = metrics
        #: Set once the catalog is read up to its end as of the start.
        self.ready = asyncio.Event()
        #: Events partitions the consumer group gave this worker (None before the first assignment).
        self.owned: set[int] | None = None
        #: The Kafka consumer (made on first use; tests pass a fake).
        self._consumer: confluent_kafka.Consumer | None = client
        self._partitions: dict[str, int] = {}
        #: What the reader is assigned now.
        self._assigned: set[tuple[str, int]] = set()
        #: Catalog partition -> the offset it must reach before `ready` (its end at the start).
        self._catalog_end: dict[int, int] = {}
        #: Catalog partitions read to their end (a fetch reported it).
        self._catalog_eof: set[int] = set()
        #: Fetched, in time order, not learned yet (`agent_turn` or this reader learns them).
        self._pending: list[Any] = []
        #: When the events agent last took its turn (`agent_turn`).
        self._agent_at = float("-inf")
        self._stopping = False
        self._started = False
        self._done = asyncio.Event()
        self._refreshed = (0.0, 0.0)

    # -- ownership, from the Faust app's rebalance signals ---------------------------------------

    def assigned(self, partitions: Iterable[int]) -> None:
        """The group's new assignment of events partitions to this worker (replaces the previous)."""
        self.owned = set(partitions)

    def take_item(self, partition: int, offset: int, value: bytes) -> bool:
        """A catalog record the items agent (the group's owner of its partition) just read: learned now if
        it is the next record the model lacks on that partition (this reader then skips it), else left
        to this reader; whether it was learned here. Call under the checkpointer's lock, after `ready`.

        The reader polls, so a record would reach the model up to a poll later; an event produced right
        behind its item must find the item known on the worker owning the item's partition.
        """
        if self.checkpointer.position(self.items_topic, partition) != offset:
            return False
        with contextlib.suppress(InvalidEventError):  # the items agent dead-letters it
            self.pipeline.apply_item(value)
        self.checkpointer.advance(self.items_topic, partition, offset + 1)
        return True

    # -- the task -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read and learn until `close`; a failed round is logged and retried, never raised."""
        self._started = True
        try:
            while not self._stopping:
                try:
                    await self.step()
                except Exception:  # noqa: BLE001 - the model must keep following; Kafka trouble passes
                    log.exception("replica round failed; retrying")
                    await asyncio.sleep(1.0)
        finally:
            if self._consumer is not None:  # closed here: no poll of it is running in a thread now
                consumer, self._consumer = self._consumer, None
                await asyncio.to_thread(consumer.close)
            self._done.set()

    async def step(self) -> None:
        """One round: follow the partitions wanted now, fetch what is new, learn it."""
        consumer = self._client()
        now = time.monotonic()
        if now - self._refreshed[0] >= REFRESH_S[0]:
            await self._refresh_partitions(consumer)
            self._refreshed = (now, self._refreshed[1])
        await self._sync(consumer)

        def fetch() -> tuple[list[Any], float]:
            started = time.thread_time()  # CPU of this thread only, not the wait for records
            fetched = consumer.consume(FETCH, POLL_S)
            return fetched, time.thread_time() - started

        if len(self._pending) < PENDING:
            fetched, spent = await asyncio.to_thread(fetch)
            began = time.thread_time()
            self._pending += _in_time_order(fetched)
            self.metrics.replica_seconds.inc(spent + time.thread_time() - began)
        else:
            await asyncio.sleep(POLL_S / 20)  # the agent's next turn takes them
        while self._pending and time.monotonic() - self._agent_at >= AGENT_TURN_S:
            async with self.checkpointer.lock:
                self.learn_pending(CHUNK)
            await asyncio.sleep(0)  # let the agents and the timers in between chunks
        self._check_ready()
        if now - self._refreshed[1] >= REFRESH_S[1]:
            self._measure_lag(consumer)
            self._refreshed = (self._refreshed[0], now)

    def agent_turn(self) -> None:
        """The events agent's turn, after each of its batches and before it takes the next, under the
        checkpointer's lock: every record fetched meanwhile is learned now.

        Run by this reader's own task instead, these chunks fell between the agent's batches, where
        Faust fills the next one event by event within ``batch_within_s``; the fill then ran out of time
        and the agent took batches of a few records, each costing a whole batch's flush
        (docs/benchmarks.md, session 23). While the agent takes batches, this reader only fetches;
        it learns on its own once the agent has had none for `AGENT_TURN_S`.
        """
        self._agent_at = time.monotonic()
        try:
            self.learn_pending()
        except Exception:  # noqa: BLE001 - the agent must go on; the reader's own rounds log and go on too
            log.exception("replica: learning in the agent's turn failed")

    def learn_pending(self, limit: int | None = None) -> None:
        """Learn the fetched records not learned yet, the oldest ``limit`` of them if given (under the
        checkpointer's lock)."""
        if not self._pending:
            return
        began = time.thread_time()
        taken, self._pending = (
            (self._pending, []) if limit is None else (self._pending[:limit], self._pending[limit:])
        )
        self._apply(taken)
        self.metrics.replica_seconds.inc(time.thread_time() - began)

    def _client(self) -> confluent_kafka.Consumer:
        if self._consumer is None:
            self._consumer = confluent_kafka.Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "group.id": f"p13n-replica-{uuid.uuid4().hex}",  # never joins: assign() only
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "earliest",
                }
            )
        return self._consumer

    async def _refresh_partitions(self, consumer: confluent_kafka.Consumer) -> None:
        for topic in (self.items_topic, self.events_topic):
            meta = await asyncio.to_thread(consumer.list_topics, topic, 10.0)
            found = meta.topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                self._partitions[topic] = len(found.partitions)
        if not self._catalog_end and self.items_topic in self._partitions:
            for partition in range(self._partitions[self.items_topic]):
                tp = confluent_kafka.TopicPartition(self.items_topic, partition)
                _, high = await asyncio.to_thread(consumer.get_watermark_offsets, tp, 10.0, False)
                self._catalog_end[partition] = int(high)

    def _wanted(self) -> set[tuple[str, int]]:
        wanted = {(self.items_topic, p) for p in range(self._partitions.get(self.items_topic, 0))}
        if self.owned is not None:  # events only once the group said which partitions are this worker's
            owned = self.owned
            wanted |= {
                (self.events_topic, p)
                for p in range(self._partitions.get(self.events_topic, 0))
                if p not in owned
            }
        return wanted

    async def _sync(self, consumer: confluent_kafka.Consumer) -> None:
        """Follow the partitions this worker does not own, each from the next offset the model lacks."""
        wanted = self._wanted()
        gone = self._assigned - wanted
        if gone:
            await asyncio.to_thread(
                consumer.incremental_unassign, [confluent_kafka.TopicPartition(t, p) for t, p in gone]
            )
        new = wanted - self._assigned
        if new:
            async with self.checkpointer.lock:  # the agent may be moving these positions right now
                starts = [confluent_kafka.TopicPartition(t, p, self._start(t, p)) for t, p in sorted(new)]
            await asyncio.to_thread(consumer.incremental_assign, starts)
            log.info(
                "replica follows %s", ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in starts)
            )
        self._assigned = wanted

    def _start(self, topic: str, partition: int) -> int:
        position = self.checkpointer.position(topic, partition)
        return confluent_kafka.OFFSET_BEGINNING if position is None else position

    def _apply(self, messages: list[Any]) -> None:
        """Learn a chunk of fetched records (under the checkpointer's lock): runs of events records in
        bulk (`Pipeline.learn_others_many`), each catalog record in its place between them."""
        owned = self.owned or set()
        learned = {"events": 0, "items": 0}
        run: list[tuple[bytes, bytes | None]] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != confluent_kafka.KafkaError._PARTITION_EOF:
                    log.warning("replica read error: %s", error)
                elif message.topic() == self.items_topic:
                    self._catalog_eof.add(message.partition())
                continue
            topic, partition, offset = message.topic(), message.partition(), int(message.offset())
            if (topic, partition) not in self._assigned or (
                topic == self.events_topic and partition in owned
            ):
                continue  # became this worker's since the fetch: the agent handles it from here
            position = self.checkpointer.position(topic, partition)
            if position is not None and offset < position:
                continue  # the model holds it already (learned by the agent before a rebalance)
            if not is_control(message.headers()):
                if topic == self.events_topic:
                    run.append((message.value() or b"", message.key()))
                else:
                    learned["events"] += self._learn_events(run)
                    run = []
                    learned["items"] += self._learn_item(message.value() or b"")
            # Other workers' events do not count toward the next checkpoint (their owners' do).
            self.checkpointer.advance(topic, partition, offset + 1, counted=topic != self.events_topic)
        learned["events"] += self._learn_events(run)
        for kind, count in learned.items():
            if count:
                self.metrics.replica_records.labels(topic=kind).inc(count)

    def _learn_events(self, run: list[tuple[bytes, bytes | None]]) -> int:
        """Learn events records in order; how many the model took (not invalid, re-keyed, duplicates)."""
        if not run:
            return 0
        try:
            outcomes = self.pipeline.learn_others_many(run, self.checkpointer.known)
        except Exception:  # noqa: BLE001 - one bad run must not stop the model from following
            log.exception("replica could not learn %d events records", len(run))
            return 0
        return outcomes.count("learned")

    def _learn_item(self, value: bytes) -> int:
        """Learn one catalog record; 1 if the model took it (the items agent dead-letters an invalid one)."""
        try:
            self.pipeline.apply_item(value)
        except InvalidEventError:
            return 0
        except Exception:  # noqa: BLE001 - one bad record must not stop the model from following
            log.exception("replica could not learn a catalog record")
            return 0
        return 1

    def _check_ready(self) -> None:
        if self.ready.is_set() or self.items_topic not in self._partitions:
            return
        for partition, end in self._catalog_end.items():
            position = self.checkpointer.position(self.items_topic, partition)
            if partition not in self._catalog_eof and end > 0 and (position is None or position < end):
                return
        for partition, end in self._catalog_end.items():
            if self.checkpointer.position(self.items_topic, partition) is None:
                # Nothing read there (empty, or compacted away): the model lacks the partition from its end
                # as of the start on, which `take_item` needs to know to learn the next record at once.
                self.checkpointer.advance(self.items_topic, partition, end, records=0)
        log.info("catalog read to its end (%d partitions): ranking may start", len(self._catalog_end))
        self.ready.set()

    def _measure_lag(self, consumer: confluent_kafka.Consumer) -> None:
        behind = {"events": 0, "items": 0}
        for topic, partition in self._assigned:
            tp = confluent_kafka.TopicPartition(topic, partition)
            try:
                _, high = consumer.get_watermark_offsets(tp, cached=True)
            except confluent_kafka.KafkaException:
                continue
            position = self.checkpointer.position(topic, partition) or 0
            if high >= 0:
                behind["items" if topic == self.items_topic else "events"] += max(0, int(high) - position)
        for kind, value in behind.items():
            self.metrics.replica_lag.labels(topic=kind).set(value)

    async def close(self, *_args: Any, **_kwargs: Any) -> None:
        """Stop after the current round (`run` closes the Kafka client as it ends)."""
        self._stopping = True
        if self._started:
            try:
                await asyncio.wait_for(self._done.wait(), timeout=10.0)
            except TimeoutError:
                log.warning("the replica did not stop within 10 s")
