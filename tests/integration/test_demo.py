"""`personalize demo` end to end: its own worker and namespace, what it prints, and a second run that
stops the first run's worker (and only that one)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest

from engine.ops import workers
from engine.ops.settings import Settings
from tests.integration.conftest import MADE, ROOT, child_env

pytestmark = [pytest.mark.integration]

SMALL = ("--users", "60", "--items", "120", "--events", "1800", "--rate", "600")


def demo(settings: Settings) -> tuple[dict[str, object], str]:
    out = subprocess.run(
        [sys.executable, "-m", "streams", "demo", *SMALL, "--json"],
        env=child_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    summary = orjson.loads(out.stdout.strip().splitlines()[-1])
    MADE.add(summary["namespace"])  # removed with the session's own at the end
    return summary, out.stderr


def stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def test_two_demos_in_a_row(settings: Settings) -> None:
    first, text = demo(settings)
    try:
        assert str(first["namespace"]).startswith(f"{settings.namespace}-demo-")
        assert first["worker_pid"] in workers.running(settings)
        for user in ("u1", "u2", "u3"):
            assert f"{user} likes " in text
        assert "engine (live)" in text and "popular (baseline)" in text
        assert "because you" in text, "lists come with their reasons"
        # The engine learns each user's tastes; popularity cannot (a wide margin at this size).
        assert float(first["engine_share"]) > float(first["popular_share"]) + 0.15, first  # type: ignore[arg-type]
        assert float(first["freshness_p99_ms"]) >= 0  # type: ignore[arg-type]

        second, _ = demo(settings)
        try:
            assert second["namespace"] != first["namespace"]
            deadline = time.monotonic() + 10
            while first["worker_pid"] in workers.running(settings) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert first["worker_pid"] not in workers.running(settings), "the first demo's worker was stopped"
            assert second["worker_pid"] in workers.running(settings)
        finally:
            stop(int(second["worker_pid"]))  # type: ignore[call-overload]
    finally:
        stop(int(first["worker_pid"]))  # type: ignore[call-overload]
        (settings.stack_dir / f"demo-{settings.namespace}.json").unlink(missing_ok=True)
