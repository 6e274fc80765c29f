"""The owner's path in-process: what a worker does for its own users' events, without Kafka or Faust.

`Pipeline.prepare` and `Pipeline.stage_event` for each batch's records and `Pipeline.flush` after it,
against the real Redis in a namespace of its own (removed after), with the prequential quality monitor
and the worker's garbage collector settings (`engine.ops.gc_tuning`): decoding, validation,
deduplication, the profile, learning, ranking, explaining and writing the lists. A worker's CPU per
event in a drain minus this is what Faust, Kafka's clients and the changelog cost it; and on a machine
whose speed varies from hour to hour, it says how fast the machine was when the run was taken.

Run by `personalize bench --workers` in a process of its own (``python -m streams.owner_path USERS ITEMS
EVENTS``, settings from the environment; prints one JSON object): the engine's bench does not import the
worker's code.
"""

from __future__ import annotations

__all__ = ["main", "owner_us_per_event"]

import asyncio
import sys
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from engine.bench import sandbox
from engine.bench.traffic import encode_backlog
from engine.ops import gc_tuning
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.recommender import HybridRecommender
from models.synth import Clickstream
from streams.phases import OWNER_PHASES, Timers
from streams.pipeline import Pipeline
from streams.quality import Quality


async def _nowhere(_topic: str, _key: bytes | None, _value: bytes) -> None:
    """The pipeline's sender (dead letters, drift records): nothing is sent in-process."""


async def owner_us_per_event(
    base: Settings,
    *,
    users: int,
    items: int,
    events: int,
    batch: int = 500,
    seed: int = 0,
    timers: Timers | None = None,
) -> float:
    """Microseconds of this thread's CPU per event over the second half of ``events`` records of the
    bench's synthetic stream, staged in batches of ``batch`` (the first half warms the model up), in a
    fresh namespace of ``base``'s stack; ``timers`` (`streams.phases`), if given, time that half's phases."""
    settings = sandbox.fresh_settings(base)
    world = Clickstream(users, items, seed=seed)
    model = HybridRecommender(seed=seed)
    for record in world.items():
        model.learn_item(record)
    metrics = Metrics.create(CollectorRegistry(), settings.namespace, model.version)
    store = RedisStore.from_url(settings.redis, settings.namespace, user_ttl_s=3600, timeout_s=5)
    quality = Quality(model=model, store=store, metrics=metrics, send=_nowhere, settings=settings)
    for record in world.items():  # as `Pipeline.apply_item` does: the drift monitors know the categories
        quality.learn_item(record)
    pipeline = Pipeline(
        model=model, store=store, metrics=metrics, send=_nowhere, events_topic=settings.events_topic,
        dead_letter_topic=settings.dead_letter_topic, top_n=settings.top_n, quality=quality,
    )  # fmt: skip
    records = encode_backlog(list(world.events(events)), run_id="owner")
    profiles: dict[str, Any] = {}
    half = len(records) // 2
    gc_tuning.tune(settings.gc_threshold)  # as the worker does once started

    async def stage(start: int, stop: int) -> None:
        for first in range(start, stop, batch):
            pipeline.prepare(value for _, value in records[first : min(first + batch, stop)])
            for offset in range(first, min(first + batch, stop)):
                key, value = records[offset]
                await pipeline.stage_event(value, key, profiles, position=offset)
            await pipeline.flush()

    try:
        await stage(0, half)
        started = time.thread_time()
        if timers is None:
            await stage(half, len(records))
        else:
            with timers:
                await stage(half, len(records))
        return (time.thread_time() - started) / max(1, len(records) - half) * 1e6
    finally:
        await store.close()
        await sandbox.remove(settings)


def main(argv: list[str]) -> None:
    """``USERS ITEMS EVENTS [--phases]``: print ``{"us_per_event": ...}``, with ``--phases`` the timed
    half's microseconds per event of each phase too (``"phases_us"``, `streams.phases`)."""
    users, items, events = (int(arg) for arg in argv if arg != "--phases")
    timers = Timers(OWNER_PHASES) if "--phases" in argv else None
    us = asyncio.run(owner_us_per_event(Settings(), users=users, items=items, events=events, timers=timers))
    found: dict[str, Any] = {"us_per_event": us}
    if timers is not None:
        found["phases_us"] = timers.us_per_event(events - events // 2, us)
    sys.stdout.buffer.write(orjson.dumps(found) + b"\n")


if __name__ == "__main__":
    main(sys.argv[1:])
