"""`personalize worker-health` (the containers' probe) against a real worker, Kafka and Redis."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from engine.store.redis_store import RedisStore
from tests.integration.conftest import ROOT, Worker, child_env, make_settings, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def _health(env: dict[str, str], *args: str, lean: bool = False) -> subprocess.CompletedProcess[str]:
    """``personalize worker-health``, or the same command as the probes run it (``lean``)."""
    command = ["engine.cli.health"] if lean else ["streams", "worker-health"]
    return subprocess.run(
        [sys.executable, "-m", *command, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_healthy_while_the_worker_beats_not_once_it_stopped(live_stack: None, tmp_path: Path) -> None:
    settings = make_settings(f"wh{uuid.uuid4().hex[:8]}")
    env = child_env(settings)
    store = RedisStore.from_url(settings.redis, settings.namespace)
    worker = Worker(settings, tmp_path / "worker.log")
    try:
        before = _health(env)
        assert before.returncode == 1, before.stdout + before.stderr
        assert f"no heartbeat of a worker on {socket.gethostname()}" in before.stdout

        worker.start()
        assert worker.proc is not None
        pid = worker.proc.pid

        async def beating() -> bool:
            return bool(await store.workers_on(socket.gethostname()))

        await wait_for(beating, 90, "the worker's first heartbeat")
        running = _health(env, "--max-age", "10")
        assert running.returncode == 0, running.stdout + running.stderr
        assert running.stdout.startswith(f"{socket.gethostname()}-{pid}: beat "), running.stdout
        probe = _health(env, "--max-age", "10", "--redis-down-ok", lean=True)
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert probe.stdout.startswith(f"{socket.gethostname()}-{pid}: beat "), probe.stdout
        other_host = _health(env, "--host", f"not-{socket.gethostname()}")
        assert other_host.returncode == 1, other_host.stdout

        worker.stop()  # SIGTERM: a clean shutdown removes the heartbeat at once
        after = _health(env)
        assert after.returncode == 1, after.stdout + after.stderr
    finally:
        worker.stop()
        await store.close()
