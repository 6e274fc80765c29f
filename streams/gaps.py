"""Per-partition offset tracking with gap repair: every event on the events topic is handled once.

faust-streaming 0.15.3 can drop messages it has fetched around a rebalance or table recovery while
counting their offsets as read; a later message then moves the committed offset past them (seen in
tests/integration/test_restart.py). So the agent keeps, per partition, the next offset it expects, in
the changelog-backed profiles table (same changelog partition as the profiles it guards, so the two
cannot disagree after a crash). A message past it makes the agent re-read the missing range straight
from Kafka first; a message before it is a redelivery and is skipped. A partition whose tail stalls
behind its high watermark is nudged with a control record, which triggers the same repair.

A failed read (Kafka away) is retried with backoff for ``patience_s`` and then raised: a range is either
read in full or not at all, never taken as empty (callers move no offset past what they did not read).
"""

from __future__ import annotations

__all__ = ["CONTROL_HEADER", "GapReader", "OffsetGuard", "Record", "is_control", "offset_key"]

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar

import confluent_kafka

from engine.ops.metrics import Metrics
from schemas.errors import DeliveryError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds between the first retries of a failed read; doubled after each failure, up to `MAX_BACKOFF_S`.
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 5.0

#: Longest wait at the broker of a range read's fetch (ms): what the next read on the client may wait.
_FETCH_WAIT_MS = 10

#: Header that marks a control record of the engine's own (value ignored, never an event).
CONTROL_HEADER = "p13n-control"


def offset_key(partition: int) -> str:
    """Profiles-table key holding the next expected offset of an events partition.

    Starts with NUL, which the event contract forbids in user ids, so it never collides with a user.

    >>> offset_key(3)
    '\\x00next-offset:3'
    """
    return f"\x00next-offset:{partition}"


def is_control(headers: Any) -> bool:
    """Whether a Kafka message carries `CONTROL_HEADER` (headers as a mapping or (key, value) pairs)."""
    if not headers:
        return False
    pairs: Iterable[Any] = headers.items() if hasattr(headers, "items") else headers
    return any(k == CONTROL_HEADER for k, _ in pairs)


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None
    control: bool


class GapReader:
    """Reads offset ranges and watermarks of one topic directly, outside the consumer group.

    A consumer that has fetched keeps a fetch request open at the broker after it is unassigned (up to
    ``fetch.wait.max.ms``, librdkafka's default 500 ms), and the broker answers a connection's requests
    in order: the next range or watermark asked on that client waited for it. A partition taken over
    (catch-up read, then the guard's look at the log start) paid it per partition, under the
    checkpointer's lock: 0.5 s of nothing learned each. So watermarks have a client of their own that
    never fetches, and the range reader's fetches wait at most `_FETCH_WAIT_MS` at the broker.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group_id: str,
        timeout_s: float = 15.0,
        *,
        patience_s: float = 300.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self.timeout_s = timeout_s
        #: How long a failing read is retried before its error is raised (`Settings.kafka_read_patience_s`).
        self.patience_s = patience_s
        self.metrics = metrics
        #: Reads ranges (assigned, fetches); `_meta` only asks for watermarks; `_group` for the committed.
        self._consumer: confluent_kafka.Consumer | None = None
        self._meta: confluent_kafka.Consumer | None = None
        self._group: confluent_kafka.Consumer | None = None

    async def _patiently(self, what: str, call: Callable[[], _T]) -> _T:
        """``call()`` in a thread, retried with backoff while it fails, for up to ``patience_s``; then its
        error (a `DeliveryError`) is raised."""
        deadline, backoff, failures = time.monotonic() + self.patience_s, FIRST_BACKOFF_S, 0
        while True:
            try:
                found = await asyncio.to_thread(call)
            except (DeliveryError, confluent_kafka.KafkaException) as exc:
                failures += 1
                if self.metrics is not None:
                    self.metrics.kafka_read_failures.inc()
                if time.monotonic() + backoff > deadline:
                    log.error("%s: %s failed %d time(s), giving up: %s", self.topic, what, failures, exc)
                    if isinstance(exc, DeliveryError):
                        raise
                    raise DeliveryError(f"kafka topic {self.topic}", f"{what}: {exc}") from exc
                log.warning("%s: %s failed (%s); retrying in %.1fs", self.topic, what, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            if failures:
                log.warning("%s: %s succeeded after %d failure(s)", self.topic, what, failures)
            return found

    def _client(self) -> confluent_kafka.Consumer:
        if self._consumer is None:
            self._consumer = self._unjoined(**{"fetch.wait.max.ms": _FETCH_WAIT_MS})
        return self._consumer

    def _watermarks_client(self) -> confluent_kafka.Consumer:
        if self._meta is None:
            self._meta = self._unjoined()
        return self._meta

    def _unjoined(self, **config: Any) -> confluent_kafka.Consumer:
        return confluent_kafka.Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"p13n-gap-reader-{uuid.uuid4().hex}",  # never joins: assign() only
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                **config,
            }
        )

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        """Records with ``start <= offset < end`` (offsets the log no longer has are skipped); raises
        `DeliveryError` once reading has failed for ``patience_s``."""
        return await self._patiently(
            f"reading [{partition}] {start}..{end - 1}", lambda: self._read(partition, start, end)
        )

    def _read(self, partition: int, start: int, end: int) -> list[Record]:
        consumer = self._client()
        consumer.assign([confluent_kafka.TopicPartition(self.topic, partition, start)])
        records: list[Record] = []
        try:
            while True:
                msg = consumer.poll(self.timeout_s)
                if msg is None:
                    raise DeliveryError(f"{self.topic}[{partition}]", f"no record at {start}..{end} in time")
                error = msg.error()
                if error is not None:
                    if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                        return records
                    raise DeliveryError(f"{self.topic}[{partition}]", str(error))
                offset = int(msg.offset() or 0)
                if offset >= end:
                    return records
                headers = msg.headers() or []
                records.append(Record(offset, msg.key(), msg.value(), is_control(headers)))
                if offset == end - 1:
                    return records
        finally:
            consumer.unassign()

    async def committed(self, partition: int) -> int | None:
        """The consumer group's committed offset of the partition (None when it has none)."""
        if self._group is None:
            # Same group id as the worker, but it never subscribes, so it never joins the group.
            self._group = confluent_kafka.Consumer(
                {"bootstrap.servers": self.bootstrap, "group.id": self.group_id, "enable.auto.commit": False}
            )
        group, tp = self._group, confluent_kafka.TopicPartition(self.topic, partition)
        [found] = await self._patiently(
            f"the committed offset of [{partition}]", lambda: group.committed([tp], 10.0)
        )
        return int(found.offset) if found.offset >= 0 else None

    async def watermarks(self, partition: int, *, patient: bool = True) -> tuple[int, int]:
        """(low, high): the first offset still in the log and the next offset to be written.

        ``patient=False``: one try (for measurements that must not hold up a timer while Kafka is away).
        """
        tp = confluent_kafka.TopicPartition(self.topic, partition)
        client = self._watermarks_client()  # made here, not in the threads: concurrent asks share one

        def ask() -> tuple[int, int]:
            low, high = client.get_watermark_offsets(tp, 10.0, False)
            return int(low), int(high)

        if not patient:
            return await asyncio.to_thread(ask)
        return await self._patiently(f"the watermarks of [{partition}]", ask)

    def close(self) -> None:
        for client in (self._consumer, self._meta, self._group):
            if client is not None:
                client.close()
        self._consumer = self._meta = self._group = None


