"""The lean path (`engine.api.lean`) answers exactly as the FastAPI route would, errors included."""

from __future__ import annotations

from typing import Any, cast

import pytest
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import Receive, Scope, Send

from engine.api.lean import LeanRecommendations
from engine.store.item_meta import ItemMeta
from schemas.reasons import Reason
from tests.engine.api.fakes import KEY, FakeProducer, FakeStore, make_app, running

JAZZ, ROCK = ItemMeta(frozenset({"jazz"})), ItemMeta(frozenset({"rock"}), regions=frozenset({"gb"}))

#: (method, URL, headers, whether it goes on to FastAPI's router: what the lean path does not answer,
#: except the body limit's 413)
REQUESTS: list[tuple[str, str, dict[str, str], bool]] = [
    ("GET", "/v1/recommendations/u1", {}, False),
    ("GET", "/v1/recommendations/u1?n=2", {}, False),
    ("GET", "/v1/recommendations/u1?n=1&n=3&utm_source=x", {}, False),
    ("GET", "/v1/recommendations/u/2?n=5&surface=home&locale=en-GB&region=IE", {}, False),
    ("GET", "/v1/recommendations/u/2?locale=en-GB", {}, False),
    ("GET", "/v1/recommendations/new?locale=de-AT&n=1000", {}, False),
    ("GET", "/v1/recommendations/new?locale=fr", {}, False),
    ("GET", "/v1/recommendations/a%20b?surface=x%20y", {}, False),
    ("GET", "/v1/recommendations/u1?n=0", {}, True),
    ("GET", "/v1/recommendations/u1?n=1001", {}, True),
    ("GET", "/v1/recommendations/u1?n=abc", {}, True),
    ("GET", "/v1/recommendations/u1?n=", {}, True),
    ("GET", "/v1/recommendations/u1?n=05", {}, True),
    ("GET", "/v1/recommendations/u1?n=1.0", {}, True),
    ("GET", "/v1/recommendations/u1?n=%205", {}, True),
    ("GET", "/v1/recommendations/u1?n=%EF%BC%95", {}, True),
    ("GET", "/v1/recommendations/u1?surface=", {}, True),
    ("GET", "/v1/recommendations/u1?surface=%20%20", {}, True),
    ("GET", "/v1/recommendations/u1?locale=en%00", {}, True),
    ("GET", "/v1/recommendations/u1?region=%C3%A9", {}, True),
    ("GET", f"/v1/recommendations/u1?locale={'x' * 129}", {}, True),
    ("GET", "/v1/recommendations/", {}, True),
    ("GET", "/v1/recommendations/%20", {}, True),
    ("GET", "/v1/recommendations/%C3%A9", {}, True),
    ("GET", "/v1/recommendations/a%0Ab", {}, True),
    ("GET", f"/v1/recommendations/{'u' * 257}", {}, True),
    ("GET", "/v1/recommendations", {}, True),
    ("HEAD", "/v1/recommendations/u1", {}, True),
    ("POST", "/v1/recommendations/u1", {}, True),
    ("GET", "/v1/recommendations/u1", {"content-length": "999999"}, False),
]

AUTH_REQUESTS: list[tuple[str, str, dict[str, str], bool]] = [
    ("GET", "/v1/recommendations/u1?n=2", {"X-API-Key": KEY}, False),
    ("GET", "/v1/recommendations/u1?n=2", {}, True),
    ("GET", "/v1/recommendations/u1?n=2", {"X-API-Key": ""}, True),
    ("GET", "/v1/recommendations/u1?n=2", {"X-API-Key": "p13n_wrong"}, True),
    ("GET", "/v1/recommendations/u1?n=0", {"X-API-Key": KEY}, True),
    ("GET", "/v1/recommendations/u1?n=0", {}, True),
]


def _store() -> FakeStore:
    return FakeStore(
        recs={"u1": [("i9", 0.9), ("i8", 0.5), ("i7", 0.4)], "u/2": [("i1", 0.8), ("i2", 0.7), ("i3", 0.1)]},
        reasons={"u1": {"i9": Reason("item", "i0", ("sequence",))}, "u/2": {"i2": Reason("popular")}},
        trending={"de-AT": [("t-at", 3.0)], None: [("t-all", 1.0)]},
        items={"i1": JAZZ, "i2": JAZZ, "i3": ROCK, "i9": ROCK},
        prefs={"u/2": {"hidden_item:i1": "1"}},
    )


def _is_lean(middleware: Middleware) -> bool:
    return cast(object, middleware.cls) is LeanRecommendations


def _lean(app: FastAPI) -> LeanRecommendations:
    layer: Any = app.middleware_stack
    while not isinstance(layer, LeanRecommendations):
        layer = layer.app
    return layer


async def _answers(app: FastAPI, requests: list[tuple[str, str, dict[str, str], bool]]) -> list[Any]:
    """Status, headers and body of each request, whether the FastAPI route was reached, and the metrics."""
    async with running(app) as api:
        await api.get("/v1/health")  # builds the middleware stack
        routed: list[bool] = []
        if any(map(_is_lean, app.user_middleware)):
            lean = _lean(app)
            inner = lean.app

            async def spy(scope: Scope, receive: Receive, send: Send) -> None:
                routed[-1] = True
                await inner(scope, receive, send)

            lean.app = spy
        out: list[Any] = []
        for method, url, headers, _ in requests:
            routed.append(False)
            response = await api.request(method, url, headers=headers)
            out.append((method, url, response.status_code, response.headers.raw, response.content))
        reached = list(routed)
        out.append((await api.get("/openapi.json")).content)  # the route stays the documented one
        metrics = (await api.get("/metrics")).text.splitlines()
    counted = [
        line
        for line in metrics
        if line.startswith(("personalize_api_requests_total{", "personalize_api_recommendations_total{"))
    ]
    return [out, reached, counted]


def _plain(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if not _is_lean(m)]
    return app


@pytest.mark.parametrize(
    ("requests", "read_auth", "redis_up"),
    [(REQUESTS, False, True), (AUTH_REQUESTS, True, True), (REQUESTS[:3] + REQUESTS[8:9], False, False)],
)
async def test_the_lean_path_answers_as_the_route(
    requests: list[tuple[str, str, dict[str, str], bool]], read_auth: bool, redis_up: bool
) -> None:
    apps = []
    for _ in range(2):
        store = _store()
        store.client.up = redis_up
        apps.append(make_app(store, FakeProducer(), api_read_auth=read_auth, api_max_body_bytes=4096))
    lean, lean_routed, lean_metrics = await _answers(apps[0], requests)
    route, _, route_metrics = await _answers(_plain(apps[1]), requests)
    for ours, theirs in zip(lean, route, strict=True):
        assert ours == theirs
    assert lean_metrics == route_metrics
    assert [routed for *_, routed in requests] == lean_routed
    statuses = {status for _, _, status, _, _ in lean[:-1]}
    assert statuses >= (
        {503} if not redis_up else {200, 401, 403, 422} if read_auth else {200, 404, 405, 413}
    )
    if redis_up and not read_auth:
        assert lean[3][2] == 200 and b'"source":"personalized"' in lean[3][4]  # rules and prefs applied
