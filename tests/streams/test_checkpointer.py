"""Checkpoint, crash, restore, catch up: the model ends as if it had never stopped (no Kafka, no Redis)."""

from __future__ import annotations

import copy
import logging
import random
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from engine.ops import checkpoints as checkpoint_store
from engine.ops.checkpoints import CheckpointStore
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.recommender import MODEL_VERSION, HybridRecommender
from schemas.events import Event, ItemRecord, encode
from streams import checkpointer as checkpointer_module
from streams.catchup import CatchUp
from streams.checkpointer import Checkpointer, model_from, restore
from streams.gaps import GapReader, OffsetGuard, Record
from streams.pipeline import Pipeline
from streams.quality import Quality
from tests.streams.model_state import differences
from tests.streams.test_gaps import FakeReader
from tests.streams.test_pipeline import FakeStore

EVENTS, ITEMS = "p13n.t.events", "p13n.t.items"
TS = 1_700_000_000_000


def raw_event(n: int, event_id: str | None = None) -> bytes:
    user = f"u{n % 3}"
    item = f"i{(n * 5) % 9}"
    return encode(Event(event_id=event_id or f"e{n}", user_id=user, item_id=item, type="click", ts=TS + n))


def key_of(raw: bytes) -> bytes:
    return b"u" + raw.split(b'"user_id":"u', 1)[1].split(b'"', 1)[0]


class KeyedReader(FakeReader):
    """FakeReader whose records carry their user id as the key, as producers send them."""

    def __init__(self, values: list[bytes], topic: str) -> None:
        super().__init__(values)
        self.topic = topic

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        records = await super().read(partition, start, end)
        return [Record(r.offset, key_of(r.value or b""), r.value, r.control) for r in records]


