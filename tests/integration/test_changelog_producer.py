"""The profiles' changelog written by `streams.changelog.ProducedChangelog` on the real broker: every
record carries the bytes Faust itself writes for the table (its ``orjson`` key and value codec, so its
recovery reads them as its own), a deletion is a tombstone, and each lands on the partition that wrote
it, in the order `BatchWrites` sent it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import confluent_kafka
import faust
import pytest

from engine.ingest.kafka import ensure_topics
from streams import codecs
from streams.changelog import BatchWrites, ProducedChangelog
from tests.integration.conftest import make_settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def _read_all(bootstrap: str, topic: str, partitions: int) -> dict[int, list[tuple[bytes, bytes | None]]]:
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"chg-{uuid.uuid4().hex}", "enable.partition.eof": True}
    )
    consumer.assign(
        [
            confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
            for p in range(partitions)
        ]
    )
    found: dict[int, list[tuple[bytes, bytes | None]]] = {p: [] for p in range(partitions)}
    ended: set[int] = set()
    try:
        while len(ended) < partitions:
            message = consumer.poll(10.0)
            assert message is not None, "the changelog was not read to its end within 10 s"
            error, partition = message.error(), message.partition()
            assert partition is not None
            if error is not None:
                assert error.code() == confluent_kafka.KafkaError._PARTITION_EOF, error
                ended.add(partition)
                continue
            key = message.key()
            assert key is not None
            found[partition].append((key, message.value()))
    finally:
        consumer.close()
    return found


async def test_changelog_records_are_the_bytes_faust_writes_on_the_writing_partition_in_order(
    live_stack: None,
) -> None:
    settings = make_settings(f"chg{uuid.uuid4().hex[:10]}")
    topic = f"{settings.app_id}-profiles-changelog"
    await ensure_topics(settings.bootstrap, [topic], 3)
    produced = ProducedChangelog({}, topic, settings.bootstrap)
    writes = BatchWrites(produced)
    writes.partition = 0
    writes["u1"] = {"events_seen": 1, "recent": ["i9"]}
    writes.partition = 2
    writes["u2"] = {"events_seen": 3}
    writes["\x00next-offset:2"] = 7
    writes.put(1, "\x00republish:1", {"u3": 5})
    assert writes.flush() == 4
    writes.partition = 2
    del writes["u2"]
    writes["\x00next-offset:2"] = 8
    assert writes.flush() == 2
    await produced.flush()
    produced.close()
    assert produced.data == {
        "u1": {"events_seen": 1, "recent": ["i9"]}, "\x00next-offset:2": 8, "\x00republish:1": {"u3": 5}
    }  # fmt: skip

    codecs.register()
    faust_app = faust.App(f"chg-{uuid.uuid4().hex[:6]}", broker="kafka://127.0.0.1:1")

    def as_faust(key: str, value: Any) -> tuple[bytes, bytes | None]:
        serializers = faust_app.serializers
        key_bytes = serializers.dumps_key(str, key, serializer=codecs.ORJSON)
        value_bytes = (
            None if value is None else serializers.dumps_value(None, value, serializer=codecs.ORJSON)
        )
        assert isinstance(key_bytes, bytes) and (value_bytes is None or isinstance(value_bytes, bytes))
        return key_bytes, value_bytes

    read = await asyncio.to_thread(_read_all, settings.bootstrap, topic, 3)
    assert read == {
        0: [as_faust("u1", {"events_seen": 1, "recent": ["i9"]})],
        1: [as_faust("\x00republish:1", {"u3": 5})],
        2: [
            as_faust("u2", {"events_seen": 3}),
            as_faust("\x00next-offset:2", 7),
            as_faust("u2", None),
            as_faust("\x00next-offset:2", 8),
        ],
    }
