"""A worker whose table recovery cannot finish stops (exit code 1) instead of waiting forever.

The stall is made for real: a transaction committed to one profiles-changelog partition leaves its
commit marker as the partition's last offset, which no consumer ever receives, so Faust's recovery waits
for it (the real stall seen in multi-worker starts, docs/scale-out.md, looks the same to the worker)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import confluent_kafka
import orjson
import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from models.profile import UserProfile
from tests.integration.conftest import Worker, make_settings

pytestmark = pytest.mark.integration


class _ImpatientWorker(Worker):
    def env(self) -> dict[str, str]:
        return {**super().env(), "PERSONALIZE_RECOVERY_PATIENCE_S": "5"}


def test_a_worker_whose_recovery_stalls_exits_with_the_stuck_partition_named(
    live_stack: None, tmp_path: Path
) -> None:
    settings = make_settings(f"stall{uuid.uuid4().hex[:8]}")
    changelog = f"{settings.app_id}-profiles-changelog"
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    topic = NewTopic(changelog, settings.partitions, 1, config={"cleanup.policy": "compact"})
    created = admin.create_topics([topic])
    created[changelog].result(timeout=30)
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": settings.bootstrap, "transactional.id": f"stall-{uuid.uuid4().hex}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    value = orjson.dumps(UserProfile("u1", events_seen=1).to_dict())
    producer.produce(changelog, value, orjson.dumps("u1"), partition=3)
    producer.commit_transaction(30)

    worker = _ImpatientWorker(settings, tmp_path / "worker.log")
    worker.start()
    assert worker.proc is not None
    try:
        deadline = time.monotonic() + 120
        while worker.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        log = worker.log_path.read_text(errors="replace")
        assert worker.proc.poll() == 1, f"the worker did not stop; log:\n{log[-3000:]}"
        assert f"table recovery made no progress for 5 s: {changelog}[3] (1 records left)" in log
    finally:
        worker.stop()
