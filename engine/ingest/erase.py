"""Erasing a user: the one way the HTTP API (``DELETE /v1/users/{id}``) and ``personalize forget`` do it.

The erasure record goes to the events topic first (keyed by the user, so the worker owning the user's
partition takes it in order with their events; every other worker's replica reader sees it too), then
the user's Redis keys go at once with a tombstone at the record's offset, then the user leaves the
experiment sets, and the request is recorded for `engine.store.erasures` (status and audit). The user id
given is already the stored one (pseudonymized by the caller). Never writes the raw id anywhere.
"""

from __future__ import annotations

__all__ = ["Erasure", "erase"]

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from engine.ingest.kafka import AsyncProducer
from engine.ops.settings import Settings
from engine.store import erasures
from engine.store.redis_store import RedisStore
from schemas.errors import ServiceUnavailableError
from schemas.users import ErasureRecord, encode_user_record


@dataclass(frozen=True, slots=True)
class Erasure:
    """What a request did: the record's id and time, and what it deleted in Redis."""

    event_id: str
    requested_ms: int
    deleted_keys: int
    #: Key kinds deleted, with counts (``user-keys:3``, ``experiment-sets:1``, ``consent-grant``).
    removed: tuple[str, ...]


async def _leave_sets(store: RedisStore, user_id: str, sets: Sequence[str]) -> int:
    if not sets:
        return 0
    async with store.client.pipeline(transaction=False) as pipe:
        for key in sets:
            pipe.srem(key, user_id)
        return sum(int(n) for n in await pipe.execute())


async def erase(
    producer: AsyncProducer,
    store: RedisStore,
    settings: Settings,
    user_id: str,
    *,
    by: str,
    experiment_sets: Sequence[str] = (),
) -> Erasure:
    """Erase ``user_id`` (stored form) on behalf of ``by`` (an API key's name, or the CLI's user).

    `ServiceUnavailableError` if Kafka does not confirm the record in time: the Redis keys and set
    memberships are deleted all the same (without a tombstone) and nothing is recorded; resend.
    """
    now = time.time_ns() // 1_000_000
    record = ErasureRecord(event_id=f"erase-{uuid.uuid4().hex}", user_id=user_id, ts=now)
    ns, ttl_s = settings.namespace, settings.tombstone_ttl_s
    live = await store.workers_by_id()
    await erasures.opened(
        store.client,
        ns,
        user_id,
        event_id=record.event_id,
        by=by,
        expect=live.keys(),
        now_ms=now,
        ttl_s=ttl_s,
    )
    timeout = settings.api_timeout_s
    future = producer.send_nowait(settings.events_topic, encode_user_record(record), user_id.encode())
    try:
        delivered = await asyncio.wait_for(future, timeout + 1.0)
    except Exception as exc:  # noqa: BLE001 - any delivery failure is the same: Kafka did not confirm
        await erasures.abandoned(store.client, ns, user_id, record.event_id)
        await store.forget_user(user_id)
        await _leave_sets(store, user_id, experiment_sets)
        raise ServiceUnavailableError("kafka", settings.bootstrap, timeout) from exc
    deleted = await store.forget_user(user_id, (delivered.offset, ttl_s))
    left = await _leave_sets(store, user_id, experiment_sets)
    removed = (f"user-keys:{deleted}", f"experiment-sets:{left}", "consent-grant")
    await erasures.requested(
        store.client, ns, user_id, event_id=record.event_id, by=by, deleted_keys=deleted, removed=removed,
        now_ms=now,
    )  # fmt: skip
    return Erasure(record.event_id, now, deleted, removed)
