"""The framework's ceiling: how fast a bare Faust agent drains the events topic on this machine.

Same app settings as the worker (`streams.app`: raw values, memory store, ``take_events`` batches of
``PERSONALIZE_BATCH_MAX``), but the agent only counts records: no decoding, no model, no Redis, no table.
What it reaches bounds `personalize bench`'s ``events_per_s`` from above, next to the bare confluent-kafka
consumer's ``raw_consume_per_s``. Runs in a throw-away namespace on the local stack (removed at the end).

    .venv/bin/python bench/faust_ceiling.py --events 100000
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
import uuid

import faust
import orjson

from engine.bench import sandbox
from engine.bench.traffic import send_events
from engine.ingest.kafka import AsyncProducer
from engine.ingest.produce import ensure_engine_topics
from engine.ops.settings import Settings, load
from models.synth import Clickstream


async def _fill(settings: Settings, n: int) -> None:
    await sandbox.check_stack(settings)
    await ensure_engine_topics(settings)
    world = Clickstream(2_000, 3_000, seed=0)
    async with AsyncProducer(settings.bootstrap) as producer:
        await send_events(producer, settings, world.events(n), run_id=f"c{uuid.uuid4().hex[:8]}")


def _drain(settings: Settings, n: int) -> dict[str, float]:
    app = faust.App(
        f"{settings.app_id}-ceiling",
        broker=[f"kafka://{host}" for host in settings.bootstrap.split(",")],
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
    )
    topic = app.topic(settings.events_topic, partitions=settings.partitions)
    seen = {"records": 0.0, "first": 0.0, "last": 0.0}

    @app.agent(topic)
    async def count(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take_events(settings.batch_max, within=settings.batch_within_s):  # type: ignore[attr-defined]
            if not seen["records"]:
                seen["first"] = time.perf_counter()
            seen["records"] += len(batch)
            if seen["records"] >= n:
                seen["last"] = time.perf_counter()
                os.kill(os.getpid(), signal.SIGTERM)

    try:
        faust.Worker(app, loglevel=logging.WARNING, quiet=True).execute_from_commandline()
    except SystemExit:  # the worker exits the process when it stops; the count is what matters here
        pass
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    settings = sandbox.fresh_settings(load())
    try:
        started = time.perf_counter()
        asyncio.run(_fill(settings, args.events))
        print(f"sent {args.events} events in {time.perf_counter() - started:.1f} s")
        seen = _drain(settings, args.events)
    finally:
        groups = [f"{settings.app_id}-ceiling"]
        asyncio.run(sandbox.remove(settings, groups=groups))
    # The first batch only starts the clock, as in the raw consumer.
    rate = (seen["records"] - 1) / max(seen["last"] - seen["first"], 1e-9)
    print(orjson.dumps({"records": seen["records"], "bare_faust_per_s": rate}).decode())


if __name__ == "__main__":
    main()
