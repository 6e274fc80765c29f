"""The `personalize` console script against the live stack: status and reading recommendations."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from engine.ingest.kafka import AsyncProducer
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas.events import Event, encode
from tests.integration.conftest import ROOT, Worker, child_env, wait_for

pytestmark = [pytest.mark.integration]


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(settings)
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_stack_status_reports_both_services_running(settings: Settings) -> None:
    # Other processes (a demo's worker, another suite's) may be listed too: only the services are asserted.
    out = cli(settings, "stack", "status", "--json")
    assert out.returncode == 0, out.stderr
    services = {s["service"]: s for s in orjson.loads(out.stdout) if s["service"] in ("kafka", "redis")}
    assert services["kafka"]["running"] and services["kafka"]["address"].endswith(f":{settings.kafka_port}")
    assert services["redis"]["running"] and services["redis"]["address"].endswith(f":{settings.redis_port}")
    table = cli(settings, "stack", "status")
    assert table.returncode == 0 and "kafka" in table.stdout and "redis" in table.stdout, table.stdout


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
    fields = {"item_id", "score", "reason", "reason_code", "anchor", "signals"}
    assert all(set(entry) == fields for entry in data["items"])
    assert all(entry["reason_code"] is not None for entry in data["items"])  # the worker stored them


def test_recs_of_an_unknown_user_is_empty_not_an_error(settings: Settings) -> None:
    out = cli(settings, "recs", "nobody-here", "--json")
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout)["items"] == []


def test_an_unknown_setting_is_refused_with_a_clear_message(settings: Settings) -> None:
    env = dict(os.environ, PERSONALIZE_NAMESPAC="typo")
    out = subprocess.run(
        [sys.executable, "-m", "streams", "stack", "status"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "PERSONALIZE_NAMESPAC" in out.stderr


@pytest.mark.asyncio(loop_scope="session")
async def test_produce_backfills_movielens_and_jsonl_through_the_live_path(
    settings: Settings, ready_worker: Worker, store: RedisStore, tmp_path: Path
) -> None:
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "ml-a,10,5.0,1700000003\nml-a,11,4.0,1700000001\nml-a,12,2.0,1700000002\nml-b,10,4.5,1700000004\n"
    )
    (tmp_path / "movies.csv").write_text(
        "movieId,title,genres\n10,Ten (1990),Drama|Crime\n11,Eleven (1991),Drama\n"
        "12,Twelve (1992),Comedy\n13,Thirteen (1993),Drama\n"
    )
    ts = time.time_ns() // 1_000_000
    lines = [
        orjson.dumps(
            {"event_id": f"jl-{n}", "user_id": "jl-user", "item_id": "10", "type": "view", "ts": ts + n}
        )
        for n in range(2)
    ]
    (tmp_path / "events.jsonl").write_bytes(b"\n".join([*lines, b"not json at all"]) + b"\n")

    out = cli(settings, "produce", str(tmp_path / "ratings.csv"), "--format", "movielens")
    assert out.returncode == 0, out.stderr
    assert "4 catalog records and 4 records" in out.stderr
    out = cli(settings, "produce", str(tmp_path / "events.jsonl"), "--format", "jsonl")
    assert out.returncode == 0, out.stderr

    async def learned() -> bool:
        a, b, j = [await store.read(u) for u in ("ml-a", "ml-b", "jl-user")]
        return (a.events_seen, b.events_seen, j.events_seen) == (3, 1, 2)

    await wait_for(learned, 60, "the backfilled ratings and JSON lines learned")
    recs = await store.read("ml-a")
    assert recs.last_event_ts == 1_700_000_003_000
    assert "13" in {item for item, _ in recs.items}, "the unseen Drama item should be recommended"
    assert not {"10", "11", "12"} & {item for item, _ in recs.items}
