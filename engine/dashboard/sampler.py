"""The dashboard's one sampler: every second it scrapes the workers' /metrics and reads Redis, and keeps
the last points in memory for the page to poll. Read-only: it never writes to Redis or Kafka, and a
worker or Redis that does not answer becomes a gap and a status line, never an exception.
"""

from __future__ import annotations

__all__ = ["DRIFT_SHOWN", "KEEP_POINTS", "Sampler"]

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
from redis.exceptions import RedisError

from engine.dashboard.points import Point, point
from engine.dashboard.scrape import Labels, Scrape, parse
from engine.store.redis_store import RedisStore
from schemas import keys

log = logging.getLogger(__name__)

#: Points kept (one a second: 15 minutes), and drift records shown (newest first).
KEEP_POINTS = 900
DRIFT_SHOWN = 50
#: Rates and freshness are over the last few seconds (smooths Kafka's batching); HR@k over a longer
#: window, so that it rests on enough scored events.
RATE_WINDOW_S = 5.0
QUALITY_WINDOW_S = 30.0


class Sampler:
    """Scrapes ``metrics_urls`` and reads ``store`` every ``interval_s``; `data` answers the page."""

    def __init__(
        self, metrics_urls: list[str], store: RedisStore, *, interval_s: float = 1.0, timeout_s: float = 0.8
    ) -> None:
        self.metrics_urls = metrics_urls
        self.store = store
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.points: deque[Point] = deque(maxlen=KEEP_POINTS)
        self._scrapes: deque[Scrape] = deque()
        self.targets: list[dict[str, Any]] = [
            {"url": u, "up": False, "error": "not scraped yet"} for u in metrics_urls
        ]
        self.workers: list[dict[str, str]] = []
        self.drift: list[dict[str, Any]] = []
        self.redis_error: str | None = "not read yet"

    async def run(self) -> None:
        """Sample until cancelled, one sample per ``interval_s`` (a slow sample delays the next)."""
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            while True:
                started = time.monotonic()
                await self.sample(client)
                await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def sample(self, client: httpx.AsyncClient) -> Point:
        """One scrape of every worker and one read of Redis; appends and returns the new point."""
        texts = await asyncio.gather(
            *(self._scrape(client, i, url) for i, url in enumerate(self.metrics_urls))
        )
        scrape = Scrape.combine(time.time(), [t for t in texts if t is not None])
        await self._read_redis()
        self._scrapes.append(scrape)
        while len(self._scrapes) > 2 and scrape.t - self._scrapes[1].t >= QUALITY_WINDOW_S:
            self._scrapes.popleft()
        new = point(scrape, self._before(scrape, RATE_WINDOW_S), self._before(scrape, QUALITY_WINDOW_S))
        self.points.append(new)
        return new

    def _before(self, scrape: Scrape, window_s: float) -> Scrape | None:
        """The newest earlier scrape at least ``window_s`` old, else the oldest one kept (while starting)."""
        older = [s for s in self._scrapes if s.t < scrape.t and s.up]
        at_least = [s for s in older if scrape.t - s.t >= window_s]
        if at_least:
            return at_least[-1]
        return older[0] if older else None

    async def _scrape(
        self, client: httpx.AsyncClient, index: int, url: str
    ) -> dict[tuple[str, Labels], float] | None:
        try:
            response = await client.get(url)
            response.raise_for_status()
            samples = parse(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            self.targets[index] = {"url": url, "up": False, "error": f"{type(exc).__name__}: {exc}"}
            return None
        self.targets[index] = {"url": url, "up": True, "error": None}
        return samples

    async def _read_redis(self) -> None:
        try:
            self.workers = sorted(await self.store.workers(), key=lambda b: b.get("pid", ""))
            entries = await self.store.client.xrevrange(keys.drift(self.store.namespace), count=DRIFT_SHOWN)
        except (RedisError, OSError) as exc:
            self.redis_error = f"{type(exc).__name__}: {exc}"
            return
        self.redis_error = None
        self.drift = [_drift_record(entry_id, fields) for entry_id, fields in entries or []]

    def data(self, since: float = 0.0) -> dict[str, Any]:
        """What the page polls: points newer than ``since`` (epoch s), and the current status."""
        versions = sorted({v for p in list(self.points)[-1:] for v in p.model_versions})
        versions += sorted(
            {b["model_version"] for b in self.workers if b.get("model_version")} - set(versions)
        )
        return {
            "namespace": self.store.namespace,
            "now": time.time(),
            "model_versions": versions,
            "targets": self.targets,
            "workers": [
                {k: b.get(k) for k in ("pid", "model_version", "events", "items", "beat_ms")}
                for b in self.workers
            ],
            "redis_error": self.redis_error,
            "drift": self.drift,
            "points": [p.to_json() for p in self.points if p.t > since],
        }


def _drift_record(entry_id: object, fields: Mapping[Any, Any] | None) -> dict[str, Any]:
    """A drift stream entry for the page: the worker's JSON record plus when Redis received it."""
    entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    try:
        record = orjson.loads((fields or {}).get("record", "{}"))
    except orjson.JSONDecodeError:
        record = {"error": "unreadable record"}
    if not isinstance(record, dict):
        record = {"error": "unreadable record"}
    return {"id": entry, "at_ms": int(entry.split("-", 1)[0]), **record}
