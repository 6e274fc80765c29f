"""Operations routes: ``GET /v1/health`` (can this process reach Redis and Kafka?) and ``GET /metrics``;
with read auth on, the API document too.

Health never needs an API key (load balancers call it). When reads need a key, /metrics needs an admin
key (Prometheus sends it as a header) and ``/openapi.json`` a read key (then /docs is not served).
"""

from __future__ import annotations

__all__ = ["ops_router"]

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from engine.api.auth import Scope, require
from engine.api.bodies import Health
from engine.api.services import Services, services
from schemas.errors import ServiceUnavailableError

#: Health answers fast even when a service hangs: a probe must not wait as long as a request may.
_HEALTH_TIMEOUT_S = 2.0


async def _redis_ok(svc: Services, timeout_s: float) -> bool:
    try:
        return bool(await asyncio.wait_for(svc.store.client.ping(), timeout_s))
    except (RedisError, OSError, TimeoutError):
        return False


async def _kafka_ok(svc: Services, timeout_s: float) -> bool:
    try:
        await svc.producer.check(timeout_s)
    except ServiceUnavailableError:
        return False
    return True


def ops_router(read_auth: bool = False) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get(
        "/v1/health",
        response_model=Health,
        summary="Reachability of Redis and Kafka",
        responses={503: {"model": Health, "description": "Redis or Kafka is unreachable"}},
    )
    async def health(svc: Annotated[Services, Depends(services)]) -> JSONResponse:
        """200 when this process reaches Redis and Kafka, else 503 naming the one that failed."""
        timeout = min(svc.settings.api_timeout_s, _HEALTH_TIMEOUT_S)
        redis_ok, kafka_ok = await asyncio.gather(_redis_ok(svc, timeout), _kafka_ok(svc, timeout))
        body = Health(
            status="ok" if redis_ok and kafka_ok else "unavailable",
            namespace=svc.settings.namespace,
            redis="ok" if redis_ok else "unavailable",
            kafka="ok" if kafka_ok else "unavailable",
        )
        return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)

    @router.get(
        "/metrics",
        response_class=PlainTextResponse,
        summary="Prometheus metrics of this API process",
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        dependencies=[Depends(require(Scope.ADMIN))] if read_auth else [],
    )
    async def metrics(svc: Annotated[Services, Depends(services)]) -> PlainTextResponse:
        return PlainTextResponse(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if read_auth:

        @router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require(Scope.READ))])
        async def document(request: Request) -> JSONResponse:
            return JSONResponse(request.app.openapi())

    return router
