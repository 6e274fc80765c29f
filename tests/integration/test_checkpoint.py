"""Model checkpoints through the real Kafka and Redis: a restarted worker has the model it had, and a
worker that crashed between checkpoints learns what came after the last one exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest

from engine.ingest.kafka import AsyncProducer
from engine.ops.checkpoints import CheckpointInfo, CheckpointStore
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.profile import UserProfile
from models.recommender import MODEL_VERSION, HybridRecommender
from schemas import stored_list
from schemas.events import Event, ItemRecord, encode
from streams.checkpointer import learned_key
from tests.integration.conftest import Worker, make_settings, wait_for
from tests.streams.model_state import differences

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

USERS = [f"cu{n}" for n in range(8)]
TYPES = ["click", "view", "purchase", "click", "add_to_cart"]


class CheckpointingWorker(Worker):
    """A worker with checkpoints in a test folder, written every ``every_s`` seconds (0: only on stop)."""

    def __init__(self, settings: Settings, log_path: Path, folder: Path, every_s: float) -> None:
        super().__init__(settings, log_path)
        self.extra = {
            "PERSONALIZE_CHECKPOINT_DIR": str(folder),
            "PERSONALIZE_CHECKPOINT_EVERY_S": str(every_s),
            "PERSONALIZE_CHECKPOINT_EVERY_EVENTS": "0",
            "PERSONALIZE_CHECKPOINT_KEEP": "50",
            "PERSONALIZE_DRIFT_RESPONSE": "none",  # a drift response would change the model on its own
        }

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}


def events_for(users: list[str], count: int, tag: str, ts: int) -> list[Event]:
    return [
        Event(
            event_id=f"{tag}-{n}",
            user_id=users[(n * 5) % len(users)],
            item_id=f"ci{(n * 7 + len(tag)) % 30}",
            type=TYPES[n % len(TYPES)],
            ts=ts + n,
        )  # fmt: skip
        for n in range(count)
    ]


def profile_of(user: str, sent: list[Event]) -> UserProfile:
    """The user's profile as the worker builds it (duplicates ignored)."""
    profile = UserProfile(user)
    for event in sent:
        if event.user_id == user and not profile.has_seen(event.event_id):
            profile.observe(event, HybridRecommender.signal(event))
    return profile


class Scenario:
    """One namespace, its checkpoint folder, what was sent, and helpers to wait on the workers."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.settings = make_settings(f"ck{uuid.uuid4().hex[:8]}")
        self.folder = tmp_path / "checkpoints"
        self.checkpoints = CheckpointStore(self.folder / self.settings.namespace, self.settings.namespace)
        self.store = RedisStore.from_url(self.settings.redis, self.settings.namespace)
        self.sent: list[Event] = []
        self.workers: list[CheckpointingWorker] = []

    def start(self, name: str, every_s: float) -> CheckpointingWorker:
        worker = CheckpointingWorker(self.settings, self.tmp_path / f"{name}.log", self.folder, every_s)
        worker.start()
        self.workers.append(worker)
        return worker

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()

    async def send_items(self, count: int) -> None:
        async with AsyncProducer(self.settings.bootstrap) as producer:
            for n in range(count):
                item = ItemRecord(item_id=f"ci{n}", categories=(f"cat{n % 4}",))
                await producer.send(self.settings.items_topic, encode(item), item.item_id.encode())

    async def send(self, events: list[Event], what: str) -> None:
        """Send events keyed by user and wait until every user's events_seen in Redis counts them."""
        async with AsyncProducer(self.settings.bootstrap) as producer:
            for e in events:
                await producer.send(self.settings.events_topic, encode(e), e.user_id.encode())
        self.sent.extend(events)
        await wait_for(self.all_learned, 120, what)

    async def all_learned(self) -> bool:
        for user in {e.user_id for e in self.sent}:
            if (await self.store.read(user)).events_seen != profile_of(user, self.sent).events_seen:
                return False
        return True

    async def beating(self) -> bool:
        return bool(await self.store.workers())

    async def checkpointed(self, events: Iterable[Event]) -> bool:
        """Whether the newest checkpoint holds these events (its ring of learned events has them)."""
        loaded = self.checkpoints.newest(MODEL_VERSION)
        held = set(loaded.state["learned_ids"]) if loaded else set()
        return all(learned_key(e.user_id, e.event_id) in held for e in events)

    def offsets_total(self, topic: str) -> int:
        newest = self.checkpoints.infos()
        return sum(newest[0].offsets.get(topic, {}).values()) if newest else 0

    def model(self, info: CheckpointInfo | None = None) -> HybridRecommender:
        """The model of a checkpoint (default: the newest)."""
        info = info or self.checkpoints.infos()[0]
        model = self.checkpoints.load(info, MODEL_VERSION).state["model"]
        assert isinstance(model, HybridRecommender)
        return model