#: ``process(partition, offset, key, value)``: handle one event record (never raises on bad input).
Process = Callable[[int, int, bytes | None, bytes | None], Awaitable[None]]


class OffsetGuard:
    """Admits each events-topic record exactly once and in offset order, repairing skipped ranges."""

    def __init__(
        self, reader: GapReader, profiles: MutableMapping[str, Any], process: Process, metrics: Metrics
    ) -> None:
        self.reader = reader
        self.profiles = profiles
        self.process = process
        self.metrics = metrics
        self._last_seen: dict[int, int] = {}

    async def expected(self, partition: int) -> int:
        """The next offset this partition must deliver.

        Before the guard has stored one: the group's committed offset, else the log start (where a
        new group begins reading).
        """
        stored = self.profiles.get(offset_key(partition))
        if stored is not None:
            return int(stored)
        committed = await self.reader.committed(partition)
        if committed is not None:
            return committed
        low, _ = await self.reader.watermarks(partition)
        return low

    async def on_message(
        self, partition: int, offset: int, key: bytes | None, value: bytes | None, control: bool
    ) -> None:
        expected = await self.expected(partition)
        if offset < expected:
            self.metrics.events.labels(outcome="redelivered").inc()
            return
        if offset > expected:
            missing = await self.reader.read(partition, expected, offset)
            log.warning(
                "%s[%d]: offsets %d..%d were skipped by the consumer; re-read %d record(s) from Kafka",
                self.reader.topic,
                partition,
                expected,
                offset - 1,
                len(missing),
            )
            for record in missing:
                if not record.control:
                    await self.process(partition, record.offset, record.key, record.value)
                    self.metrics.gap_repairs.inc()
                self.profiles[offset_key(partition)] = record.offset + 1
        if not control:
            await self.process(partition, offset, key, value)
        self.profiles[offset_key(partition)] = offset + 1

    async def stalled(self, highs: Mapping[int, int]) -> list[int]:
        """Partitions behind their high watermark (``highs``: partition -> high watermark, as the caller
        just read it) with no progress since the previous call."""
        out = []
        for partition, high in highs.items():
            expected = await self.expected(partition)
            if high > expected and self._last_seen.get(partition) == expected:
                out.append(partition)
            self._last_seen[partition] = expected
        return out
