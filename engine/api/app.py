"""The FastAPI application: `create_api` wires routes, auth, limits, metrics and error answers.

Stateless: it reads Redis and writes Kafka, never trains, so any number of processes can serve. Every
error becomes a JSON `ErrorBody`; bad input is a 4xx and an unreachable Redis or Kafka a 503.
"""

from __future__ import annotations

__all__ = ["create_api", "from_environment", "run"]

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

from engine.api.auth import Keyring
from engine.api.bodies import error_code
from engine.api.consent import consent_router
from engine.api.events import events_router
from engine.api.lean import LeanRecommendations
from engine.api.middleware import BodyLimit, RequestMetrics
from engine.api.openapi import add_links, event_components
from engine.api.ops import ops_router
from engine.api.rank import rank_router
from engine.api.recommendations import ServingState, recommendations_router
from engine.api.services import Services
from engine.api.tenants import OpenStore, Tenants, open_redis_store
from engine.api.users import users_router
from engine.ingest.kafka import AsyncProducer
from engine.ingest.produce import ensure_engine_topics
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings, load
from engine.serving.experiments import load_experiments
from engine.store.redis_store import RedisStore
from schemas.errors import (
    DeliveryError,
    InvalidEventError,
    Problem,
    RequestRejectedError,
    ServiceUnavailableError,
)
from schemas.events import problems_of

log = logging.getLogger(__name__)


def _error(
    status: int, message: str, problems: Sequence[Problem] = (), headers: Mapping[str, str] | None = None
) -> Response:
    body = {
        "error": error_code(status),
        "message": message,
        "problems": [{"field": p.field, "message": p.message} for p in problems],
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _add_error_answers(app: FastAPI) -> None:
    async def invalid_event(_r: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidEventError)
        message = f"{len(exc.problems)} problem(s) with the events; nothing was written"
        return _error(422, message, exc.problems)

    async def invalid_request(_r: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = problems_of(exc.errors())
        return _error(422, "invalid request parameters", problems)

    async def rejected(_r: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestRejectedError)
        wait = exc.retry_after_s
        return _error(exc.status, exc.detail, headers={"Retry-After": str(math.ceil(wait))} if wait else None)

    async def unavailable(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RedisError):
            svc: Services = request.app.state.services
            exc = ServiceUnavailableError("redis", svc.store.address, svc.settings.api_timeout_s)
        log.warning("answering 503: %s", exc)
        return _error(503, str(exc), headers={"Retry-After": "1"})

    async def http_error(_r: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 400:  # a body FastAPI could not read: what every other bad body gets
            return _error(422, "invalid request body", [Problem("body", str(exc.detail))])
        return _error(exc.status_code, str(exc.detail), headers=exc.headers)

    app.add_exception_handler(InvalidEventError, invalid_event)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(RequestRejectedError, rejected)
    for kind in (ServiceUnavailableError, DeliveryError, RedisError):
        app.add_exception_handler(kind, unavailable)
    app.add_exception_handler(HTTPException, http_error)


def _with_event_schemas(app: FastAPI) -> Callable[[], dict[str, Any]]:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(event_components())
            app.openapi_schema = add_links(schema)
        return app.openapi_schema

    return openapi


async def _open_services(
    settings: Settings,
    metrics: Metrics,
    stack: AsyncExitStack,
    store: RedisStore | None,
    producer: AsyncProducer | None,
) -> Services:
    def refused(reason: str, name: str) -> None:
        metrics.api_auth_rejected.labels(reason=reason, key=name).inc()

    keys = Keyring(
        settings.api_key_hashes,
        rate=settings.api_rate_limit,
        burst=settings.api_rate_burst,
        on_reject=refused,
    )
    if store is None:
        store = await open_redis_store(settings)
        stack.push_async_callback(store.close)
    if producer is None:
        timeout_ms = int(settings.api_timeout_s * 1000)
        limits = {"message.timeout.ms": timeout_ms, "request.timeout.ms": timeout_ms}
        producer = await stack.enter_async_context(AsyncProducer(settings.bootstrap, **limits))
        try:
            await asyncio.wait_for(ensure_engine_topics(settings), settings.api_timeout_s)
        except (TimeoutError, DeliveryError) as exc:
            # Serve anyway: reads need only Redis, and writes answer 503 until Kafka is back.
            log.warning("could not check the namespace's topics: %s", exc or "Kafka did not answer")
    return Services(settings, store, producer, metrics, keys, settings.pseudonyms)


def create_api(
    settings: Settings,
    registry: CollectorRegistry,
    *,
    store: RedisStore | None = None,
    producer: AsyncProducer | None = None,
    open_store: OpenStore | None = None,
) -> FastAPI:
    """The API for its namespace and the tenants its keys name (docs/tenants.md); Redis and Kafka
    connections open when the app starts (another tenant's Redis at its first request).

    ``store``, ``producer`` and ``open_store`` (of another tenant) replace the connections the app
    would open (tests); metrics register on ``registry``.
    """
    metrics = Metrics.create(registry, settings.namespace)
    if not settings.api_key_hashes:
        log.warning("no API keys configured (PERSONALIZE_API_KEY_HASHES): every write will be refused")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            home = await _open_services(settings, metrics, stack, store, producer)
            tenants = Tenants(home, open_store or open_redis_store, check_topics=producer is None)
            stack.push_async_callback(tenants.aclose)
            app.state.services, app.state.tenants = home, tenants
            yield

    read_auth = settings.api_read_auth
    app = FastAPI(
        title="personalize",
        version="1",
        summary="Send events, read recommendations.",
        description="The HTTP API of the streaming personalization engine: events go to Kafka, "
        "recommendations come from Redis. Writes need an API key in the `X-API-Key` header, with the "
        "scope each route names (`events`, `read`, `admin`; `admin` may do everything).",
        lifespan=lifespan,
        # Behind a read key, the document is a route of `ops_router` (a browser cannot send the key).
        openapi_url=None if read_auth else "/openapi.json",
        docs_url=None if read_auth else "/docs",
        redoc_url=None,
    )
    experiments = load_experiments(settings)
    app.include_router(events_router(settings.api_max_batch, experiments))
    serving = ServingState.create(settings, metrics)
    recommendations = recommendations_router(read_auth, serving)
    app.include_router(recommendations)
    app.include_router(consent_router(read_auth))
    app.include_router(users_router(read_auth, experiments))
    app.include_router(rank_router(experiments, read_auth))
    app.include_router(ops_router(read_auth))
    _add_error_answers(app)
    app.openapi = _with_event_schemas(app)  # type: ignore[method-assign]
    # Innermost, so the body limit and the request metrics apply to what it answers as to the route.
    route = recommendations.routes[0]
    app.add_middleware(LeanRecommendations, state=serving, read_auth=read_auth, route=route)
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def from_environment() -> FastAPI:
    """The API for the settings in the environment: what each of several worker processes builds."""
    return create_api(load(), CollectorRegistry())


def run(settings: Settings, workers: int = 1) -> None:
    """Serve the API with uvicorn on ``api_host:api_port`` until interrupted, in ``workers`` processes.

    uvloop and httptools, no access log: the fastest uvicorn has. Several workers share the port, each
    with its own connections and metrics (so `/metrics` shows the process that answered the scrape).
    """
    import uvicorn

    level = "warning" if settings.log_level == "warn" else settings.log_level
    # Several workers each import the app afresh (a factory) and read the same environment.
    app: FastAPI | str = (
        create_api(settings, CollectorRegistry()) if workers == 1 else f"{__name__}:from_environment"
    )
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers,
        host=settings.api_host,
        port=settings.api_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=level,
    )
