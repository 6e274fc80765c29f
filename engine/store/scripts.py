"""Lua scripts that touch several keys in one call: read a user's list, metadata and preferences, read
item hashes, replace a user's list and metadata (fenced), fence a user off (erasure, reset), publish a
policy snapshot by compare-and-set.

One EVALSHA costs the client a fraction of the CPU of a pipeline of the same commands (one command to
pack, one reply to parse). The scripts declare every key they touch (`schemas.keys` names them) and
change nothing in the key contract. A server that lost its script cache (restart, SCRIPT FLUSH) is
given the script again.
"""

from __future__ import annotations

__all__ = [
    "COUNT_SERVED",
    "FENCE_USER",
    "ITEMS_PER_CALL",
    "META_FIELDS",
    "PUBLISH_POLICY",
    "READ_ITEMS",
    "READ_USER",
    "REPLACE_LIST",
    "REFUSED_ERASED",
    "REFUSED_STALE",
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
from schemas.keys import MetaField, PolicyField

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


#: `REPLACE_LIST`'s reply when the user's tombstone is newer than the list, and when the stored list is.
REFUSED_ERASED = -1
REFUSED_STALE = -2

#: KEYS: recs, meta, tombstone of one user. ARGV: the list as ``item<TAB>score<LF>...`` (ids hold no
#: control characters, see `schemas.events`), updated_ms, last_event_ts, model_version, events_seen,
#: reasons ('' = none: the field goes, so no list keeps an older list's reasons), position. Refused
#: (`REFUSED_ERASED`, `REFUSED_STALE`, nothing written) when the position is below the tombstone's or
#: the stored list's (equal is written: the same record handled again). Else DEL + ZADD + HSET (+ HDEL)
#: atomically (a reader sees the old list and meta or the new ones) and the number of items. Sent as
#: commands, redis-py spent ~150 us of the worker's CPU packing their ~50 arguments per list, ~70 us
#: this way. Positions are Kafka offsets: Lua's doubles hold them exactly up to 2^53.
REPLACE_LIST = Script(
    f"""
local position = tonumber(ARGV[7])
local fence = redis.call('GET', KEYS[3])
if fence and position < tonumber(fence) then
  return {REFUSED_ERASED}
end
local held = redis.call('HGET', KEYS[2], '{MetaField.POSITION}')
if held and position < tonumber(held) then
  return {REFUSED_STALE}
end
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
  '{MetaField.MODEL_VERSION}', ARGV[4], '{MetaField.EVENTS_SEEN}', ARGV[5], '{MetaField.POSITION}', ARGV[7])
if ARGV[6] == '' then
  redis.call('HDEL', KEYS[2], '{MetaField.REASONS}')
else
  redis.call('HSET', KEYS[2], '{MetaField.REASONS}', ARGV[6])
end
return #zadd / 2
"""
)

#: KEYS: recs, meta, tombstone of one user, optionally their preferences hash. ARGV: position (of the
#: erasure or reset record on the user's events partition), the tombstone's TTL in seconds. Raises the
#: tombstone to the position (never lowers it; the TTL restarts when it rises), deletes the list and meta
#: unless they reflect a record at or after the position (the user came back since), and deletes the
#: preferences when given. Replies how many keys it deleted.
FENCE_USER = Script(
    f"""
local position = tonumber(ARGV[1])
local fence = redis.call('GET', KEYS[3])
if not fence or tonumber(fence) < position then
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
end
local deleted = 0
if KEYS[4] then
  deleted = redis.call('DEL', KEYS[4])
end
local held = redis.call('HGET', KEYS[2], '{MetaField.POSITION}')
if held and tonumber(held) >= position then
  return deleted
end
return deleted + redis.call('DEL', KEYS[1], KEYS[2])
"""
)

#: KEYS: one policy hash. ARGV: the version the snapshot was learned from (0: none published), the
#: snapshot (base64), rewards learned, updated_ms. Compare-and-set: writes the snapshot with version + 1
#: and replies it only while the stored version is still the expected one; else replies 0, writes nothing.
PUBLISH_POLICY = Script(
    f"""
local version = tonumber(redis.call('HGET', KEYS[1], '{PolicyField.VERSION}') or '0')
if version ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], '{PolicyField.VERSION}', version + 1, '{PolicyField.SNAPSHOT}', ARGV[2],
  '{PolicyField.REWARDS}', ARGV[3], '{PolicyField.UPDATED_MS}', ARGV[4])
return version + 1
"""
)


def replace_list_args(
    items: Sequence[tuple[str, float]],
    updated_ms: int,
    last_event_ts: int,
    model_version: str,
    events_seen: int,
    reasons: str,
    position: int,
) -> list[str | int]:
    """ARGV of one `REPLACE_LIST` call (``reasons`` in its stored form, or '' for none).

    >>> replace_list_args([("i1", 0.5), ("i2", 0.25)], 1700, 1600, "m1", 3, "", 41)
    ['i1\\t0.5\\ni2\\t0.25\\n', 1700, 1600, 'm1', 3, '', 41]
    """
    listed = "".join(f"{item}\t{score!r}\n" for item, score in items)
    return [listed, updated_ms, last_event_ts, model_version, events_seen, reasons, position]


async def run_many(client: aioredis.Redis, script: Script, calls: Sequence[Sequence[Any]]) -> list[Any]:
    """The replies of one EVALSHA per call (``(keys, args)``), all in one pipelined round trip; after
    NOSCRIPT, SCRIPT LOAD and every call again (so only for scripts whose calls may run twice, like
    `REPLACE_LIST` and `FENCE_USER`)."""
    for attempt in range(2):
        async with client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                return list(await pipe.execute())
            except NoScriptError:
                if attempt:
                    raise
                await client.script_load(script.text)
    raise AssertionError("unreachable: the second attempt returns or raises")


async def run(
    client: aioredis.Redis, script: Script, keys: Sequence[str], args: Sequence[str | int] = ()
) -> Any:
    """The script's reply: EVALSHA, and after NOSCRIPT (the server does not know it yet) SCRIPT LOAD and
    EVALSHA again."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(script.text)
        return await client.evalsha(script.sha, len(keys), *keys, *args)
