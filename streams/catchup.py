"""When the group gives this worker an events partition: bring its model up to what the profile table holds.

Events between the model's position on the partition (from the checkpoint it restored, or where this
worker's replica reader stopped following the partition, streams/replica.py) and the offset guard's
expected one were counted in the profiles by the previous owner but are not in this model: they are
re-read from Kafka and learned into the model only. A model that never followed the partition learns it
from the log start. The catalog needs none of this: every worker's replica reads all of it. Never moves
a model position past a record it could not read: a failed read raises, and the replay resumes there at
the agent's next record.
"""

from __future__ import annotations

__all__ = ["CHUNK", "CatchUp"]

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from engine.ops.metrics import Metrics
from streams.checkpointer import Checkpointer
from streams.gaps import GapReader, OffsetGuard, Record
from streams.pipeline import Pipeline, Profiles

log = logging.getLogger(__name__)

#: Offsets read from Kafka per round trip while replaying.
CHUNK = 2000
#: Records learned between yields to the event loop (heartbeats and timers run in between).
SLICE = 100
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
        metrics: Metrics,
        nudge: Nudge,
    ) -> None:
        self.checkpointer = checkpointer
        self.pipeline = pipeline
        self.guard = guard
        self.events_reader = events_reader
        self.metrics = metrics
        self.nudge = nudge
        self._events_done: set[int] = set()
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
            # The model never followed this partition: it learns the partition's history first (model
            # only, not ranked: this model never ranked those users).
            start, _ = await self.events_reader.watermarks(partition)
            if start < expected:
                await self._replay_events(partition, start, expected, profiles, rank=False)
            else:
                self.checkpointer.advance(topic, partition, start, records=0)
        elif start < expected:
            await self._replay_events(partition, start, expected, profiles)
        elif start > expected:
            log.info(
                "%s[%d]: the profile table ends at %d, before the model's %d; those records update "
                "profiles only (the model holds them)",
                topic, partition, expected, start,
            )  # fmt: skip
        self._events_done.add(partition)

    def revoked(self, partitions: Iterable[int]) -> None:
        """The group took these partitions away: if they come back, catch the model up again first."""
        self._events_done.difference_update(partitions)

    def should_learn(self, partition: int, offset: int) -> bool:
        """Whether the model still has to learn this events record (False: the checkpoint holds it)."""
        start = self.checkpointer.position(self.events_reader.topic, partition)
        return start is None or offset >= start

    async def _replay_events(
        self, partition: int, start: int, end: int, profiles: Profiles, *, rank: bool = True
    ) -> None:
        outcomes: dict[str, int] = {}
        known = self.checkpointer.known

        def relearn(records: list[Record]) -> None:
            found: list[str] = []
            if rank:
                for record in records:
                    try:
                        found.append(self.pipeline.relearn(record.value or b"", record.key, profiles, known))
                    except Exception:  # noqa: BLE001 - one bad record must not stop the replay
                        log.exception("replaying offset %d of partition %d failed", record.offset, partition)
                        found.append("failed")
            else:  # model only, in bulk (`Pipeline.learn_others_many`)
                try:
                    found = self.pipeline.learn_others_many([(r.value or b"", r.key) for r in records], known)
                except Exception:  # noqa: BLE001 - one bad run must not stop the replay
                    log.exception(
                        "replaying from offset %d of partition %d failed", records[0].offset, partition
                    )
                    found = ["failed"] * len(records)
            for outcome in found:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

        read = await self._replay(self.events_reader, partition, start, end, relearn)
        self.metrics.checkpoint_replayed.labels(topic="events").inc(read)
        (log.warning if read else log.debug)(
            "%s[%d]: replayed offsets %d..%d into the restored model: %s",
            self.events_reader.topic, partition, start, end - 1, outcomes,
        )  # fmt: skip

    # -- shared -------------------------------------------------------------------------------

    async def _replay(
        self, reader: GapReader, partition: int, start: int, end: int, handle: Callable[[list[Record]], None]
    ) -> int:
        """Read ``start <= offset < end`` in chunks and hand the records over in order, up to `SLICE` at a
        time (control records skipped); returns how many were handed over. The checkpoint's offset moves
        past a chunk only once it is handled; a read that keeps failing raises (`GapReader.read`) with
        the offset where it stopped."""
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
            for at in range(0, len(handled), SLICE):
                handle(handled[at : at + SLICE])
                await asyncio.sleep(0)  # learning is CPU work: let Kafka heartbeats and timers run
            read += len(handled)
            self.checkpointer.advance(reader.topic, partition, last, records=len(handled))
        self.checkpointer.advance(reader.topic, partition, end, records=0)
        return read

    async def close(self, *_args: object, **_kwargs: object) -> None:
        """On shutdown: close the Kafka client of the replay."""
        self.events_reader.close()

    async def nudge_pending(self, owned: Iterable[int], now: float) -> None:
        """Owned events partitions not caught up yet get a control record, so their agent runs the replay
        (a partition without new events would otherwise never be caught up)."""
        for partition in owned:
            if partition in self._events_done or now - self._nudged.get(partition, -1e9) < NUDGE_EVERY_S:
                continue
            self._nudged[partition] = now
            await self.nudge(self.events_reader.topic, partition)
