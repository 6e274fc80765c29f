"""Chaos: the worker is killed with SIGKILL at random moments (seeded) while a known stream is produced,
and restarted each time. Afterwards nothing is lost and nothing is counted twice: every user's
``events_seen`` equals what was sent, every list reflects the user's last event, and the model learned
each event exactly once (per-user histories and per-item counts equal those of an uninterrupted
in-process run on the same stream; both are independent of the order partitions interleave in).

``CHAOS_KILLS`` (default 10) sets how many kills; the figures are printed at the end.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from engine.ops.checkpoints import CheckpointStore
from engine.store.redis_store import RedisStore
from models.profile import UserProfile
from models.recommender import MODEL_VERSION, HybridRecommender
from models.synth import Clickstream
from streams.checkpointer import model_from
from tests.integration.conftest import ROOT, Worker, child_env, make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

USERS, ITEMS, EVENTS, SEED = 120, 150, 5_000, 11
KILLS = int(os.environ.get("CHAOS_KILLS", "10"))
#: Slow enough that the stream outlasts the kills (a restart takes ~10-15 s: the group's 6 s session
#: timeout, then Faust's start and the catch-up replay).
RATE = max(10, EVENTS // (KILLS * 15))


def learned_state(model: HybridRecommender, users: list[str]) -> dict[str, object]:
    """What the model learned, in forms that do not depend on the order of partitions: each user's
    history (one partition, one order) and each item's counts of labelled and liked events."""
    names = model._items.names
    seen = {names[i]: int(n) for i, n in enumerate(model._seen[: len(names)].tolist()) if n}
    liked = {names[i]: int(n) for i, n in enumerate(model._positives[: len(names)].tolist()) if n}
    histories = {u: [names[i] for i in model.sequence.history(u).tolist()] for u in users}
    return {"seen": seen, "liked": liked, "histories": histories}


def uninterrupted(users: list[str]) -> dict[str, object]:
    world = Clickstream(USERS, ITEMS, n_categories=12, seed=SEED)
    model = HybridRecommender()
    for record in world.items():
        model.learn_item(record)
    profiles: dict[str, UserProfile] = {}
    for event in world.events(EVENTS):
        profile = profiles.setdefault(event.user_id, UserProfile(event.user_id))
        model.learn_one(event, profile)
        profile.observe(event, model.signal(event))
    return learned_state(model, users)


async def test_kill_minus_nine_again_and_again_loses_and_doubles_nothing(tmp_path: Path) -> None:
    settings = make_settings(f"chaos{os.getpid()}{int(time.time()) % 100_000}")
    settings = settings.model_copy(update={"checkpoint_dir": tmp_path / "checkpoints"})
    store = RedisStore.from_url(settings.redis, settings.namespace)
    rng = random.Random(SEED)
    manifest = tmp_path / "manifest.json"
    workers: list[Worker] = []

    def start() -> Worker:
        worker = Worker(settings, tmp_path / f"worker-{len(workers)}.log")
        worker.env = lambda: {  # type: ignore[method-assign]
            **Worker.env(worker),
            "PERSONALIZE_CHECKPOINT_DIR": str(settings.checkpoint_dir),
            "PERSONALIZE_CHECKPOINT_EVERY_S": "3",
            # The group hands a killed worker's partitions over after 6 s instead of 60.
            "PERSONALIZE_SESSION_TIMEOUT_S": "6",
        }
        worker.start()
        workers.append(worker)
        return worker

    started = time.monotonic()
    worker = start()
    try:
        await wait_for(lambda: _beating(store), 120, "the first worker's heartbeat")
        producer = subprocess.Popen(
            [sys.executable, "-m", "streams", "simulate", "--users", str(USERS), "--items", str(ITEMS),
             "--events", str(EVENTS), "--seed", str(SEED), "--rate", str(RATE), "--manifest", str(manifest)],
            env=child_env(settings), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        kills = 0
        while kills < KILLS and producer.poll() is None:
            # Kill only once this worker has taken events, at a random moment after (inside a batch,
            # its flush or a checkpoint alike).
            await wait_for(
                functools.partial(_taking_events, store, worker), 120, "the new worker taking events"
            )
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            worker.stop(signal.SIGKILL)
            kills += 1
            worker = start()
        _, err = await asyncio.to_thread(producer.communicate, timeout=300)
        assert producer.returncode == 0, err.decode()[-2000:]
        sent = orjson.loads(manifest.read_bytes())
        recovery_started = time.monotonic()

        async def all_caught_up() -> bool:
            for user, ts in sent["last_event_ts"].items():
                recs = await store.read(user, 1)
                if recs.events_seen != sent["events_per_user"][user] or recs.last_event_ts != ts:
                    return False
            return True

        await wait_for(all_caught_up, 300, "every user's list to reflect every event sent, once")
        recovery_s = time.monotonic() - recovery_started
        mismatches = 0
        for user, count in sent["events_per_user"].items():
            recs = await store.read(user, 1)
            mismatches += recs.events_seen != count or recs.updated_ms is None
        worker.stop()  # clean: the checkpoint written on shutdown holds everything learned
        users = sorted(sent["events_per_user"])
        newest = CheckpointStore(settings.checkpoint_folder, settings.namespace).newest(MODEL_VERSION)
        assert newest is not None, "no checkpoint"
        got = learned_state(model_from(newest), users)
        want = uninterrupted(users)
        wrong = [part for part in ("seen", "liked") if got[part] != want[part]]
        wrong += [u for u in users if got["histories"][u] != want["histories"][u]]  # type: ignore[index]
        print(
            f"\nchaos: {kills} kills -9, {sent['events']} events, {len(users)} users, "
            f"mismatches {mismatches}, "
            f"model parts differing {len(wrong)}, recovery {recovery_s:.1f} s after the stream, "
            f"{time.monotonic() - started:.0f} s in all"
        )
        assert kills == KILLS, f"the stream ended after {kills} kills"
        assert mismatches == 0
        assert wrong == [], f"learned differently from an uninterrupted run: {wrong[:10]}"
    finally:
        for w in workers:
            w.stop()
        await store.close()


async def _beating(store: RedisStore) -> bool:
    return bool(await store.workers())


async def _taking_events(store: RedisStore, worker: Worker) -> bool:
    """Whether this worker process's heartbeat counts events it consumed (dead workers' beats linger)."""
    pid = worker.proc.pid if worker.proc is not None else -1
    return any(int(b.get("pid", -1)) == pid and int(b.get("events", 0)) > 0 for b in await store.workers())
