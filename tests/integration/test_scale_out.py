"""Three workers on 12 partitions behave as one engine through a crash and a new worker mid-stream.

`personalize simulate` streams a clickstream whose most clicked items the catalog marks unavailable; one
worker is killed with SIGKILL and, once the group has settled without it, a new one is started (two
rebalances). While it runs every user's list is read again and again; at the end every user's
``events_seen`` equals the manifest's count, every list was written after the user's last event, no read
ever saw a list older than one read before, and no list holds an unavailable item.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest

from engine.ingest import produce
from engine.ops.settings import Settings
from engine.store.redis_store import Recommendations, RedisStore
from models.synth import Clickstream
from tests.integration.cluster import Cluster
from tests.integration.conftest import ROOT, child_env, make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

USERS, ITEMS, EVENTS, RATE, SEED = 300, 400, 12_000, 300.0, 11
PARTITIONS = 12
#: The most clicked items of the stream, sent as unavailable.
UNAVAILABLE = 8


def most_clicked(n: int) -> list[str]:
    """The ``n`` items the stream `personalize simulate` sends (same arguments) has most events of."""
    world = Clickstream(USERS, ITEMS, n_categories=12, seed=SEED)
    counts = Counter(event.item_id for event in world.events(EVENTS))
    return [item for item, _ in counts.most_common(n)]


class Reads:
    """Every list read during the run, checked against the newest read before it."""

    def __init__(self) -> None:
        self.newest: dict[str, tuple[int, int, int]] = {}
        self.reads = 0
        self.older: list[str] = []

    def see(self, recs: Recommendations) -> None:
        if recs.updated_ms is None:
            return
        now = (recs.events_seen or 0, recs.last_event_ts or 0, recs.updated_ms)
        before = self.newest.get(recs.user_id)
        self.reads += 1
        if before is not None and (now[0] < before[0] or now[1] < before[1]):
            self.older.append(f"{recs.user_id}: read {now} after {before}")
        if before is None or now >= before:
            self.newest[recs.user_id] = now


async def read_all(store: RedisStore, users: list[str], n: int) -> list[Recommendations]:
    return [await store.read(user, n) for user in users]


@pytest.mark.timeout(900)
async def test_three_workers_survive_a_kill_and_a_newcomer_as_one_engine(
    live_stack: None, tmp_path: Path
) -> None:
    settings: Settings = make_settings(f"so{uuid.uuid4().hex[:8]}").model_copy(
        update={"partitions": PARTITIONS}
    )
    store = RedisStore.from_url(settings.redis, settings.namespace)
    users = [f"u{n}" for n in range(1, USERS + 1)]
    unavailable = most_clicked(UNAVAILABLE)
    manifest_path = tmp_path / "manifest.json"
    cluster = Cluster(
        settings,
        tmp_path,
        PERSONALIZE_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
        PERSONALIZE_CHECKPOINT_EVERY_S="3",
        PERSONALIZE_SESSION_TIMEOUT_S="10",
    )
    reads = Reads()
    await produce.ensure_engine_topics(settings)
    try:
        for name in ("w0", "w1", "w2"):
            cluster.start(name)
        await wait_for(lambda: cluster.stable(3), 180, "a stable group of 3")
        simulate = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams", "simulate", "--users", str(USERS), "--items", str(ITEMS),
            "--events", str(EVENTS), "--rate", str(RATE), "--seed", str(SEED),
            "--unavailable", ",".join(unavailable), "--manifest", str(manifest_path),
            env=child_env(settings, PERSONALIZE_PARTITIONS=str(PARTITIONS)), cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        started = time.monotonic()

        async def reader() -> None:
            while True:
                for recs in await read_all(store, users, 5):
                    reads.see(recs)
                await asyncio.sleep(0.5)

        reading = asyncio.create_task(reader())
        await asyncio.sleep(8)
        victim = cluster.workers[1]
        cluster.kill(victim)  # SIGKILL mid-stream: no farewell, no last checkpoint, no commit
        await wait_for(lambda: cluster.stable(2), 120, "the group settled without the killed worker")
        cluster.start("w3")  # restores whichever checkpoint is newest, from another identity
        await wait_for(lambda: cluster.stable(3), 120, "the group settled with the new worker")
        rebalanced_at = time.monotonic() - started
        _, err = await simulate.communicate()
        assert simulate.returncode == 0, err.decode()[-2000:]
        manifest = orjson.loads(manifest_path.read_bytes())
        assert manifest["events"] == EVENTS and manifest["unavailable"] == sorted(unavailable)
        assert rebalanced_at < manifest["seconds"], "both rebalances must happen while events still come"

        async def all_counted() -> bool:
            for user, count in manifest["events_per_user"].items():
                if (await store.read(user, 1)).events_seen != count:
                    return False
            return True

        await wait_for(all_counted, 300, "every user's events counted")
        reading.cancel()
        final = await read_all(store, list(manifest["events_per_user"]), settings.top_n)
        for recs in final:
            reads.see(recs)
        logs = cluster.logs()
        assert "restored model state" in (tmp_path / "w3.log").read_text(), logs
        stale = [
            r.user_id
            for r in final
            if r.updated_ms is None or r.updated_ms < manifest["last_event_ts"][r.user_id]
        ]
        assert not stale, f"lists older than the user's last event: {stale[:10]}"
        assert not reads.older, f"{len(reads.older)} of {reads.reads} reads went back: {reads.older[:5]}"
        held = {r.user_id: sorted(set(unavailable) & {i for i, _ in r.items}) for r in final}
        held = {user: items for user, items in held.items() if items}
        assert not held, f"unavailable items in lists: {dict(list(held.items())[:5])}"
        assert all(r.items for r in final), "every user has a list"
        assert reads.reads > 10 * USERS  # the run was watched throughout
    finally:
        cluster.stop()
        await store.close()
