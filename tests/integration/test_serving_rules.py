"""Rules, diversity and preferences through a live `personalize api` with the real Redis and Kafka.

Worker-free: lists and item metadata are written with `RedisStore`, as the worker would, then read over
HTTP; preference and erasure records must land in the events topic keyed by user.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.api import hash_key
from engine.ops.settings import Settings
from engine.sdk.client import AsyncClient
from engine.store.redis_store import RedisStore
from schemas.events import ItemRecord
from tests.integration.conftest import ROOT, api_server, child_env, free_port
from tests.integration.test_api import _consume

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KEY = f"p13n_it-{uuid.uuid4().hex}"
AUTH = {"X-API-Key": KEY}
RULES = """version: 1
surfaces:
  home:
    filter: {deny: {items: [denied]}}
    boost: [{categories: [sale], multiply: 100}]
    pin: [{item: pinned, position: 2}]
    bury: [{tags: [old]}]
"""


@pytest.fixture(scope="module")
def rules_api(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `personalize api` subprocess with a rules file and diversity off by default."""
    folder = tmp_path_factory.mktemp("rules-api")
    (folder / "rules.yaml").write_text(RULES)
    with api_server(
        settings,
        folder / "api.log",
        PERSONALIZE_API_KEY_HASHES=hash_key(KEY),
        PERSONALIZE_RULES_FILE=str(folder / "rules.yaml"),
        PERSONALIZE_DIVERSITY_STRENGTH="0",
    ) as url:
        yield url


async def _catalog(store: RedisStore, user: str) -> None:
    await store.publish_items(
        [
            ItemRecord(item_id="a1", categories=["a"]),
            ItemRecord(item_id="a2", categories=["a"], tags=["old"]),
            ItemRecord(item_id="b1", categories=["b"], regions=["DE"]),
            ItemRecord(item_id="s1", categories=["sale"]),
            ItemRecord(item_id="gone", categories=["b"], available=False),
            ItemRecord(item_id="denied", categories=["b"]),
            ItemRecord(item_id="pinned", categories=["p"]),
        ]
    )
    recs = [("a1", 0.9), ("a2", 0.8), ("gone", 0.75), ("denied", 0.7), ("b1", 0.6), ("s1", 0.01)]
    await store.publish(user, recs, model_version="m-it", last_event_ts=1, events_seen=1)


async def _items(http: httpx.AsyncClient, user: str, **params: str | int) -> tuple[str, list[str]]:
    body = (await http.get(f"/v1/recommendations/{user}", params=params)).json()
    return body["source"], [i["item_id"] for i in body["items"]]


async def test_surface_rules_filter_boost_pin_and_bury(rules_api: str, store: RedisStore) -> None:
    user = f"rules-{uuid.uuid4().hex[:6]}"
    await _catalog(store, user)
    async with httpx.AsyncClient(base_url=rules_api) as http:
        assert await _items(http, user, surface="home", n=5, locale="en-GB") == (
            "personalized",
            ["s1", "pinned", "a1", "a2"],  # gone: unavailable, denied: denied, b1: DE only, a2 buried
        )
        assert await _items(http, user, surface="home", n=5, locale="de-DE") == (
            "personalized",
            ["s1", "pinned", "a1", "b1", "a2"],
        )
        assert await _items(http, user, n=3) == ("personalized", ["a1", "a2", "denied"])


async def test_mute_reset_and_erasure_take_effect_at_once_and_reach_kafka(
    rules_api: str, store: RedisStore, settings: Settings
) -> None:
    user = f"prefs-{uuid.uuid4().hex[:6]}"
    await _catalog(store, user)
    await store.publish_trending([("t1", 5.0), ("a1", 4.0)])
    async with httpx.AsyncClient(base_url=rules_api) as http:
        put = await http.put(f"/v1/users/{user}/preferences", json={"muted_categories": ["a"]}, headers=AUTH)
        assert put.status_code == 200, put.text
        assert "a1" not in (await _items(http, user, n=5))[1]
        reset = await http.put(f"/v1/users/{user}/preferences", json={"reset": True}, headers=AUTH)
        assert reset.json()["preferences"]["muted_categories"] == []
        assert await _items(http, user, n=2) == ("trending", ["t1", "a1"])
        assert (await store.read(user)).updated_ms is None  # list and meta gone
        erased = await http.delete(f"/v1/users/{user}", headers=AUTH)
        assert erased.status_code == 202
    async with AsyncClient(rules_api, api_key=KEY) as sdk:
        prefs = await sdk.preferences(user, hidden_items=["t1"])
    assert prefs.hidden_items == frozenset({"t1"})
    wanted = {put.json()["event_id"], reset.json()["event_id"], erased.json()["event_id"]}
    seen = await asyncio.to_thread(_consume, settings, wanted)
    assert wanted <= seen.keys()
    key, record = seen[put.json()["event_id"]]
    assert key == user.encode() and record["type"] == "preferences" and record["muted_categories"] == ["a"]
    assert seen[reset.json()["event_id"]][1]["reset"] is True
    assert seen[erased.json()["event_id"]][1]["type"] == "erasure"


async def test_diversity_and_coverage_metrics(rules_api: str, store: RedisStore) -> None:
    user = f"div-{uuid.uuid4().hex[:6]}"
    await _catalog(store, user)
    async with httpx.AsyncClient(base_url=rules_api) as http:
        await _items(http, user, n=4)
        await asyncio.sleep(1.1)  # coverage is flushed to Redis at most once a second
        await _items(http, user, n=4)
        metrics = (await http.get("/metrics")).text
    assert "personalize_api_list_diversity_count" in metrics
    coverage = [line for line in metrics.splitlines() if line.startswith("personalize_api_catalog_coverage")]
    assert coverage and float(coverage[0].split()[-1]) >= 4, coverage


async def test_an_invalid_rules_file_stops_the_api_with_the_field(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\nsurfaces: {home: {pin: [{item: x}]}}\n")
    env = child_env(settings, PERSONALIZE_RULES_FILE=str(tmp_path / "rules.yaml"))
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "streams", "api", "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "rules.yaml: surfaces.home.pin.0.position: Field required" in " ".join(out.stderr.split())