class Worker:
    """The app's wiring of guard, pipeline, checkpointer and catch-up over one events partition."""

    def __init__(self, folder: Path, log: list[bytes], profiles: dict[str, Any], restored: bool) -> None:
        settings = Settings(namespace="t", checkpoint_every_events=0, checkpoint_every_s=0)
        self.store = CheckpointStore(folder, "t")
        checkpoint = self.store.newest(MODEL_VERSION) if restored else None
        self.model = model_from(checkpoint)
        if checkpoint is None:
            for n in range(9):
                self.model.learn_item(ItemRecord(item_id=f"i{n}", categories=(f"c{n % 3}",)))
        self.metrics = Metrics.create(CollectorRegistry(), "t", MODEL_VERSION)

        async def send(topic: str, key: bytes | None, value: bytes) -> None:
            return None

        async def flush() -> None:
            return None

        self.pipeline = Pipeline(
            model=self.model, store=cast(RedisStore, FakeStore()), metrics=self.metrics, send=send,
            events_topic=EVENTS, dead_letter_topic="dead", top_n=5,
        )  # fmt: skip
        self.checkpointer = Checkpointer(
            model=self.model, store=self.store, metrics=self.metrics, settings=settings, flush=flush,
            restored=checkpoint,
        )  # fmt: skip
        self.pipeline.learned = self.checkpointer.learned
        self.profiles = profiles
        reader = KeyedReader(log, EVENTS)
        self.guard = OffsetGuard(cast(GapReader, reader), profiles, self.process, self.metrics)
        self.catchup = CatchUp(
            checkpointer=self.checkpointer, pipeline=self.pipeline, guard=self.guard,
            events_reader=cast(GapReader, reader), metrics=self.metrics, nudge=send_nothing,
        )  # fmt: skip

    async def process(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        learn = self.catchup.should_learn(partition, offset)
        await self.pipeline.consume_event(
            value, key, self.profiles, topic=EVENTS, partition=partition, offset=offset, learn=learn
        )
        self.checkpointer.advance(EVENTS, partition, offset + 1)

    async def on_message(self, offset: int, raw: bytes) -> None:
        async with self.checkpointer.lock:
            await self.catchup.events(0, self.profiles)
            await self.guard.on_message(0, offset, key_of(raw), raw, control=False)


async def send_nothing(topic: str, partition: int) -> None:
    return None


def history() -> list[bytes]:
    log = [raw_event(n) for n in range(12)]
    log[8] = raw_event(2)  # a client's retry of offset 2, after the checkpoint: a duplicate both times
    return log


async def test_events_after_the_checkpoint_are_learned_once_after_a_restore(tmp_path: Path) -> None:
    log = history()
    profiles: dict[str, Any] = {}
    first = Worker(tmp_path, log, profiles, restored=False)
    for offset in range(5):
        await first.on_message(offset, log[offset])
    info = await first.checkpointer.checkpoint()
    assert info is not None and info.offsets == {EVENTS: {0: 5}}
    for offset in range(5, 10):
        await first.on_message(offset, log[offset])
    assert first.metrics.registry.get_sample_value("personalize_events_total", {"outcome": "duplicate"}) == 1

    # Crash: no checkpoint after offset 9; the profile table (changelog) holds everything up to 10.
    second = Worker(tmp_path, log, copy.deepcopy(profiles), restored=True)
    assert second.model is not first.model
    users = ["u0", "u1", "u2"]
    assert differences(second.model, first.model, users, TS) != []  # it misses offsets 5..9 ...
    for offset in (8, 9, 10, 11):  # ... Faust redelivers two of them, then new ones come
        await second.on_message(offset, log[offset])
        await first.on_message(offset, log[offset])
    assert differences(second.model, first.model, users, TS) == []
    replayed = second.metrics.registry.get_sample_value(
        "personalize_checkpoint_replayed_total", {"topic": "events"}
    )
    assert replayed == 5
    assert second.checkpointer.position(EVENTS, 0) == 12


async def test_records_the_checkpoint_holds_but_the_profiles_lost_update_profiles_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = history()
    profiles: dict[str, Any] = {}
    first = Worker(tmp_path, log, profiles, restored=False)
    for offset in range(6):
        await first.on_message(offset, log[offset])
    before_crash = dict(profiles)  # what the changelog had flushed
    for offset in range(6, 8):
        await first.on_message(offset, log[offset])
    await first.checkpointer.checkpoint()

    lost = copy.deepcopy(before_crash)
    second = Worker(tmp_path, log, lost, restored=True)
    with caplog.at_level(logging.INFO):
        for offset in range(6, 10):
            await second.on_message(offset, log[offset])
    for offset in range(8, 10):
        await first.on_message(offset, log[offset])
    assert "update profiles only" in caplog.text
    assert lost == profiles
    assert differences(second.model, first.model, ["u0", "u1", "u2"], TS) == []


async def test_checkpoints_are_due_by_count_or_time_and_written_on_shutdown(tmp_path: Path) -> None:
    worker = Worker(tmp_path, [], {}, restored=False)
    cp = worker.checkpointer
    cp.enabled, cp.every_events, cp.every_s = True, 3, 0
    cp.advance(EVENTS, 0, 1, records=2)
    assert not cp.due()
    cp.advance(EVENTS, 0, 2)
    assert cp.due()
    await cp.tick()
    assert len(worker.store.paths()) == 1 and cp.pending == 0 and cp.last_ms is not None
    get = worker.metrics.registry.get_sample_value
    assert get("personalize_checkpoint_writes_total", {"outcome": "written"}) == 1
    assert get("personalize_checkpoints") == 1 and (get("personalize_checkpoint_bytes") or 0) > 1000
    await cp.close()
    assert len(worker.store.paths()) == 1  # nothing new since: no second file
    cp.advance(EVENTS, 0, 3)

    async def broken() -> None:
        raise RuntimeError("producer gone")

    cp.flush = broken
    await cp.close()
    assert get("personalize_checkpoint_writes_total", {"outcome": "failed"}) == 1 and cp.pending == 1


async def test_other_workers_events_do_not_count_toward_a_checkpoint_but_are_kept_by_the_next(
    tmp_path: Path,
) -> None:
    worker = Worker(tmp_path, [], {}, restored=False)
    cp = worker.checkpointer
    cp.enabled, cp.every_events, cp.every_s = True, 3, 0
    cp.advance(EVENTS, 1, 10, records=10, counted=False)  # what the replica learned for another worker
    assert not cp.due()  # with N workers, N times as many checkpoints otherwise
    cp.advance(EVENTS, 0, 3, records=3)
    assert cp.due()
    await cp.tick()
    assert len(worker.store.paths()) == 1 and (cp.pending, cp.counted) == (0, 0)
    cp.advance(EVENTS, 1, 12, records=2, counted=False)
    cp.every_s = 1e-9  # the time trigger covers them
    assert cp.due()
    cp.every_s = 0
    await cp.close()  # and a clean shutdown writes them
    assert len(worker.store.paths()) == 2 and cp.offsets[EVENTS][1] == 12


def test_the_learned_ids_are_the_newest_and_a_relearned_one_counts_as_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointer_module, "LEARNED_IDS", 3)
    cp = Worker(tmp_path, [], {}, restored=False).checkpointer
    for event_id in ("e1", "e2", "e3", "e1", "e4"):  # e1 learned again: now newer than e2 and e3
        cp.learned("u1", event_id)
    assert [e for e in ("e1", "e2", "e3", "e4") if cp.known("u1", e)] == ["e1", "e3", "e4"]
    cp.learned("u2", "e1")
    assert [e for e in ("e1", "e3", "e4") if cp.known("u1", e)] == ["e1", "e4"] and cp.known("u2", "e1")


async def test_restore_refuses_a_checkpoint_without_a_model_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(namespace="t", checkpoint_dir=tmp_path)
    CheckpointStore(settings.checkpoint_folder, "t").write(
        {"model": "?"}, model_version=MODEL_VERSION, offsets={}
    )
    said: list[str] = []
    with caplog.at_level(logging.WARNING):
        assert await restore(settings, said.append) is None
    assert "holds no" in caplog.text and "empty model" in said[0]
    good = HybridRecommender(seed=2)
    CheckpointStore(settings.checkpoint_folder, "t").write(
        {"model": good, "learned_ids": ["a"]}, model_version=MODEL_VERSION, offsets={}
    )
    found = await restore(settings, said.append)
    assert found is not None and "restored model state" in said[-1]


