"""One batch of events-topic records as the events agent handles it, under the checkpointer's lock.

The records are decoded and validated first, in one pass (`Pipeline.prepare`); then each is admitted
in order (catch-up first, then the offset guard), then the batch's lists go to Redis and its table
writes to the changelog. Those two flushes run even when admitting a record fails (a gap or catch-up
read that kept failing): what was handled before is kept, and the error is raised after them, so the
agent restarts and the guard re-reads the rest. Never swallows the error.
"""

from __future__ import annotations

__all__ = ["Incoming", "handle_batch"]

import asyncio
from collections.abc import Iterable
from typing import NamedTuple

from streams.catchup import CatchUp
from streams.changelog import BatchWrites
from streams.gaps import OffsetGuard
from streams.pipeline import Pipeline


class Incoming(NamedTuple):
    """One events-topic record of a batch."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    #: An engine's control record (`streams.gaps.CONTROL_HEADER`), never an event.
    control: bool


async def handle_batch(
    records: Iterable[Incoming],
    *,
    lock: asyncio.Lock,
    catchup: CatchUp,
    guard: OffsetGuard,
    pipeline: Pipeline,
    writes: BatchWrites,
) -> None:
    """Admit ``records`` in order, then flush the batch's lists and table writes (also on an error)."""
    batch = list(records)
    # The whole batch under the lock: a checkpoint never sees half a batch's effects.
    async with lock:
        try:
            pipeline.prepare(record.value for record in batch if not record.control)
            for record in batch:
                writes.partition = record.partition
                await catchup.events(record.partition, writes)
                await guard.on_message(
                    record.partition, record.offset, record.key, record.value, record.control
                )
        finally:
            try:
                await pipeline.flush()
            finally:
                writes.flush()
