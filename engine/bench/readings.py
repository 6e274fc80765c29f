"""What the benchmark reads back from Redis while workers run: the numbers of users' stored lists,
progress, freshness and memory per user.

Reads only the benchmark's own namespace (keys from `schemas.keys`); never writes.
"""

from __future__ import annotations

__all__ = ["freshness", "list_numbers", "progress", "redis_bytes_per_user"]

import asyncio
import time

from engine.store import scripts as redis_scripts
from engine.store.redis_store import RedisStore
from schemas import keys, stored_list

#: KEYS: users' lists. Replies ``[sum of events_seen, latest updated_ms]`` over them, read atomically, so
#: the sum counts exactly the events whose lists were written by that time (`schemas.stored_list`: the
#: second and fourth numbers of the first line).
_PROGRESS = redis_scripts.Script(
    "local seen, last = 0, 0 for _, key in ipairs(KEYS) do "
    f"local head = redis.call('GETRANGE', key, 0, {stored_list.HEAD_BYTES - 1}) "
    "local at, written, _, n = string.match(head, '^(%d+)\\t(%d+)\\t(%-?%d+)\\t(%d+)\\t') "
    "if n then seen = seen + tonumber(n) "
    "if tonumber(written) > last then last = tonumber(written) end end end return {seen, last}"
)


async def list_numbers(store: RedisStore, users: list[str]) -> dict[str, tuple[int, int, int, int]]:
    """``(position, updated_ms, last_event_ts, events_seen)`` of each user's stored list (users without
    one are left out), in one round trip."""
    async with store.client.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.getrange(keys.user_list(store.namespace, user), 0, stored_list.HEAD_BYTES - 1)
        values = await pipe.execute()
    found = {user: stored_list.numbers(value) for user, value in zip(users, values, strict=True)}
    return {user: numbers for user, numbers in found.items() if numbers is not None}


async def progress(store: RedisStore, users: list[str]) -> tuple[int, int]:
    """``(events, updated_ms)``: the events counted in ``users``' written lists and the time of the
    latest of those writes (0 before any)."""
    list_keys = [keys.user_list(store.namespace, user) for user in users]
    seen, last = await redis_scripts.run(store.client, _PROGRESS, list_keys)
    return int(seen), int(last)


async def freshness(store: RedisStore, last_ts: dict[str, int], timeout_s: float) -> list[float]:
    """Per user: their last event's ts -> their list written (ms), once the workers caught up."""
    users = list(last_ts)
    deadline = time.monotonic() + timeout_s
    while True:
        found = await list_numbers(store, users)
        if all(u in found and found[u][2] >= ts for u, ts in last_ts.items()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    return [float(found[u][1] - ts) for u, ts in last_ts.items() if u in found and found[u][2] == ts]


async def redis_bytes_per_user(store: RedisStore, users: list[str]) -> dict[str, float]:
    """``MEMORY USAGE`` (all samples) of each user's stored list (its one key: list, metadata and
    reasons), averaged over ``users``: ``{"list": .., "total": ..}`` in bytes (the same number: "total"
    compares with earlier reports, whose lists took two keys)."""
    total = 0
    for user in users:
        total += int(await store.client.memory_usage(keys.user_list(store.namespace, user), samples=0) or 0)
    per_user = total / max(len(users), 1)
    return {"list": per_user, "total": per_user}
