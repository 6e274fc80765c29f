"""A tiny in-memory Redis with the commands the policy store, experiment counters and the recommendation
store use (str values; sorted sets ordered as Redis orders them; the store's scripts emulated)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from engine.store.item_meta import FIELDS
from engine.store.scripts import (
    FENCE_USER,
    PUBLISH_POLICY,
    READ_ITEMS,
    READ_USER,
    REFUSED_ERASED,
    REFUSED_STALE,
    REPLACE_LISTS,
    Script,
)
from schemas import stored_list
from schemas.keys import PolicyField


class FakeRedis:
    """Hashes, sets and sorted sets in dicts; pipelines queue calls and run them on ``execute``."""

    def __init__(self) -> None:
        self.strings: dict[str, str] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        self.sets: dict[str, set[str]] = {}
        self.zsets: dict[str, dict[str, float]] = {}
        self.streams: dict[str, list[tuple[str, dict[str, str]]]] = {}
        #: Read by the API fakes' `FakeStore` (False: every read fails as if Redis were down).
        self.up = True

    async def delete(self, *keys: str) -> int:
        stores: tuple[dict[str, Any], ...] = (self.strings, self.hashes, self.sets, self.zsets)
        return sum(any(s.pop(k, None) is not None for s in stores) for k in keys)

    async def zadd(self, key: str, mapping: dict[str, float]) -> int:
        zset = self.zsets.setdefault(key, {})
        added = len(set(mapping) - set(zset))
        zset.update({str(m): float(v) for m, v in mapping.items()})
        return added

    async def zrevrange(
        self, key: str, start: int, end: int, withscores: bool = False
    ) -> list[tuple[str, float]] | list[str]:
        """Score descending, equal scores by member bytes descending (as Redis)."""
        zset = self.zsets.get(key, {})
        ranked = sorted(zset.items(), key=lambda pair: (pair[1], pair[0].encode()), reverse=True)
        window = ranked[start : None if end == -1 else end + 1]
        return window if withscores else [member for member, _ in window]

    async def zrange(self, key: str, start: int, end: int) -> list[str]:
        """Score ascending, equal scores by member bytes (as Redis)."""
        ranked = sorted(self.zsets.get(key, {}).items(), key=lambda pair: (pair[1], pair[0].encode()))
        return [member for member, _ in ranked[start : None if end == -1 else end + 1]]

    async def zrem(self, key: str, *members: str) -> int:
        zset = self.zsets.get(key, {})
        return sum(zset.pop(m, None) is not None for m in members)

    async def get(self, key: str) -> str | None:
        return self.strings.get(key)

    async def set(self, key: str, value: Any) -> bool:
        self.strings[key] = str(value)
        return True

    async def hdel(self, key: str, *fields: str) -> int:
        found = self.hashes.get(key, {})
        return sum(found.pop(str(f), None) is not None for f in fields)

    async def hget(self, key: str, field: str) -> str | None:
        return self.hashes.get(key, {}).get(str(field))

    async def hmget(self, key: str, fields: list[str]) -> list[str | None]:
        return [self.hashes.get(key, {}).get(str(f)) for f in fields]

    async def hgetall(self, key: str) -> dict[str, str]:
        return dict(self.hashes.get(key, {}))

    async def hset(self, key: str, mapping: dict[Any, Any]) -> int:
        self.hashes.setdefault(key, {}).update({str(k): str(v) for k, v in mapping.items()})
        return len(mapping)

    async def hincrby(self, key: str, field: str, amount: int) -> int:
        fields = self.hashes.setdefault(key, {})
        fields[str(field)] = str(int(fields.get(str(field), "0")) + amount)
        return int(fields[str(field)])

    async def hincrbyfloat(self, key: str, field: str, amount: float) -> float:
        fields = self.hashes.setdefault(key, {})
        fields[str(field)] = repr(float(fields.get(str(field), "0")) + amount)
        return float(fields[str(field)])

    async def sadd(self, key: str, *members: str) -> int:
        before = len(self.sets.setdefault(key, set()))
        self.sets[key].update(members)
        return len(self.sets[key]) - before

    async def srem(self, key: str, *members: str) -> int:
        found = self.sets.get(key, set())
        gone = found & set(members)
        found -= gone
        return len(gone)

    async def scard(self, key: str) -> int:
        return len(self.sets.get(key, set()))

    async def ping(self) -> bool:
        return True

    async def script_load(self, text: str) -> str:
        return Script(text).sha

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: str) -> Any:
        """The store's read scripts (`engine.store.scripts`), answered as Redis would."""
        keys, args = keys_and_args[:numkeys], keys_and_args[numkeys:]
        if sha == REPLACE_LISTS.sha:
            return [self._replace_list(keys[n : n + 2], args[n + 1 : n + 3]) for n in range(0, len(keys), 2)]
        if sha == FENCE_USER.sha:
            return await self._fence_user(keys, args)
        if sha == PUBLISH_POLICY.sha:
            return await self._publish_policy(keys, args)
        if sha == READ_ITEMS.sha:
            return [await self.hmget(key, list(FIELDS)) for key in keys]
        assert sha == READ_USER.sha, sha
        return [self.strings.get(keys[0]), list(self.hashes.get(keys[1], {}))]

    def _held(self, key: str) -> int | None:
        """The stored list's fence position, as the scripts read it."""
        numbers = stored_list.numbers(self.strings.get(key))
        return numbers[0] if numbers is not None else None

    def _replace_list(self, keys: tuple[str, ...], args: tuple[Any, ...]) -> int:
        """What `REPLACE_LISTS` does for one user (TTL aside; its Lua is checked against the real Redis in
        tests/integration)."""
        value, position = args
        fence, held = self.strings.get(keys[1]), self._held(keys[0])
        if fence is not None and int(position) < int(fence):
            return REFUSED_ERASED
        if held is not None and int(position) < held:
            return REFUSED_STALE
        self.strings[keys[0]] = str(value)
        return 1

    async def _publish_policy(self, keys: tuple[str, ...], args: tuple[Any, ...]) -> int:
        """What `PUBLISH_POLICY` does (checked against the real Redis in tests/integration)."""
        expected, snapshot, rewards, updated_ms = args
        fields = self.hashes.setdefault(keys[0], {})
        version = int(fields.get(PolicyField.VERSION, "0"))
        if version != int(expected):
            return 0
        fields.update(
            {
                PolicyField.VERSION: str(version + 1),
                PolicyField.SNAPSHOT: str(snapshot),
                PolicyField.REWARDS: str(rewards),
                PolicyField.UPDATED_MS: str(updated_ms),
            }
        )
        return version + 1

    async def _fence_user(self, keys: tuple[str, ...], args: tuple[Any, ...]) -> int:
        """What `FENCE_USER` does (TTL aside; checked against the real Redis in tests/integration)."""
        position = int(args[0])
        if int(self.strings.get(keys[1], position - 1)) < position:
            self.strings[keys[1]] = str(position)
        deleted = await self.delete(keys[2]) if len(keys) > 2 else 0
        held = self._held(keys[0])
        if held is not None and held >= position:
            return deleted
        return deleted + await self.delete(keys[0])

    async def expire(self, key: str, seconds: int) -> bool:
        return key in self.hashes or key in self.strings  # kept: unit tests do not outlive a TTL

    async def xadd(self, key: str, fields: dict[str, Any]) -> str:
        entries = self.streams.setdefault(key, [])
        entries.append((f"{len(entries) + 1}-0", {k: str(v) for k, v in fields.items()}))
        return entries[-1][0]

    async def xrange(self, key: str) -> list[tuple[str, dict[str, str]]]:
        return list(self.streams.get(key, []))

    async def aclose(self) -> None:
        return None

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        def queue(*args: Any, **kwargs: Any) -> FakePipeline:
            self.calls.append((name, args, kwargs))
            return self

        return queue

    async def execute(self) -> list[Any]:
        calls, self.calls = self.calls, []
        return [await getattr(self.redis, name)(*args, **kwargs) for name, args, kwargs in calls]
