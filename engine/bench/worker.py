"""One `personalize worker` subprocess in the benchmark's namespace, and what it reports in Redis.

Started and stopped by the benchmark only (SIGTERM, then SIGKILL after a grace period); its output goes
to a log file the report names, so a failed run can be diagnosed.
"""

from __future__ import annotations

__all__ = ["BenchWorker", "stop_all"]

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas.errors import ServiceUnavailableError, StackError
from schemas.keys import WorkerField


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BenchWorker:
    """A worker process for ``settings.namespace`` (metrics on a free port, ``top_n`` as configured),
    with ``env``'s ``PERSONALIZE_*`` settings on top (e.g. the River reranker)."""

    def __init__(self, settings: Settings, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.log_path = log_path
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("worker not started")
        return self.proc.pid

    def start(self) -> None:
        env = dict(os.environ)
        env.update(
            PERSONALIZE_NAMESPACE=self.settings.namespace,
            # Metrics on a port free now (the replica's CPU is read from them), or the next free ones.
            PERSONALIZE_METRICS_PORT=str(_free_port()),
            PERSONALIZE_METRICS_PORT_SPAN="16",
            PERSONALIZE_TOP_N=str(self.settings.top_n),
            PERSONALIZE_STACK_DIR=str(self.settings.stack_dir),
            PERSONALIZE_PARTITIONS=str(self.settings.partitions),
        )
        env.update(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop(self, grace_s: float = 30.0) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def check_alive(self) -> None:
        """Raise `StackError` (naming the log) if the worker has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise StackError(f"a bench worker exited early; see its log {self.log_path}")

    async def beat(self, store: RedisStore) -> dict[str, int]:
        """This worker's latest heartbeat counters (``events``, ``items``, ``beat_ms``); {} before one."""
        for found in await store.workers():
            if found.get("pid") == str(self.pid):
                return {k: int(found.get(k, 0)) for k in ("events", "items", "beat_ms")}
        return {}

    async def replica_counters(self, store: RedisStore) -> tuple[float, float, float]:
        """(CPU seconds, event records) of this worker's replica reader so far, and the events it learned
        as their owner, from its /metrics (the address its heartbeat names); zeros before it serves them."""
        address = next(
            (b.get(WorkerField.METRICS) for b in await store.workers() if b.get("pid") == str(self.pid)), None
        )
        if not address:
            return 0.0, 0.0, 0.0
        async with httpx.AsyncClient(timeout=5.0) as client:
            text = (await client.get(f"http://{address}/metrics")).text
        seconds = records = learned = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "personalize_replica_seconds_total":
                    seconds += sample.value
                elif (
                    sample.name == "personalize_replica_records_total"
                    and sample.labels.get("topic") == "events"
                ):
                    records += sample.value
                elif sample.name == "personalize_events_total" and sample.labels.get("outcome") == "learned":
                    learned += sample.value
        return seconds, records, learned

    async def model_version(self, store: RedisStore) -> str | None:
        """The model version this worker's heartbeat names (with a River stage: ``...+river-...``)."""
        for found in await store.workers():
            if found.get("pid") == str(self.pid):
                return found.get("model_version")
        return None

    async def wait_until(
        self, store: RedisStore, field: str, at_least: int, timeout_s: float
    ) -> dict[str, int]:
        """Poll the heartbeat until ``field >= at_least``; raise with the log's tail on timeout or exit."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(f"the bench worker exited early; see its log {self.log_path}")
            beat = await self.beat(store)
            if beat and beat[field] >= at_least:
                return beat
            await asyncio.sleep(0.1)
        raise ServiceUnavailableError(
            f"bench worker ({field} >= {at_least}); log {self.log_path}", "redis heartbeat", timeout_s
        )


def stop_all(workers: Sequence[BenchWorker], grace_s: float = 30.0) -> None:
    """Stop workers together: SIGTERM to all, then wait for each (SIGKILL after the grace period)."""
    for worker in workers:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for worker in workers:
        if worker.proc is None:
            continue
        try:
            worker.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait(timeout=10)
        worker.proc = None