@pytest.mark.timeout(600)
async def test_restarted_worker_keeps_its_model_and_learns_the_gap_after_a_crash_once(
    live_stack: None, tmp_path: Path
) -> None:
    run = Scenario(tmp_path)
    topics = (run.settings.events_topic, run.settings.items_topic)
    ts = time.time_ns() // 1_000_000 - 60_000
    try:
        first = run.start("first", every_s=0)
        await wait_for(run.beating, 120, "first worker up")
        await run.send_items(30)
        await asyncio.sleep(2)  # the catalog first, as apps send it
        await run.send(events_for(USERS, 240, "a", ts), "240 events learned by the first worker")
        first.stop()  # clean: the checkpoint written on shutdown holds everything
        assert run.offsets_total(topics[0]) >= 240  # (+ control records)
        assert run.offsets_total(topics[1]) == 30

        # 1. Restart: the model is the checkpointed one. After one probe event the worker publishes the
        # list that the checkpoint's model, taught the same probe here, gives.
        expected_model = run.model()
        second = run.start("second", every_s=1)
        await wait_for(run.beating, 120, "second worker up")
        probe = Event(event_id="probe", user_id="cu3", item_id="ci11", type="click", ts=ts + 10_000)
        await run.send([probe], "the probe learned")
        profile = profile_of("cu3", run.sent[:-1])
        expected_model.learn_one(probe, profile)
        profile.observe(probe, expected_model.signal(probe))
        ranked = expected_model.recommend(profile, run.settings.top_n, probe.context, probe.ts)
        expected = [(item, float(stored_list.score_text(score))) for item, score in ranked]  # as stored
        got = (await run.store.read("cu3", run.settings.top_n)).items
        assert "restored model state" in run.log("second"), run.log("second")[-3000:]
        assert got == expected, f"the restored model ranks differently\n{run.log('second')[-3000:]}"
        empty = HybridRecommender().recommend(profile_of("cu3", run.sent), run.settings.top_n, None, probe.ts)
        assert got != empty  # (the comparison tells a restored model from an empty one)

        # 2. A crash between checkpoints: the newer checkpoints are lost, the older one is restored and
        # the events after its offsets are learned once (redelivered ones and a retried id included).
        batch_b = events_for(USERS, 60, "b", ts + 20_000)
        await run.send(batch_b, "batch b learned")
        await wait_for(lambda: run.checkpointed(batch_b), 30, "a checkpoint holding batch b")
        older = run.checkpoints.infos()[0]
        gap = events_for(["cu5"], 40, "c", ts + 30_000)  # one user: one partition, one order
        retry = next(e for e in batch_b if e.user_id == "cu5")
        gap[17] = Event(event_id=retry.event_id, user_id="cu5", item_id="ci2", type="click", ts=ts + 30_017)
        await run.send(gap, "batch c learned")
        await wait_for(lambda: run.checkpointed(gap[:17] + gap[18:]), 30, "a checkpoint holding batch c")
        before_crash = run.model()
        assert differences(before_crash, run.model(older), USERS, ts) != []
        second.stop(signal.SIGKILL)
        for path in run.checkpoints.all_paths():
            if path.name > older.path.name:
                path.unlink()

        third = run.start("third", every_s=0)
        later = events_for(["cu5"], 10, "d", ts + 40_000)
        await run.send(later, "batch d learned by the third worker")
        third.stop()
        assert "replayed offsets" in run.log("third"), run.log("third")[-3000:]
        for event in later:
            before_crash.learn_one(event, UserProfile("cu5"))
        assert differences(run.model(), before_crash, USERS, ts) == [], run.log("third")[-3000:]
    finally:
        for worker in run.workers:
            worker.stop()
        await run.store.close()
