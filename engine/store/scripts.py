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
    "LISTS_PER_CALL",
    "PUBLISH_POLICY",
    "READ_ITEMS",
    "READ_USER",
    "REFUSED_ERASED",
    "REFUSED_STALE",
    "REPLACE_LISTS",
    "SERVED_PER_CALL",
    "Script",
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
from schemas.keys import PolicyField

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


#: KEYS: list, prefs of one user. Replies ``[stored list or None, [preference field, ...]]``.
READ_USER = Script("return {redis.call('GET', KEYS[1]), redis.call('HKEYS', KEYS[2])}")

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


#: `REPLACE_LISTS`' reply for a list when the user's tombstone is newer than it, and when the stored list is.
REFUSED_ERASED = -1
REFUSED_STALE = -2


def _held(key: str) -> str:
    """The Lua line that sets ``held`` to the fence position of the list stored at ``key`` (nil: none):
    the first part of the value (`schemas.stored_list`), read from its first 20 bytes (GETRANGE: an
    offset has at most 16 digits)."""
    return f"local held = tonumber(string.match(redis.call('GETRANGE', {key}, 0, 19), '^(%d+)\\t'))"


#: Lists per `REPLACE_LISTS` call: Redis runs nothing else while a script runs (~4 us per list here, so
#: ~0.2 ms per call); one call per list cost redis-py ~11 us more per list than a share of one call.
LISTS_PER_CALL = 50

#: KEYS: list, tombstone of each user (in pairs). ARGV: the keys' TTL in seconds (0: none), then per user
#: the stored list (`schemas.stored_list.encode`) and its position. Each list is refused
#: (`REFUSED_ERASED`, `REFUSED_STALE`, nothing written) when its position is below the tombstone's or the
#: stored list's (equal is written: the same record handled again), else SET (a reader sees the old list
#: or the new one, never half of either). Replies one answer per user: the refusal, or 1.
#: Positions are Kafka offsets: Lua's doubles hold them exactly up to 2^53.
REPLACE_LISTS = Script(
    f"""
local ttl = ARGV[1]
local out = {{}}
for n = 1, #KEYS / 2 do
  local list, position = KEYS[2 * n - 1], tonumber(ARGV[2 * n + 1])
  local fence = redis.call('GET', KEYS[2 * n])
  {_held("list")}
  if fence and position < tonumber(fence) then
    out[n] = {REFUSED_ERASED}
  elseif held and position < held then
    out[n] = {REFUSED_STALE}
  else
    if ttl ~= '0' then
      redis.call('SET', list, ARGV[2 * n], 'EX', ttl)
    else
      redis.call('SET', list, ARGV[2 * n])
    end
    out[n] = 1
  end
end
return out
"""
)

#: KEYS: list, tombstone of one user, optionally their preferences hash. ARGV: position (of the erasure
#: or reset record on the user's events partition), the tombstone's TTL in seconds. Raises the tombstone
#: to the position (never lowers it; the TTL restarts when it rises), deletes the list unless it reflects
#: a record at or after the position (the user came back since), and deletes the preferences when given.
#: Replies how many keys it deleted.
FENCE_USER = Script(
    f"""
local position = tonumber(ARGV[1])
local fence = redis.call('GET', KEYS[2])
if not fence or tonumber(fence) < position then
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
end
local deleted = 0
if KEYS[3] then
  deleted = redis.call('DEL', KEYS[3])
end
{_held("KEYS[1]")}
if held and held >= position then
  return deleted
end
return deleted + redis.call('DEL', KEYS[1])
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


async def run_many(client: aioredis.Redis, script: Script, calls: Sequence[Sequence[Any]]) -> list[Any]:
    """The replies of one EVALSHA per call (``(keys, args)``), all in one pipelined round trip; after
    NOSCRIPT, SCRIPT LOAD and every call again (so only for scripts whose calls may run twice, like
    `REPLACE_LISTS` and `FENCE_USER`)."""
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
