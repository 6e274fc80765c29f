"""``personalize stack up|down|status``: the local Kafka and Redis, and the namespace's workers.

`stack up --workers N` starts workers of the namespace until N run on this machine; `stack status` shows
each worker's events partitions (from its heartbeat in Redis) and their lag (from Kafka: the high watermark
minus the group's committed offset). Process management is `engine.ops.stack`'s; this module only asks
and prints.
"""

from __future__ import annotations

__all__ = ["WorkerView", "app", "start_workers", "worker_views"]

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Annotated

import orjson
import typer
from rich.table import Table

from engine.cli.support import err, settings_or_exit, table_console
from engine.ingest.lag import group_lag
from engine.ops import stack, workers
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas.errors import StackError
from schemas.keys import WorkerField

app = typer.Typer(
    no_args_is_help=True, help="The local Kafka (KRaft) + Redis stack on loopback, and workers."
)


@dataclass(slots=True)
class WorkerView:
    """One worker as status shows it: from this machine's registry, its heartbeat, or both."""

    worker_id: str
    namespace: str
    pid: int | None
    #: The events partitions it owns (None: no heartbeat in Redis, e.g. stopped or still starting).
    partitions: list[int] | None
    metrics: str
    local: bool
    lag_by_partition: dict[int, int] = field(default_factory=dict)

    @property
    def lag(self) -> int | None:
        return sum(self.lag_by_partition.values()) if self.partitions is not None else None

    def to_json(self, settings: Settings) -> dict[str, object]:
        """The `stack status --json` object (the service keys first, as for Kafka and Redis)."""
        return {
            "service": stack.Service.WORKER.value,
            "running": True,
            "pid": self.pid,
            "address": f"{settings.bootstrap} -> {settings.redis}",
            "log": str(workers.log_path(settings)) if self.local else None,
            "worker_id": self.worker_id,
            "namespace": self.namespace,
            "partitions": self.partitions,
            "lag": self.lag,
            "lag_by_partition": {str(p): n for p, n in sorted(self.lag_by_partition.items())},
            "metrics": self.metrics or None,
        }


def _partitions(beat: dict[str, str]) -> list[int]:
    return [int(p) for p in beat.get(WorkerField.PARTITIONS, "").split(",") if p]


async def _namespace_views(settings: Settings, local: dict[int, str]) -> list[WorkerView]:
    """Views of one namespace's workers: ``local`` (pid -> metrics) plus any other live heartbeat."""
    host = socket.gethostname()
    store = RedisStore.from_url(settings.redis, settings.namespace)
    try:
        beats = await store.workers_by_id()
    finally:
        await store.close()
    lag = await group_lag(settings.bootstrap, settings.app_id, settings.events_topic)
    views = []
    for pid, metrics in local.items():
        beat = beats.pop(f"{host}-{pid}", None)
        partitions = _partitions(beat) if beat is not None else None
        views.append(WorkerView(f"{host}-{pid}", settings.namespace, pid, partitions, metrics, True))
    for worker_id, beat in sorted(beats.items()):  # workers of other machines, or not registered here
        beat_pid = int(beat[WorkerField.PID]) if WorkerField.PID in beat else None
        metrics = beat.get(WorkerField.METRICS, "")
        views.append(WorkerView(worker_id, settings.namespace, beat_pid, _partitions(beat), metrics, False))
    for view in views:
        view.lag_by_partition = {p: lag[p] for p in view.partitions or () if p in lag}
    return views


async def worker_views(settings: Settings) -> list[WorkerView]:
    """Every worker registered on this machine (any namespace) and every live heartbeat of the current
    namespace, with partitions and lag (none for workers of an older version, which record no namespace)."""
    by_namespace: dict[str, dict[int, str]] = {settings.namespace: {}}
    views = []
    for entry in workers.entries(settings):
        if entry.namespace:
            by_namespace.setdefault(entry.namespace, {})[entry.pid] = entry.metrics
        else:
            views.append(WorkerView(f"{socket.gethostname()}-{entry.pid}", "", entry.pid, None, "", True))
    for namespace, local in sorted(by_namespace.items()):
        scoped = settings.model_copy(update={"namespace": namespace})
        views += await _namespace_views(scoped, local)
    return views


