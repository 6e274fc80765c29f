"""Erasures confirmed: each request's status and an append-only audit trail in Redis.

The API records the request (`requested`: when, by which key, how many keys it deleted) in the user's
erasure hash and in the audit stream; each worker that takes the erasure record from Kafka (and so has
forgotten the user in its model and profile table) adds ``done`` (`done`). `status` answers pending or
done. The user appears only as the SHA-256 of their id (`schemas.keys.erasure`). Async; no raw user id
is written here.
"""

from __future__ import annotations

__all__ = ["ErasureStatus", "done", "requested", "status"]

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from schemas import keys


def _subject(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ErasureStatus:
    """The latest erasure of a user: ``done_ms`` is None while no worker has completed it."""

    event_id: str
    requested_ms: int
    by: str
    deleted_keys: int
    done_ms: int | None

    @property
    def state(self) -> str:
        return "pending" if self.done_ms is None else "done"


async def requested(
    client: aioredis.Redis,
    namespace: str,
    user_id: str,
    *,
    event_id: str,
    by: str,
    deleted_keys: int,
    now_ms: int,
    ttl_s: int,
) -> None:
    """Record an erasure request (replacing an earlier one's status) and append it to the audit stream."""
    key = keys.erasure(namespace, user_id)
    fields: dict[Any, Any] = {  # redis-py types keys invariantly
        "event_id": event_id,
        "requested_ms": str(now_ms),
        "by": by,
        "deleted_keys": str(deleted_keys),
    }
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, ttl_s)
        pipe.xadd(keys.erasure_audit(namespace), {"step": "requested", "user": _subject(user_id), **fields})
        await pipe.execute()


async def done(
    client: aioredis.Redis, namespace: str, erased: Sequence[tuple[str, str]], *, worker: str, now_ms: int
) -> None:
    """Mark each (user, erasure event id) done by ``worker``, unless a newer request replaced it."""
    for user_id, event_id in erased:
        key = keys.erasure(namespace, user_id)
        if await client.hget(key, "event_id") == event_id:
            mark: dict[Any, Any] = {"done_ms": now_ms}
            await client.hset(key, mapping=mark)
        await client.xadd(
            keys.erasure_audit(namespace),
            {"step": "done", "user": _subject(user_id), "event_id": event_id, "worker": worker, "ms": now_ms},
        )


async def status(client: aioredis.Redis, namespace: str, user_id: str) -> ErasureStatus | None:
    """The user's latest erasure, or None if none is on record (never requested, or expired)."""
    found = await client.hgetall(keys.erasure(namespace, user_id))
    if not found:
        return None
    done_ms = found.get("done_ms")
    return ErasureStatus(
        event_id=str(found["event_id"]),
        requested_ms=int(found["requested_ms"]),
        by=str(found["by"]),
        deleted_keys=int(found["deleted_keys"]),
        done_ms=None if done_ms is None else int(done_ms),
    )
