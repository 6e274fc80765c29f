"""Records of several partitions in the order they were written, each partition's own order kept.

Faust hands out a fetch's records round-robin, one partition after the other, and librdkafka (the
replica reader's client) one fetched chunk per partition after the other. When a worker drains a
backlog, partitions then advance by record counts, not by time: a quiet partition's next 300 records
may span an hour, a busy one's a minute, so the item-side model learns the users' events out of step
(docs/scale-out.md measured what that costs). Both readers of the worker merge what one fetch gave
them by the records' Kafka timestamps instead. A partition's records never change places (per-user
order holds), topics still take turns, and nothing is held back across fetches.
"""

from __future__ import annotations

__all__ = ["TimeOrderScheduler", "in_time_order"]

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP

T = TypeVar("T")


def in_time_order(partitions: Iterable[Iterable[T]], stamp: Callable[[T], int]) -> Iterator[T]:
    """The records of every partition, merged by ``stamp`` (a timestamp), each partition's in its order.

    >>> list(in_time_order([[1, 2, 9], [4, 5]], stamp=int))
    [1, 2, 4, 5, 9]
    >>> list(in_time_order([[5, 1], [2]], stamp=int))  # a partition going back in time stays as it is
    [2, 5, 1]
    """
    return heapq.merge(*partitions, key=stamp)


def _timestamp(entry: tuple[TP, Any]) -> int:
    return int(getattr(entry[1], "timestamp", 0) or 0)


class TimeOrderScheduler(DefaultSchedulingStrategy):
    """Faust's consumer scheduler for the worker: per topic, the partitions' records of a fetch merged
    by timestamp (`in_time_order`); topics in turns, as Faust's default does."""

    def __init__(self) -> None:  # declared abstract by Faust's base type; nothing to set up
        pass

    def iterate(self, records: Mapping[TP, list[Any]]) -> Iterator[tuple[TP, Any]]:
        by_topic: dict[str, list[list[tuple[TP, Any]]]] = {}
        for tp, messages in records.items():
            by_topic.setdefault(tp.topic, []).append([(tp, message) for message in messages])
        merged = [in_time_order(partitions, _timestamp) for partitions in by_topic.values()]
        for turn in itertools.zip_longest(*merged):
            yield from (entry for entry in turn if entry is not None)
