"""The benchmark run: one worker in a fresh namespace, the measurements in order, then clean-up.

Order: catalog, throughput (flat-out input), raw consumer on the same records, freshness at half the
measured rate, lookups, memory; the worker stops and the namespace goes; then the in-process model cost.
"""

from __future__ import annotations

__all__ = ["BenchConfig", "run"]

import asyncio
import dataclasses
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from engine.bench import lookup, model_cost, readings, sandbox
from engine.bench.machine import cpu_seconds, describe, percentile, rss_bytes
from engine.bench.raw_consume import consume_rate
from engine.bench.report import judge
from engine.bench.traffic import send_catalog, send_events
from engine.bench.worker import BenchWorker
from engine.ingest.kafka import AsyncProducer
from engine.ingest.produce import ensure_engine_topics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.synth import Clickstream
from schemas import keys
from schemas.errors import ServiceUnavailableError, StackError
from schemas.events import Event

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What a run measures; the defaults finish in a few minutes on a 2-core machine."""

    events: int = 20_000
    users: int = 2_000
    items: int = 3_000
    top_n: int = 20
    freshness_s: float = 15.0
    lookup_s: float = 5.0
    lookup_processes: int = 2
    lookup_tasks: int = 16
    lookup_connections: int = 2
    lookup_native_clients: int = 16
    lookup_native_requests: int = 100_000
    scaling_items: tuple[int, int] = (10_000, 1_000_000)
    scaling_warm_events: int = 500
    scaling_events: int = 300
    memory_sample: int = 200
    memory_users: int = 20_000
    seed: int = 0
    #: A River classifier spec for the worker's ``PERSONALIZE_RIVER_RERANKER`` (None: the built-in model
    #: alone). The in-process model-cost phases time the built-in model only, so they are skipped then.
    river: str | None = None


async def _live(settings: Settings, config: BenchConfig, log: Log, log_dir: Path) -> dict[str, Any]:
    world = Clickstream(config.users, config.items, seed=config.seed)
    stream = list(world.events(config.events + int(config.freshness_s * 2_000)))
    env = {} if config.river is None else {"PERSONALIZE_RIVER_RERANKER": config.river}
    worker = BenchWorker(settings, log_dir / f"worker-{settings.namespace}.log", env)
    store = RedisStore.from_url(settings.redis, settings.namespace)
    raw_group = f"{settings.app_id}-raw"
    out: dict[str, Any] = {"worker_log": str(worker.log_path)}
    try:
        await ensure_engine_topics(settings)
        worker.start()
        log(f"worker pid {worker.pid} starting in namespace {settings.namespace}")
        await worker.wait_until(store, "beat_ms", 1, 120.0)
        out["model_version"] = await worker.model_version(store)
        async with AsyncProducer(settings.bootstrap) as producer:
            n_items = await send_catalog(producer, settings, world)
            await worker.wait_until(store, "items", n_items, 120.0)
            log(f"catalog of {n_items} learned; sending {config.events} events flat out")
            sent_ms = time.time_ns() // 1_000_000
            cpu_before = cpu_seconds(worker.pid)
            await send_events(producer, settings, stream[: config.events], run_id=f"t{uuid.uuid4().hex[:8]}")
            timeout = max(120.0, config.events / 20)
            await _progress_until(worker, store, config.events, timeout, log)
            # The worker's user + system CPU over the throughput phase, per event (its timers included).
            out["cpu_us_per_event"] = (cpu_seconds(worker.pid) - cpu_before) / config.events * 1e6
            await asyncio.sleep(0.5)
            users = [f"u{i + 1}" for i in range(config.users)]
            written = await readings.list_numbers(store, users)
            last_ms = max(numbers[1] for numbers in written.values())
            out["events_per_s"] = config.events / max((last_ms - sent_ms) / 1000.0, 1e-3)
            log(f"throughput {out['events_per_s']:.0f} events/s; raw consumer next")
            out["raw_consume_per_s"] = await asyncio.to_thread(
                consume_rate, settings.bootstrap, settings.events_topic, raw_group, config.events
            )
            rate = max(out["events_per_s"] / 2, 1.0)
            n_fresh = max(int(rate * config.freshness_s), 1)
            log(f"freshness: {n_fresh} events at {rate:.0f}/s")
            last_ts = await send_events(
                producer,
                settings,
                stream[config.events : config.events + n_fresh],
                run_id=f"f{uuid.uuid4().hex[:8]}",
                rate=rate,
            )
        fresh = await readings.freshness(store, last_ts, 120.0)
        if not fresh:
            raise ServiceUnavailableError("bench worker (freshness phase)", settings.redis, 120.0)
        out["freshness_ms"] = {
            "p50": percentile(fresh, 50),
            "p99": percentile(fresh, 99),
            "users": len(fresh),
        }
        out["freshness_rate_per_s"] = rate
        with_recs = [u for u in users if (await store.read(u, 1)).items]
        out.update(await _lookups(settings, config, with_recs, log))
        memory = await readings.redis_bytes_per_user(store, with_recs[: config.memory_sample])
        out["redis_bytes_per_user"] = memory["total"]
        out["redis_bytes"] = memory
        out["rss_mb_per_100k_users"] = await _rss_per_user(worker, store, settings, world, config, log)
        return out
    finally:
        worker.stop()
        await store.close()
        removed = await sandbox.remove(settings, groups=[settings.app_id, raw_group])
        log(
            f"removed namespace {settings.namespace}: "
            f"{removed['redis_keys']} keys, {removed['topics']} topics"
        )


async def _lookups(settings: Settings, config: BenchConfig, users: list[str], log: Log) -> dict[str, Any]:
    """Lookup latency and rate: redis-benchmark (C) when installed, and the Python client always."""
    log(f"lookups: redis-benchmark, {config.lookup_native_clients} connections")
    native = await asyncio.to_thread(
        lookup.measure_native,
        settings.redis,
        keys.user_list(settings.namespace, users[0]),
        clients=config.lookup_native_clients,
        requests=config.lookup_native_requests,
    )
    log(f"lookups: Python, {config.lookup_processes} processes x {config.lookup_tasks} tasks")
    python = await asyncio.to_thread(
        lookup.measure,
        settings.redis,
        settings.namespace,
        users,
        processes=config.lookup_processes,
        tasks=config.lookup_tasks,
        connections=config.lookup_connections,
        seconds=config.lookup_s,
    )
    python_client = (
        f"redis-py asyncio + hiredis, {config.lookup_processes} processes x {config.lookup_tasks} tasks, "
        "random users"
    )
    main, client = (
        (native, f"redis-benchmark (C), {config.lookup_native_clients} connections, one user's key")
        if native is not None
        else (python, python_client)
    )
    return {
        "lookup_ms": {"p50": main.p50_ms, "p99": main.p99_ms},
        "lookups_per_s": main.per_s,
        "lookup_client": client,
        "lookup_python": {"p50_ms": python.p50_ms, "p99_ms": python.p99_ms, "per_s": python.per_s},
        "lookup_python_client": python_client,
    }


async def _rss_per_user(
    worker: BenchWorker,
    store: RedisStore,
    settings: Settings,
    world: Clickstream,
    config: BenchConfig,
    log: Log,
) -> float:
    """The worker's resident memory per 100k users: its growth over ``memory_users`` new users' first
    events (a marginal cost: the process's fixed memory and the earlier users are in both readings)."""
    log(f"memory: first events of {config.memory_users} new users")
    items = [record.item_id for record in world.items()]
    rng = random.Random(config.seed)
    now = time.time_ns() // 1_000_000  # send_events stamps each again as it goes
    newcomers = [
        Event(event_id=f"m{n}", user_id=f"m{n}", item_id=rng.choice(items), type="click", ts=now)
        for n in range(config.memory_users)
    ]
    done = (await worker.beat(store)).get("events", 0)
    before = rss_bytes(worker.pid)
    async with AsyncProducer(settings.bootstrap) as producer:
        await send_events(producer, settings, newcomers, run_id=f"m{uuid.uuid4().hex[:8]}")
    await _progress_until(
        worker, store, done + config.memory_users, max(120.0, config.memory_users / 20), log
    )
    return max(rss_bytes(worker.pid) - before, 0) / config.memory_users * 100_000 / 2**20


async def _progress_until(
    worker: BenchWorker, store: RedisStore, total: int, timeout_s: float, log: Log
) -> None:
    deadline = time.monotonic() + timeout_s
    last_report = 0.0
    while True:
        beat = await worker.beat(store)
        done = beat.get("events", 0)
        if done >= total:
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"bench worker did {done} of {total} events in {timeout_s:.0f}s; log {worker.log_path}"
            )
        if time.monotonic() - last_report > 10:
            log(f"worker processed {done} of {total} events")
            last_report = time.monotonic()
        await asyncio.sleep(0.25)


