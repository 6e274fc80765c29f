"""The `personalize` console script against the live stack: status and reading recommendations."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import pytest

from engine.kafka_io import AsyncProducer
from engine.redis_store import RedisStore
from engine.settings import Settings
from schemas.events import Event, encode
from tests.integration.conftest import ROOT, Worker, wait_for

pytestmark = [pytest.mark.integration]


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONALIZE_")}
    env.update(PERSONALIZE_NAMESPACE=settings.namespace, PERSONALIZE_STACK_DIR=str(settings.stack_dir))
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_stack_status_reports_both_services_running(settings: Settings) -> None:
    out = cli(settings, "stack", "status")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if "kafka" in line or "redis" in line]
    assert len(lines) == 2 and all("running" in line for line in lines), out.stdout


@pytest.mark.asyncio(loop_scope="session")
async def test_recs_json_prints_the_contract_shape(
    settings: Settings, ready_worker: Worker, store: RedisStore
) -> None:
    ts = time.time_ns() // 1_000_000
    events = [
        Event(event_id=f"cli-{n}", user_id="cli-user", item_id=f"i{n}", type="view", ts=ts + n)
        for n in range(3)
    ]
    async with AsyncProducer(settings.bootstrap) as producer:
        for e in events:
            await producer.send(settings.events_topic, encode(e), b"cli-user")

    async def learned() -> bool:
        return (await store.read("cli-user")).events_seen == 3

    await wait_for(learned, 60, "three events of cli-user learned")
    out = cli(settings, "recs", "cli-user", "--json")
    assert out.returncode == 0, out.stderr
    data = orjson.loads(out.stdout)
    assert set(data) >= {"user_id", "items", "updated_ms", "model_version", "events_seen"}
    assert data["user_id"] == "cli-user" and data["events_seen"] == 3
    assert data["updated_ms"] >= ts
    assert all(set(entry) == {"item_id", "score"} for entry in data["items"])


def test_recs_of_an_unknown_user_is_empty_not_an_error(settings: Settings) -> None:
    out = cli(settings, "recs", "nobody-here", "--json")
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["items"] == []


def test_an_unknown_setting_is_refused_with_a_clear_message(settings: Settings) -> None:
    env = dict(os.environ, PERSONALIZE_NAMESPAC="typo")
    out = subprocess.run(
        [sys.executable, "-m", "engine", "stack", "status"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "PERSONALIZE_NAMESPAC" in out.stderr
