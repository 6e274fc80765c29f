"""The worker's consumer scheduler: a fetch's partitions merged by record timestamp, each partition's own
order kept, topics in turns."""

from __future__ import annotations

from typing import NamedTuple

from faust.types import TP

from streams.time_order import TimeOrderScheduler


class Record(NamedTuple):
    name: str
    timestamp: int


def _names(records: dict[TP, list[Record]]) -> list[str]:
    return [record.name for _, record in TimeOrderScheduler().iterate(records)]


def test_partitions_are_merged_by_timestamp() -> None:
    a, b = TP("events", 0), TP("events", 1)
    records = {
        a: [Record("a1", 1), Record("a2", 2), Record("a3", 3), Record("a4", 9)],
        b: [Record("b1", 4), Record("b2", 5), Record("b3", 6)],
    }
    # Faust's default would give a1 b1 a2 b2 a3 b3 a4.
    assert _names(records) == ["a1", "a2", "a3", "b1", "b2", "b3", "a4"]


def test_each_partition_keeps_its_own_order_when_its_timestamps_go_back() -> None:
    a, b = TP("events", 0), TP("events", 1)
    records = {a: [Record("a1", 5), Record("a2", 1), Record("a3", 6)], b: [Record("b1", 2), Record("b2", 7)]}
    names = _names(records)
    assert [n for n in names if n.startswith("a")] == ["a1", "a2", "a3"]
    assert [n for n in names if n.startswith("b")] == ["b1", "b2"]
    assert sorted(names) == ["a1", "a2", "a3", "b1", "b2"]


def test_topics_take_turns_and_every_record_is_delivered_once() -> None:
    events, items = TP("events", 0), TP("items", 0)
    records = {
        events: [Record("e1", 1), Record("e2", 2), Record("e3", 3)],
        items: [Record("i1", 100)],
    }
    delivered = list(TimeOrderScheduler().iterate(records))
    assert [r.name for _, r in delivered] == ["e1", "i1", "e2", "e3"]
    assert [tp for tp, _ in delivered] == [events, items, events, events]
