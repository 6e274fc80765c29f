"""A worker forgets an erased user wherever it keeps them: the model (whichever path read the erasure
record), the quality monitor, the ring of learned ids and its checkpoint files; then it confirms (no Kafka,
no Redis)."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import orjson
from prometheus_client import CollectorRegistry

from engine.ops.checkpoints import CheckpointStore
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.recommender import MODEL_VERSION, HybridRecommender
from models.river_recommender import RiverRecommender
from schemas.events import Event, ItemRecord, encode
from streams.checkpointer import Checkpointer
from streams.pipeline import Pipeline
from streams.quality import Quality
from tests.streams.test_pipeline import FakeStore

EVENTS = "p13n.t.events"
TS = 1_700_000_000_000
ERASED = "erased-user-7f3a"  # an id no other string of the model contains


def _event(n: int, user: str) -> bytes:
    return encode(Event(event_id=f"{user}-{n}", user_id=user, item_id=f"i{n % 8}", type="click", ts=TS + n))


def _erasure(user: str = ERASED, event_id: str = "x1") -> bytes:
    return orjson.dumps({"v": 1, "type": "erasure", "event_id": event_id, "user_id": user, "ts": TS + 99})


def _pipeline(model: HybridRecommender | None = None) -> tuple[Pipeline, list[tuple[str, str | None]]]:
    async def send(topic: str, key: bytes | None, value: bytes) -> None:
        return None

    model = model or HybridRecommender(seed=1)
    for n in range(8):
        model.learn_item(ItemRecord(item_id=f"i{n}", categories=(f"c{n % 3}",)))
    metrics = Metrics.create(CollectorRegistry(), "t", model.version)
    store = cast(RedisStore, FakeStore())
    quality = Quality(model=model, store=store, metrics=metrics, send=send, settings=Settings(namespace="t"))
    pipeline = Pipeline(
        model=model, store=store, metrics=metrics, send=send, events_topic=EVENTS,
        dead_letter_topic="dead", top_n=5, quality=quality,
    )  # fmt: skip
    forgotten: list[tuple[str, str | None]] = []
    pipeline.forgotten = lambda user, event_id: forgotten.append((user, event_id))
    return pipeline, forgotten


async def _learn_users(pipeline: Pipeline, profiles: dict[str, Any]) -> None:
    for n in range(12):
        for user in (ERASED, "someone"):
            await pipeline.handle_event(_event(n, user), user.encode(), profiles)
    liked = orjson.dumps(
        {"v": 1, "type": "preferences", "event_id": "p1", "user_id": ERASED, "ts": TS + 50,
         "liked_categories": ["c1"]}
    )  # fmt: skip
    await pipeline.handle_event(liked, ERASED.encode(), profiles)


def _holds(obj: object, user: str = ERASED) -> bool:
    return user.encode() in pickle.dumps(obj)


async def test_the_owner_forgets_the_user_in_model_quality_and_profile() -> None:
    pipeline, forgotten = _pipeline()
    profiles: dict[str, Any] = {}
    await _learn_users(pipeline, profiles)
    assert pipeline.quality is not None
    assert _holds(pipeline.model) and ERASED in pipeline.quality._top  # the test can fail
    assert await pipeline.handle_event(_erasure(), ERASED.encode(), profiles) == "erased"
    assert not _holds(pipeline.model), "the model still names the user"
    assert ERASED not in pipeline.quality._top and ERASED not in profiles
    assert forgotten == [(ERASED, "x1")]
    assert _holds(pipeline.model, "someone")  # everyone else stays


async def test_a_worker_reading_the_record_model_only_forgets_the_user_too() -> None:
    # What a worker not owning the user's partition does with the records it learns into its model (the
    # replica reader), and what a restored worker does replaying the log: the same forgetting.
    pipeline, forgotten = _pipeline()
    profiles: dict[str, Any] = {}
    await _learn_users(pipeline, profiles)
    assert pipeline.relearn(_erasure(), ERASED.encode(), profiles, lambda _u, _e: False) == "learned"
    assert not _holds(pipeline.model) and forgotten == [(ERASED, "x1")]
    assert pipeline.quality is not None and ERASED not in pipeline.quality._top


async def test_the_river_reranked_model_forgets_the_user_as_well() -> None:
    river = RiverRecommender({"river.linear_model.LogisticRegression": {}}, seed=1)
    pipeline, _ = _pipeline(river)
    profiles: dict[str, Any] = {}
    await _learn_users(pipeline, profiles)
    await pipeline.handle_event(_erasure(), ERASED.encode(), profiles)
    assert not _holds(pipeline.model)


async def test_a_returning_user_starts_afresh() -> None:
    pipeline, _ = _pipeline()
    profiles: dict[str, Any] = {}
    await _learn_users(pipeline, profiles)
    await pipeline.handle_event(_erasure(), ERASED.encode(), profiles)
    await pipeline.handle_event(_event(100, ERASED), ERASED.encode(), profiles)
    assert len(pipeline.model.sequence.history(ERASED)) == 1
    assert profiles[ERASED]["events_seen"] == 1


class _Confirms:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[list[tuple[str, str]], str]] = []
        self.fail = fail

    async def __call__(self, erased: Sequence[tuple[str, str]], removed: str) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("redis away")
        self.calls.append((list(erased), removed))


async def _worker(
    folder: Path, enabled: bool = True
) -> tuple[Pipeline, Checkpointer, dict[str, Any], _Confirms]:
    pipeline, _ = _pipeline()
    settings = Settings(
        namespace="t", checkpoint_enabled=enabled, checkpoint_every_events=0, checkpoint_every_s=0,
        erasure_checkpoint_gap_s=0,
    )  # fmt: skip

    async def flush() -> None:
        return None

    confirms = _Confirms()
    assert pipeline.quality is not None
    checkpointer = Checkpointer(
        model=pipeline.model, store=CheckpointStore(folder, "t", keep=3), metrics=pipeline.metrics,
        settings=settings, flush=flush, quality=pipeline.quality, confirm=confirms,
    )  # fmt: skip
    pipeline.learned = checkpointer.learned
    pipeline.forgotten = checkpointer.forget
    profiles: dict[str, Any] = {}
    await _learn_users(pipeline, profiles)
    checkpointer.advance(EVENTS, 0, 25)
    return pipeline, checkpointer, profiles, confirms


async def test_after_an_erasure_the_next_tick_rewrites_the_checkpoints_then_confirms(tmp_path: Path) -> None:
    pipeline, checkpointer, profiles, confirms = await _worker(tmp_path)
    for _ in range(3):
        await checkpointer.checkpoint()
        checkpointer.advance(EVENTS, 0, 25)
    older = checkpointer.store.paths()
    assert len(older) == 3 and all(ERASED.encode() in p.read_bytes() for p in older)
    assert checkpointer.known(ERASED, f"{ERASED}-3")

    await pipeline.handle_event(_erasure(), ERASED.encode(), profiles)
    assert confirms.calls == []  # not before the files are rewritten
    await checkpointer.tick()
    [newest] = checkpointer.store.paths()
    assert newest not in older and ERASED.encode() not in newest.read_bytes()
    assert b"someone" in newest.read_bytes()
    assert not checkpointer.known(ERASED, f"{ERASED}-3") and checkpointer.known("someone", "someone-3")
    assert confirms.calls == [([(ERASED, "x1")], "model,quality,learned-ids,checkpoints:3")]
    restored = CheckpointStore(tmp_path, "t").newest(MODEL_VERSION)
    assert restored is not None and not _holds(restored.state)
    await checkpointer.tick()
    assert len(confirms.calls) == 1  # confirmed once


async def test_a_confirmation_redis_refuses_is_retried_without_another_checkpoint(tmp_path: Path) -> None:
    pipeline, checkpointer, profiles, confirms = await _worker(tmp_path)
    confirms.fail = 1
    await pipeline.handle_event(_erasure(), ERASED.encode(), profiles)
    await checkpointer.tick()
    written = checkpointer.store.paths()
    assert confirms.calls == [] and len(written) == 1
    await checkpointer.tick()
    assert [erased for erased, _ in confirms.calls] == [[(ERASED, "x1")]]
    assert checkpointer.store.paths() == written


async def test_without_checkpoints_the_tick_scrubs_memory_and_confirms(tmp_path: Path) -> None:
    pipeline, checkpointer, profiles, confirms = await _worker(tmp_path, enabled=False)
    await pipeline.handle_event(_erasure(), ERASED.encode(), profiles)
    await checkpointer.tick()
    assert confirms.calls == [([(ERASED, "x1")], "model,quality,learned-ids")]
    assert not checkpointer.known(ERASED, f"{ERASED}-3") and checkpointer.store.paths() == []


async def test_a_withdrawal_rewrites_the_checkpoints_without_confirming_an_erasure(tmp_path: Path) -> None:
    pipeline, checkpointer, profiles, confirms = await _worker(tmp_path)
    await checkpointer.checkpoint()
    withdrawal = orjson.dumps(
        {"v": 1, "type": "consent", "event_id": "c1", "user_id": ERASED, "ts": TS + 80, "granted": False}
    )
    assert await pipeline.handle_event(withdrawal, ERASED.encode(), profiles) == "withdrawn"
    await checkpointer.tick()
    [newest] = checkpointer.store.paths()
    # The profile keeps the withdrawal (in the changelog table, not here); the model file names no one.
    assert ERASED.encode() not in newest.read_bytes() and confirms.calls == []
