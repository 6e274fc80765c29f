"""The namespace's topics on the real broker: when `engine.ingest.produce.ensure_engine_topics` returns,
every topic is in the broker's metadata with all its partitions led (a worker subscribing right after
gets all of them assigned), and a second call finds them as they are."""

from __future__ import annotations

import asyncio
import uuid

import confluent_kafka
import pytest

from engine.ingest.produce import ensure_engine_topics, topic_configs
from tests.integration.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_every_new_topic_is_in_the_brokers_metadata_with_its_partitions_led(live_stack: None) -> None:
    settings = make_settings(f"top{uuid.uuid4().hex[:10]}")
    await ensure_engine_topics(settings)
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": settings.bootstrap, "group.id": f"top-{uuid.uuid4().hex}"}
    )
    try:
        metadata = await asyncio.to_thread(consumer.list_topics, timeout=10)
    finally:
        consumer.close()
    for name in topic_configs(settings):
        topic = metadata.topics.get(name)
        assert topic is not None and topic.error is None, name
        assert len(topic.partitions) == settings.partitions, name
        assert all(p.leader >= 0 for p in topic.partitions.values()), name
    await ensure_engine_topics(settings)  # existing topics: nothing to create, nothing to wait for
