"""A throw-away namespace on the shared local stack: check the stack answers, then remove every trace.

Removes only what belongs to its own namespace (Redis keys, topics, consumer groups); never touches the
stack's processes, so others using the same Kafka and Redis are not disturbed.
"""

from __future__ import annotations

__all__ = ["check_stack", "fresh_settings", "remove"]

import asyncio
import uuid
from collections.abc import Sequence

import confluent_kafka
import redis.asyncio as aioredis
import redis.exceptions
from confluent_kafka.admin import AdminClient

from engine.ops.settings import Settings
from schemas import keys
from schemas.errors import ServiceUnavailableError

_TIMEOUT_S = 5.0
_HINT = "is the local stack running? start it with `personalize stack up`"


def fresh_settings(base: Settings, **overrides: object) -> Settings:
    """``base`` with a new unique namespace (``bench<hex>``) and the given overrides.

    >>> s = fresh_settings(Settings(), top_n=20)
    >>> s.namespace.startswith("bench"), s.top_n
    (True, 20)
    """
    return base.model_copy(update={"namespace": f"bench{uuid.uuid4().hex[:10]}", **overrides})


async def check_stack(settings: Settings) -> None:
    """Raise `ServiceUnavailableError` (with a hint) unless Kafka and Redis both answer quickly."""
    client = aioredis.Redis.from_url(settings.redis, socket_connect_timeout=_TIMEOUT_S)
    try:
        await client.ping()
    except (redis.exceptions.RedisError, OSError):
        raise ServiceUnavailableError(f"redis ({_HINT})", settings.redis, _TIMEOUT_S) from None
    finally:
        await client.aclose()
    admin = AdminClient({"bootstrap.servers": settings.bootstrap, "socket.connection.setup.timeout.ms": 5000})
    try:
        await asyncio.to_thread(admin.list_topics, timeout=_TIMEOUT_S)
    except confluent_kafka.KafkaException:
        raise ServiceUnavailableError(f"kafka ({_HINT})", settings.bootstrap, _TIMEOUT_S) from None


def _own_topic(settings: Settings, name: str) -> bool:
    return name.startswith((f"p13n.{settings.namespace}.", f"{settings.app_id}-"))


async def remove(settings: Settings, groups: Sequence[str] = ()) -> dict[str, int]:
    """Delete the namespace's Redis keys, topics and the given consumer groups; counts what went."""
    client = aioredis.Redis.from_url(settings.redis)
    deleted_keys = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=keys.namespace_pattern(settings.namespace), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted_keys += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted_keys += await client.unlink(*batch)
    finally:
        await client.aclose()
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    metadata = await asyncio.to_thread(admin.list_topics, timeout=15)
    topics = [name for name in metadata.topics if _own_topic(settings, name)]
    for future in (admin.delete_topics(topics) if topics else {}).values():
        await asyncio.wrap_future(future)
    if groups:
        for future in admin.delete_consumer_groups(list(groups)).values():
            try:
                await asyncio.wrap_future(future)
            except confluent_kafka.KafkaException:
                pass  # a group that never committed (or is already gone) has nothing to delete
    return {"redis_keys": deleted_keys, "topics": len(topics)}
