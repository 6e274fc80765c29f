"""What the benchmark reads back from Redis while workers run: per-user meta fields, progress, freshness
and memory per user.

Reads only the benchmark's own namespace (keys from `schemas.keys`); never writes.
"""

from __future__ import annotations

__all__ = ["freshness", "meta_field", "progress", "redis_bytes_per_user"]

import asyncio
import time

from engine.store import scripts as redis_scripts
from engine.store.redis_store import RedisStore
from schemas import keys
from schemas.keys import MetaField

#: KEYS: meta hashes. Replies ``[sum of events_seen, latest updated_ms]`` over them, read atomically, so
#: the sum counts exactly the events whose lists were written by that time.
_PROGRESS = redis_scripts.Script(
    "local seen, last = 0, 0 for _, key in ipairs(KEYS) do "
    f"local v = redis.call('HMGET', key, '{MetaField.EVENTS_SEEN}', '{MetaField.UPDATED_MS}') "
    "if v[1] then seen = seen + tonumber(v[1]) end "
    "if v[2] and tonumber(v[2]) > last then last = tonumber(v[2]) end end return {seen, last}"
)


async def meta_field(store: RedisStore, users: list[str], field: MetaField) -> dict[str, int]:
    """One integer field of each user's meta hash (users without it are left out)."""
    async with store.client.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.hget(keys.meta(store.namespace, user), field)
        values = await pipe.execute()
    return {u: int(v) for u, v in zip(users, values, strict=True) if v is not None}


async def progress(store: RedisStore, users: list[str]) -> tuple[int, int]:
    """``(events, updated_ms)``: the events counted in ``users``' written lists and the time of the
    latest of those writes (0 before any)."""
    meta_keys = [keys.meta(store.namespace, user) for user in users]
    seen, last = await redis_scripts.run(store.client, _PROGRESS, meta_keys)
    return int(seen), int(last)


async def freshness(store: RedisStore, last_ts: dict[str, int], timeout_s: float) -> list[float]:
    """Per user: their last event's ts -> their list written (ms), once the workers caught up."""
    users = list(last_ts)
    deadline = time.monotonic() + timeout_s
    while True:
        seen = await meta_field(store, users, MetaField.LAST_EVENT_TS)
        if all(seen.get(u, 0) >= ts for u, ts in last_ts.items()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    written = await meta_field(store, users, MetaField.UPDATED_MS)
    return [float(written[u] - ts) for u, ts in last_ts.items() if seen.get(u) == ts and u in written]


async def redis_bytes_per_user(store: RedisStore, users: list[str]) -> dict[str, float]:
    """``MEMORY USAGE`` (all samples) of each user's list and meta hash, averaged over ``users``:
    ``{"recs": .., "meta": .., "total": ..}`` in bytes."""
    sums = {"recs": 0, "meta": 0}
    for user in users:
        for kind, key in (
            ("recs", keys.recs(store.namespace, user)),
            ("meta", keys.meta(store.namespace, user)),
        ):
            sums[kind] += int(await store.client.memory_usage(key, samples=0) or 0)
    n = max(len(users), 1)
    return {"recs": sums["recs"] / n, "meta": sums["meta"] / n, "total": (sums["recs"] + sums["meta"]) / n}
