"""Drift end to end: a simulated clickstream whose tastes change mid-stream makes the worker detect drift.

Its own worker (metrics served on a free port) and namespace, so the counters start from zero. Sent
unpaced, as the issue's acceptance run: the worker takes its partitions in turns while they hold unequal
shares of the events, so the change reaches each partition's events at a different point of the consumed
stream. A record's ``newest_ts`` says how far the consumed stream has got: the concept signals must
stay quiet until it reaches the change and fire within `MAX_DELAY` events of it (docs/drift.md).
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from rich.console import Console

from engine.ingest import produce
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas import keys
from tests.integration.conftest import Worker, make_settings, processed, read_until, wait_for

pytestmark = pytest.mark.integration

USERS, ITEMS, EVENTS, DRIFT_AT = 200, 200, 12_000, 6_000
#: Events after the change (by the newest event consumed) within which a concept detection must come.
MAX_DELAY = 3_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MetricsWorker(Worker):
    def __init__(self, namespace: str, log_path: Path, port: int) -> None:
        # 4 partitions, as when the acceptance figures were measured: the delay is read from the newest
        # event consumed, and the more partitions a worker takes in turns on an unpaced backlog, the
        # further that runs ahead of the change (at the default 12 under load: 4,169 events once).
        super().__init__(make_settings(namespace).model_copy(update={"partitions": 4}), log_path)
        self.port = port

    def env(self) -> dict[str, str]:
        return {**super().env(), "PERSONALIZE_METRICS_PORT": str(self.port)}


def _sample(text: str, name: str) -> float:
    """Sum of a metric's samples (all label sets) in Prometheus text format."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def _ts_of(settings: Settings, event_id: str) -> int:
    """The ts of event ``event_id`` of the events topic."""

    def found(records: list[tuple[bytes | None, bytes]]) -> bool:
        return bool(records) and orjson.loads(records[-1][1])["event_id"] == event_id

    records = read_until(settings, settings.events_topic, found, 60)
    assert found(records), f"event {event_id} is not in {settings.events_topic}"
    return int(orjson.loads(records[-1][1])["ts"])


async def test_tastes_changing_mid_stream_are_detected(live_stack: None, tmp_path: Path) -> None:
    namespace = f"itdrift{uuid.uuid4().hex[:8]}"
    worker = MetricsWorker(namespace, tmp_path / "worker.log", _free_port())
    store = RedisStore.from_url(worker.settings.redis, namespace)
    worker.start()
    try:

        async def beating() -> bool:
            return bool(await store.workers())

        await wait_for(beating, 90, "the worker's first heartbeat")
        await produce.simulate(
            worker.settings,
            users=USERS,
            items=ITEMS,
            events=EVENTS,
            rate=None,
            seed=11,
            categories=12,
            console=Console(quiet=True),
            drift_at=DRIFT_AT,
            drift_fraction=1.0,
        )

        async def all_processed() -> bool:
            return await processed(store) >= EVENTS

        await wait_for(all_processed, 300, f"{EVENTS} events processed")
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{worker.port}/metrics")).text
        assert _sample(text, "personalize_drift_detections_total{") > 0, "no drift detected"
        assert _sample(text, "personalize_prequential_scored_total{") > 0
        assert _sample(text, "personalize_event_types_total{") >= EVENTS
        stream = await store.client.xrange(keys.drift(namespace))
        records = [orjson.loads(fields["record"]) for _, fields in stream or [] if fields]
        assert records, "no drift record in the Redis stream"
        for r in records:
            # Simulated event ids end in the event's index in the stream the producer sent.
            r["index"] = int(r["newest_event_id"].rsplit("-", 1)[1])
            print(f"drift {r['signal']}/{r['detector']} newest event {r['index']} {r['category'] or ''}")
        concept = [r for r in records if r["signal"] in ("hit_rate", "taste")]
        assert concept, "no concept drift (hit_rate, taste) detected"
        # Events sent in the same millisecond tie on ts, so the newest event named may be a little before
        # the change while the change was consumed: compare times, the change's read back from the topic.
        change_ts = _ts_of(worker.settings, f"{records[0]['newest_event_id'].rsplit('-', 1)[0]}-{DRIFT_AT}")
        early = [r for r in concept if r["newest_ts"] < change_ts]
        assert not early, f"concept drift reported before the change (at ts {change_ts}): {early}"
        delay = concept[0]["index"] - DRIFT_AT
        print(f"first concept detection {delay} events after the change ({concept[0]['signal']})")
        assert delay <= MAX_DELAY
    finally:
        worker.stop()
        await store.close()
