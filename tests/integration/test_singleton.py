"""Two workers in one namespace through the real Kafka and Redis: the trending lists are written by one of
them only (the owner of events partition 0), every worker is scrapeable through the file_sd targets file
the workers keep, and when the owner stops the other takes trending over.

Own namespace and workers (trending every second, metrics on the port scheme from a free base port).
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
import pytest_asyncio

from engine.ingest.kafka import AsyncProducer
from engine.ops import scrape
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas.events import Context, Event, encode
from schemas.keys import WorkerField
from tests.integration.conftest import Worker, free_port, make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

BASE_PORT = free_port()


class _ScrapedWorker(Worker):
    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "PERSONALIZE_TRENDING_INTERVAL_S": "1",
            "PERSONALIZE_METRICS_PORT": str(BASE_PORT),
            "PERSONALIZE_METRICS_PORT_SPAN": "16",
        }


@pytest.fixture(scope="module")
def sg_settings(live_stack: None) -> Settings:
    return make_settings(f"sg{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def sg_workers(sg_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Worker]]:
    folder = tmp_path_factory.mktemp("sg-workers")
    started: list[Worker] = [_ScrapedWorker(sg_settings, folder / f"worker{n}.log") for n in range(2)]
    for worker in started:
        worker.start()
    yield started
    for worker in started:
        worker.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def sg_store(sg_settings: Settings) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(sg_settings.redis, sg_settings.namespace)
    yield store
    await store.close()


def _targets(settings: Settings) -> dict[str, str]:
    """worker id -> scrape address, for the namespace's workers in the targets file."""
    groups = orjson.loads(scrape.targets_path(settings).read_bytes())
    return {
        g["labels"]["worker"]: g["targets"][0]
        for g in groups
        if g["labels"]["namespace"] == settings.namespace
    }


async def _published(address: str) -> float:
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://{address}/metrics")).text
    found = re.search(r"^personalize_trending_publishes_total (\S+)$", text, re.MULTILINE)
    assert found is not None, text[:2000]
    return float(found.group(1))


async def _owners(store: RedisStore) -> dict[str, list[int]]:
    """worker id -> the events partitions it owns, from the heartbeats."""
    beats = await store.workers_by_id()
    return {
        worker: [int(p) for p in beat[WorkerField.PARTITIONS].split(",") if p]
        for worker, beat in beats.items()
        if WorkerField.PARTITIONS in beat
    }


async def _clicks(settings: Settings, tag: str, n: int) -> None:
    ts = time.time_ns() // 1_000_000
    async with AsyncProducer(settings.bootstrap) as producer:
        for k in range(n):
            user = f"{tag}-u{k}"
            event = Event(
                event_id=f"{tag}-{k}", user_id=user, item_id=f"{tag}-hot", type="click", ts=ts + k,
                context=Context(locale="en-GB"),
            )  # fmt: skip
            await producer.send(settings.events_topic, encode(event), user.encode())


async def test_trending_is_written_by_the_owner_of_partition_0_only_and_moves_with_it(
    sg_settings: Settings, sg_workers: list[Worker], sg_store: RedisStore
) -> None:
    every = set(range(sg_settings.partitions))
    ids = {f"{socket.gethostname()}-{w.proc.pid}": w for w in sg_workers if w.proc}
    owners: dict[str, list[int]] = {}

    async def settled() -> bool:
        nonlocal owners
        owners = await _owners(sg_store)
        split = set(owners) == set(ids) and all(owners.values())
        return split and sorted(p for ps in owners.values() for p in ps) == sorted(every)

    await wait_for(settled, 120, "two workers sharing every partition")

    async def listed() -> bool:
        return set(_targets(sg_settings)) == set(ids)

    await wait_for(listed, 30, "both workers in the targets file")
    targets = _targets(sg_settings)
    before = {w: await _published(targets[w]) for w in ids}
    [owner] = [w for w, partitions in owners.items() if 0 in partitions]

    await _clicks(sg_settings, "one", 5)

    async def trending() -> bool:
        top = await sg_store.read_trending(5, "en-GB")
        return bool(top) and top[0][0] == "one-hot"

    await wait_for(trending, 60, "trending of en-GB in Redis")
    for _ in range(3):  # over a few of the workers' 1 s trending rounds
        after = {w: await _published(targets[w]) for w in ids}
        assert after[owner] > before[owner]
        assert all(after[w] == before[w] for w in ids if w != owner), (owner, before, after)
        await asyncio.sleep(1.0)
    assert await _owners(sg_store) == owners  # no rebalance happened meanwhile

    # The owner stops: the other worker gets partition 0 and with it trending; the targets file drops it.
    ids[owner].stop(signal.SIGTERM)
    [survivor] = [w for w in ids if w != owner]

    async def took_over() -> bool:
        return sorted((await _owners(sg_store)).get(survivor, [])) == sorted(every)

    await wait_for(took_over, 120, "the other worker owning every partition")
    assert set(_targets(sg_settings)) == {survivor}
    survivor_before = await _published(targets[survivor])
    await _clicks(sg_settings, "two", 9)

    async def moved() -> bool:
        top = await sg_store.read_trending(5, "en-GB")
        return bool(top) and top[0][0] == "two-hot"

    await wait_for(moved, 60, "trending of the second wave, from the other worker")
    assert await _published(targets[survivor]) > survivor_before
