"""In-memory stand-ins for Redis and Kafka, and an API app wired to them (no services needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError

from engine.api import create_api, hash_key
from engine.ingest.kafka import AsyncProducer, Delivery
from engine.ops.settings import Settings
from engine.store.consent import ConsentState
from engine.store.item_meta import UNKNOWN, ItemMeta
from engine.store.preferences import Preferences
from engine.store.redis_store import Recommendations, RedisStore
from schemas.errors import DeliveryError, ServiceUnavailableError
from schemas.reasons import Reason
from tests.engine import fake_redis

KEY = "p13n_unit-test-key"


class FakeRedis(fake_redis.FakeRedis):
    """The unit fake of Redis whose ``ping`` fails while ``up`` is False."""

    async def ping(self) -> bool:
        if not self.up:
            raise RedisConnectionError("down")
        return True


@dataclass
class FakeStore:
    """The reads `engine.serving.recommend.recommend` makes, from dicts."""

    recs: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    #: user -> item -> the reason stored with the user's list
    reasons: dict[str, dict[str, Reason]] = field(default_factory=dict)
    trending: dict[str | None, list[tuple[str, float]]] = field(default_factory=dict)
    items: dict[str, ItemMeta] = field(default_factory=dict)
    prefs: dict[str, dict[str, str]] = field(default_factory=dict)
    served: set[str] = field(default_factory=set)
    #: user -> the position of their tombstone (erasure, reset or withdrawal)
    fences: dict[str, int] = field(default_factory=dict)
    #: user -> (granted, since_ms), as `engine.store.consent` keeps it
    consent: dict[str, tuple[bool, int]] = field(default_factory=dict)
    client: FakeRedis = field(default_factory=FakeRedis)
    address: str = "fake:6379"
    #: worker id -> heartbeat fields of the workers beating now
    workers: dict[str, dict[str, str]] = field(default_factory=dict)

    async def workers_by_id(self) -> dict[str, dict[str, str]]:
        return self.workers

    async def read(self, user_id: str, n: int = 50) -> Recommendations:
        if not self.client.up:
            raise RedisConnectionError("down")
        items = self.recs.get(user_id, [])[:n]
        why = {i: r for i, r in self.reasons.get(user_id, {}).items() if i in dict(items)}
        return Recommendations(
            user_id, items, 1 if items else None, "m1" if items else None, None, None, reasons=why
        )

    async def read_trending(self, n: int, locale: str | None = None) -> list[tuple[str, float]]:
        return self.trending.get(locale, [])[:n]

    async def read_with_preferences(self, user_id: str, n: int) -> tuple[Recommendations, Preferences]:
        return await self.read(user_id, n), Preferences.from_hash(self.prefs.get(user_id, {}))

    async def read_items(self, item_ids: Sequence[str]) -> dict[str, ItemMeta]:
        return {i: self.items.get(i, UNKNOWN) for i in item_ids}

    async def read_preferences(self, user_id: str) -> Preferences:
        return Preferences.from_hash(self.prefs.get(user_id, {}))

    async def update_preferences(
        self, user_id: str, to_set: dict[str, str], to_delete: Sequence[str], *, reset: bool = False
    ) -> Preferences:
        if reset:
            self.recs.pop(user_id, None)
            self.prefs.pop(user_id, None)
        fields = self.prefs.setdefault(user_id, {})
        for name in to_delete:
            fields.pop(name, None)
        fields.update(to_set)
        return Preferences.from_hash(fields)

    async def forget_user(self, user_id: str, fence: tuple[int, int] | None = None) -> int:
        if fence is not None:
            self.fences[user_id] = fence[0]
        if self.consent.get(user_id, (False, 0))[0]:
            del self.consent[user_id]  # a grant goes, a withdrawal stays
        return (self.recs.pop(user_id, None) is not None) + (self.prefs.pop(user_id, None) is not None)

    async def fence_users(self, fences: dict[str, int], ttl_s: int) -> None:
        for user, position in fences.items():
            self.fences[user] = max(position, self.fences.get(user, position))
            self.recs.pop(user, None)

    async def consent_states(self, user_ids: Sequence[str]) -> list[ConsentState]:
        if not self.client.up:
            raise RedisConnectionError("down")
        return [
            ConsentState(*self.consent[u]) if u in self.consent else ConsentState(None, None)
            for u in user_ids
        ]

    async def record_consent(self, user_id: str, granted: bool, ts: int) -> int:
        self.consent[user_id] = (granted, ts)
        return 0 if granted else await self.forget_user(user_id)

    async def count_served(self, item_ids: Sequence[str], hour: int, ttl_s: int) -> None:
        self.served.update(item_ids)

    async def served_distinct(self, hours: Sequence[int]) -> int:
        return len(self.served)


@dataclass
class FakeProducer:
    """Confirms (or fails) every send at once and records what was sent."""

    fail: bool = False
    sent: list[tuple[str, bytes, bytes | None]] = field(default_factory=list)
    bootstrap: str = "fake:9092"

    def send_nowait(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Delivery]:
        future: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(DeliveryError(topic, "broker down"))
        else:
            self.sent.append((topic, value, key))
            future.set_result(Delivery(0, len(self.sent) - 1))
        return future

    async def check(self, timeout_s: float) -> None:
        if self.fail:
            raise ServiceUnavailableError("kafka", self.bootstrap, timeout_s)


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"namespace": "unit", "api_key_hashes": (hash_key(KEY),)}
    return Settings(**{**base, **overrides})


def make_app(store: FakeStore, producer: FakeProducer, **overrides: Any) -> FastAPI:
    return create_api(
        settings(**overrides),
        CollectorRegistry(),
        store=cast(RedisStore, store),
        producer=cast(AsyncProducer, producer),
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan entered, behind an httpx client (ASGITransport runs no lifespan)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client