def start_workers(settings: Settings, count: int, timeout_s: float) -> list[int]:
    """Start workers of the namespace until ``count`` run on this machine and each new one beats in Redis;
    returns the new pids. Raises `StackError` when one exits or stays silent past ``timeout_s``."""
    running = [e.pid for e in workers.entries(settings) if e.namespace == settings.namespace]
    started = [workers.spawn(settings) for _ in range(count - len(running))]
    host, deadline = socket.gethostname(), time.monotonic() + timeout_s

    async def beating() -> set[int]:
        store = RedisStore.from_url(settings.redis, settings.namespace)
        try:
            beats = await store.workers_by_id()
        finally:
            await store.close()
        return {pid for pid in started if _partitions(beats.get(f"{host}-{pid}", {}))}

    waiting = set(started)
    while waiting:
        gone = [pid for pid in waiting if pid not in workers.running(settings) and not _alive(pid)]
        if gone:
            raise StackError(f"worker(s) {gone} exited during start-up; see {workers.log_path(settings)}")
        waiting -= asyncio.run(beating())
        if waiting and time.monotonic() > deadline:
            raise StackError(f"worker(s) {sorted(waiting)} did not beat within {timeout_s:.0f}s")
        time.sleep(0.5)
    return started


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _print(statuses: list[stack.ServiceStatus], views: list[WorkerView]) -> None:
    table = Table("service", "state", "pid", "address", "log")
    for s in statuses:
        if s.service is stack.Service.WORKER:
            continue  # in the workers table
        state = "[green]running[/]" if s.running else "[red]stopped[/]"
        table.add_row(s.service.value, state, str(s.pid or "-"), s.address, str(s.log))
    table_console().print(table)
    if not views:
        return
    table = Table("worker", "namespace", "pid", "partitions", "lag", "metrics", title="workers")
    for v in views:
        partitions = "[yellow]no heartbeat[/]" if v.partitions is None else ",".join(map(str, v.partitions))
        lag = "-" if v.lag is None else str(v.lag)
        table.add_row(
            v.worker_id, v.namespace, str(v.pid or "-"), partitions or "none", lag, v.metrics or "-"
        )
    table_console().print(table)


def _views(settings: Settings, statuses: list[stack.ServiceStatus]) -> list[WorkerView]:
    """Worker views; when Kafka or Redis is down, only what this machine's registry knows."""
    if not all(s.running for s in statuses if s.service is not stack.Service.WORKER):
        return [WorkerView(f"{socket.gethostname()}-{e.pid}", e.namespace, e.pid, None, e.metrics, True)
                for e in workers.entries(settings)]  # fmt: skip
    return asyncio.run(worker_views(settings))


@app.command("up")
def stack_up(
    worker_count: Annotated[
        int, typer.Option("--workers", min=0, help="Run this many workers of the namespace here.")
    ] = 0,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds to wait for each service.")] = 120.0,
) -> None:
    """Start Kafka and Redis (fetching Kafka's jars once) and wait until both answer; with --workers N,
    start workers of the namespace until N run on this machine and each owns partitions."""
    settings = settings_or_exit()
    statuses = stack.up(settings, log=lambda m: err.print(f"[dim]{m}[/]"), timeout_s=timeout)
    if worker_count:
        started = start_workers(settings, worker_count, timeout)
        err.print(f"[dim]started {len(started)} worker(s) of {settings.namespace}: {started}[/]")
        statuses = stack.status(settings)
    _print(statuses, _views(settings, statuses))


@app.command("down")
def stack_down(
    workers_only: Annotated[
        bool, typer.Option("--workers-only", help="Stop only the namespace's workers; keep Kafka and Redis.")
    ] = False,
) -> None:
    """Stop the workers registered here, then the Kafka and Redis processes that `stack up` started."""
    settings = settings_or_exit()
    if workers_only:
        stack.stop_workers(settings, log=lambda m: err.print(m))
        return
    stack.down(settings, log=lambda m: err.print(m))


@app.command("status")
def stack_status(
    json: Annotated[bool, typer.Option("--json", help="Print JSON: one object per process.")] = False,
) -> None:
    """Say what runs where: Kafka, Redis and every worker (its partitions and their lag)."""
    settings = settings_or_exit()
    statuses = stack.status(settings)
    views = _views(settings, statuses)
    if json:
        services = [s.to_json() for s in statuses if s.service is not stack.Service.WORKER]
        typer.echo(orjson.dumps(services + [v.to_json(settings) for v in views]).decode())
        return
    _print(statuses, views)
