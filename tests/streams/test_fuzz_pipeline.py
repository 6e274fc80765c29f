"""Property-based fuzzing of the worker's per-record logic (`streams.pipeline`) through its test doubles.

Streams of good and hostile records go through `Pipeline.consume_event` / `consume_item` as the agents
call them: nothing raises, every bad record lands once on the dead-letter topic as ``invalid`` (never as
``internal``, which would be a crash caught) with its reason and its original bytes, and every good
record is learned (or counted a duplicate of an event id the user already sent).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Sequence
from typing import Any, cast

import orjson
from hypothesis import example, given, note
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from engine.ops.metrics import Metrics
from engine.store.redis_store import Published, RedisStore, UserList
from models.recommender import HybridRecommender
from schemas.errors import InvalidEventError
from schemas.events import ItemRecord
from streams.pipeline import Pipeline
from tests.contract_strategies import (
    Broken,
    broken_bytes,
    broken_events,
    broken_items,
    broken_preferences,
    events,
    items,
    preferences,
)

EVENTS, DEAD, ITEMS = "p13n.f.events", "p13n.f.dead-letter", "p13n.f.items"


class _Store:
    async def publish_lists(self, lists: Sequence[UserList]) -> Published:
        return Published(1_700_000_000_000)

    async def fence_users(self, fences: dict[str, int], ttl_s: int) -> None:
        return None

    async def publish_items(self, records: Sequence[ItemRecord]) -> None:
        return None


class _Run:
    """A fresh pipeline and what it sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.metrics = Metrics.create(CollectorRegistry(), "f", "m")

        async def send(topic: str, key: bytes | None, value: bytes) -> None:
            self.sent.append((topic, key, value))

        model = HybridRecommender(seed=1)
        for n in range(1, 6):
            model.learn_item(ItemRecord(item_id=f"i{n}", categories=("a",)))
        self.pipeline = Pipeline(
            model=model,
            store=cast(RedisStore, _Store()),
            metrics=self.metrics,
            send=send,
            events_topic=EVENTS,
            dead_letter_topic=DEAD,
            top_n=5,
        )
        self.profiles: dict[str, Any] = {}

    def count(self, outcome: str) -> float:
        return self.metrics.registry.get_sample_value("personalize_events_total", {"outcome": outcome}) or 0.0

    def dead_letters(self) -> list[dict[str, Any]]:
        return [orjson.loads(value) for topic, _key, value in self.sent if topic == DEAD]


def _keyed(obj: dict[str, Any]) -> tuple[bytes, bytes | None, bool]:
    user = obj.get("user_id")
    return orjson.dumps(obj), user.encode() if isinstance(user, str) else None, True


def _bad(broken: Broken) -> tuple[bytes, bytes | None, bool]:
    return broken.raw(), b"u-key", False


records = st.lists(
    st.one_of(
        events().map(_keyed),
        preferences().map(_keyed),
        broken_events().map(_bad),
        broken_bytes().map(_bad),
        broken_preferences().map(_bad),
    ),
    min_size=1,
    max_size=12,
)


@given(records)
# Found by fuzzing, once crashes: a list as `type` (TypeError in the user records' dispatch), a subnormal
# value (1 / the largest popularity overflowed), a huge one (popularity went inf, then NaN).
@example([(b'{"event_id":"0","user_id":"0","item_id":"0","type":[],"ts":100000000000}', b"0", False)])
@example(
    [
        (
            b'{"event_id":"0","user_id":"0","item_id":"0","type":"view","ts":100000000000,"value":5e-324}',
            b"0",
            True,
        )
    ]
)
@example(
    [
        (
            b'{"event_id":"0","user_id":"0","item_id":"0","type":"view","ts":100000000000,"value":1e308}',
            b"0",
            False,
        ),
        (b'{"event_id":"1","user_id":"0","item_id":"1","type":"view","ts":123220000000}', b"0", True),
    ]
)
async def test_no_record_crashes_the_worker_and_each_bad_one_is_dead_lettered_with_its_reason(
    stream: list[tuple[bytes, bytes | None, bool]],
) -> None:
    run = _Run()
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    for offset, (raw, key, good) in enumerate(stream):
        await run.pipeline.consume_event(raw, key, run.profiles, topic=EVENTS, partition=0, offset=offset)
        if good:
            obj = orjson.loads(raw)
            duplicates += (obj["user_id"], obj["event_id"]) in seen
            seen.add((obj["user_id"], obj["event_id"]))
    await run.pipeline.flush()

    bad = [(offset, raw) for offset, (raw, _key, good) in enumerate(stream) if not good]
    letters = run.dead_letters()
    note(repr(letters))
    assert [(d["source"]["offset"], base64.b64decode(d["original_b64"])) for d in letters] == bad
    assert all(d["kind"] == "invalid" and d["reason"] and d["problems"] for d in letters)
    goods = len(stream) - len(bad)
    assert (run.count("learned"), run.count("duplicate")) == (goods - duplicates, duplicates)
    assert run.count("dead_letter") == len(bad) and run.count("rekeyed") == 0


@given(
    st.lists(items().map(lambda o: (orjson.dumps(o), True)) | broken_items().map(lambda b: (b.raw(), False)))
)
async def test_every_catalog_record_is_learned_or_dead_lettered_as_invalid(
    stream: list[tuple[bytes, bool]],
) -> None:
    run = _Run()
    for offset, (raw, _good) in enumerate(stream):
        # The items agent validates and publishes (or dead-letters); the replica reader learns.
        await run.pipeline.consume_item(raw, b"k", topic=ITEMS, partition=0, offset=offset)
        with contextlib.suppress(InvalidEventError):
            run.pipeline.apply_item(raw)
    letters = run.dead_letters()
    assert [base64.b64decode(d["original_b64"]) for d in letters] == [raw for raw, good in stream if not good]
    assert all(d["kind"] == "invalid" and d["reason"] for d in letters)
    learned = run.metrics.registry.get_sample_value("personalize_items_total") or 0.0
    assert learned == sum(good for _raw, good in stream)
