"""The Faust app: topics, the per-user profile table and the two agents, built from `Settings`.

Events are keyed by user_id, so a user's events and profile share a partition; the profile table's
changelog lets a replacement worker resume a dead one's users, and `OffsetGuard` makes sure every
event record is handled once even where Faust's consumer skips some (see streams/gaps.py).
"""

from __future__ import annotations

__all__ = ["create_app"]

from typing import Any

import faust
from prometheus_client import CollectorRegistry

from engine.metrics import Metrics
from engine.quality_metrics import QualityMetrics
from engine.redis_store import RedisStore
from engine.settings import Settings
from models.recommender import MODEL_VERSION, HybridRecommender
from streams import codecs
from streams.gaps import GapReader, OffsetGuard, is_control
from streams.heartbeat import HEARTBEAT_S, Heartbeat
from streams.pipeline import Pipeline
from streams.quality import Quality
from streams.rewards import add_reward_agents


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

    registry = registry or CollectorRegistry()
    metrics = Metrics.create(registry, settings.namespace, MODEL_VERSION)
    model = HybridRecommender()
    store = RedisStore.from_url(settings.redis, settings.namespace)
    quality_metrics = QualityMetrics.create(registry)
    pipeline = Pipeline(
        model=model,
        store=store,
        metrics=metrics,
        send=send,
        events_topic=settings.events_topic,
        dead_letter_topic=settings.dead_letter_topic,
        top_n=settings.top_n,
        quality=Quality(model=model, store=store, metrics=quality_metrics, send=send, settings=settings),
    )

    async def process(partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        await pipeline.consume_event(
            value, key, profiles, topic=settings.events_topic, partition=partition, offset=offset
        )

    guard = OffsetGuard(
        GapReader(settings.bootstrap, settings.events_topic, settings.app_id), profiles, process, metrics
    )

    async def consume_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            await guard.on_message(
                message.partition, message.offset, event.key, event.value, is_control(message.headers)
            )

    async def consume_items(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            await pipeline.consume_item(
                event.value,
                event.key,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )

    app.agent(events_topic, name="events")(consume_events)
    app.agent(items_topic, name="items")(consume_items)
    add_reward_agents(app, settings, metrics, pipeline.store)

    heartbeat = Heartbeat(app, settings.events_topic, guard, profiles, pipeline.store, metrics)
    heartbeat.lag = quality_metrics.lag
    app.timer(interval=HEARTBEAT_S)(heartbeat)
    app.on_before_shutdown.connect(heartbeat.farewell)
    return app, pipeline
