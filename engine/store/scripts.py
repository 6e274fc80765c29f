"""Lua scripts that touch several keys in one call: read a user's list, metadata and preferences, read
item hashes, replace a user's list and metadata.

One EVALSHA costs the client a fraction of the CPU of a pipeline of the same commands (one command to
pack, one reply to parse). The scripts declare every key they touch (`schemas.keys` names them) and
change nothing in the key contract. A server that lost its script cache (restart, SCRIPT FLUSH) is
given the script again.
"""

from __future__ import annotations

__all__ = [
    "COUNT_SERVED",
    "ITEMS_PER_CALL",
    "META_FIELDS",
    "READ_ITEMS",
    "READ_USER",
    "REPLACE_LIST",
    "SERVED_PER_CALL",
    "Script",
    "replace_list_args",
    "run",
    "run_many",
]

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from engine.store.item_meta import FIELDS
from schemas.keys import MetaField

#: The meta hash fields `READ_USER` returns, in this order (None for a field the hash lacks).
META_FIELDS: tuple[str, ...] = tuple(name.value for name in MetaField)

#: Item hashes per `READ_ITEMS` call. Redis runs nothing else while a script runs (~2 us per hash here,
#: so ~0.4 ms per call), and the client's event loop serves requests between calls.
ITEMS_PER_CALL = 200


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1, which is all EVALSHA needs.

    >>> Script("return 1").sha
    'e0e1f9fabfc9d4800c877a703b823ac0578ff8db'
    """

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.text.encode()).hexdigest())


#: KEYS: recs, meta, prefs of one user; ARGV[1]: the last rank wanted (n - 1). Replies
#: ``[[member, score, ...], [meta value per META_FIELDS], [preference field, ...]]``.
READ_USER = Script(
    "return {redis.call('ZREVRANGE', KEYS[1], 0, ARGV[1], 'WITHSCORES'), "
    f"redis.call('HMGET', KEYS[2], {_quoted(META_FIELDS)}), redis.call('HKEYS', KEYS[3])}}"
)

#: KEYS: item hashes. Replies one HMGET answer of `engine.store.item_meta.FIELDS` per key.
READ_ITEMS = Script(
    "local out = {} for i, key in ipairs(KEYS) do "
    f"out[i] = redis.call('HMGET', key, {_quoted(FIELDS)}) end return out"
)

#: KEYS: one HyperLogLog of served items. ARGV: up to `SERVED_PER_CALL` item ids, one per line (ids hold
#: no control characters), then the key's TTL in seconds. PFADD, EXPIRE. One argument instead of one per
#: id: packing the ~4,300 ids a second that 1,000 GETs/s serve took redis-py ~3 ms of the API's event
#: loop (~0.15 ms this way, and ~0.3 ms of Redis time per call).
COUNT_SERVED = Script(
    "local ids = {} for id in string.gmatch(ARGV[1], '[^\\n]+') do ids[#ids + 1] = id end "
    "redis.call('PFADD', KEYS[1], unpack(ids)) return redis.call('EXPIRE', KEYS[1], ARGV[2])"
)
SERVED_PER_CALL = 1000


#: KEYS: recs, meta of one user. ARGV: the list as ``item<TAB>score<LF>...`` (ids hold no control
#: characters, see `schemas.events`), updated_ms, last_event_ts, model_version, events_seen, reasons
#: ('' = none: the field goes, so no list keeps an older list's reasons). DEL + ZADD + HSET (+ HDEL) in
#: Redis, atomically (a reader sees the old list and meta or the new ones): sent as commands, redis-py
#: spent ~150 us of the worker's CPU packing their ~50 arguments per list, ~70 us this way.
REPLACE_LIST = Script(
    f"""
redis.call('DEL', KEYS[1])
local zadd = {{}}
for item, score in string.gmatch(ARGV[1], '([^\\t\\n]+)\\t([^\\n]+)\\n') do
  zadd[#zadd + 1] = score
  zadd[#zadd + 1] = item
end
if #zadd > 0 then
  redis.call('ZADD', KEYS[1], unpack(zadd))
end
redis.call('HSET', KEYS[2], '{MetaField.UPDATED_MS}', ARGV[2], '{MetaField.LAST_EVENT_TS}', ARGV[3],
  '{MetaField.MODEL_VERSION}', ARGV[4], '{MetaField.EVENTS_SEEN}', ARGV[5])
if ARGV[6] == '' then
  redis.call('HDEL', KEYS[2], '{MetaField.REASONS}')
else
  redis.call('HSET', KEYS[2], '{MetaField.REASONS}', ARGV[6])
end
return #zadd / 2
"""
)


def replace_list_args(
    items: Sequence[tuple[str, float]],
    updated_ms: int,
    last_event_ts: int,
    model_version: str,
    events_seen: int,
    reasons: str,
) -> list[str | int]:
    """ARGV of one `REPLACE_LIST` call (``reasons`` in its stored form, or '' for none).

    >>> replace_list_args([("i1", 0.5), ("i2", 0.25)], 1700, 1600, "m1", 3, "")
    ['i1\\t0.5\\ni2\\t0.25\\n', 1700, 1600, 'm1', 3, '']
    """
    listed = "".join(f"{item}\t{score!r}\n" for item, score in items)
    return [listed, updated_ms, last_event_ts, model_version, events_seen, reasons]


async def run_many(client: aioredis.Redis, script: Script, calls: Sequence[Sequence[Any]]) -> None:
    """One EVALSHA per call (``(keys, args)``), all in one pipelined round trip; after NOSCRIPT, SCRIPT
    LOAD and every call again (so only for scripts whose calls may run twice, like `REPLACE_LIST`)."""
    for attempt in range(2):
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                await pipe.execute()
                return
            except NoScriptError:
                if attempt:
                    raise
                await client.script_load(script.text)


async def run(client: aioredis.Redis, script: Script, keys: Sequence[str], args: Sequence[str] = ()) -> Any:
    """The script's reply: EVALSHA, and after NOSCRIPT (the server does not know it yet) SCRIPT LOAD and
    EVALSHA again."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(script.text)
        return await client.evalsha(script.sha, len(keys), *keys, *args)
