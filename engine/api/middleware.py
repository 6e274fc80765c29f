"""Plain ASGI middleware of the API: a request body size limit and per-route request metrics.

Pure ASGI rather than Starlette's BaseHTTPMiddleware, which costs a task and a queue per request on
the hot read path.
"""

from __future__ import annotations

__all__ = ["BodyLimit", "RequestMetrics"]

import time

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.api.bodies import error_code
from engine.ops.metrics import Metrics
from schemas.errors import RequestRejectedError


def _too_large(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"


async def _send_413(send: Send, limit: int) -> None:
    body = orjson.dumps(
        {
            "error": error_code(413),
            "message": _too_large(limit),
            "problems": [],
        }
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Answer 413 to bodies over ``limit`` bytes: at once from Content-Length, else while streaming.

    A streamed body that grows too large raises `RequestRejectedError` in the handler reading it, which
    the app's error answers turn into the same 413.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await _send_413(send, self.limit)
                return
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise RequestRejectedError(413, _too_large(self.limit))
            return message

        await self.app(scope, counted_receive, send)


class RequestMetrics:
    """Count requests and time them by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, status_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or "unmatched"
            method = scope["method"]
            self.metrics.api_requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.api_latency.labels(method=method, route=template).observe(
                time.perf_counter() - started
            )
