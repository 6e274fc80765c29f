"""What every request handler of the API uses: settings, the Redis store, the Kafka producer, metrics, keys,
pseudonyms; and the one way a handler produces a user record.

Built per tenant (namespace) by `engine.api.tenants` and reached through the `services` dependency;
handlers keep no state of their own, so any number of API processes can serve side by side.
"""

from __future__ import annotations

__all__ = ["Services", "produce_user_record", "services"]

import asyncio
from dataclasses import dataclass
from typing import cast

from fastapi import Request

from engine.api.auth import API_KEY_HEADER, Keyring
from engine.ingest.kafka import AsyncProducer, Delivery
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas.errors import ServiceUnavailableError
from schemas.pseudonyms import Pseudonyms
from schemas.users import UserRecord, encode_user_record


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: RedisStore
    producer: AsyncProducer
    metrics: Metrics
    keys: Keyring
    #: What the edge sends on instead of a user id (the id itself unless PERSONALIZE_PSEUDONYM_KEY).
    pseudonyms: Pseudonyms


async def services(request: Request) -> Services:
    """FastAPI dependency: the `Services` of the tenant the request's API key belongs to (no key, or a key
    not configured: the API's own namespace), see `engine.api.tenants` (async: no hop to a thread)."""
    return cast(Services, await request.app.state.tenants.for_key(request.headers.get(API_KEY_HEADER)))


async def produce_user_record(svc: Services, record: UserRecord) -> Delivery:
    """Produce a preferences, consent or erasure record to the events topic keyed by its (already
    pseudonymous) user: its partition and offset once Kafka confirms it (the user's fencing position);
    `ServiceUnavailableError` if Kafka does not confirm it in time."""
    timeout = svc.settings.api_timeout_s
    future = svc.producer.send_nowait(
        svc.settings.events_topic, encode_user_record(record), record.user_id.encode()
    )
    try:
        return await asyncio.wait_for(future, timeout + 1.0)
    except Exception as exc:  # noqa: BLE001 - any delivery failure is the same 503 to the client
        raise ServiceUnavailableError("kafka", svc.settings.bootstrap, timeout) from exc