def _quality(model: HybridRecommender) -> Quality:
    async def send(topic: str, key: bytes | None, value: bytes) -> None:
        return None

    settings = Settings(namespace="t", drift_response="boost_exploration", drift_cooldown_events=10_000)
    metrics = Metrics.create(CollectorRegistry(), "t", MODEL_VERSION)
    return Quality(
        model=model, store=cast(RedisStore, FakeStore()), metrics=metrics, send=send, settings=settings
    )


def _checkpointer(
    folder: Path, model: HybridRecommender, quality: Quality, restored: Any = None
) -> Checkpointer:
    async def flush() -> None:
        return None

    return Checkpointer(
        model=model, store=CheckpointStore(folder, "t"), metrics=quality.metrics,
        settings=Settings(namespace="t"), flush=flush, restored=restored, quality=quality,
    )  # fmt: skip


def _misses(seed: int, n: int, rate: float) -> list[bool]:
    rng = random.Random(seed)
    return [rng.random() < rate for _ in range(n)]


async def test_restored_drift_detectors_detect_on_as_the_originals_would(tmp_path: Path) -> None:
    model = HybridRecommender(seed=1)
    original = _quality(model)
    original.learn_item(ItemRecord(item_id="i1", categories=("jazz",)))
    original.events = 7_000
    for t, miss in enumerate(_misses(0, 6_000, 0.25)):  # the taste detector's window fills up
        assert original.monitor.taste(miss, t) == []
    assert original.responder.respond(at=6_500) and model.explore_slots == 3  # a boost under way
    await _checkpointer(tmp_path, model, original).checkpoint()

    checkpoint = CheckpointStore(tmp_path, "t").newest(MODEL_VERSION)
    assert checkpoint is not None and checkpoint.info.format == 2
    restored_model = model_from(checkpoint)
    restored = _quality(restored_model)
    _checkpointer(tmp_path, restored_model, restored, restored=checkpoint)
    assert restored.events == 7_000 and restored.responder.last == 6_500
    assert restored.responder.saved_slots == 1 and restored_model.explore_slots == 3
    assert restored.state()["categories"] == {"i1": ("jazz",)}

    fresh = _quality(HybridRecommender(seed=1)).monitor
    continuation = _misses(1, 600, 0.45)  # tastes change right after the restore
    found = {
        name: [r for t, miss in enumerate(continuation) for r in monitor.taste(miss, 6_000 + t)]
        for name, monitor in (
            ("original", original.monitor),
            ("restored", restored.monitor),
            ("fresh", fresh),
        )
    }
    assert found["original"] and found["restored"] == found["original"]
    assert found["fresh"] == []  # 600 values after a restart are too few to tell a change


async def test_a_format_1_checkpoint_restores_the_model_and_fresh_detectors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(checkpoint_store, "FORMAT_VERSION", 1)
    CheckpointStore(tmp_path, "t").write(
        {"model": HybridRecommender(seed=2), "learned_ids": []}, model_version=MODEL_VERSION, offsets={}
    )
    monkeypatch.undo()
    checkpoint = CheckpointStore(tmp_path, "t").newest(MODEL_VERSION)
    assert checkpoint is not None and checkpoint.info.format == 1
    model = model_from(checkpoint)
    quality = _quality(model)
    with caplog.at_level(logging.WARNING):
        _checkpointer(tmp_path, model, quality, restored=checkpoint)
    assert "holds no drift detectors: they start afresh" in caplog.text
    assert quality.events == 0 and quality.monitor.tastes_seen == 0


async def test_a_partition_the_model_never_followed_is_learned_from_its_start_in_bulk(tmp_path: Path) -> None:
    """A new worker without a checkpoint gets a partition whose profiles another worker counted: before
    the first record, its model learns the partition's history unranked, in slices of `SLICE`."""
    log = [raw_event(n) for n in range(250)]
    profiles: dict[str, Any] = {}
    owner = Worker(tmp_path / "owner", log, profiles, restored=False)
    for offset in range(240):
        await owner.on_message(offset, log[offset])
    newcomer = Worker(tmp_path / "new", log, copy.deepcopy(profiles), restored=False)
    await newcomer.on_message(240, log[240])
    await owner.on_message(240, log[240])
    replayed = newcomer.metrics.registry.get_sample_value(
        "personalize_checkpoint_replayed_total", {"topic": "events"}
    )
    assert replayed == 240 and newcomer.checkpointer.position(EVENTS, 0) == 241
    for user in ["u0", "u1", "u2"]:
        assert newcomer.model.sequence.history(user).tolist() == owner.model.sequence.history(user).tolist()
    assert (newcomer.model._positives == owner.model._positives).all()  # noqa: SLF001
