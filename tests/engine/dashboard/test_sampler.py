"""Tests for `engine.dashboard.sampler` and the dashboard app: scrape, Redis read, the page's routes."""

from __future__ import annotations

from typing import Any, cast

import httpx
import orjson
from redis.exceptions import ConnectionError as RedisConnectionError

from engine.dashboard import Sampler, create_dashboard
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas import keys

METRICS = """
# TYPE personalize_info gauge
personalize_info{namespace="shop",model_version="hybrid-9"} 1.0
# TYPE personalize_events_total counter
personalize_events_total{outcome="learned"} %d
"""


class _Client:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.stream: list[tuple[str, dict[str, str]]] = []

    async def xrevrange(self, key: str, count: int) -> list[tuple[str, dict[str, str]]]:
        if self.fail:
            raise RedisConnectionError("refused")
        assert key == keys.drift("shop")
        return self.stream[::-1][:count]


class _Store:
    namespace = "shop"

    def __init__(self, fail: bool = False) -> None:
        self.client = _Client(fail)

    async def workers(self) -> list[dict[str, str]]:
        if self.client.fail:
            raise RedisConnectionError("refused")
        return [{"pid": "7", "model_version": "hybrid-9", "events": "12", "items": "3", "beat_ms": "1"}]


def _http(counts: list[int]) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.port == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, text=METRICS % counts.pop(0))

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def test_points_status_and_drift_records() -> None:
    store = _Store()
    record = {"signal": "hit_rate", "detector": "adwin", "before": {"mean": 0.3, "n": 9}, "events": 40}
    store.client.stream = [
        ("1700000000123-0", {"record": orjson.dumps(record).decode()}),
        ("17-1", {"x": "y"}),
    ]
    sampler = Sampler(["http://w1/metrics", "http://w2:1/metrics"], cast(RedisStore, store))
    async with _http([10, 30]) as client:
        await sampler.sample(client)
        second = await sampler.sample(client)
    assert second.up == 1 and second.learned_per_s is not None and second.learned_per_s > 0
    data = sampler.data()
    assert [t["up"] for t in data["targets"]] == [True, False] and "ConnectError" in data["targets"][1][
        "error"
    ]
    assert data["model_versions"] == ["hybrid-9"] and data["workers"][0]["events"] == "12"
    assert data["redis_error"] is None and len(data["points"]) == 2
    assert data["drift"][1] == {"id": "1700000000123-0", "at_ms": 1700000000123, **record}
    assert data["drift"][0] == {"id": "17-1", "at_ms": 17}
    assert sampler.data(since=second.t)["points"] == []


async def test_redis_down_is_a_status_not_an_error() -> None:
    sampler = Sampler(["http://w1/metrics"], cast(RedisStore, _Store(fail=True)))
    async with _http([1]) as client:
        await sampler.sample(client)
    assert "ConnectionError" in (sampler.data()["redis_error"] or "")


def _page() -> httpx.AsyncClient:
    """The app without its lifespan, so no sampler runs and nothing is scraped."""
    app = create_dashboard(Settings(namespace="shop"), ["http://127.0.0.1:1/metrics"])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dashboard")


async def test_the_page_and_its_vendored_charts_are_served_locally() -> None:
    async with _page() as page:
        html = await page.get("/")
        assert html.status_code == 200 and "/static/vendor/uplot/uPlot.iife.min.js" in html.text
        assert html.headers["content-security-policy"].startswith("default-src 'self'")
        assert "http" not in html.text  # every asset from this server, none from a CDN
        for asset in ("vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css", "dashboard.js"):
            assert (await page.get(f"/static/{asset}")).status_code == 200, asset
        assert (await page.get("/static/../app.py")).status_code == 404


async def test_data_answers_before_the_first_sample() -> None:
    async with _page() as page:
        body: dict[str, Any] = (await page.get("/api/data", params={"since": 0})).json()
    assert body["namespace"] == "shop" and body["points"] == [] and body["targets"][0]["up"] is False
