"""The heartbeat reads each owned partition's high watermark once per beat and judges lag and stalls
from that one reading; the beat reaches Redis even when Kafka does not answer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from faust.types import TP

from engine.store.redis_store import RedisStore
from schemas.keys import WorkerField
from streams.gaps import CONTROL_HEADER, offset_key
from streams.heartbeat import Heartbeat
from tests.streams.test_gaps import make


class Store:
    def __init__(self) -> None:
        self.beats: list[dict[str, Any]] = []

    async def heartbeat(self, worker_id: str, fields: dict[str, Any], ttl_s: int) -> None:
        self.beats.append(fields)


class App:
    def __init__(self) -> None:
        self.consumer = SimpleNamespace(assignment=lambda: {TP("events", 0), TP("items", 0)})
        self.sent: list[tuple[int, Any]] = []

    async def send(self, topic: str, *, key: Any, value: bytes, partition: int, headers: Any) -> None:
        self.sent.append((partition, headers))


def _heartbeat() -> tuple[Heartbeat, App, Store, Any]:
    guard, reader, _, profiles = make([b"a", b"b", b"c"])
    calls: list[int] = []
    watermarks = reader.watermarks

    async def counted(partition: int, *, patient: bool = True) -> tuple[int, int]:
        calls.append(partition)
        return await watermarks(partition, patient=patient)

    reader.watermarks = counted  # type: ignore[method-assign]
    app, store = App(), Store()
    beat = Heartbeat(cast(faust.App, app), "events", guard, profiles, cast(RedisStore, store), guard.metrics)
    profiles[offset_key(0)] = 1  # one of the three records handled
    return beat, app, store, calls


@pytest.mark.asyncio
async def test_one_watermark_read_per_partition_per_beat_gives_lag_and_stalls() -> None:
    beat, app, store, calls = _heartbeat()
    await beat()
    assert calls == [0]  # the owned events partition only, once
    lag = beat.metrics.registry.get_sample_value("personalize_consumer_lag", {"partition": "0"})
    assert lag == 2
    assert app.sent == []  # one look is no stall
    await beat()
    assert calls == [0, 0] and app.sent == [(0, [(CONTROL_HEADER, b"nudge")])]
    assert [b[WorkerField.PARTITIONS] for b in store.beats] == ["0", "0"]


@pytest.mark.asyncio
async def test_the_beat_goes_out_when_kafka_does_not_answer() -> None:
    beat, app, store, _ = _heartbeat()

    async def away(partition: int, *, patient: bool = True) -> tuple[int, int]:
        raise OSError("broker away")

    beat.guard.reader.watermarks = away  # type: ignore[method-assign]
    await beat()
    assert len(store.beats) == 1 and app.sent == []
