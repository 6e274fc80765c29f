"""The Faust app: topics, the per-user profile table, the two agents and the replica reader, from `Settings`.

Events are keyed by user_id, so a user's events and profile share a partition; the profile table's
changelog lets a replacement worker resume a dead one's users, and `OffsetGuard` makes sure every
event record is handled once even where Faust's consumer skips some (see streams/gaps.py). The group
splits the events partitions between workers; each worker's replica reader (streams/replica.py) learns
the rest and the whole catalog into its model, so N workers rank from one engine's state
(docs/scale-out.md).
"""

from __future__ import annotations

__all__ = ["changelog_configs", "create_app"]

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, cast

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry

from engine.ingest.produce import topic_configs
from engine.ops.checkpoints import Checkpoint
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.store import erasures
from engine.store.redis_store import RedisStore
from streams import changelog, codecs, fetching
from streams.batches import Incoming, handle_batch
from streams.catchup import CatchUp
from streams.checkpointer import Checkpointer, model_from, store_of
from streams.gaps import CONTROL_HEADER, GapReader, OffsetGuard, is_control
from streams.heartbeat import HEARTBEAT_S, Heartbeat
from streams.pipeline import WORKER, Pipeline
from streams.quality import Quality
from streams.recovery_watch import RecoveryWatch
from streams.replica import Replica
from streams.republish import Republisher
from streams.rewards import PENDING_TABLE, add_reward_agents
from streams.singleton import Singleton
from streams.time_order import TimeOrderScheduler
from streams.trending import Trending

log = logging.getLogger(__name__)

#: The table of user profiles, keyed by user_id.
PROFILES_TABLE = "profiles"


def changelog_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """The worker's table changelog topics, named and configured (compacted) as Faust makes them.

    The worker creates them before Faust starts: a topic Faust creates itself can be missing from the
    consumer's metadata for a while, and every table write in that while fails (a decision read then
    went to the dead letters).

    >>> sorted(changelog_configs(Settings(namespace="shop")))
    ['p13n-shop-decisions-pending-changelog', 'p13n-shop-profiles-changelog']
    """
    compact = {"cleanup.policy": "compact"}
    return {f"{settings.app_id}-{table}-changelog": compact for table in (PROFILES_TABLE, PENDING_TABLE)}


def _checkpoint_tick(
    app: faust.App, settings: Settings, catchup: CatchUp, checkpointer: Checkpointer
) -> Callable[[], Awaitable[None]]:
    """The checkpoint timer's body: catch-up nudges, then a checkpoint if one is due."""

    async def tick() -> None:
        try:
            owned = app.consumer.assignment()
            events = [tp.partition for tp in owned if tp.topic == settings.events_topic]
            await catchup.nudge_pending(events, time.monotonic())
            await checkpointer.tick()
        except Exception:  # noqa: BLE001 - a failed round must not stop the timer; the next one retries
            log.exception("checkpoint timer failed")

    return tick


def _confirm_erasures(
    settings: Settings, store: RedisStore, metrics: Metrics
) -> Callable[[Sequence[tuple[str, str]], str], Awaitable[None]]:
    """How the checkpointer marks erasures scrubbed by this worker (`engine.store.erasures`)."""

    async def confirm(erased: Sequence[tuple[str, str]], removed: str) -> None:
        await erasures.scrubbed(
            store.client, settings.namespace, erased, worker=WORKER, removed=removed,
            now_ms=time.time_ns() // 1_000_000,
        )  # fmt: skip
        metrics.erasures_scrubbed.inc(len(erased))

    return confirm


def _republisher(
    app: faust.App, settings: Settings, pipeline: Pipeline, writes: changelog.BatchWrites, lock: asyncio.Lock
) -> Republisher:
    """Republishes lists Redis did not get, for the events partitions this app owns once it has settled
    (not rebalancing, tables recovered)."""

    def owned() -> list[int]:
        return [tp.partition for tp in app.consumer.assignment() if tp.topic == settings.events_topic]

    def settled() -> bool:
        recovery = cast(Any, app.tables).recovery  # TableManager has it; its interface does not say so
        return not app.rebalancing and not app.in_recovery and bool(recovery.completed.is_set())

    return Republisher(
        pipeline=pipeline, profiles=writes, store=pipeline.store, metrics=pipeline.metrics, lock=lock,
        partitions=settings.partitions, owned=owned, settled=settled,
    )  # fmt: skip


