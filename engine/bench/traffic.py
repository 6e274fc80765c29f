"""Writing the benchmark's synthetic catalog and events into Kafka, flat out or at a steady rate.

Events are stamped with the time they are sent, so ``ts`` -> Redis is the engine's freshness; each
``event_id`` is unique per run so the worker's deduplication never drops one.
"""

from __future__ import annotations

__all__ = ["encode_backlog", "send_backlog", "send_catalog", "send_events"]

import asyncio
import time
from collections.abc import Callable, Iterable

import confluent_kafka

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
    """Send events stamped now (at ``rate`` per second, or flat out); returns each user's last ``ts``.

    At a ``rate`` (a timed phase) the producer first connects and reads the metadata: a new producer's
    set-up (~0.5 s here) would otherwise count as the first events' latency.
    """
    if rate is not None:
        await producer.check(30.0)
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


def encode_backlog(events: Iterable[Event], *, run_id: str) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` records of ``events`` stamped now, each with a unique event id, ready to send.

    >>> from schemas.events import Event
    >>> [(k, b'"e1-0"' in v) for k, v in encode_backlog([Event(event_id="x", user_id="u1", item_id="i1",
    ...     type="click", ts=1_700_000_000_000)], run_id="e1")]
    [(b'u1', True)]
    """
    now = time.time_ns() // 1_000_000
    return [
        (event.user_id.encode(), encode(event.model_copy(update={"ts": now, "event_id": f"{run_id}-{n}"})))
        for n, event in enumerate(events)
    ]


def send_backlog(settings: Settings, records: list[tuple[bytes, bytes]], timeout_s: float = 120.0) -> float:
    """Write encoded events to the events topic as fast as the C client goes (blocking; run it in a
    thread), partitioned like every other producer (murmur2 of the user id); returns the seconds taken."""
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": settings.bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": 20,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(settings.events_topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
    left = producer.flush(timeout_s)
    if left:
        raise TimeoutError(f"{left} backlog record(s) still undelivered after {timeout_s:.0f}s")
    return time.perf_counter() - started
