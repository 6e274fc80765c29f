"""Tests for `streams.quality` through `Pipeline`: prequential hits against the last published list,
event-type counts, and a detection's record (Kafka topic, Redis stream), metric and response."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import pytest
from prometheus_client import CollectorRegistry

from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.store.redis_store import Published, RedisStore
from models.drift import DriftRecord, SideStats
from models.recommender import MODEL_VERSION, HybridRecommender
from schemas import keys
from schemas.events import Context, Event, ItemRecord, encode
from streams.pipeline import Pipeline
from streams.quality import Quality, _log_p, log_softmax

TS = 1_700_000_000_000


@dataclass
class FakeClient:
    streams: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)

    async def xadd(self, name: str, fields: dict[str, bytes], **_: Any) -> bytes:
        self.streams.append((name, fields))
        return b"1-0"


@dataclass
class FakeStore:
    namespace: str = "t"
    client: FakeClient = field(default_factory=FakeClient)
    lists: dict[str, list[str]] = field(default_factory=dict)

    async def publish(self, user_id: str, items: Sequence[tuple[str, float]], **_: Any) -> int:
        self.lists[user_id] = [item for item, _ in items]
        return TS

    async def publish_lists(self, lists: Sequence[Any]) -> Published:
        for one in lists:
            await self.publish(one.user_id, one.items)
        return Published(TS)


class OnEveryHit:
    """A monitor that reports drift on every scored event."""

    def hit(self, hit: bool, ts: int) -> list[DriftRecord]:
        return [DriftRecord("hit_rate", "adwin", 1, ts, SideStats(0.5, 10), SideStats(0.9, 5))]

    def category(self, categories: tuple[str, ...], ts: int) -> list[DriftRecord]:
        return []


def _setup(
    response: str = "reset_affinity", window: int = 500
) -> tuple[Pipeline, FakeStore, list[tuple[str, bytes]], Quality]:
    sent: list[tuple[str, bytes]] = []

    async def send(topic: str, key: bytes | None, value: bytes) -> None:
        sent.append((topic, value))

    model = HybridRecommender(seed=1)
    settings = Settings(
        namespace="t", drift_hr_k=3, drift_response=response, drift_decay=0.0, drift_window=window
    )
    metrics = Metrics.create(CollectorRegistry(), "t", MODEL_VERSION)
    store = FakeStore()
    quality = Quality(
        model=model,
        store=cast(RedisStore, store),
        metrics=metrics,
        send=send,
        settings=settings,
    )
    pipeline = Pipeline(
        model=model,
        store=cast(RedisStore, store),
        metrics=metrics,
        send=send,
        events_topic=settings.events_topic,
        dead_letter_topic=settings.dead_letter_topic,
        top_n=10,
        quality=quality,
    )
    for n in range(1, 13):
        pipeline.apply_item(encode(ItemRecord(item_id=f"i{n}", categories=("a" if n % 2 else "b",))))
    return pipeline, store, sent, quality


async def _event(pipeline: Pipeline, n: int, user: str, item: str, kind: str = "click") -> None:
    raw = encode(Event(event_id=f"e{n}", user_id=user, item_id=item, type=kind, ts=TS + n))
    assert await pipeline.handle_event(raw, user.encode(), {}) == "learned"


def _sample(quality: Quality, name: str, labels: dict[str, str]) -> float:
    return quality.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_positive_on_an_item_of_the_last_top_k_is_a_hit_and_others_are_misses() -> None:
    pipeline, store, _, quality = _setup()
    profiles: dict[str, Any] = {}
    raw = encode(Event(event_id="e0", user_id="u1", item_id="i1", type="click", ts=TS))
    await pipeline.handle_event(raw, b"u1", profiles)
    top, beyond = store.lists["u1"][0], store.lists["u1"][5]
    for n, item in enumerate([top, beyond], start=1):
        raw = encode(Event(event_id=f"e{n}", user_id="u1", item_id=item, type="view", ts=TS + n))
        await pipeline.handle_event(raw, b"u1", profiles)
    raw = encode(Event(event_id="e9", user_id="u1", item_id="i2", type="impression", ts=TS + 9))
    await pipeline.handle_event(raw, b"u1", profiles)
    version = {"model_version": MODEL_VERSION}
    assert _sample(quality, "personalize_prequential_scored_total", version) == 2.0
    assert _sample(quality, "personalize_prequential_hits_total", version) == 1.0
    assert _sample(quality, "personalize_prequential_hit_rate", version) == 0.5
    assert _sample(quality, "personalize_event_types_total", {"type": "view"}) == 2.0
    assert _sample(quality, "personalize_event_types_total", {"type": "impression"}) == 1.0


async def test_a_detection_is_recorded_counted_and_answered_once_per_cooldown() -> None:
    pipeline, store, sent, quality = _setup()
    quality.monitor = OnEveryHit()  # type: ignore[assignment]
    await _event(pipeline, 0, "u1", "i1")
    await _event(pipeline, 1, "u1", store.lists["u1"][0])
    await _event(pipeline, 2, "u1", store.lists["u1"][0])
    labels = {"signal": "hit_rate", "detector": "adwin"}
    assert _sample(quality, "personalize_drift_detections_total", labels) == 2.0
    assert _sample(quality, "personalize_drift_responses_total", {"response": "reset_affinity"}) == 1.0
    drift = [orjson.loads(v) for topic, v in sent if topic == "p13n.t.drift"]
    assert [d["signal"] for d in drift] == ["hit_rate", "hit_rate"]
    assert drift[0]["before"] == {"mean": 0.5, "n": 10} and drift[0]["events"] == 2
    assert drift[0]["event_id"] == "e1"  # the event that tipped the detector
    assert [name for name, _ in store.client.streams] == [keys.drift("t")] * 2
    personal = {k: v for k, v in pipeline.model.affinity.weights.items() if k[:2] == "u="}
    assert personal and set(personal.values()) != {0.0}  # learned again after the reset


async def test_a_record_names_the_newest_event_consumed_beside_the_one_that_tipped_it() -> None:
    pipeline, store, sent, quality = _setup()
    quality.monitor = OnEveryHit()  # type: ignore[assignment]
    await _event(pipeline, 0, "u1", "i1")
    await _event(pipeline, 50, "u2", "i3")  # u2's partition is consumed ahead of u1's
    await _event(pipeline, 1, "u1", store.lists["u1"][0])
    drift = [orjson.loads(v) for topic, v in sent if topic == "p13n.t.drift"]
    assert [(d["event_id"], d["newest_event_id"], d["newest_ts"]) for d in drift] == [("e1", "e50", TS + 50)]


async def test_a_hit_costs_the_log_loss_of_the_softmax_over_the_top_k_scores() -> None:
    pipeline, _, _, quality = _setup()
    quality.remember("u1", [("i3", 2.0), ("i5", 1.0), ("i7", 1.0), ("i9", 5.0)])  # k = 3: i9 is out
    await _event(pipeline, 0, "u1", "i5")
    loss = -(1.0 - math.log(math.exp(2.0) + 2 * math.exp(1.0)))
    version = {"model_version": MODEL_VERSION}
    assert _sample(quality, "personalize_ranker_log_loss_count", version) == 1.0
    assert _sample(quality, "personalize_ranker_log_loss_sum", version) == pytest.approx(loss)
    quality.remember("u1", [("i3", 2.0)])
    await _event(pipeline, 1, "u1", "i9")  # a miss: scored for HR, no log-loss
    assert _sample(quality, "personalize_ranker_log_loss_count", version) == 1.0
    assert _sample(quality, "personalize_prequential_scored_total", version) == 2.0


async def test_impressions_and_clicks_of_served_slates_count_by_surface_and_variant() -> None:
    pipeline, _, _, quality = _setup()
    home = Context(surface="home", experiment="e", variant="b")
    events: list[tuple[str, Context, str | None]] = [("impression", home, None), ("impression", home, None)]
    events.append(("click", home, None))
    events += [("click", Context(), "d-1"), ("click", Context(), None), ("view", home, None)]
    for n, (kind, context, decision) in enumerate(events):
        event = Event(
            event_id=f"e{n}", user_id="u1", item_id="i1", type=kind, ts=TS + n, context=context,
            decision_id=decision,
        )  # fmt: skip
        assert await pipeline.handle_event(encode(event), b"u1", {}) == "learned"
    slate = {"surface": "home", "experiment": "e", "variant": "b"}
    assert _sample(quality, "personalize_slate_events_total", {"type": "impression", **slate}) == 2.0
    assert _sample(quality, "personalize_slate_events_total", {"type": "click", **slate}) == 1.0
    bare = {"type": "click", "surface": "none", "experiment": "none", "variant": "none"}
    assert _sample(quality, "personalize_slate_events_total", bare) == 1.0  # the decision's; not the bare one


async def test_taste_drift_is_answered_and_category_mix_drift_only_reported() -> None:
    pipeline, _, _, quality = _setup()
    found = [
        DriftRecord("category_mix", "adwin", 1, TS, SideStats(0.5, 10), SideStats(0.1, 5), "a"),
        DriftRecord("taste", "adwin", 1, TS, SideStats(0.2, 10), SideStats(0.6, 5)),
    ]
    for n, record in enumerate(found):
        await quality._detected(record, f"e{n}")
        responses = _sample(quality, "personalize_drift_responses_total", {"response": "reset_affinity"})
        assert responses == n
    assert (
        _sample(quality, "personalize_drift_detections_total", {"signal": "taste", "detector": "adwin"}) == 1
    )


async def test_an_item_of_no_category_in_the_history_counts_as_the_category_none() -> None:
    pipeline, _, _, quality = _setup()
    pipeline.apply_item(encode(ItemRecord(item_id="bare", categories=())))
    profiles: dict[str, Any] = {}
    for n, item in enumerate(["bare", "i1", "i2", "i3", "i4", "i5", "i6"]):
        raw = encode(Event(event_id=f"e{n}", user_id="u1", item_id=item, type="click", ts=TS + n))
        assert await pipeline.handle_event(raw, b"u1", profiles) == "learned"
    assert quality.monitor.tastes_seen == 2  # the positives with 5 or more before them


def test_the_log_probability_of_one_item_is_the_softmax_s_to_the_last_bit() -> None:
    rng = random.Random(4)
    for _ in range(2_000):
        items = [(f"i{rng.randint(0, 12)}", rng.uniform(-30.0, 30.0)) for _ in range(rng.randint(0, 10))]
        table = log_softmax(items)  # a repeated item: its later score, as in the mapping
        for item in [name for name, _ in items] + ["absent"]:
            assert _log_p(items, item) == table.get(item)


async def test_the_hit_rate_is_the_share_of_hits_in_the_window_also_after_a_restore() -> None:
    pipeline, _, _, quality = _setup(window=10)
    rng = random.Random(2)
    outcomes: list[int] = []
    version = {"model_version": MODEL_VERSION}
    for n in range(40):
        if n == 25:  # a checkpoint taken and restored by another worker
            pipeline, _, _, restored = _setup(window=10)
            restored.restore(quality.state())
            quality = restored
        hit = rng.random() < 0.4
        quality.remember("u1", [("i1", 1.0), ("i2", 0.5)])
        await _event(pipeline, n, "u1", "i1" if hit else "i3")
        outcomes.append(int(hit))
        rate = _sample(quality, "personalize_prequential_hit_rate", version)
        assert rate == sum(outcomes[-10:]) / len(outcomes[-10:])