def _follow(app: faust.App, events_topic: str, replica: Replica, catchup: CatchUp) -> None:
    """Run the replica reader, and tell it and the catch-up which events partitions the group gives."""

    def events_partitions(partitions: Iterable[TP]) -> list[int]:
        return [tp.partition for tp in partitions if tp.topic == events_topic]

    # Faust calls each receiver with the sender (the app), then the set of partitions.
    async def on_assigned(*args: Any, **_kwargs: Any) -> None:
        replica.assigned(events_partitions(args[1]))

    async def on_revoked(*args: Any, **_kwargs: Any) -> None:
        catchup.revoked(events_partitions(args[1]))

    app.task(replica.run)
    app.on_partitions_assigned.connect(on_assigned)
    app.on_partitions_revoked.connect(on_revoked)
    app.on_before_shutdown.connect(replica.close)


def _watch_recovery(app: faust.App, settings: Settings) -> None:
    """Stop the worker if its table recovery stalls (streams/recovery_watch.py), unless turned off: a
    task of its own from the first assignment on (Faust's timers start after the first recovery)."""
    if settings.recovery_patience_s <= 0:
        return
    running: list[asyncio.Task[None]] = []

    async def start(*_args: Any, **_kwargs: Any) -> None:
        if not running:
            recovery = cast(Any, app.tables).recovery  # TableManager has it; its interface does not say so
            watch = RecoveryWatch(recovery, app.crash, patience_s=settings.recovery_patience_s)
            running.append(asyncio.ensure_future(watch.run()))

    async def stop(*_args: Any, **_kwargs: Any) -> None:
        for task in running:
            task.cancel()

    app.on_partitions_assigned.connect(start)
    app.on_before_shutdown.connect(stop)


def _trending(app: faust.App, settings: Settings, pipeline: Pipeline, checkpointer: Checkpointer) -> None:
    """Trending on the owner of events partition 0, fed with what the model learns (streams/trending.py)."""

    def positions() -> dict[int, int]:
        return dict(checkpointer.offsets.get(settings.events_topic, {}))

    singleton = Singleton(settings.events_topic, lambda: app.consumer.assignment())
    trending = Trending(settings, pipeline.store, singleton, pipeline.metrics, positions)
    pipeline.trend = trending.feed

    # Faust calls each receiver with the sender (the app), then the set of partitions.
    async def on_assigned(*_args: Any, **_kwargs: Any) -> None:
        trending.activate()  # counting starts before the partitions' first records are learned

    app.timer(interval=settings.trending_interval_s)(trending)
    app.on_partitions_assigned.connect(on_assigned)
    app.on_before_shutdown.connect(trending.close)


