"""Users' consent in Redis (`schemas.keys.consent`): read for a batch of users, recorded, kept on erasure.

The edge reads it before an event reaches Kafka; the worker keeps its own copy in its profiles (it gets
the consent records in order with the events). A consent key never expires: a withdrawal must outlive
every other key of the user. Async; one round trip per call.
"""

from __future__ import annotations

__all__ = ["ConsentState", "forget_grant", "read_states", "record"]

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from engine.store import scripts as redis_scripts
from schemas import keys

#: KEYS: one consent key. Deletes it if it holds a grant (an erased user must grant again); a withdrawal
#: stays, so the user's later events are still dropped. Replies 1 if deleted.
_FORGET_GRANT = redis_scripts.Script(
    "if string.sub(redis.call('GET', KEYS[1]) or '', 1, 1) == '1' then "
    "return redis.call('DEL', KEYS[1]) end return 0"
)


@dataclass(frozen=True, slots=True)
class ConsentState:
    """What a user said, and when (epoch ms); ``granted`` None: never said.

    >>> ConsentState.parse("0:1700000000000"), ConsentState.parse(None)
    (ConsentState(granted=False, since_ms=1700000000000), ConsentState(granted=None, since_ms=None))
    """

    granted: bool | None
    since_ms: int | None

    @classmethod
    def parse(cls, value: str | None) -> ConsentState:
        if not value:
            return cls(None, None)
        flag, _, since = value.partition(":")
        return cls(flag == "1", int(since) if since.isdigit() else None)


async def read_states(client: aioredis.Redis, namespace: str, user_ids: Sequence[str]) -> list[ConsentState]:
    """The consent of each user (in order), in one MGET."""
    if not user_ids:
        return []
    values = await client.mget([keys.consent(namespace, u) for u in user_ids])
    return [ConsentState.parse(v.decode() if isinstance(v, bytes) else v) for v in values]


async def record(client: aioredis.Redis, namespace: str, user_id: str, granted: bool, ts: int) -> int:
    """Store the user's consent; a withdrawal also deletes their list (with its metadata) and
    preferences at once (one MULTI/EXEC). Returns how many of those keys existed."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.consent(namespace, user_id), f"{int(granted)}:{ts}")
        if not granted:
            pipe.delete(keys.user_list(namespace, user_id), keys.preferences(namespace, user_id))
        answers = await pipe.execute()
    return 0 if granted else int(answers[-1])


async def forget_grant(client: aioredis.Redis, namespace: str, user_id: str) -> bool:
    """On erasure: delete the user's consent if it is a grant (a withdrawal stays); True if deleted."""
    return bool(await redis_scripts.run(client, _FORGET_GRANT, [keys.consent(namespace, user_id)]))
