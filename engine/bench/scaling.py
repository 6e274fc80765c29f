"""`personalize bench --workers 1,2,4`: N workers of one namespace draining a backlog, per worker count.

Per count, in a fresh namespace of `ScalingConfig.partitions` partitions: the catalog goes in, N worker
processes start together and are left until the consumer group is stable (every worker owns events
partitions) and the catalog is learned; then the backlog is written at once by the C client (well under
a second), and the measured window starts when that write has finished, so no producer competes with the
workers and no rebalance falls in it. Measured in the window: events/s (events counted in the written
lists, from Redis, against the time of the lists' writes), CPU per event (user + system of the worker
processes, from /proc) and each worker's memory; then freshness at half that rate, and the workers'
memory growth over new users. `bare_faust` times a bare Faust agent on the same backlog in a namespace
of its own (`engine.bench.faust_ceiling`).

The bare agent and the counts take turns for `ScalingConfig.rounds` rounds (bare, 1, 2, 4, bare, 1, 2,
4, ...), each drain in a fresh namespace; later rounds measure the drain only. Each count reports its
median drain (and every drain's rate), so a ratio between counts compares like with like on a machine
whose speed moves by 5-10% from one half-minute to the next.
"""

from __future__ import annotations

__all__ = ["ScalingConfig", "bare_faust", "run", "run_count", "wait_for_group"]

import asyncio
import contextlib
import dataclasses
import os
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka.admin import AdminClient
from rich.console import Console

from engine.bench import faust_ceiling, owner_path, readings, sandbox
from engine.bench.machine import cpu_seconds, describe, percentile, rss_bytes
from engine.bench.scaling_report import analyse, median_ceiling, median_drain
from engine.bench.traffic import encode_backlog, send_backlog, send_catalog, send_events
from engine.bench.worker import BenchWorker, stop_all
from engine.ingest.kafka import AsyncProducer
from engine.ingest.produce import ensure_engine_topics
from engine.ops import stack
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.synth import Clickstream
from schemas.errors import StackError
from schemas.events import Event

Log = Callable[[str], None]

#: Seconds between progress readings while the backlog drains, and until its first lists are out (short,
#: so that the window starts at the first batch's lists even when the backlog drains within one reading).
#: A reading runs a script over every user's list head in Redis (~3.4 ms for 2,000 users): every 0.2 s
#: it took 1.7% of a core from the two workers' drain, on a machine they already saturate. The window
#: ends at the last list's own write time, so reading less often does not stretch it.
_POLL_S = 0.5
_FIRST_POLL_S = 0.01


@dataclass(frozen=True, slots=True)
class ScalingConfig:
    """What a scaling run measures; the defaults take about a minute per worker count here."""

    workers: tuple[int, ...] = (1, 2, 4)
    backlog: int = 30_000
    users: int = 2_000
    items: int = 3_000
    partitions: int = 12
    top_n: int = 20
    freshness_s: float = 10.0
    memory_users: int = 10_000
    memory_sample: int = 200
    seed: int = 0
    #: Longest wait for the workers to join and learn the catalog, and for the backlog to drain.
    timeout_s: float = 300.0
    #: Events of the owner's path timed in-process, without Kafka (`engine.bench.owner_path`; 0: not).
    owner_events: int = 20_000
    #: Also time the owner's path phase by phase (`streams.phases`), in a run of its own.
    phases: bool = False
    #: Drains per worker count, the counts (and the bare agent) taking turns round by round; each count's
    #: figures are its median drain's (`scaling_report.median_drain`), so a ratio of two counts does not
    #: hang on how fast this shared machine was in the half-minute of one of them.
    rounds: int = 5


def _group_ready(admin: AdminClient, group: str, topic: str, workers: int) -> bool:
    """The group is stable with ``workers`` members, each owning partitions of ``topic``."""
    try:
        description = admin.describe_consumer_groups([group])[group].result(timeout=5)
    except confluent_kafka.KafkaException:
        return False
    if description.state != confluent_kafka.ConsumerGroupState.STABLE:
        return False
    members = description.members
    owning = [
        m for m in members if m.assignment and any(tp.topic == topic for tp in m.assignment.topic_partitions)
    ]
    return len(members) == workers and len(owning) == workers


