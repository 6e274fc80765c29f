"""A worker replaced mid-stream resumes its users from the profile table's changelog."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import pytest

from engine.ingest.kafka import AsyncProducer
from engine.store.redis_store import RedisStore
from schemas.events import Event, encode
from tests.integration.conftest import Worker, make_settings, processed, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_replacement_worker_resumes_profiles_without_double_counting(
    live_stack: None, tmp_path: Path
) -> None:
    settings = make_settings(f"rs{uuid.uuid4().hex[:8]}")
    store = RedisStore.from_url(settings.redis, settings.namespace)
    ts = time.time_ns() // 1_000_000
    first = [
        Event(event_id=f"r-{n}", user_id="ru", item_id=f"i{n}", type="click", ts=ts + n) for n in range(5)
    ]
    later = [
        Event(event_id=f"r-{n}", user_id="ru", item_id=f"i{n}", type="click", ts=ts + n) for n in range(5, 8)
    ]

    async def send(events: list[Event]) -> None:
        async with AsyncProducer(settings.bootstrap) as producer:
            for e in events:
                await producer.send(settings.events_topic, encode(e), b"ru")

    async def seen(n: int) -> bool:
        return (await store.read("ru")).events_seen == n

    async def beating() -> bool:
        return bool(await store.workers())

    try:
        worker = Worker(settings, tmp_path / "worker.log")
        worker.start()
        await wait_for(beating, 90, "first worker up")
        await send(first)
        await wait_for(lambda: seen(5), 60, "5 events learned by the first worker")
        worker.stop()
        assert not await store.workers(), "a cleanly stopped worker must remove its heartbeat"

        await send(later + first[:2])  # three new events and two redelivered ones
        replacement = Worker(settings, tmp_path / "worker2.log")
        replacement.start()
        try:
            await wait_for(beating, 90, "replacement worker up")

            async def handled() -> bool:
                return await processed(store) >= 5

            await wait_for(handled, 90, "the replacement worker handled the backlog")

            async def listed() -> bool:  # the heartbeat counts a record before its batch's list is written
                return ((await store.read("ru")).events_seen or 0) >= 8

            with contextlib.suppress(AssertionError):
                await wait_for(listed, 30, "the list after the backlog")
            recs = await store.read("ru")
            assert recs.events_seen == 8, (
                f"events_seen {recs.events_seen}: expected 5 restored + 3 new, redeliveries ignored\n"
                + (tmp_path / "worker2.log").read_text()[-3000:]
            )
            assert {item for item, _ in recs.items}.isdisjoint({f"i{n}" for n in range(8)})
        finally:
            replacement.stop()
    finally:
        await store.close()
