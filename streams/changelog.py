"""Table writes of one batch of records, sent to the changelog once per key when the batch ends.

A Faust table sends a changelog record for every assignment, to the partition of the event being
processed. A batch (``stream.take_events``) holds records of several partitions, and a busy user's
profile is rewritten by each of their events: `BatchWrites` applies every write to the table's data at
once (later reads see it) but sends each key's final value once, at `flush`, to the partition of the
record that wrote it. Keys starting with NUL (the offset guard's next-offset keys, see
`streams.gaps.offset_key`) are sent after the rest, so a crash in the middle of a flush can leave a
partition's offset behind its profiles (records replayed, deduplicated by event id) but never ahead;
keys written with `BatchWrites.put` (a partition's own state, e.g. `streams.republish`'s queue) go
between the two, so an offset never gets ahead of what its batch queued either.

In the worker the records go out through `ProducedChangelog`, a librdkafka producer of the table's
changelog topic: Faust's Python producer cost about 60 us of worker CPU per event (docs/benchmarks.md,
runs Q-U), a C producer a few. The bytes are those Faust would write (its ``orjson`` codec), so Faust's
recovery reads them as its own; the producer is idempotent (each partition keeps its order through
retries) and flushed before Faust hands a partition over and before a checkpoint is written.

>>> table = FakeTable()
>>> writes = BatchWrites(table)
>>> writes.partition = 1
>>> writes["\\x00next-offset:1"] = 8
>>> writes["u1"] = {"events_seen": 1}
>>> writes["u1"] = {"events_seen": 2}
>>> writes["u1"], table.sent
({'events_seen': 2}, [])
>>> writes.flush()
2
>>> table.sent
[(1, 'u1', {'events_seen': 2}), (1, '\\x00next-offset:1', 8)]
"""

from __future__ import annotations

__all__ = ["BatchWrites", "ChangelogTable", "FakeTable", "ProducedChangelog"]

import asyncio
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any, Protocol

import confluent_kafka
import orjson

log = logging.getLogger(__name__)

#: Stands for a deleted key among the pending writes.
_DELETED = object()


class ChangelogTable(Protocol):
    """What `BatchWrites` needs of a table: its data, and a way to send a changelog record of it (value
    None: a tombstone), e.g. `ProducedChangelog`."""

    @property
    def data(self) -> MutableMapping[Any, Any]: ...

    def send_changelog(self, partition: int | None, key: Any, value: Any) -> Any: ...


class FakeTable:
    """An in-memory `ChangelogTable` that records what it sends (for examples and tests)."""

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self.sent: list[tuple[int | None, Any, Any]] = []

    def send_changelog(self, partition: int | None, key: Any, value: Any) -> None:
        self.sent.append((partition, key, value))


class ProducedChangelog:
    """A Faust table's `ChangelogTable` whose changelog records a librdkafka producer sends.

    Keys and values are encoded as the table's ``orjson`` codec does (``orjson.dumps``), a deletion is a
    tombstone. Never drops a record: delivery is retried until it succeeds (no message timeout), and a
    full local queue waits for room. `flush` before a partition changes hands or a checkpoint is taken.
    """

    def __init__(self, data: MutableMapping[Any, Any], topic: str, bootstrap: str) -> None:
        #: The table's data (`faust.Table.data`): what the worker reads back.
        self.data = data
        self.topic = topic
        self._producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 0,  # retried until delivered: a table must not lose a write
            }
        )

    def send_changelog(self, partition: int | None, key: Any, value: Any) -> None:
        payload = None if value is None else orjson.dumps(value)
        to = partition if partition is not None else -1  # -1: librdkafka's partitioner
        while True:
            try:
                self._producer.produce(self.topic, payload, orjson.dumps(key), to, on_delivery=_delivered)
                break
            except BufferError:  # the local queue is full (Kafka away): wait for deliveries to make room
                log.warning("changelog queue full; waiting for Kafka to take the queued records")
                self._producer.poll(0.5)
        self._producer.poll(0)

    async def flush(self) -> None:
        """Until every record sent so far is delivered (waits out a Kafka outage)."""
        while await asyncio.to_thread(self._producer.flush, 1.0):
            log.warning("changelog records still undelivered; waiting for Kafka")

    def close(self, *_args: Any, **_kwargs: Any) -> None:
        """On shutdown (a Faust signal handler's arguments are ignored): deliver what is queued."""
        left = self._producer.flush(10.0)
        if left:
            log.error("%d changelog record(s) not delivered at shutdown", left)


def _delivered(error: confluent_kafka.KafkaError | None, _message: Any) -> None:
    if error is not None:  # only fatal errors end here: transient ones are retried without end
        log.error("changelog record not delivered: %s", error)


class BatchWrites(MutableMapping[str, Any]):
    """The table as a mapping whose writes reach the changelog at `flush`, each key once.

    ``partition`` must be set to the partition of the record being handled before it writes.
    """

    def __init__(self, table: ChangelogTable) -> None:
        self.table = table
        self.partition = 0
        self._pending: dict[str, int] = {}
        #: Keys written by `put` since the last flush.
        self._put: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        return self.table.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.table.data[key] = value
        self._pending[key] = self.partition

    def __delitem__(self, key: str) -> None:
        del self.table.data[key]
        self._pending[key] = self.partition

    def put(self, partition: int, key: str, value: Any) -> None:
        """Write ``key`` on the changelog partition ``partition`` (not the current record's): for keys
        that belong to a partition rather than to the record being handled; None deletes the key."""
        if value is None:
            self.table.data.pop(key, None)
        else:
            self.table.data[key] = value
        self._pending[key] = partition
        self._put.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.data)

    def __len__(self) -> int:
        return len(self.table.data)

    def flush(self) -> int:
        """Send the final value (or the deletion) of every key written since the last flush; returns
        how many changelog records were sent."""
        pending, self._pending, put, self._put = self._pending, {}, self._put, set()

        def rank(kv: tuple[str, int]) -> int:
            return 0 if not kv[0].startswith("\x00") else 1 if kv[0] in put else 2

        ordered = sorted(pending.items(), key=rank)  # stable: partition state, then offsets, last
        for key, partition in ordered:
            value = self.table.data.get(key, _DELETED)
            if value is _DELETED:
                self.table.send_changelog(partition, key, None)
            else:
                self.table.send_changelog(partition, key, value)
        return len(ordered)
