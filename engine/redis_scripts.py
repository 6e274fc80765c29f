"""Lua scripts that read several keys in one call: a user's list, metadata and preferences, and item hashes.

One EVALSHA costs the client a fraction of the CPU of a pipeline of the same commands (one command to
pack, one reply to parse). The scripts only read, and declare every key they touch (`schemas.keys`
names them). A server that lost its script cache (restart, SCRIPT FLUSH) is given the script again.
"""

from __future__ import annotations

__all__ = ["ITEMS_PER_CALL", "READ_ITEMS", "READ_USER", "META_FIELDS", "Script", "run"]

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from engine.item_meta import FIELDS
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

#: KEYS: item hashes. Replies one HMGET answer of `engine.item_meta.FIELDS` per key.
READ_ITEMS = Script(
    "local out = {} for i, key in ipairs(KEYS) do "
    f"out[i] = redis.call('HMGET', key, {_quoted(FIELDS)}) end return out"
)


async def run(client: aioredis.Redis, script: Script, keys: Sequence[str], args: Sequence[str] = ()) -> Any:
    """The script's reply: EVALSHA, and after NOSCRIPT (the server does not know it yet) SCRIPT LOAD and
    EVALSHA again."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(script.text)
        return await client.evalsha(script.sha, len(keys), *keys, *args)