async def wait_for_group(
    settings: Settings, workers: Sequence[BenchWorker], store: RedisStore, items: int, timeout_s: float
) -> None:
    """Until the workers' group is stable with every worker owning events partitions, and every worker
    has learned the ``items`` catalog records (each reads the whole catalog: a worker still reading it
    has not joined the group yet, or is about to make it rebalance)."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for worker in workers:
            worker.check_alive()
        beats = [await w.beat(store) for w in workers]
        learned = min(b.get("items", 0) for b in beats)
        if learned >= items and await asyncio.to_thread(
            _group_ready, admin, settings.app_id, settings.events_topic, len(workers)
        ):
            return
        await asyncio.sleep(0.5)
    raise StackError(
        f"{len(workers)} bench workers did not settle in {timeout_s:.0f}s; logs beside the report"
    )


def _services_cpu(pids: Sequence[int]) -> float:
    """CPU seconds used so far by the stack's services (Kafka, Redis); a service gone counts 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            total += cpu_seconds(pid)
    return total


async def _drain(
    workers: Sequence[BenchWorker],
    store: RedisStore,
    users: list[str],
    backlog: int,
    timeout_s: float,
    services: Sequence[int] = (),
    replica_start: Sequence[tuple[float, float, float]] = (),
) -> dict[str, Any]:
    """Watch the backlog drain; the window runs from the first reading with lists written to the one that
    counts the whole backlog. ``services``: the pids of the stack's Kafka and Redis, whose CPU in the
    window is reported per event too (they share the machine's cores with the workers).
    ``replica_start``: each worker's replica counters read before the backlog was written (the readers
    learn a small backlog before the first list is out); their CPU per record is reported from there."""
    start: tuple[int, int, float, float] | None = None
    each_start: list[float] = []
    deadline = time.monotonic() + timeout_s
    while True:
        seen, last_ms = await readings.progress(store, users)
        each = [cpu_seconds(w.pid) for w in workers]
        cpu = sum(each)
        used = _services_cpu(services)
        if start is None and seen > 0:
            start, each_start = (seen, last_ms, cpu, used), each
        if seen >= backlog and start is not None:
            break
        if time.monotonic() > deadline:
            raise StackError(f"bench workers wrote lists for {seen} of {backlog} events in {timeout_s:.0f}s")
        for worker in workers:
            worker.check_alive()
        await asyncio.sleep(_POLL_S if start is not None else _FIRST_POLL_S)
    replica_end = [await w.replica_counters(store) for w in workers]
    events = seen - start[0]
    seconds = (last_ms - start[1]) / 1000.0
    if events <= 0 or seconds <= 0:
        raise StackError(f"the backlog drained before a measured window (first reading {start[0]} of {seen})")
    return {
        "events_per_s": events / seconds,
        "window_events": events,
        "window_s": seconds,
        "cpu_us_per_event": (cpu - start[2]) / events * 1e6,
        "services_cpu_us_per_event": (used - start[3]) / events * 1e6,
        # The replica readers' own CPU over the records they learned for other workers (none with one).
        "replica_cpu_s": sum(
            end[0] - begin[0] for begin, end in zip(replica_start, replica_end, strict=False)
        ),
        "replica_records": sum(
            end[1] - begin[1] for begin, end in zip(replica_start, replica_end, strict=False)
        ),
        # Per worker: the events it learned as their owner (from before the backlog), its CPU seconds in
        # the window and their share of the window (a worker far below the others waited, or ran out).
        "per_worker": [
            {"events": end[2] - begin[2], "cpu_s": after - before, "busy": (after - before) / seconds}
            for begin, end, before, after in zip(replica_start, replica_end, each_start, each, strict=False)
        ],
        "rss_mb_per_worker": [rss_bytes(w.pid) / 2**20 for w in workers],
    }


