"""Async Kafka plumbing for the CLI and services: an awaitable confluent-kafka producer and topic setup.

Producers hash keys with murmur2 like the Java client and aiokafka, so an event keyed by user_id lands
on the same partition whoever produced it (the per-user tables depend on it).
"""

from __future__ import annotations

__all__ = ["AsyncProducer", "Delivery", "ensure_topics"]

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import confluent_kafka
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from schemas.errors import DeliveryError, ServiceUnavailableError


class Delivery(NamedTuple):
    """Where the broker put a record: its partition and offset (a user's fencing position)."""

    partition: int
    offset: int


class AsyncProducer:
    """confluent-kafka Producer whose `send` is awaitable and confirms delivery.

    A background task polls the client so delivery callbacks resolve futures on the event loop.
    """

    def __init__(self, bootstrap: str, **config: Any) -> None:
        self.bootstrap = bootstrap
        self._producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": bootstrap,
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                "enable.idempotence": True,
                "compression.type": "lz4",
                **config,
            }
        )
        self._poller: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AsyncProducer:
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.flush()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def _poll_forever(self) -> None:
        while True:
            served = await asyncio.to_thread(self._producer.poll, 0.05)
            if not served:
                await asyncio.sleep(0)

    def send_nowait(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Delivery]:
        """Queue one record; the returned future gives its partition and offset once the broker
        confirms it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Delivery] = loop.create_future()

        def delivered(err: confluent_kafka.KafkaError | None, msg: confluent_kafka.Message) -> None:
            if err is None:
                where = Delivery(msg.partition() or 0, msg.offset() or 0)
                loop.call_soon_threadsafe(_settle, future, where)
            else:
                loop.call_soon_threadsafe(_settle, future, DeliveryError(f"kafka topic {topic}", str(err)))

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=delivered)
                return future
            except BufferError:
                self._producer.poll(0.05)  # local queue full: let deliveries drain, then retry

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Delivery:
        return await self.send_nowait(topic, value, key)

    async def check(self, timeout_s: float) -> None:
        """Raise `ServiceUnavailableError` unless the cluster answers a metadata request in time."""
        try:
            await asyncio.to_thread(self._producer.list_topics, timeout=timeout_s)
        except confluent_kafka.KafkaException:
            raise ServiceUnavailableError("kafka", self.bootstrap, timeout_s) from None

    async def flush(self, timeout_s: float = 30.0) -> None:
        left = await asyncio.to_thread(self._producer.flush, timeout_s)
        if left:
            raise DeliveryError("kafka", f"{left} record(s) still undelivered after {timeout_s:.0f}s")


def _settle(future: asyncio.Future[Delivery], outcome: Delivery | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    partitions: int,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create missing topics with ``partitions`` partitions and their ``configs`` (topic name -> Kafka
    topic configs, e.g. ``retention.ms``); existing ones must have that many partitions and keep the
    configs they have, except that a topic configured ``cleanup.policy=compact`` (the catalog) is
    switched over if it was made before it was compacted."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = list(topics)
    given = configs or {}
    metadata = await asyncio.to_thread(admin.list_topics, timeout=15)
    missing = [t for t in wanted if t not in metadata.topics]
    for name in set(wanted) - set(missing):
        have = len(metadata.topics[name].partitions)
        if have != partitions:
            raise DeliveryError(
                f"kafka topic {name}",
                f"has {have} partitions but the engine is configured for {partitions} "
                f"(set PERSONALIZE_PARTITIONS={have} for this namespace, or use a new namespace)",
            )
    compact = [t for t in wanted if given.get(t, {}).get("cleanup.policy") == "compact"]
    await _compact(admin, [t for t in compact if t not in missing])
    if not missing:
        return
    futures = admin.create_topics(
        [
            NewTopic(t, num_partitions=partitions, replication_factor=1, config=dict(given.get(t, {})))
            for t in missing
        ]
    )
    for name, fut in futures.items():
        try:
            await asyncio.wrap_future(fut)
        except confluent_kafka.KafkaException as exc:
            if exc.args[0].code() != confluent_kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                raise DeliveryError(f"kafka topic {name}", str(exc)) from exc
    await _visible(admin, missing, partitions)


async def _visible(admin: AdminClient, topics: list[str], partitions: int, timeout_s: float = 30.0) -> None:
    """Until the broker's metadata lists each of ``topics`` with all ``partitions`` led.

    The controller accepts a new topic before the broker's metadata shows it; a consumer that subscribes
    in between leaves the topic out of its group's assignment until its next metadata refresh.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = await asyncio.to_thread(admin.list_topics, timeout=15)
        found = {name: metadata.topics.get(name) for name in topics}
        pending = [
            name
            for name, topic in found.items()
            if topic is None
            or topic.error is not None
            or len(topic.partitions) < partitions
            or any(p.leader < 0 for p in topic.partitions.values())
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise DeliveryError(
                f"kafka topics {', '.join(pending)}", f"not visible {timeout_s:.0f}s after creation"
            )
        await asyncio.sleep(0.1)


async def _compact(admin: AdminClient, topics: list[str]) -> None:
    """Set ``cleanup.policy=compact`` on existing topics (a no-op where it is set already)."""
    if not topics:
        return
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)
            ],
        )
        for topic in topics
    ]
    for resource, fut in admin.incremental_alter_configs(resources).items():
        try:
            await asyncio.wrap_future(fut)
        except confluent_kafka.KafkaException as exc:
            raise DeliveryError(f"kafka topic {resource.name}", f"cannot compact: {exc}") from exc
