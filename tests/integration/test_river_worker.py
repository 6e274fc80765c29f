"""Bring your own River model, through the real services: a worker started with
``PERSONALIZE_RIVER_RERANKER`` (a scaled logistic regression) learns a synthetic stream from Kafka and
publishes every user's list to Redis under the River model's version; its heartbeat says that version,
and the checkpoint it leaves on shutdown holds the River stage, trained on the stream's events.

Own namespace and worker.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator

import pytest

from engine.ingest.kafka import AsyncProducer
from engine.ops.checkpoints import CheckpointStore
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.river_recommender import RiverRecommender, version_for
from models.synth import Clickstream
from schemas.events import encode
from schemas.keys import WorkerField
from tests.integration.conftest import Worker, make_settings, until_beating, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SPEC = "[{river.preprocessing.StandardScaler: {}}, {river.linear_model.LogisticRegression: {}}]"
EVENTS = 900


class _RiverWorker(Worker):
    def env(self) -> dict[str, str]:
        return {**super().env(), "PERSONALIZE_RIVER_RERANKER": SPEC}


@pytest.fixture(scope="module")
def rv_settings(live_stack: None) -> Settings:
    return make_settings(f"rv{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def rv_worker(rv_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_RiverWorker]:
    worker = _RiverWorker(rv_settings, tmp_path_factory.mktemp("rv-worker") / "worker.log")
    worker.start()
    yield worker
    worker.stop()


async def test_a_worker_with_a_river_reranker_publishes_its_lists_and_checkpoints_it(
    rv_settings: Settings, rv_worker: _RiverWorker
) -> None:
    store = RedisStore.from_url(rv_settings.redis, rv_settings.namespace)
    version = version_for(SPEC)
    try:
        await until_beating(rv_worker, store)
        world = Clickstream(40, 120, n_categories=6, seed=11)
        sent: dict[str, int] = {}
        async with AsyncProducer(rv_settings.bootstrap) as producer:
            for item in world.items():
                await producer.send(rv_settings.items_topic, encode(item), item.item_id.encode())
            for event in world.events(EVENTS):
                await producer.send(rv_settings.events_topic, encode(event), event.user_id.encode())
                sent[event.user_id] = sent.get(event.user_id, 0) + 1

        async def all_listed() -> bool:
            return all([(await store.read(u, 1)).events_seen == n for u, n in sent.items()])

        await wait_for(all_listed, 120, f"every user's list after {EVENTS} events")
        lists = {u: await store.read(u, 10) for u in sent}
        assert {recs.model_version for recs in lists.values()} == {version}
        assert all(len(recs.items) == 10 for recs in lists.values())
        [beat] = await store.workers()
        assert beat[WorkerField.MODEL_VERSION] == version
    finally:
        await store.close()

    rv_worker.stop(signal.SIGTERM)  # a clean shutdown writes a checkpoint
    checkpoint = CheckpointStore(rv_settings.checkpoint_folder, rv_settings.namespace).newest(version)
    assert checkpoint is not None, f"no {version} checkpoint in {rv_settings.checkpoint_folder}"
    model = checkpoint.state["model"]
    assert isinstance(model, RiverRecommender) and model.version == version
    # Most consumed items were on their user's last list, and each such event taught the River stage.
    assert model.reranker.updates > EVENTS // 3, model.reranker.updates
    print(f"\nriver worker: {len(sent)} users, {EVENTS} events, reranker updates {model.reranker.updates}")
