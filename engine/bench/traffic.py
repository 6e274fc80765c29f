"""Writing the benchmark's synthetic catalog and events into Kafka, flat out or at a steady rate.

Events are stamped with the time they are sent, so ``ts`` -> Redis is the engine's freshness; each
``event_id`` is unique per run so the worker's deduplication never drops one.
"""

from __future__ import annotations

__all__ = ["send_catalog", "send_events"]

import asyncio
import time
from collections.abc import Callable, Iterable

from engine.ingest.kafka import AsyncProducer, Delivery
from engine.ingest.produce import send_event
from engine.ops.settings import Settings
from models.synth import Clickstream
from schemas.events import Event, encode

_WINDOW = 5_000


async def send_catalog(producer: AsyncProducer, settings: Settings, world: Clickstream) -> int:
    """Every catalog record, keyed by item_id, confirmed by the broker."""
    records = world.items()
    for start in range(0, len(records), _WINDOW):
        chunk = records[start : start + _WINDOW]
        await asyncio.gather(
            *(producer.send_nowait(settings.items_topic, encode(r), r.item_id.encode()) for r in chunk)
        )
    return len(records)


async def send_events(
    producer: AsyncProducer,
    settings: Settings,
    events: Iterable[Event],
    *,
    run_id: str,
    rate: float | None = None,
    progress: Callable[[int], None] = lambda _n: None,
) -> dict[str, int]:
    """Send events stamped now (at ``rate`` per second, or flat out); returns each user's last ``ts``."""
    last_ts: dict[str, int] = {}
    pending: list[asyncio.Future[Delivery]] = []
    started = time.monotonic()
    for index, event in enumerate(events):
        if rate is not None:
            ahead = started + index / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        live = event.model_copy(update={"ts": time.time_ns() // 1_000_000, "event_id": f"{run_id}-{index}"})
        pending.append(send_event(producer, settings, live))
        last_ts[live.user_id] = live.ts
        if len(pending) >= _WINDOW:
            await asyncio.gather(*pending)
            pending.clear()
            progress(index + 1)
    await asyncio.gather(*pending)
    return last_ts