async def _freshness(
    settings: Settings,
    store: RedisStore,
    stream: list[Event],
    rate: float,
    seconds: float,
    workers: Sequence[BenchWorker],
) -> dict[str, float]:
    """Latency of live traffic at ``rate``, and the workers' CPU per event of it (batches are small
    when events arrive live, not as a backlog: compare with the drain's)."""
    n = max(int(rate * seconds), 1)
    cpu = sum(cpu_seconds(w.pid) for w in workers)
    async with AsyncProducer(settings.bootstrap) as producer:
        last_ts = await send_events(
            producer, settings, stream[:n], run_id=f"f{uuid.uuid4().hex[:8]}", rate=rate
        )
    fresh = await readings.freshness(store, last_ts, 120.0)
    if not fresh:
        raise StackError("no list was written after the freshness phase's events")
    used = sum(cpu_seconds(w.pid) for w in workers) - cpu
    return {
        "p50": percentile(fresh, 50),
        "p99": percentile(fresh, 99),
        "users": len(fresh),
        "rate": rate,
        "cpu_us_per_event": used / n * 1e6,
    }


async def _memory(
    settings: Settings,
    workers: Sequence[BenchWorker],
    store: RedisStore,
    world: Clickstream,
    config: ScalingConfig,
) -> float:
    """The workers' resident memory per 100k users: their summed growth over new users' first events."""
    items = [record.item_id for record in world.items()]
    rng = random.Random(config.seed)
    now = time.time_ns() // 1_000_000  # encode_backlog stamps them again
    newcomers = [
        Event(event_id=f"m{n}", user_id=f"m{n}", item_id=rng.choice(items), type="click", ts=now)
        for n in range(config.memory_users)
    ]
    done = sum([(await w.beat(store)).get("events", 0) for w in workers])
    before = sum(rss_bytes(w.pid) for w in workers)
    await asyncio.to_thread(
        send_backlog, settings, encode_backlog(newcomers, run_id=f"m{uuid.uuid4().hex[:8]}")
    )
    deadline = time.monotonic() + config.timeout_s
    while sum([(await w.beat(store)).get("events", 0) for w in workers]) < done + config.memory_users:
        if time.monotonic() > deadline:
            raise StackError(f"the memory phase's {config.memory_users} events were not all processed")
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.5)  # the last batch's lists and changelog writes
    grown = sum(rss_bytes(w.pid) for w in workers) - before
    return max(grown, 0) / config.memory_users * 100_000 / 2**20


async def bare_faust(base: Settings, config: ScalingConfig, log_dir: Path) -> dict[str, float]:
    """A bare Faust agent's rate (`engine.bench.faust_ceiling`) on the same backlog, in a namespace of its
    own with the same partitions, removed at the end."""
    settings = sandbox.fresh_settings(base, partitions=config.partitions)
    world = Clickstream(config.users, config.items, seed=config.seed)
    try:
        await ensure_engine_topics(settings)
        backlog = encode_backlog(world.events(config.backlog), run_id=f"c{uuid.uuid4().hex[:8]}")
        await asyncio.to_thread(send_backlog, settings, backlog)
        log_path = log_dir / f"faust-{settings.namespace}.log"
        return await asyncio.to_thread(faust_ceiling.measure, settings, config.backlog, log_path)
    finally:
        await sandbox.remove(settings, groups=[faust_ceiling.group(settings)])


