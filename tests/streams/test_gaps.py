"""OffsetGuard admits every offset once, in order, and re-reads what the consumer skipped."""

from __future__ import annotations

from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from engine.ops.metrics import Metrics
from streams.gaps import CONTROL_HEADER, GapReader, OffsetGuard, Record, is_control, offset_key


class FakeReader:
    """The log of one partition, as GapReader would read it."""

    topic = "events"

    def __init__(self, values: list[bytes], low: int = 0) -> None:
        self.log = {low + i: v for i, v in enumerate(values)}
        self.low = low
        self.reads: list[tuple[int, int]] = []
        self.committed_offset: int | None = None

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        self.reads.append((start, end))
        return [Record(o, b"k", v, v == b"") for o, v in sorted(self.log.items()) if start <= o < end]

    async def committed(self, partition: int) -> int | None:
        return self.committed_offset

    async def watermarks(self, partition: int, *, patient: bool = True) -> tuple[int, int]:
        return self.low, self.low + len(self.log)


def make(values: list[bytes], low: int = 0) -> tuple[OffsetGuard, FakeReader, list[int], dict[str, Any]]:
    reader = FakeReader(values, low)
    handled: list[int] = []
    profiles: dict[str, Any] = {}

    async def process(partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        handled.append(offset)

    metrics = Metrics.create(CollectorRegistry(), "t", "m")
    return OffsetGuard(cast(GapReader, reader), profiles, process, metrics), reader, handled, profiles


@pytest.mark.asyncio
async def test_in_order_offsets_are_handled_once_each() -> None:
    guard, reader, handled, profiles = make([b"a", b"b", b"c"])
    for offset in range(3):
        await guard.on_message(0, offset, b"k", b"x", control=False)
    assert handled == [0, 1, 2]
    assert profiles[offset_key(0)] == 3
    assert reader.reads == []


@pytest.mark.asyncio
async def test_redelivered_offsets_are_skipped() -> None:
    guard, _, handled, _ = make([b"a", b"b", b"c"])
    for offset in (0, 1, 0, 1, 2):
        await guard.on_message(0, offset, b"k", b"x", control=False)
    assert handled == [0, 1, 2]
    redelivered = {"outcome": "redelivered"}
    assert guard.metrics.registry.get_sample_value("personalize_events_total", redelivered) == 2


@pytest.mark.asyncio
async def test_a_skipped_range_is_read_back_before_the_next_message() -> None:
    guard, reader, handled, profiles = make([b"a", b"b", b"c", b"d", b"e"])
    await guard.on_message(0, 0, b"k", b"a", control=False)
    await guard.on_message(0, 4, b"k", b"e", control=False)
    assert handled == [0, 1, 2, 3, 4]
    assert reader.reads == [(1, 4)]
    assert profiles[offset_key(0)] == 5
    assert guard.metrics.registry.get_sample_value("personalize_gap_repairs_total") == 3


@pytest.mark.asyncio
async def test_first_message_is_checked_against_the_log_start() -> None:
    guard, reader, handled, _ = make([b"a", b"b", b"c"], low=10)
    await guard.on_message(0, 12, b"k", b"c", control=False)
    assert handled == [10, 11, 12]


@pytest.mark.asyncio
async def test_first_message_is_checked_against_the_groups_committed_offset() -> None:
    guard, reader, handled, _ = make([b"a", b"b", b"c", b"d"])
    reader.committed_offset = 2
    await guard.on_message(0, 3, b"k", b"d", control=False)
    assert handled == [2, 3]


@pytest.mark.asyncio
async def test_a_control_record_repairs_the_tail_and_is_not_an_event() -> None:
    guard, _, handled, profiles = make([b"a", b"b", b"c", b""])
    await guard.on_message(0, 0, b"k", b"a", control=False)
    await guard.on_message(0, 3, None, b"", control=True)
    assert handled == [0, 1, 2]
    assert profiles[offset_key(0)] == 4


@pytest.mark.asyncio
async def test_stalled_needs_two_looks_without_progress() -> None:
    guard, _, _, _ = make([b"a", b"b"])
    await guard.on_message(0, 0, b"k", b"a", control=False)
    assert await guard.stalled({0: 2}) == []
    assert await guard.stalled({0: 2}) == [0]
    await guard.on_message(0, 1, b"k", b"b", control=False)
    assert await guard.stalled({0: 2}) == []


def test_control_header_is_recognised_in_both_header_shapes() -> None:
    assert is_control([(CONTROL_HEADER, b"nudge")])
    assert is_control({CONTROL_HEADER: b"nudge"})
    assert not is_control([("other", b"x")])
    assert not is_control(None)
