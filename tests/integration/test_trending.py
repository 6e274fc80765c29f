"""Trending through the real Kafka and Redis: the worker counts what users in each locale interact with
and publishes it, and a user without a list of their own gets their locale's, then their language's."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine.ingest.kafka import AsyncProducer
from engine.serving.recommend import recommend
from engine.store.redis_store import RedisStore
from schemas import keys
from schemas.events import Context, Event, encode
from tests.integration.conftest import Worker, make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class TrendingWorker(Worker):
    def env(self) -> dict[str, str]:
        return {**super().env(), "PERSONALIZE_TRENDING_INTERVAL_S": "1"}


class SlowRoundsWorker(Worker):
    """Trending rounds every 5 s: events sent right after the first heartbeat are learned before the
    job's first round."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "PERSONALIZE_TRENDING_INTERVAL_S": "5"}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def trending_store(
    live_stack: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RedisStore]:
    """A worker publishing trending every second, in a namespace of its own; its store."""
    settings = make_settings(f"trend{uuid.uuid4().hex[:8]}")
    worker = TrendingWorker(settings, tmp_path_factory.mktemp("trending") / "worker.log")
    store = RedisStore.from_url(settings.redis, settings.namespace)
    worker.start()
    try:

        async def beating() -> bool:
            return bool(await store.workers())

        await wait_for(beating, 90, "the worker's first heartbeat")
        async with AsyncProducer(settings.bootstrap) as producer:
            ts = time.time_ns() // 1_000_000
            clicks = [(f"br{n}", "hot-br", "pt-BR") for n in range(3)] + [("fr0", "hot-fr", "fr-FR")]
            for n, (user, item, locale) in enumerate(clicks):
                event = Event(
                    event_id=f"t{n}", user_id=user, item_id=item, type="click", ts=ts + n,
                    context=Context(locale=locale),
                )  # fmt: skip
                await producer.send(settings.events_topic, encode(event), user.encode())
        yield store
    finally:
        worker.stop()
        await store.close()


async def test_the_worker_publishes_trending_per_locale_language_and_overall(
    trending_store: RedisStore,
) -> None:
    async def published() -> bool:
        top = await trending_store.read_trending(5, "pt-BR")
        return bool(top) and top[0][0] == "hot-br" and bool(await trending_store.read_trending(5, "fr"))

    await wait_for(published, 60, "trending of pt-BR and fr in Redis")
    assert [i for i, _ in await trending_store.read_trending(5, "pt")] == ["hot-br"]
    assert [i for i, _ in await trending_store.read_trending(5)] == ["hot-br", "hot-fr"]


async def test_a_user_without_a_list_gets_the_trending_of_their_locale_then_language(
    trending_store: RedisStore,
) -> None:
    async def served(locale: str) -> tuple[str, list[str]]:
        answer = await recommend(trending_store, "a-stranger", 5, locale)
        return answer.source, [item for item, _ in answer.items]

    async def ready() -> bool:
        return (await served("fr-CA"))[0] == "trending:fr"

    await wait_for(ready, 60, "trending of fr served")
    assert await served("pt-BR") == ("trending:pt-BR", ["hot-br"])
    assert await served("fr-CA") == ("trending:fr", ["hot-fr"])
    assert await served("ja-JP") == ("trending", ["hot-br", "hot-fr"])


async def test_a_restarted_worker_counts_the_hour_before_its_model_then_what_it_learns_each_once(
    live_stack: None, tmp_path: Path
) -> None:
    """Trending counts what the model learns; a worker taking the job over (here: restarted from its
    checkpoint) first reads the hour before the model's position from Kafka. Three clicks before the
    restart and one after: each counted exactly once (relative score 1/3, not 1/6 nor 2/3)."""
    settings = make_settings(f"trend{uuid.uuid4().hex[:8]}")
    store = RedisStore.from_url(settings.redis, settings.namespace)
    ts = time.time_ns() // 1_000_000

    async def click(producer: AsyncProducer, n: int, item: str) -> None:
        event = Event(
            event_id=f"r{n}", user_id=f"u{n}", item_id=item, type="click", ts=ts + n,
            context=Context(locale="pt-BR"),
        )  # fmt: skip
        await producer.send(settings.events_topic, encode(event), f"u{n}".encode())

    async def listed() -> list[tuple[str, float]]:
        return await store.read_trending(5, "pt-BR")

    try:
        first = SlowRoundsWorker(settings, tmp_path / "first.log")
        first.start()
        try:
            await wait_for(lambda: _beating(store), 90, "the first worker's heartbeat")
            async with AsyncProducer(settings.bootstrap) as producer:
                for n in range(3):
                    await click(producer, n, "old-br")

            async def counted() -> bool:
                return [i for i, _ in await listed()] == ["old-br"]

            await wait_for(counted, 60, "trending from the first worker")
        finally:
            first.stop()  # a clean stop: the model's checkpoint holds the three clicks
        # Counting started when the group assigned partition 0, before any click was learned, not at
        # the job's first round after them: the look-back read nothing again of what the model learned.
        assert "trending: 0 record(s) of the hour before" in (tmp_path / "first.log").read_text()
        await store.client.delete(keys.trending(settings.namespace, "pt-BR"))
        second = TrendingWorker(settings, tmp_path / "second.log")
        second.start()
        try:
            await wait_for(lambda: _beating(store), 90, "the second worker's heartbeat")
            async with AsyncProducer(settings.bootstrap) as producer:
                await click(producer, 3, "new-br")

            async def both() -> bool:
                return len(await listed()) == 2

            await wait_for(both, 60, "trending from the look-back and the new click")
            (old, old_score), (new, new_score) = await listed()
            assert (old, new) == ("old-br", "new-br")
            assert new_score / old_score == pytest.approx(1 / 3, rel=0.01)
        finally:
            second.stop()
    finally:
        await store.close()


async def _beating(store: RedisStore) -> bool:
    return bool(await store.workers())
