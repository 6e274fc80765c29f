"""`personalize worker-health` without a Redis server: the verdicts, and Redis down (liveness, readiness).

The command against a real worker and Redis: tests/integration/test_worker_health.py.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from engine.cli.health import judge
from engine.cli.main import app
from engine.ops.settings import load


@pytest.fixture
def no_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings whose Redis URL names a loopback port nothing listens on."""
    for name in list(os.environ):
        if name.upper().startswith("PERSONALIZE_"):
            monkeypatch.delenv(name)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PERSONALIZE_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    load.cache_clear()
    yield
    load.cache_clear()


def test_the_newest_beat_of_the_host_decides() -> None:
    beats = {
        "w-0-7": {"beat_ms": "1000", "events": "1", "model_version": "m"},
        "w-0-1": {"beat_ms": "9000", "events": "5", "model_version": "m"},
    }
    verdict = judge(beats, "w-0", now_ms=10_000, max_age_s=5)
    assert verdict.healthy and verdict.message.startswith("w-0-1: beat 1.0 s ago, 5 events")
    assert not judge(beats, "w-0", now_ms=14_001, max_age_s=5).healthy


def test_a_beat_without_its_time_is_not_fresh() -> None:
    assert not judge({"w-0-1": {"events": "3"}}, "w-0", now_ms=10_000, max_age_s=5).healthy


def test_redis_down_fails_readiness_but_not_liveness(no_redis: None) -> None:
    runner = CliRunner()
    readiness = runner.invoke(app, ["worker-health", "--timeout", "2"])
    assert readiness.exit_code == 1, readiness.output
    assert "cannot read heartbeats from Redis" in readiness.output
    liveness = runner.invoke(app, ["worker-health", "--timeout", "2", "--redis-down-ok"])
    assert liveness.exit_code == 0, liveness.output
