"""The worker's periodic duties: announce itself in Redis with its counters, nudge stalled partitions.

Operators (`personalize stack status`, `personalize demo`, and the tests) see live workers under
`schemas.keys.worker`, with the events partitions each owns and where its metrics are served.
"""

from __future__ import annotations

__all__ = ["HEARTBEAT_S", "Heartbeat"]

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import faust
import redis.exceptions

from engine.ops.metrics import OUTCOMES, Metrics
from engine.store.redis_store import RedisStore
from models.recommender import MODEL_VERSION
from schemas.keys import WorkerField
from streams.gaps import CONTROL_HEADER, OffsetGuard, offset_key
from streams.pipeline import WORKER
from streams.republish import pending_key

if TYPE_CHECKING:
    from streams.checkpointer import Checkpointer

log = logging.getLogger(__name__)

#: Seconds between heartbeats (and stall checks); a heartbeat key expires after five missed beats.
HEARTBEAT_S = 1.0


class Heartbeat:
    """Called by a Faust timer every `HEARTBEAT_S` seconds."""

    def __init__(
        self,
        app: faust.App,
        events_topic: str,
        guard: OffsetGuard,
        profiles: Mapping[str, Any],
        store: RedisStore,
        metrics: Metrics,
        metrics_at: str | None = None,
    ) -> None:
        self.app = app
        self.events_topic = events_topic
        self.guard = guard
        self.profiles = profiles
        self.store = store
        self.metrics = metrics
        self.metrics_at = metrics_at or ""
        self.worker_id = WORKER
        self.started_ms = time.time_ns() // 1_000_000
        #: Source of ``checkpoint_ms``, set when the app wires checkpoints.
        self.checkpointer: Checkpointer | None = None
        #: The worker's model version (the app sets it when the model has a River reranker).
        self.model_version = MODEL_VERSION
        self._lagging: set[int] = set()

    def processed(self) -> int:
        """Event records this worker has consumed, whatever their outcome."""
        get = self.metrics.registry.get_sample_value
        return int(sum(get("personalize_events_total", {"outcome": o}) or 0 for o in OUTCOMES))

    async def __call__(self) -> None:
        owned = sorted(self._partitions())
        highs = await self._high_watermarks(owned)
        try:
            await self._nudge_stalled(highs)
        except Exception as exc:  # noqa: BLE001 - Kafka away: the beat to Redis must still go out
            log.warning("could not look for stalled partitions: %s", exc)
        await self._measure_lag(highs)
        kept = sum(k in self.profiles for p in owned for k in (offset_key(p), pending_key(p)))
        self.metrics.users.set(len(self.profiles) - kept)
        checkpoint_ms = self.checkpointer.last_ms if self.checkpointer is not None else None
        fields: dict[str, int | str] = {
            WorkerField.PID: os.getpid(),
            WorkerField.STARTED_MS: self.started_ms,
            WorkerField.BEAT_MS: time.time_ns() // 1_000_000,
            WorkerField.MODEL_VERSION: self.model_version,
            WorkerField.EVENTS: self.processed(),
            WorkerField.ITEMS: int(self.metrics.registry.get_sample_value("personalize_items_total") or 0),
            WorkerField.CHECKPOINT_MS: checkpoint_ms or 0,
            WorkerField.PARTITIONS: ",".join(map(str, owned)),
            WorkerField.METRICS: self.metrics_at,
        }
        try:
            await self.store.heartbeat(self.worker_id, fields, ttl_s=int(HEARTBEAT_S * 5))
        except (redis.exceptions.RedisError, OSError):
            log.warning("heartbeat to Redis failed", exc_info=True)

    async def farewell(self, *_args: Any, **_kwargs: Any) -> None:
        """On a clean shutdown: leave no heartbeat behind, so readers know at once the worker is gone."""
        self.guard.reader.close()
        try:
            await self.store.forget_worker(self.worker_id)
        except (redis.exceptions.RedisError, OSError):
            log.warning("could not remove the heartbeat from Redis", exc_info=True)

    def _partitions(self) -> list[int]:
        """The events partitions this worker owns now."""
        return [tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.events_topic]

    async def _high_watermarks(self, owned: list[int]) -> dict[int, int]:
        """Each owned partition's high watermark, one read per partition per beat (those Kafka did not
        answer are left out: no lag and no stall is judged for them this time)."""
        highs = {}
        for partition in owned:
            try:
                _, highs[partition] = await self.guard.reader.watermarks(partition, patient=False)
            except Exception:  # noqa: BLE001 - a missed measurement must not stop the heartbeat
                log.debug("no high watermark for partition %d", partition, exc_info=True)
        return highs

    async def _measure_lag(self, highs: dict[int, int]) -> None:
        """Records between the next offset each owned partition must deliver and its high watermark."""
        owned = set(self._partitions())
        for partition in self._lagging - owned:
            self.metrics.consumer_lag.remove(str(partition))
        for partition, high in highs.items():
            try:
                expected = await self.guard.expected(partition)
            except Exception:  # noqa: BLE001 - a missed measurement must not stop the heartbeat
                log.debug("no lag for partition %d", partition, exc_info=True)
                continue
            self.metrics.consumer_lag.labels(partition=str(partition)).set(max(0, high - expected))
        self._lagging = owned

    async def _nudge_stalled(self, highs: dict[int, int]) -> None:
        for partition in await self.guard.stalled(highs):
            # The consumer skipped this partition's tail: a control record makes the agent repair it.
            await self.app.send(
                self.events_topic,
                key=None,
                value=b"",
                partition=partition,
                headers=[(CONTROL_HEADER, b"nudge")],
            )
            self.metrics.nudges.inc()
