"""The framework's ceiling: how fast a bare Faust agent drains the events topic on this machine.

Same app settings as the worker (`streams.app`: raw values, memory store, ``take_events`` batches of
``PERSONALIZE_BATCH_MAX``), but the agent only counts records: no decoding, no model, no Redis, no table.
What it reaches bounds the worker's rate from above. Runs as its own process (a Faust worker owns its
event loop and ends the process), in its own consumer group, on the namespace of ``PERSONALIZE_NAMESPACE``
(`personalize bench --workers` runs it on its backlog before the workers start), or with ``--fill`` in a
throw-away namespace that it fills first and removes at the end:

    .venv/bin/python -m engine.bench.faust_ceiling --fill --events 100000

Prints one JSON line (and writes it to ``--out``): ``{"records": n, "bare_faust_per_s": rate,
"cpu_us_per_event": user + system CPU per record}``.
"""

from __future__ import annotations

__all__ = ["drain", "measure"]

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import faust
import orjson

from engine.bench import sandbox
from engine.bench.machine import cpu_seconds
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


def group(settings: Settings) -> str:
    """The consumer group of the bare agent (the benchmark deletes it with the namespace)."""
    return f"{settings.app_id}-ceiling"


def drain(settings: Settings, n: int) -> dict[str, float]:
    """Run a bare Faust worker until its agent has counted ``n`` records; the first batch only starts
    the clock (its records were fetched before it ran), as in the raw consumer."""
    with tempfile.TemporaryDirectory(prefix="p13n-ceiling-") as datadir:  # not the working directory
        return _drain(settings, n, Path(datadir))


def _drain(settings: Settings, n: int, datadir: Path) -> dict[str, float]:
    app = faust.App(
        group(settings),
        broker=[f"kafka://{host}" for host in settings.bootstrap.split(",")],
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
    )
    topic = app.topic(settings.events_topic, partitions=settings.partitions)
    seen = {"records": 0.0, "first": 0.0, "last": 0.0, "cpu_first": 0.0, "cpu_last": 0.0}

    @app.agent(topic)
    async def count(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take_events(settings.batch_max, within=settings.batch_within_s):  # type: ignore[attr-defined]
            if not seen["records"]:
                seen["first"], seen["cpu_first"] = time.perf_counter(), cpu_seconds(os.getpid())
                seen["first_batch"] = len(batch)
            seen["records"] += len(batch)
            if seen["records"] >= n and not seen["last"]:
                seen["last"], seen["cpu_last"] = time.perf_counter(), cpu_seconds(os.getpid())
                os.kill(os.getpid(), signal.SIGTERM)

    try:
        faust.Worker(app, loglevel=logging.WARNING, quiet=True).execute_from_commandline()
    except SystemExit:  # the worker exits the process when it stops; the count is what matters here
        pass
    counted = seen["records"] - seen.get("first_batch", 0.0)
    elapsed = max(seen["last"] - seen["first"], 1e-9)
    return {
        "records": seen["records"],
        "bare_faust_per_s": counted / elapsed,
        "cpu_us_per_event": (seen["cpu_last"] - seen["cpu_first"]) / max(counted, 1.0) * 1e6,
    }


def measure(settings: Settings, n: int, log_path: Path, timeout_s: float = 300.0) -> dict[str, float]:
    """Run `drain` in a child process on ``settings``' namespace (its events topic must hold ``n``
    records); the child's JSON line."""
    env = dict(os.environ)
    env.update(PERSONALIZE_NAMESPACE=settings.namespace, PERSONALIZE_PARTITIONS=str(settings.partitions))
    result_path = log_path.with_suffix(".json")
    result_path.unlink(missing_ok=True)
    # -c, not -m: the package imports this module first, which -m would run a second time.
    run_main = "from engine.bench.faust_ceiling import main; main()"
    command = [sys.executable, "-c", run_main, "--events", str(n), "--out", str(result_path)]
    with log_path.open("ab") as output:
        done = subprocess.run(command, env=env, stdout=output, stderr=output, timeout=timeout_s)
    if done.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"bare Faust agent failed (exit {done.returncode}); see {log_path}")
    result: dict[str, float] = orjson.loads(result_path.read_bytes())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--fill", action="store_true", help="Fill a throw-away namespace first.")
    parser.add_argument("--out", type=Path, help="Also write the JSON to this file.")
    args = parser.parse_args()
    settings = sandbox.fresh_settings(load()) if args.fill else load()
    try:
        if args.fill:
            asyncio.run(_fill(settings, args.events))
        seen = drain(settings, args.events)
    finally:
        if args.fill:
            asyncio.run(sandbox.remove(settings, groups=[group(settings)]))
    if args.out is not None:
        args.out.write_bytes(orjson.dumps(seen))
    print(orjson.dumps(seen).decode())


if __name__ == "__main__":
    main()
