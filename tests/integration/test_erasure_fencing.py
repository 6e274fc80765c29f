"""Erasure while a lagging worker still holds the user's earlier events, through a real API process, Kafka,
a real worker and Redis: the worker is paused (SIGSTOP) with a backlog of the user's events, the user is
erased through the API, the worker resumes (SIGCONT) and drains. Nothing of the user is in Redis 5 s after
the erasure, nor at any moment while the backlog drains, nor after; events after the erasure count afresh.

Own namespace, worker (small batches, so the backlog's lists are written, and refused, before the worker
reaches the erasure record) and API.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import cast

import httpx
import pytest
import pytest_asyncio

from engine.api import hash_key
from engine.ingest.kafka import AsyncProducer
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas import keys
from schemas.events import Event, encode
from schemas.keys import WorkerField
from tests.integration.conftest import EXPERIMENTS, Worker, api_server, free_port, make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

KEY = f"p13n_it-{uuid.uuid4().hex}"
AUTH = {"X-API-Key": KEY}
USER = f"erased-{uuid.uuid4().hex[:8]}"
BACKLOG = 300


class _SmallBatches(Worker):
    metrics_port = free_port()

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "PERSONALIZE_BATCH_MAX": "20",
            "PERSONALIZE_METRICS_PORT": str(self.metrics_port),
        }

    def metrics_url(self) -> str:
        found = re.search(r"metrics on (http://\S+/metrics)", self.log_path.read_text())
        assert found, self.log_path.read_text()[-2000:]
        return found.group(1)


@pytest.fixture(scope="module")
def er_settings(live_stack: None) -> Settings:
    return make_settings(f"er{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def er_worker(er_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_SmallBatches]:
    worker = _SmallBatches(er_settings, tmp_path_factory.mktemp("er-worker") / "worker.log")
    worker.start()
    yield worker
    if worker.proc is not None:
        worker.proc.send_signal(signal.SIGCONT)  # never leave it stopped, whatever failed
    worker.stop()


@pytest.fixture(scope="module")
def er_api(
    er_settings: Settings, er_worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("er-api") / "api.log"
    with api_server(
        er_settings, log, PERSONALIZE_API_KEY_HASHES=hash_key(KEY), PERSONALIZE_EXPERIMENTS=EXPERIMENTS
    ) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def er_store(er_settings: Settings) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(er_settings.redis, er_settings.namespace)
    yield store
    await store.close()


def _events(user: str, start: int, count: int, items: str = "i") -> list[Event]:
    ts = time.time_ns() // 1_000_000
    return [
        Event(event_id=f"{user}-{n}", user_id=user, item_id=f"{items}{n % 40}", type="click", ts=ts + n)
        for n in range(start, start + count)
    ]


async def _send(settings: Settings, events: list[Event]) -> int:
    async with AsyncProducer(settings.bootstrap) as producer:
        for event in events:
            await producer.send(settings.events_topic, encode(event), event.user_id.encode())
    return len(events)


async def _traces(store: RedisStore, user: str, experiment_sets: list[str]) -> list[str]:
    """Every place the user is found in the namespace: keys named by them, their list and
    preferences, membership of experiment sets, and keys whose name holds their id."""
    ns, client = store.namespace, store.client
    found = [k for k in (keys.user_list(ns, user), keys.preferences(ns, user)) if await client.exists(k)]
    found += [s for s in experiment_sets if await client.sismember(s, user)]
    found += [k async for k in client.scan_iter(match=keys.namespace_pattern(ns)) if user in k]
    return sorted(set(found))


async def test_an_erased_user_stays_gone_while_a_lagging_worker_drains_their_earlier_events(
    er_settings: Settings, er_worker: _SmallBatches, er_api: str, er_store: RedisStore
) -> None:
    async def beating() -> bool:
        return bool(await er_store.workers())

    await wait_for(beating, 90, "the worker's first heartbeat")
    # Others' clicks first, so the user's list has items they have not clicked.
    sent = await _send(er_settings, _events("bystander", 0, 10, items="j"))
    sent += await _send(er_settings, _events(USER, 0, 20))

    async def listed() -> bool:
        return (await er_store.read(USER)).events_seen == 20

    await wait_for(listed, 60, "the user's list after 20 events")
    async with httpx.AsyncClient(base_url=er_api, timeout=30) as http:
        put = await http.put(f"/v1/users/{USER}/preferences", json={"muted_categories": ["x"]}, headers=AUTH)
        assert put.status_code == 200, put.text
        sent += 1  # the preferences record
        body = {
            "context": {"hour": 7},
            "actions": [{"id": "a"}, {"id": "b"}],
            "user_id": USER,
            "surface": "home",
        }
        assert (await http.post("/v1/rank", json=body, headers=AUTH)).status_code == 200
        sets = [keys.experiment_users(er_settings.namespace, "home", v) for v in ("control", "explore")]
        traces = await _traces(er_store, USER, sets)
        assert len(traces) == 3, traces  # list, preferences, one experiment set

        # The worker stops with the user's next events still ahead of it in Kafka.
        assert er_worker.proc is not None
        er_worker.proc.send_signal(signal.SIGSTOP)
        sent += await _send(er_settings, _events(USER, 20, BACKLOG))
        erased_at = time.monotonic()
        erased = await http.delete(f"/v1/users/{USER}", headers=AUTH)
        assert erased.status_code == 202, erased.text
        sent += 1
        assert erased.json()["deleted_keys"] == 2
        # Redis is done, the stopped worker's model is not: pending, with who asked and when.
        pending = (await http.get(f"/v1/users/{USER}/erasure", headers=AUTH)).json()
        assert pending["status"] == "pending" and pending["done_ms"] is None, pending
        assert pending["by"] == f"key-{hash_key(KEY)[:8]}" and pending["deleted_keys"] == 2, pending
        assert pending["event_id"] == erased.json()["event_id"]
    assert await _traces(er_store, USER, sets) == []
    await asyncio.sleep(max(0.0, erased_at + 5.0 - time.monotonic()))
    assert await _traces(er_store, USER, sets) == []

    # The worker resumes and drains the backlog, then the erasure record: the user never reappears.
    er_worker.proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 120
    ns = er_settings.namespace
    user_keys = (keys.user_list(ns, USER), keys.preferences(ns, USER))
    beat = keys.worker(ns, f"{socket.gethostname()}-{er_worker.proc.pid}")  # as streams.heartbeat names it
    seen: list[int] = []
    while (counted := int(await er_store.client.hget(beat, WorkerField.EVENTS) or 0)) < sent:
        assert await er_store.client.exists(*user_keys) == 0, "the user's list came back while draining"
        seen.append(counted)
        assert time.monotonic() < deadline, (
            f"the backlog did not drain; log:\n{er_worker.log_path.read_text()[-3000:]}"
        )
        await asyncio.sleep(0.02)
    # The drain was watched from its start (the heartbeat still counted none of the backlog), not skipped.
    assert seen and seen[0] <= sent - BACKLOG, seen[:5]
    assert await _traces(er_store, USER, sets) == []
    async with httpx.AsyncClient(timeout=10) as http:
        metrics = (await http.get(er_worker.metrics_url())).text
    refused = re.search(r'personalize_fenced_writes_total\{reason="erased"\} (\S+)', metrics)
    assert refused is not None and float(refused.group(1)) >= 1, "no list of the backlog was refused"
    # The worker took the erasure record, then rewrote its checkpoints: done, and the audit trail says each
    # step, without the user's id.
    async with httpx.AsyncClient(base_url=er_api, timeout=30) as http:
        status: dict[str, object] = {}

        async def done() -> bool:
            status.update((await http.get(f"/v1/users/{USER}/erasure", headers=AUTH)).json())
            return status["status"] == "done"

        await wait_for(done, 30, "the erasure's status done")
        unknown = await http.get("/v1/users/never-erased/erasure", headers=AUTH)
    assert cast(int, status["done_ms"]) >= cast(int, status["requested_ms"]), status
    assert unknown.status_code == 404
    audit: list[tuple[str, dict[str, str]]] = await er_store.client.xrange(  # type: ignore[assignment]
        keys.erasure_audit(er_settings.namespace)
    )
    steps = sorted((fields["step"], fields["event_id"]) for _, fields in audit)
    expected = [(step, status["event_id"]) for step in ("forgotten", "requested", "scrubbed")]
    assert steps == expected, audit
    assert all(USER not in str(fields) for _, fields in audit)
    took = cast(int, status["done_ms"]) - cast(int, status["requested_ms"])
    print(f"\nerasure done {took} ms after the request (worker paused)")
    await asyncio.sleep(2.0)
    assert await _traces(er_store, USER, sets) == []

    # The user comes back after the erasure: a fresh list of only what came after it.
    await _send(er_settings, _events(USER, 1000, 1))

    async def afresh() -> bool:
        return (await er_store.read(USER)).events_seen == 1

    await wait_for(afresh, 60, "a list of the user's one event after the erasure")
