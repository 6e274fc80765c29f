"""Several workers of one namespace for the scale-out tests: start them, wait for the consumer group to
settle, read what each exports on /metrics."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
from confluent_kafka.admin import AdminClient

from engine.ops.settings import Settings
from tests.integration.conftest import Worker, free_port


class MetricsWorker(Worker):
    """A worker serving its metrics on a port of its own, with extra ``PERSONALIZE_*`` settings."""

    def __init__(self, settings: Settings, log_path: Path, **extra: str) -> None:
        super().__init__(settings, log_path)
        self.port = free_port()
        self.extra = extra

    def env(self) -> dict[str, str]:
        return {**super().env(), "PERSONALIZE_METRICS_PORT": str(self.port), **self.extra}

    async def metric(self, name: str) -> float:
        """The sum of a metric's samples (every label set), 0 when the worker does not answer."""
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                text = (await client.get(f"http://127.0.0.1:{self.port}/metrics")).text
        except httpx.TransportError:
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
        return total


class Cluster:
    """The workers of one namespace, started and stopped together (stopped cleanly unless killed)."""

    def __init__(self, settings: Settings, folder: Path, **extra: str) -> None:
        self.settings = settings
        self.folder = folder
        self.extra = extra
        self.workers: list[MetricsWorker] = []
        self._admin: AdminClient | None = None

    def start(self, name: str) -> MetricsWorker:
        worker = MetricsWorker(self.settings, self.folder / f"{name}.log", **self.extra)
        worker.start()
        self.workers.append(worker)
        return worker

    def kill(self, worker: MetricsWorker) -> None:
        worker.stop(signal.SIGKILL)
        self.workers.remove(worker)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-tail:]}" for p in sorted(self.folder.glob("*.log")))

    async def stable(self, members: int) -> bool:
        """Whether the namespace's consumer group is stable with ``members`` members."""
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.settings.bootstrap})
        admin = self._admin
        [future] = admin.describe_consumer_groups([self.settings.app_id]).values()
        try:
            group = await asyncio.wrap_future(future)
        except Exception:  # noqa: BLE001 - no group yet
            return False
        return str(group.state).endswith("STABLE") and len(group.members) == members

    async def total(self, name: str) -> float:
        """A metric summed over the live workers."""
        return sum([await w.metric(name) for w in self.workers])
