"""A tiny in-memory Redis with the commands the policy store and experiment counters use (str values)."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class FakeRedis:
    """Hashes and sets in dicts; pipelines queue calls and run them on ``execute``."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.sets: dict[str, set[str]] = {}

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

    async def scard(self, key: str) -> int:
        return len(self.sets.get(key, set()))

    async def ping(self) -> bool:
        return True

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
