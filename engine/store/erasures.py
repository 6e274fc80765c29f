"""Erasures confirmed: each request's status and an append-only audit trail in Redis.

Three kinds of step, each written to the user's erasure hash and appended to the audit stream:
``requested`` (the API or `personalize forget`: when, by which key, what it deleted, which workers were
beating then; the status is `opened` before the record is produced, so a fast worker's steps find it),
``forgotten`` (the worker owning the user's partition took the erasure record: profile table, model, the
user's tombstone) and ``scrubbed`` (one per worker that read the record, whichever reader: its model and
quality state forgot the user and no checkpoint file of it holds the user any more). `status` answers
``done`` once the owner forgot the user and every worker beating at the request that still beats has
scrubbed. The user appears only as the SHA-256 of their id (`schemas.keys.erasure`). Async; no raw user
id is written here.
"""

from __future__ import annotations

__all__ = ["ErasureStatus", "abandoned", "forgotten", "opened", "requested", "scrubbed", "status"]

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from schemas import keys

#: Hash field prefix of one worker's ``scrubbed`` mark (the rest is the worker's id).
_WORKER = "worker:"


def _subject(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ErasureStatus:
    """The latest erasure of a user, as `status` reads it for the workers beating now."""

    event_id: str
    requested_ms: int
    by: str
    deleted_keys: int
    #: What the request deleted in Redis (key kinds, comma-separated).
    removed: str
    #: When the owner of the user's partition forgot the user (profile, model, tombstone); None before.
    forgotten_ms: int | None
    #: worker id -> when it scrubbed its model state and checkpoint files.
    workers: dict[str, int]
    #: Workers beating at the request that beat still and have not scrubbed yet.
    waiting: tuple[str, ...]
    #: Workers beating at the request that stopped beating before scrubbing (their files: docs/privacy.md).
    gone: tuple[str, ...]

    @property
    def done_ms(self) -> int | None:
        """When the erasure completed: the owner's step and the last awaited scrub; None while pending."""
        if self.forgotten_ms is None or not self.workers or self.waiting:
            return None
        return max(self.forgotten_ms, *self.workers.values())

    @property
    def state(self) -> str:
        return "pending" if self.done_ms is None else "done"


async def opened(
    client: aioredis.Redis,
    namespace: str,
    user_id: str,
    *,
    event_id: str,
    by: str,
    expect: Collection[str],
    now_ms: int,
    ttl_s: int,
) -> None:
    """Start the status of an erasure (replacing an earlier one's) before its record is produced, so a
    worker fast enough to finish before the request does still finds it; ``expect``: the workers beating
    now, each of which must scrub."""
    key = keys.erasure(namespace, user_id)
    fields: dict[Any, Any] = {  # redis-py types keys invariantly
        "event_id": event_id,
        "requested_ms": str(now_ms),
        "by": by,
        "deleted_keys": "0",
        "expect": ",".join(sorted(expect)),
    }
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(key)
        pipe.hset(key, mapping=fields)
        pipe.expire(key, ttl_s)
        await pipe.execute()


async def abandoned(client: aioredis.Redis, namespace: str, user_id: str, event_id: str) -> None:
    """Forget an opened status whose record Kafka did not take (the caller resends)."""
    key = keys.erasure(namespace, user_id)
    if await client.hget(key, "event_id") == event_id:
        await client.delete(key)


async def requested(
    client: aioredis.Redis,
    namespace: str,
    user_id: str,
    *,
    event_id: str,
    by: str,
    deleted_keys: int,
    removed: Sequence[str],
    now_ms: int,
) -> None:
    """The request's own step done (Kafka has the record, Redis lost the user's keys): what it deleted,
    in the status and appended to the audit stream."""
    fields: dict[Any, Any] = {"deleted_keys": str(deleted_keys), "removed": ",".join(removed)}
    key = keys.erasure(namespace, user_id)
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=fields)
        entry: dict[Any, Any] = {
            "step": "requested",
            "user": _subject(user_id),
            "event_id": event_id,
            "by": by,
        }
        pipe.xadd(keys.erasure_audit(namespace), {**entry, "requested_ms": str(now_ms), **fields})
        await pipe.execute()


async def _mark(
    client: aioredis.Redis,
    namespace: str,
    erased: Sequence[tuple[str, str]],
    *,
    step: str,
    field: str,
    worker: str,
    removed: str,
    now_ms: int,
) -> None:
    for user_id, event_id in erased:
        key = keys.erasure(namespace, user_id)
        if await client.hget(key, "event_id") == event_id:  # not if a newer request replaced it
            mark: dict[Any, Any] = {field: now_ms}
            await client.hset(key, mapping=mark)
        entry: dict[Any, Any] = {
            "step": step, "user": _subject(user_id), "event_id": event_id, "worker": worker,
            "removed": removed, "ms": now_ms,
        }  # fmt: skip
        await client.xadd(keys.erasure_audit(namespace), entry)


async def forgotten(
    client: aioredis.Redis, namespace: str, erased: Sequence[tuple[str, str]], *, worker: str, now_ms: int
) -> None:
    """The owner of each (user, erasure event id) forgot the user: profile, model, tombstone written."""
    await _mark(
        client, namespace, erased, step="forgotten", field="forgotten_ms", worker=worker,
        removed="profile,model,quality,list-fence", now_ms=now_ms,
    )  # fmt: skip


async def scrubbed(
    client: aioredis.Redis,
    namespace: str,
    erased: Sequence[tuple[str, str]],
    *,
    worker: str,
    removed: str,
    now_ms: int,
) -> None:
    """``worker`` holds nothing of each user any more: in memory, nor in a checkpoint file it wrote."""
    await _mark(
        client, namespace, erased, step="scrubbed", field=f"{_WORKER}{worker}", worker=worker,
        removed=removed, now_ms=now_ms,
    )  # fmt: skip


async def status(
    client: aioredis.Redis, namespace: str, user_id: str, live: Collection[str]
) -> ErasureStatus | None:
    """The user's latest erasure given the workers beating now (``live``), or None if none is on record
    (never requested, or expired)."""
    found = {str(k): str(v) for k, v in (await client.hgetall(keys.erasure(namespace, user_id))).items()}
    if not found:
        return None
    workers = {k.removeprefix(_WORKER): int(v) for k, v in found.items() if k.startswith(_WORKER)}
    expected = [w for w in found.get("expect", "").split(",") if w]
    forgotten_ms = found.get("forgotten_ms")
    return ErasureStatus(
        event_id=found["event_id"],
        requested_ms=int(found["requested_ms"]),
        by=found["by"],
        deleted_keys=int(found["deleted_keys"]),
        removed=found.get("removed", ""),
        forgotten_ms=None if forgotten_ms is None else int(forgotten_ms),
        workers=workers,
        waiting=tuple(w for w in expected if w in live and w not in workers),
        gone=tuple(w for w in expected if w not in live and w not in workers),
    )
