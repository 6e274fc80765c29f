"""The hot read, ``GET /v1/recommendations/{user_id}``, answered without FastAPI's routing and validation.

`LeanRecommendations` answers only the requests it can check completely by hand; every other request,
including every one that gets an error for its input or its key, goes on to the FastAPI route, which stays
the documented one. What it answers is what the route would (`ServingState.answer`), byte for byte.
"""

from __future__ import annotations

__all__ = ["LeanRecommendations", "Parameters", "lean_parameters"]

from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.api import auth
from engine.api.recommendations import ServingState
from engine.api.services import Services
from engine.api.tenants import Tenants

PREFIX = "/v1/recommendations/"


class Parameters(NamedTuple):
    """What the route takes from the path and the query string."""

    user_id: str
    n: int
    surface: str | None
    locale: str | None
    region: str | None


def _plain(value: str | None, max_length: int) -> bool:
    """Whether the route surely accepts ``value`` (`engine.api.openapi.ID_PATTERN` and the length): only
    printable ASCII is judged here, so no Unicode class of the two regex engines is in question."""
    return value is None or (
        0 < len(value) <= max_length and value.isascii() and value.isprintable() and not value.isspace()
    )


def lean_parameters(path: str, query_string: bytes) -> Parameters | None:
    """The route's parameters if the route would surely accept them, else None (the route decides).

    The query string is parsed as Starlette does; a repeated parameter counts with its last value.

    >>> lean_parameters("/v1/recommendations/u/7", b"n=5&locale=en-GB&n=3&utm=x")
    Parameters(user_id='u/7', n=3, surface=None, locale='en-GB', region=None)
    >>> lean_parameters("/v1/recommendations/u7", b"")
    Parameters(user_id='u7', n=10, surface=None, locale=None, region=None)
    >>> [lean_parameters("/v1/recommendations/u7", q) for q in (b"n=0", b"n=007", b"n=1001", b"surface=")]
    [None, None, None, None]
    >>> lean_parameters("/v1/recommendations/", b""), lean_parameters("/v1/recommendations/\\u00e9", b"")
    (None, None)
    """
    user_id = path[len(PREFIX) :]
    query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    n = query.get("n", "10")
    labels = [query.get(name) for name in ("surface", "locale", "region")]
    if not (n.isascii() and n.isdigit() and n[0] != "0" and int(n) <= 1000):
        return None
    if not (_plain(user_id, 256) and all(_plain(label, 128) for label in labels)):
        return None
    return Parameters(user_id, int(n), *labels)


def _api_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":  # the first one, as Starlette's headers give it to the route
            return str(value.decode("latin-1"))
    return None


async def _tenant(scope: Scope, tenants: Tenants, read_auth: bool) -> Services | None:
    """The services of the request's tenant (`Tenants.for_key`), or None when the route must answer:
    reads need a key and this one is missing or may not read now."""
    key = _api_key(scope)
    if not read_auth:
        return await tenants.for_key(key)
    found = tenants.home.keys.admit(key, auth.Scope.READ)
    return None if found is None else await tenants.get(tenants.namespace_of(found))


class LeanRecommendations:
    """ASGI middleware in front of the FastAPI router: answers well-formed reads of recommendations.

    Sits inside the request metrics and body limit, so both see its requests as the route's (``route``
    is the route it stands in for); an exception the app has an answer for gets that answer.
    """

    def __init__(self, app: ASGIApp, state: ServingState, read_auth: bool, route: BaseRoute) -> None:
        self.app = app
        self.state = state
        self.read_auth = read_auth
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = (
            lean_parameters(scope["path"], scope["query_string"])
            if scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith(PREFIX)
            and not scope.get("root_path")
            else None
        )
        tenants: Tenants | None = getattr(scope["app"].state, "tenants", None)
        services = None
        if params is not None and tenants is not None:
            services = await _tenant(scope, tenants, self.read_auth)
        if params is None or services is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            body = await self.state.answer(services, *params)
        except Exception as exc:
            handler = _handler(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            await (await handler(Request(scope, receive), exc))(scope, receive, send)
            return
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _handler(handlers: Mapping[Any, Any], exc: Exception) -> Any:
    """The app's answer for ``exc``, looked up along its class hierarchy as Starlette does."""
    return next((handlers[kind] for kind in type(exc).__mro__ if kind in handlers), None)