def _model_cost(n_items: int, config: BenchConfig, console: Console) -> float:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"catalog of {n_items} items", total=n_items)
        return model_cost.per_event_us(
            n_items,
            users=min(config.users, 200),
            warm_events=config.scaling_warm_events,
            measured_events=config.scaling_events,
            top_n=config.top_n,
            seed=config.seed,
            progress=lambda done, _total: bar.update(task, completed=done),
        )


def run(base: Settings, config: BenchConfig, *, console: Console, log_dir: Path) -> dict[str, Any]:
    """Measure everything; the JSON-ready report (see docs/benchmarks.md for the fields)."""

    def log(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")

    started = time.monotonic()
    asyncio.run(sandbox.check_stack(base))
    settings = sandbox.fresh_settings(base, top_n=config.top_n, metrics_port=0)
    report = asyncio.run(_live(settings, config, log, log_dir))
    report["ratio"] = report["events_per_s"] / report["raw_consume_per_s"]
    small, large = config.scaling_items
    # These time the built-in model in-process: not what a River run measures, so it skips them.
    phases = (
        ()
        if config.river is not None
        else ((small, "us_per_event_10k_items"), (large, "us_per_event_1m_items"))
    )
    for n_items, field in phases:
        log(f"model cost in-process with {n_items} items in the catalog")
        report[field] = _model_cost(n_items, config, console)
    settings_used = dataclasses.asdict(config)
    settings_used.update(
        partitions=settings.partitions, freshness_rate_per_s=report.pop("freshness_rate_per_s")
    )
    report["settings"] = settings_used
    report["machine"] = describe()
    report["namespace"] = settings.namespace
    report["seconds"] = time.monotonic() - started
    report["targets"] = judge(report)
    return report
