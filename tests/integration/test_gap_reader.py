"""`streams.gaps.GapReader` on the real broker: ranges read from one partition after another, each exactly,
with the watermarks asked in between answered by a client that never fetches (a client that has fetched
keeps a fetch open at the broker, and the broker answered the watermark only after it: 0.5 s per
partition a worker took over, under the checkpointer's lock)."""

from __future__ import annotations

import asyncio
import uuid

import confluent_kafka
import pytest

from engine.ingest.kafka import ensure_topics
from streams.gaps import GapReader
from tests.integration.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def _produce(bootstrap: str, topic: str, per_partition: int, partitions: int) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    for partition in range(partitions):
        for n in range(per_partition):
            producer.produce(topic, f"{partition}-{n}".encode(), b"k", partition)
    assert producer.flush(10.0) == 0


async def test_ranges_and_watermarks_of_partition_after_partition(live_stack: None) -> None:
    settings = make_settings(f"gap{uuid.uuid4().hex[:10]}")
    topic = settings.events_topic
    await ensure_topics(settings.bootstrap, [topic], 3)
    await asyncio.to_thread(_produce, settings.bootstrap, topic, 4, 3)
    reader = GapReader(settings.bootstrap, topic, settings.app_id)
    try:
        for partition in range(3):
            records = await reader.read(partition, 1, 3)
            assert [(r.offset, r.value) for r in records] == [
                (1, f"{partition}-1".encode()),
                (2, f"{partition}-2".encode()),
            ]
            assert await reader.watermarks(partition) == (0, 4)
        # Past the end: what there is, then the log's end (no wait for records that never come).
        assert [r.offset for r in await reader.read(0, 2, 10)] == [2, 3]
        assert reader._meta is not None and reader._consumer is not None
        assert reader._meta is not reader._consumer
        assert reader._meta.assignment() == []  # it never fetched: no fetch held open ahead of its asks
    finally:
        reader.close()