async def _flush_both(app: faust.App, produced: changelog.ProducedChangelog) -> None:
    """Faust's producer and the profiles' changelog producer, both delivered (before a checkpoint)."""
    await app.producer.flush()
    await produced.flush()


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    restored: Checkpoint | None = None,
    metrics_at: str | None = None,
) -> tuple[faust.App, Pipeline]:
    """A ready-to-run Faust app and the pipeline behind its agents; its model is ``restored``'s if given
    (see `streams.checkpointer.restore`); ``metrics_at`` (``host:port`` of its metrics) goes in its
    heartbeat."""
    codecs.register()
    app = fetching.App(
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
        # A topic made after the worker subscribed (or before the broker's metadata showed it) joins the
        # group's assignment at the next metadata refresh: every 30 s instead of aiokafka's 5 minutes.
        consumer_metadata_max_age_ms=30_000,
        ConsumerScheduler=TimeOrderScheduler,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        table_standby_replicas=settings.table_standbys,
    )
    fetching.install(app, wait_ms=settings.kafka_fetch_wait_ms, min_bytes=settings.kafka_fetch_min_bytes)
    raw = fetching.RawSchema()  # the worker reads bytes: no serializer on the per-message path
    events_topic = app.topic(settings.events_topic, partitions=settings.partitions, schema=raw)
    items_topic = app.topic(
        settings.items_topic,
        partitions=settings.partitions,
        schema=raw,
        config=topic_configs(settings)[settings.items_topic],
    )
    profiles = app.Table(
        PROFILES_TABLE,
        partitions=settings.partitions,
        key_type=str,
        schema=faust.Schema(key_type=str, key_serializer=codecs.ORJSON, value_serializer=codecs.ORJSON),
    )

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        return await app.send(topic, key=key, value=value)

    registry = registry or CollectorRegistry()
    model = model_from(restored, settings)
    metrics = Metrics.create(registry, settings.namespace, model.version)
    store = RedisStore.from_url(
        settings.redis, settings.namespace, user_ttl_s=settings.user_ttl_s, timeout_s=settings.redis_timeout_s
    )
    quality = Quality(model=model, store=store, metrics=metrics, send=send, settings=settings)
    pipeline = Pipeline(
        model=model,
        store=store,
        metrics=metrics,
        send=send,
        events_topic=settings.events_topic,
        dead_letter_topic=settings.dead_letter_topic,
        top_n=settings.top_n,
        quality=quality,
        tombstone_ttl_s=settings.tombstone_ttl_s,
        consent_required=settings.consent_required,
        explain=settings.store_reasons,
    )

    # The profiles' changelog records go out through a C producer (streams/changelog.py), delivered
    # before a partition changes hands.
    produced = changelog.ProducedChangelog(
        profiles.data, profiles.changelog_topic.get_topic_name(), settings.bootstrap
    )

    async def flush_changelog(*_args: Any, **_kwargs: Any) -> None:
        await produced.flush()

    app.on_partitions_revoked.connect(flush_changelog)
    app.on_before_shutdown.connect(produced.close)

    checkpointer = Checkpointer(
        model=model,
        store=store_of(settings),
        metrics=metrics,
        settings=settings,
        flush=lambda: _flush_both(app, produced),
        restored=restored,
        quality=quality,
    )
    pipeline.learned = checkpointer.learned
    pipeline.known = checkpointer.known
    pipeline.forgotten = checkpointer.forget

    checkpointer.confirm = _confirm_erasures(settings, store, metrics)

    writes = changelog.BatchWrites(produced)

    async def process(partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        learn = catchup.should_learn(partition, offset)
        await pipeline.consume_event(
            value, key, writes, topic=settings.events_topic, partition=partition, offset=offset, learn=learn
        )
        checkpointer.advance(settings.events_topic, partition, offset + 1)

    def reader(topic: str) -> GapReader:
        patience = settings.kafka_read_patience_s
        return GapReader(settings.bootstrap, topic, settings.app_id, patience_s=patience, metrics=metrics)

    guard = OffsetGuard(reader(settings.events_topic), writes, process, metrics)

    async def nudge(topic: str, partition: int) -> None:
        await app.send(
            topic, key=None, value=b"", partition=partition, headers=[(CONTROL_HEADER, b"catch-up")]
        )

    catchup = CatchUp(
        checkpointer=checkpointer,
        pipeline=pipeline,
        guard=guard,
        events_reader=reader(settings.events_topic),
        metrics=metrics,
        nudge=nudge,
    )
    replica = Replica(
        bootstrap=settings.bootstrap,
        events_topic=settings.events_topic,
        items_topic=settings.items_topic,
        checkpointer=checkpointer,
        pipeline=pipeline,
        metrics=metrics,
    )

    async def consume_events(stream: faust.StreamT[bytes]) -> None:
        # Faust acks a batch's records once this loop asks for the next batch, i.e. after the flush.
        batches = cast(faust.Stream[bytes], stream).take_events  # StreamT does not declare it
        await replica.ready.wait()  # no list is ranked from a partial catalog
        async for batch in batches(settings.batch_max, within=settings.batch_within_s):
            records = (
                Incoming(e.message.partition, e.message.offset, e.key, e.value, is_control(e.message.headers))
                for e in batch
            )
            await handle_batch(
                records,
                lock=checkpointer.lock,
                catchup=catchup,
                guard=guard,
                pipeline=pipeline,
                writes=writes,
            )
            async with checkpointer.lock:  # other workers' events fetched meanwhile, before the next fill
                replica.agent_turn()

    async def consume_items(stream: faust.StreamT[bytes]) -> None:
        # The group's share of the catalog: validated and published to Redis once. Every worker's model
        # learns the whole catalog through its replica reader, the owner's at once (`Replica.take_item`).
        await replica.ready.wait()  # the replica has set the catalog positions take_item relies on
        async for event in stream.events():
            message = event.message
            async with checkpointer.lock:
                replica.take_item(message.partition, message.offset, event.value or b"")
            await pipeline.consume_item(
                event.value,
                event.key,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )

    republisher = _republisher(app, settings, pipeline, writes, checkpointer.lock)
    pipeline.published = republisher.published
    app.timer(interval=1.0)(republisher.tick)

    app.agent(events_topic, name="events")(consume_events)
    app.agent(items_topic, name="items")(consume_items)
    _follow(app, settings.events_topic, replica, catchup)
    add_reward_agents(app, settings, metrics, pipeline.store)

    heartbeat = Heartbeat(app, settings.events_topic, guard, profiles, pipeline.store, metrics, metrics_at)
    app.timer(interval=HEARTBEAT_S)(heartbeat)
    app.on_before_shutdown.connect(heartbeat.farewell)
    heartbeat.checkpointer = checkpointer
    heartbeat.model_version = model.version
    if settings.trending_interval_s > 0:
        _trending(app, settings, pipeline, checkpointer)
    _watch_recovery(app, settings)

    if settings.checkpoint_enabled:
        app.timer(interval=1.0)(_checkpoint_tick(app, settings, catchup, checkpointer))
        app.on_before_shutdown.connect(checkpointer.close)
    else:  # erasures are confirmed by the same tick (with no files to rewrite)
        app.timer(interval=1.0)(checkpointer.tick)
    app.on_before_shutdown.connect(catchup.close)
    return app, pipeline
