"""`personalize dashboard`: a small web app serving the live page, its vendored assets and ``/api/data``.

Separate from the HTTP API on purpose: the API is the stateless serving path for apps (scaled out,
fuzzed against its OpenAPI document), while this is one operator's view that scrapes the workers.
Serves only local files: the page's Content-Security-Policy allows no other origin.
"""

from __future__ import annotations

__all__ = ["STATIC", "create_dashboard", "default_metrics_urls", "serve"]

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from engine.dashboard.sampler import Sampler
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore

STATIC = Path(__file__).with_name("static")
_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"


def default_metrics_urls(settings: Settings) -> list[str]:
    """The worker's metrics address from the settings (``PERSONALIZE_METRICS_HOST``/``_PORT``).

    >>> default_metrics_urls(Settings())
    ['http://127.0.0.1:9464/metrics']
    """
    return [f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"]


def create_dashboard(settings: Settings, metrics_urls: list[str], interval_s: float = 1.0) -> FastAPI:
    """The dashboard app; its sampler runs while the app does (started and stopped by the lifespan)."""
    store = RedisStore.from_url(settings.redis, settings.namespace)
    sampler = Sampler(metrics_urls, store, interval_s=interval_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(sampler.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await store.close()

    app = FastAPI(
        title="personalize dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.sampler = sampler

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/data")
    async def data(since: float = 0.0) -> Response:
        """Points newer than ``since`` (epoch seconds) and the current status, as JSON."""
        return Response(orjson.dumps(sampler.data(since)), media_type="application/json")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def serve(settings: Settings, metrics_urls: list[str], log: Callable[[str], None]) -> None:
    """Serve the dashboard on ``dashboard_host:dashboard_port`` until interrupted."""
    import uvicorn

    urls = metrics_urls or default_metrics_urls(settings)
    app = create_dashboard(settings, urls)
    log(
        f"dashboard of namespace {settings.namespace} on http://{settings.dashboard_host}:{settings.dashboard_port}/"
        f" (scraping {', '.join(urls)})"
    )
    # Browsers keep polling connections open; without a bound, a stop waits for them indefinitely.
    uvicorn.run(
        app,
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
