"""The API's tenants: one `Services` per namespace it serves, opened on a tenant's first request, closed
on shutdown; and which tenant a request reaches.

A request reaches the tenant of its API key (`ApiKey.tenant`; a key without one: the API's own
namespace). A request without a key, or with a key that is not configured (an open read, /v1/health),
reaches the API's own namespace, never another. No route takes a namespace, so no request can name
another tenant. Each tenant has its own settings (namespace, hence topics and Redis keys) and its own
Redis client, logged in as the tenant's ACL user (`Settings.redis_of`); the Kafka producer, the metrics
and the keyring are the process's. Must not decide scopes or rate limits: that is `engine.api.auth`.
"""

from __future__ import annotations

__all__ = ["OpenStore", "Tenants", "open_redis_store"]

import asyncio
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from engine.api.auth import ApiKey
from engine.api.services import Services
from engine.ingest.produce import ensure_engine_topics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas.errors import DeliveryError, RequestRejectedError

log = logging.getLogger(__name__)

#: Opens the Redis store of a tenant (its settings carry its namespace).
OpenStore = Callable[[Settings], Awaitable[RedisStore]]


async def open_redis_store(settings: Settings) -> RedisStore:
    """The tenant's store: a client on the tenant's own Redis URL (its ACL user), with the API's timeouts."""
    client = aioredis.Redis.from_url(
        settings.redis_of(settings.namespace),
        decode_responses=True,
        socket_timeout=settings.api_timeout_s,
        socket_connect_timeout=settings.api_timeout_s,
    )
    return RedisStore(client, settings.namespace, user_ttl_s=settings.user_ttl_s)


class Tenants:
    """The `Services` of every tenant opened so far, by namespace; ``home`` is the API's own namespace's.

    Only namespaces in ``home.settings.tenants`` (the API's own and those its keys name) are ever opened.
    """

    def __init__(
        self, home: Services, open_store: OpenStore = open_redis_store, check_topics: bool = True
    ) -> None:
        self.home = home
        self._open_store = open_store
        #: Create a tenant's missing topics when it is opened (as the app does for its own namespace).
        self._check_topics = check_topics
        self._opened: dict[str, Services] = {home.settings.namespace: home}
        self._closers: list[RedisStore] = []
        self._lock = asyncio.Lock()

    @property
    def opened(self) -> list[str]:
        """The namespaces with open services, the API's own first."""
        return list(self._opened)

    def namespace_of(self, key: ApiKey | None) -> str:
        """The namespace a request with ``key`` (None: no key, or one not configured) reaches."""
        return key.tenant if key is not None and key.tenant else self.home.settings.namespace

    async def for_key(self, key: str | None) -> Services:
        """The services of the tenant a request carrying ``key`` (the X-API-Key header) reaches."""
        found = self.home.keys.find(key) if key else None
        return await self.get(self.namespace_of(found))

    async def get(self, namespace: str) -> Services:
        """The tenant's services, opened now if this is its first request (once, under a lock)."""
        found = self._opened.get(namespace)
        if found is not None:
            return found
        if namespace not in self.home.settings.tenants:
            # Unreachable through the keyring (every key's tenant is one); refused rather than opened.
            raise RequestRejectedError(403, f"tenant {namespace} is not served here")
        async with self._lock:
            found = self._opened.get(namespace)
            if found is None:
                found = await self._open(namespace)
                self._opened[namespace] = found
        return found

    async def _open(self, namespace: str) -> Services:
        home = self.home
        settings = home.settings.model_copy(update={"namespace": namespace})
        store = await self._open_store(settings)
        self._closers.append(store)
        if self._check_topics:
            try:
                await asyncio.wait_for(ensure_engine_topics(settings), settings.api_timeout_s)
            except (TimeoutError, DeliveryError) as exc:
                log.warning("could not check tenant %s's topics: %s", namespace, exc or "no answer")
        log.info("opened tenant %s", namespace)
        return Services(settings, store, home.producer, home.metrics, home.keys, home.pseudonyms)

    async def aclose(self) -> None:
        """Close the Redis clients of the tenants opened here (the home store is its opener's)."""
        stores, self._closers = self._closers, []
        self._opened = {self.home.settings.namespace: self.home}
        for store in stores:
            await store.close()
