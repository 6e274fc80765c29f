"""What every request handler of the API uses: settings, the Redis store, the Kafka producer, metrics, keys.

Built once per process by the app's lifespan and reached through the `services` dependency; handlers
keep no state of their own, so any number of API processes can serve side by side.
"""

from __future__ import annotations

__all__ = ["Services", "services"]

from dataclasses import dataclass
from typing import cast

from fastapi import Request

from engine.api.auth import Keyring
from engine.ingest.kafka import AsyncProducer
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: RedisStore
    producer: AsyncProducer
    metrics: Metrics
    keys: Keyring


async def services(request: Request) -> Services:
    """FastAPI dependency: the process's `Services` (async, so FastAPI does not hop to a thread)."""
    return cast(Services, request.app.state.services)
