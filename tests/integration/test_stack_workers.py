"""`personalize stack up --workers N`, `stack status` and `stack down --workers-only` against the live stack,
and the consumer-group lag that status shows, read from the real broker.

Own namespace; the workers are started by the CLI (detached, as an operator gets them) and stopped by it,
or by pid if a step fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import confluent_kafka
import orjson
import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from engine.ingest.lag import group_lag
from engine.ops import scrape
from engine.ops.settings import Settings
from schemas.events import Event, encode
from tests.integration.conftest import ROOT, child_env, free_port, make_settings

pytestmark = pytest.mark.integration


def _cli(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = child_env(settings, PERSONALIZE_METRICS_PORT=str(free_port()), PERSONALIZE_METRICS_PORT_SPAN="16")
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _workers(settings: Settings) -> list[dict[str, Any]]:
    out = _cli(settings, "stack", "status", "--json")
    assert out.returncode == 0, out.stderr
    return [
        s
        for s in orjson.loads(out.stdout)
        if s["service"] == "worker" and s["namespace"] == settings.namespace
    ]


@pytest.fixture(scope="module")
def sw_settings(live_stack: None) -> Iterator[Settings]:
    settings = make_settings(f"sw{uuid.uuid4().hex[:10]}")
    yield settings
    for worker in _workers(settings):  # whatever a failed step left running
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker["pid"], signal.SIGTERM)


def test_stack_up_starts_n_workers_and_status_shows_their_partitions_and_lag(sw_settings: Settings) -> None:
    up = _cli(sw_settings, "stack", "up", "--workers", "2", "--timeout", "150", timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "started 2 worker(s)" in up.stderr

    every = list(range(sw_settings.partitions))
    deadline = time.monotonic() + 120
    while True:  # the second worker's arrival rebalances the partitions
        workers = _workers(sw_settings)
        owned = sorted(p for w in workers for p in w["partitions"] or [])
        if len(workers) == 2 and owned == every and all(w["partitions"] for w in workers):
            break
        assert time.monotonic() < deadline, workers
        time.sleep(1.0)
    assert all(isinstance(w["lag"], int) and w["lag"] >= 0 for w in workers)
    assert all(set(w["lag_by_partition"]) == {str(p) for p in w["partitions"]} for w in workers)
    targets = orjson.loads(scrape.targets_path(sw_settings).read_bytes())
    listed = {g["targets"][0] for g in targets if g["labels"]["namespace"] == sw_settings.namespace}
    assert listed == {w["metrics"] for w in workers} and len(listed) == 2

    # Up again with the same count starts nothing; the table names both workers.
    again = _cli(sw_settings, "stack", "up", "--workers", "2", timeout=120)
    assert again.returncode == 0 and "started 0 worker(s)" in again.stderr, again.stderr
    table = _cli(sw_settings, "stack", "status")
    assert all(w["worker_id"] in table.stdout for w in workers), table.stdout

    down = _cli(sw_settings, "stack", "down", "--workers-only", timeout=120)
    assert down.returncode == 0, down.stderr
    assert _workers(sw_settings) == []
    assert all(not os.path.exists(f"/proc/{w['pid']}") for w in workers)
    out = _cli(sw_settings, "stack", "status", "--json")
    services = {s["service"]: s["running"] for s in orjson.loads(out.stdout) if s["service"] != "worker"}
    assert services == {"kafka": True, "redis": True}


async def test_group_lag_is_what_the_group_has_not_committed(sw_settings: Settings) -> None:
    topic, group = f"p13n.{sw_settings.namespace}.lag-probe", f"lag-probe-{uuid.uuid4().hex}"
    admin = AdminClient({"bootstrap.servers": sw_settings.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
    producer = confluent_kafka.Producer({"bootstrap.servers": sw_settings.bootstrap})
    ts = time.time_ns() // 1_000_000
    for n in range(7):
        event = Event(event_id=f"l{n}", user_id="u", item_id="i", type="view", ts=ts)
        producer.produce(topic, encode(event), partition=n % 3)
    assert producer.flush(30) == 0
    assert await group_lag(sw_settings.bootstrap, group, topic) == {0: 3, 1: 2, 2: 2}
    consumer = confluent_kafka.Consumer({"bootstrap.servers": sw_settings.bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[confluent_kafka.TopicPartition(topic, 0, 2)], asynchronous=False)
    finally:
        consumer.close()
    try:
        assert await group_lag(sw_settings.bootstrap, group, topic) == {0: 1, 1: 2, 2: 2}
        assert await group_lag(sw_settings.bootstrap, group, f"{topic}-missing") == {}
    finally:  # the topic goes with the namespace at the end of the session; the group goes now
        admin.delete_consumer_groups([group])[group].result(timeout=30)