async def run_count(
    base: Settings, config: ScalingConfig, count: int, log: Log, log_dir: Path, *, drain_only: bool = False
) -> dict[str, Any]:
    """Every measurement of one worker count (``drain_only``: the drain's), in a namespace of its own
    that is removed at the end."""
    settings = sandbox.fresh_settings(base, top_n=config.top_n, metrics_port=0, partitions=config.partitions)
    world = Clickstream(config.users, config.items, seed=config.seed)
    stream = list(world.events(config.backlog + int(config.freshness_s * 5_000)))
    users = sorted({event.user_id for event in stream[: config.backlog]})
    # Checkpoints only as the workers stop: by count (20,000 own events) one fell in one worker's drain
    # (a 20,000-event backlog after a 3,000-item catalog) and in no drain of more workers, and by time
    # (every minute) one could fall in the memory phase.
    env = {"PERSONALIZE_CHECKPOINT_EVERY_EVENTS": "0", "PERSONALIZE_CHECKPOINT_EVERY_S": "0"}
    workers = [
        BenchWorker(settings, log_dir / f"worker-{settings.namespace}-{n}.log", env) for n in range(count)
    ]
    store = RedisStore.from_url(settings.redis, settings.namespace)
    out: dict[str, Any] = {"workers": count, "namespace": settings.namespace}
    try:
        await ensure_engine_topics(settings)
        async with AsyncProducer(settings.bootstrap) as producer:
            n_items = await send_catalog(producer, settings, world)
        for worker in workers:
            worker.start()
        log(f"{count} worker(s) starting in {settings.namespace}; waiting for the group and the catalog")
        await wait_for_group(settings, workers, store, n_items, config.timeout_s)
        replica_start = [await w.replica_counters(store) for w in workers]
        backlog = encode_backlog(stream[: config.backlog], run_id=f"b{uuid.uuid4().hex[:8]}")
        out["backlog_write_s"] = await asyncio.to_thread(send_backlog, settings, backlog)
        log(f"backlog of {config.backlog} events written in {out['backlog_write_s']:.2f}s; draining")
        services = [found.pid for found in stack.status(base)[:2] if found.pid is not None]
        drained = await _drain(
            workers, store, users, config.backlog, config.timeout_s, services, replica_start
        )
        out.update(drained)
        log(
            f"{count} worker(s): {drained['events_per_s']:,.0f} events/s, "
            f"{drained['cpu_us_per_event']:,.0f} us CPU/event"
        )
        if drain_only:
            return out
        rest = stream[config.backlog :]
        rate = drained["events_per_s"] / 2
        out["freshness_ms"] = await _freshness(settings, store, rest, rate, config.freshness_s, workers)
        out["redis_bytes"] = await readings.redis_bytes_per_user(store, users[: config.memory_sample])
        log(f"memory: first events of {config.memory_users} new users")
        out["rss_mb_per_100k_users"] = await _memory(settings, workers, store, world, config)
        return out
    finally:
        await asyncio.to_thread(stop_all, workers)
        await store.close()
        await sandbox.remove(settings, groups=[settings.app_id])


def run(base: Settings, config: ScalingConfig, *, console: Console, log_dir: Path) -> dict[str, Any]:
    """The bare Faust agent, then every worker count in turn; the JSON-ready report."""

    def log(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")

    started = time.monotonic()
    asyncio.run(sandbox.check_stack(base))
    log_dir.mkdir(parents=True, exist_ok=True)
    ceilings: list[dict[str, float]] = []
    drains: list[list[dict[str, Any]]] = []
    for round_ in range(config.rounds):
        log(f"round {round_ + 1} of {config.rounds}: bare Faust agent, backlog of {config.backlog} events")
        ceilings.append(asyncio.run(bare_faust(base, config, log_dir)))
        log(f"bare Faust agent: {ceilings[-1]['bare_faust_per_s']:,.0f} events/s")
        drains.append(
            [
                asyncio.run(run_count(base, config, n, log, log_dir, drain_only=round_ > 0))
                for n in config.workers
            ]
        )
    ceiling = median_ceiling(ceilings)
    counts = [median_drain([each[n] for each in drains]) for n in range(len(config.workers))]
    cores = os.cpu_count() or 1
    report: dict[str, Any] = {"bare_faust": ceiling, "counts": counts, **analyse(counts, ceiling, cores)}
    if config.owner_events:
        log(f"the owner's path in-process over {config.owner_events} events (no Kafka)")
        report["owner_in_process_us"] = owner_path.owner_us_per_event(
            base, users=config.users, items=config.items, events=config.owner_events
        )
        if config.phases:
            log("the owner's path again, phase by phase")
            report["owner_phases_us"] = owner_path.owner_phases_us(
                base, users=config.users, items=config.items, events=config.owner_events
            )
    report["settings"] = dataclasses.asdict(config)
    report["machine"] = describe()
    report["seconds"] = time.monotonic() - started
    return report
