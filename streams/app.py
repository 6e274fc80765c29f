"""The Faust app: topics, the per-user profile table and the two agents, built from `Settings`.

Events are keyed by user_id, so a user's events and profile share a partition; the profile table's
changelog lets a replacement worker resume a dead one's users.
"""

from __future__ import annotations

__all__ = ["create_app"]

import logging
import os
import socket
import time
from typing import Any

import faust
import redis.exceptions
from prometheus_client import CollectorRegistry

from engine.metrics import Metrics
from engine.redis_store import RedisStore
from engine.settings import Settings
from models.recommender import MODEL_VERSION, HybridRecommender
from streams import codecs
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)

#: Seconds between worker heartbeats in Redis (`schemas.keys.worker`).
HEARTBEAT_S = 1.0


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> tuple[faust.App, Pipeline]:
    """A ready-to-run Faust app and the pipeline behind its agents."""
    codecs.register()
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host}" for host in settings.bootstrap.split(",")],
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        datadir=str(settings.stack_dir / "faust"),
        consumer_auto_offset_reset="earliest",
    )
    events_topic = app.topic(settings.events_topic, partitions=settings.partitions)
    items_topic = app.topic(settings.items_topic, partitions=settings.partitions)
    profiles = app.Table(
        "profiles",
        partitions=settings.partitions,
        key_type=str,
        schema=faust.Schema(key_type=str, key_serializer=codecs.ORJSON, value_serializer=codecs.ORJSON),
    )

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        return await app.send(topic, key=key, value=value)

    metrics = Metrics.create(registry or CollectorRegistry(), settings.namespace, MODEL_VERSION)
    pipeline = Pipeline(
        model=HybridRecommender(),
        store=RedisStore.from_url(settings.redis, settings.namespace),
        metrics=metrics,
        send=send,
        events_topic=settings.events_topic,
        dead_letter_topic=settings.dead_letter_topic,
        top_n=settings.top_n,
    )

    async def consume_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            try:
                await pipeline.handle_event(event.value, event.key, profiles)
            except Exception as error:  # noqa: BLE001 - input must never crash the worker
                await pipeline.dead_letter(
                    event.value,
                    error,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=event.key,
                )

    async def consume_items(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            try:
                pipeline.apply_item(event.value)
            except Exception as error:  # noqa: BLE001 - input must never crash the worker
                await pipeline.dead_letter(
                    event.value,
                    error,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=event.key,
                )

    app.agent(events_topic, name="events")(consume_events)
    app.agent(items_topic, name="items")(consume_items)

    worker_id = f"{socket.gethostname()}-{os.getpid()}"
    started_ms = time.time_ns() // 1_000_000

    async def heartbeat() -> None:
        metrics.users.set(len(profiles))
        fields: dict[str, int | str] = {
            "pid": os.getpid(),
            "started_ms": started_ms,
            "beat_ms": time.time_ns() // 1_000_000,
            "model_version": MODEL_VERSION,
            "events": int(
                sum(
                    metrics.registry.get_sample_value("personalize_events_total", {"outcome": o}) or 0
                    for o in ("learned", "duplicate", "dead_letter")
                )
            ),
            "items": int(metrics.registry.get_sample_value("personalize_items_total") or 0),
        }
        try:
            await pipeline.store.heartbeat(worker_id, fields, ttl_s=int(HEARTBEAT_S * 5))
        except (redis.exceptions.RedisError, OSError):
            log.warning("heartbeat to Redis failed", exc_info=True)

    app.timer(interval=HEARTBEAT_S)(heartbeat)

    return app, pipeline
