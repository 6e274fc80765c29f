"""`engine.ingest.kafka.ensure_topics` returns only once the broker's metadata shows each new topic with
all its partitions led: a worker subscribing in between would leave the topic out of its assignment
(`tests/integration/test_topics.py` checks it on the real broker)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest
from confluent_kafka.admin import AdminClient

from engine.ingest import kafka
from schemas.errors import DeliveryError


@dataclass
class _Partition:
    leader: int


@dataclass
class _Topic:
    partitions: dict[int, _Partition]
    error: Any = None


@dataclass
class _Metadata:
    topics: dict[str, _Topic]


@dataclass
class _Admin:
    """Shows the topic after ``hidden`` metadata requests, first without a leader for partition 1."""

    hidden: int
    calls: int = 0

    def list_topics(self, timeout: float) -> _Metadata:
        self.calls += 1
        if self.calls <= self.hidden:
            return _Metadata({})
        leader = -1 if self.calls == self.hidden + 1 else 0
        return _Metadata({"t": _Topic({0: _Partition(0), 1: _Partition(leader)})})


async def test_waits_until_every_partition_of_the_new_topic_has_a_leader() -> None:
    admin = _Admin(hidden=2)
    await kafka._visible(cast(AdminClient, admin), ["t"], partitions=2)
    assert admin.calls == 4  # two without the topic, one with a partition unled, then ready


async def test_a_topic_that_never_shows_is_an_error_naming_it() -> None:
    with pytest.raises(DeliveryError, match="kafka topics t: not visible"):
        await kafka._visible(cast(AdminClient, _Admin(hidden=10**9)), ["t"], partitions=2, timeout_s=0.3)
