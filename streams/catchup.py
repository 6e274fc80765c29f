"""After a restore: bring the checkpointed model up to what the profile table and the catalog already hold.

Events between the checkpoint's offset and the offset guard's expected one were counted in the profiles
by the previous worker but are not in the restored model: they are re-read from Kafka and learned into
the model only. Catalog records after the checkpoint's offset are applied again (they are upserts).
Never moves a checkpoint offset past a record it could not read: a failed read raises, and the replay
resumes there at the agent's next record.
"""

from __future__ import annotations

__all__ = ["CHUNK", "CatchUp"]

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from engine.ops.metrics import Metrics
from schemas.errors import InvalidEventError
from streams.checkpointer import Checkpointer
from streams.gaps import GapReader, OffsetGuard, Record
from streams.pipeline import Pipeline, Profiles

log = logging.getLogger(__name__)

#: Offsets read from Kafka per round trip while replaying.
CHUNK = 2000
#: Seconds between control records to an owned events partition that has not been caught up yet.
NUDGE_EVERY_S = 5.0

#: ``nudge(topic, partition)``: write a control record, so the agent of that partition runs once.
Nudge = Callable[[str, int], Awaitable[None]]


class CatchUp:
    """Replays what the model misses, per partition, before that partition's next record is handled."""

    def __init__(
        self,
        *,
        checkpointer: Checkpointer,
        pipeline: Pipeline,
        guard: OffsetGuard,
        events_reader: GapReader,
        items_reader: GapReader,
        metrics: Metrics,
        nudge: Nudge,
    ) -> None:
        self.checkpointer = checkpointer
        self.pipeline = pipeline
        self.guard = guard
        self.events_reader = events_reader
        self.items_reader = items_reader
        self.metrics = metrics
        self.nudge = nudge
        self._events_done: set[int] = set()
        self._items_seen: set[int] = set()
        self._nudged: dict[int, float] = {}

    # -- events: called by the events agent, under the checkpointer's lock, after table recovery ----

    async def events(self, partition: int, profiles: Profiles) -> None:
        """Before the first record of a partition: replay the events the profiles hold but the model not."""
        if partition in self._events_done:
            return
        topic = self.events_reader.topic
        expected = await self.guard.expected(partition)
        start = self.checkpointer.position(topic, partition)
        if start is None:
            # The model never saw this partition: it learns from where the worker goes on.
            self.checkpointer.advance(topic, partition, expected, records=0)
        elif start < expected:
            await self._replay_events(partition, start, expected, profiles)
        elif start > expected:
            log.warning(
                "%s[%d]: the profile table ends at %d, before the checkpoint's %d; those records update "
                "profiles only (the model holds them)",
                topic, partition, expected, start,
            )  # fmt: skip
        self._events_done.add(partition)

    def should_learn(self, partition: int, offset: int) -> bool:
        """Whether the model still has to learn this events record (False: the checkpoint holds it)."""
        start = self.checkpointer.position(self.events_reader.topic, partition)
        return start is None or offset >= start

    async def _replay_events(self, partition: int, start: int, end: int, profiles: Profiles) -> None:
        outcomes: dict[str, int] = {}

        def relearn(record: Record) -> None:
            try:
                outcome = self.pipeline.relearn(
                    record.value or b"", record.key, profiles, self.checkpointer.known
                )
            except Exception:  # noqa: BLE001 - one bad record must not stop the replay
                log.exception("replaying offset %d of partition %d failed", record.offset, partition)
                outcome = "failed"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

        read = await self._replay(self.events_reader, partition, start, end, relearn)
        self.metrics.checkpoint_replayed.labels(topic="events").inc(read)
        (log.warning if read else log.debug)(
            "%s[%d]: replayed offsets %d..%d into the restored model: %s",
            self.events_reader.topic, partition, start, end - 1, outcomes,
        )  # fmt: skip

    # -- items: called by the items agent (before each record) and by the timer (up to the tail) ----

    async def items(self, partition: int, offset: int) -> bool:
        """Before the items agent applies ``offset``: apply what the model misses before it.

        Returns False when the model already holds ``offset`` (it is older than the checkpoint's offset).
        """
        topic = self.items_reader.topic
        self._items_seen.add(partition)
        start = self.checkpointer.position(topic, partition)
        if start is None:
            if not self.checkpointer.restored:
                return True  # no checkpoint: the catalog is learned from where the consumer starts
            start, _ = await self.items_reader.watermarks(partition)
        if offset > start:
            await self._replay_items(partition, start, offset)
        return offset >= start

    async def items_tail(self, partitions: Iterable[int]) -> None:
        """From the timer, once per partition after a restore: catalog records after the checkpoint's
        offset that the agent will not see (the consumer resumes after them) are applied up to the tail.
        From then on the agent goes on in order."""
        if not self.checkpointer.restored:
            return
        for partition in partitions:
            if partition in self._items_seen:
                continue
            _, high = await self.items_reader.watermarks(partition)
            async with self.checkpointer.lock:
                await self.items(partition, high)

    async def _replay_items(self, partition: int, start: int, end: int) -> None:
        def apply(record: Record) -> None:
            try:
                self.pipeline.apply_item(record.value or b"")
            except InvalidEventError:
                pass  # dead-lettered the first time
            except Exception:  # noqa: BLE001 - one bad record must not stop the replay
                log.exception("replaying catalog offset %d of partition %d failed", record.offset, partition)

        read = await self._replay(self.items_reader, partition, start, end, apply)
        self.metrics.checkpoint_replayed.labels(topic="items").inc(read)
        (log.warning if read else log.debug)(
            "%s[%d]: applied catalog offsets %d..%d again", self.items_reader.topic, partition, start, end - 1
        )

    # -- shared -------------------------------------------------------------------------------

    async def _replay(
        self, reader: GapReader, partition: int, start: int, end: int, handle: Callable[[Record], None]
    ) -> int:
        """Read ``start <= offset < end`` in chunks and hand each record over (control records skipped);
        returns how many were handed over. The checkpoint's offset moves past a chunk only once it is
        handled; a read that keeps failing raises (`GapReader.read`) with the offset where it stopped."""
        low, _ = await reader.watermarks(partition)
        if low > start:
            log.error(
                "%s[%d]: offsets %d..%d are no longer in Kafka; the restored model misses them",
                reader.topic, partition, start, low - 1,
            )  # fmt: skip
            start = low
        read = 0
        for first in range(start, end, CHUNK):
            last = min(end, first + CHUNK)
            # Retried while Kafka is away, then raised: the checkpoint's offset stays before what was
            # not read, so the next try (the agent's next record) replays it (never taken as empty).
            records = await reader.read(partition, first, last)
            handled = [record for record in records if not record.control]
            for n, record in enumerate(handled):
                handle(record)
                if n % 100 == 99:
                    await asyncio.sleep(0)  # learning is CPU work: let Kafka heartbeats and timers run
            read += len(handled)
            self.checkpointer.advance(reader.topic, partition, last, records=len(handled))
        self.checkpointer.advance(reader.topic, partition, end, records=0)
        return read

    async def close(self, *_args: object, **_kwargs: object) -> None:
        """On shutdown: close the Kafka clients of the replay."""
        self.events_reader.close()
        self.items_reader.close()

    async def nudge_pending(self, owned: Iterable[int], now: float) -> None:
        """Owned events partitions not caught up yet get a control record, so their agent runs the replay
        (a partition without new events would otherwise never be caught up)."""
        for partition in owned:
            if partition in self._events_done or now - self._nudged.get(partition, -1e9) < NUDGE_EVERY_S:
                continue
            self._nudged[partition] = now
            await self.nudge(self.events_reader.topic, partition)
