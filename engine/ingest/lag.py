"""A consumer group's lag per partition, read from Kafka: the high watermark minus the committed offset.

What `personalize stack status` shows beside each worker. Reads only: never joins the group, never commits.
"""

from __future__ import annotations

__all__ = ["group_lag"]

import asyncio

import confluent_kafka


def _lag(bootstrap: str, group: str, topic: str, timeout_s: float) -> dict[int, int]:
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return {}
        wanted = [confluent_kafka.TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        committed = consumer.committed(wanted, timeout=timeout_s)
        lag = {}
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s, cached=False)
            # Nothing committed yet: the group will start from the earliest record still kept.
            lag[tp.partition] = max(0, high - (tp.offset if tp.offset >= 0 else low))
        return lag
    finally:
        consumer.close()


async def group_lag(bootstrap: str, group: str, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Records of ``topic`` not yet committed by ``group``, by partition ({} when the topic is missing).

    Faust commits every few seconds, so a worker that keeps up shows a small lag, not 0.
    """
    return await asyncio.to_thread(_lag, bootstrap, group, topic, timeout_s)
