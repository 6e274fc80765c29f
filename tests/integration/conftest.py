"""Fixtures for tests through the real Kafka broker and redis-server of the local stack.

Each test session uses its own namespace (topics, consumer group, Redis keys), so runs never see each
other's data; the stack itself is started (idempotently) by `engine.ops.stack.up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import confluent_kafka
import orjson
import pytest
import pytest_asyncio

from engine.bench import sandbox
from engine.ops import stack
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas import keys
from schemas.keys import WorkerField

ROOT = Path(__file__).resolve().parents[2]
#: One experiment on the home surface with two equal variants (`PERSONALIZE_EXPERIMENTS`).
EXPERIMENTS = orjson.dumps(
    {
        "experiments": [
            {
                "name": "home",
                "surfaces": ["home"],
                "variants": [{"name": "control", "weight": 1}, {"name": "explore", "weight": 1}],
            }
        ]
    }
).decode()


#: Namespaces this test session made; `_remove_namespaces` deletes their topics and keys at the end.
MADE: set[str] = set()


def make_settings(namespace: str) -> Settings:
    """Settings for a namespace of this session's own (removed again when the session ends)."""
    MADE.add(namespace)
    return Settings(namespace=namespace, stack_dir=ROOT / ".stack", metrics_port=0)


@pytest.fixture(scope="session", autouse=True)
def _remove_namespaces() -> Iterator[None]:
    """Leave the shared stack as found: every namespace the session made loses its topics, consumer
    group and Redis keys once everything else (workers included) is torn down, so repeated runs do not
    pile up thousands of partitions on the broker. A failed removal is reported, not fatal."""
    yield
    for namespace in sorted(MADE):
        settings = Settings(namespace=namespace, stack_dir=ROOT / ".stack")
        try:
            asyncio.run(sandbox.remove(settings, groups=[settings.app_id]))
        except Exception as exc:  # noqa: BLE001 - cleanup must not fail the suite
            print(f"could not remove namespace {namespace}: {exc!r}")


def child_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """Environment of an engine subprocess: this process's, minus every ``PERSONALIZE_*`` variable,
    plus the namespace and the stack's addresses of ``settings`` (so a suite run against other ports
    reaches the same Kafka and Redis), plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONALIZE_")}
    env.update(
        PERSONALIZE_NAMESPACE=settings.namespace,
        PERSONALIZE_STACK_DIR=str(settings.stack_dir),
        PERSONALIZE_KAFKA_PORT=str(settings.kafka_port),
        PERSONALIZE_KAFKA_CONTROLLER_PORT=str(settings.kafka_controller_port),
        PERSONALIZE_REDIS_PORT=str(settings.redis_port),
    )
    if settings.kafka_bootstrap:
        env["PERSONALIZE_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    if settings.redis_url:
        env["PERSONALIZE_REDIS_URL"] = settings.redis_url
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def live_stack() -> None:
    stack.up(Settings(stack_dir=ROOT / ".stack"), log=lambda _m: None)  # no namespace of its own


class Worker:
    """A `personalize worker` subprocess for one namespace."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        # No trending lists: tests that write them by hand must not see a worker replace them.
        return child_env(
            self.settings,
            PERSONALIZE_METRICS_PORT="0",
            PERSONALIZE_PARTITIONS=str(self.settings.partitions),
            PERSONALIZE_TRENDING_INTERVAL_S="0",
        )

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker"],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )

    def wait_beating(self, timeout_s: float = 120.0) -> None:
        """Block until the worker's first heartbeat is in Redis (its start can take most of a test's
        patience on a loaded machine); fail with the log's tail if it never comes."""
        assert self.proc is not None, "start the worker first"
        beat = keys.worker(self.settings.namespace, f"{socket.gethostname()}-{self.proc.pid}")
        deadline = time.monotonic() + timeout_s
        while hget(self.settings, beat, WorkerField.EVENTS) is None:
            assert time.monotonic() < deadline, (
                f"the worker never beat; log:\n{self.log_path.read_text()[-4000:]}"
            )
            time.sleep(0.5)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def read_until(
    settings: Settings, topic: str, done: Callable[[list[tuple[bytes | None, bytes]]], bool], timeout_s: float
) -> list[tuple[bytes | None, bytes]]:
    """Records of ``topic`` from the start until ``done(records)`` or the timeout: (key, value)."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": settings.bootstrap,
            "group.id": f"it-read-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not done(records) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            value = None if msg is None or msg.error() else msg.value()
            if msg is not None and value:
                records.append((msg.key(), value))
    finally:
        consumer.close()
    return records


def topic_size(settings: Settings, topic: str) -> int:
    """Records in ``topic`` so far (the sum of its partitions' high watermarks)."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": settings.bootstrap, "group.id": "it-probe"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        marks = [confluent_kafka.TopicPartition(topic, p) for p in partitions]
        return sum(consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in marks)
    finally:
        consumer.close()


def hget(settings: Settings, key: str, field: str) -> str | None:
    """One field of a Redis hash, read with a client of its own (for synchronous fixtures and loops)."""
    import redis

    client = redis.Redis.from_url(settings.redis, decode_responses=True)
    try:
        value = client.hget(key, field)
        return None if value is None else str(value)
    finally:
        client.close()


async def wait_for(check: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll an async predicate until true; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():  # type: ignore[misc]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


async def processed(store: RedisStore) -> int:
    """Events counted by the namespace's live workers (learned, duplicates and dead letters)."""
    return sum(int(b.get("events", 0)) for b in await store.workers())


@pytest.fixture(scope="session")
def namespace() -> str:
    return f"it{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def settings(live_stack: None, namespace: str) -> Settings:
    return make_settings(namespace)


@pytest.fixture(scope="session")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = Worker(settings, tmp_path_factory.mktemp("worker") / "worker.log")
    w.start()
    yield w
    w.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def store(settings: Settings) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_url(settings.redis, settings.namespace)
    yield s
    await s.close()


@pytest_asyncio.fixture(loop_scope="session")
async def ready_worker(worker: Worker, store: RedisStore) -> Worker:
    """The session's worker once it beats in Redis."""
    return await until_beating(worker, store)


async def until_beating(worker: Worker, store: RedisStore) -> Worker:
    """``worker`` once a worker of ``store``'s namespace beats in Redis; fails with its log otherwise."""

    async def beating() -> bool:
        return bool(await store.workers())

    try:
        await wait_for(beating, 90, "the worker's first heartbeat")
    except AssertionError:
        raise AssertionError(
            f"worker never became ready; log:\n{worker.log_path.read_text()[-4000:]}"
        ) from None
    return worker


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def api_server(settings: Settings, log: Path, **env_overrides: str) -> Iterator[str]:
    """A `personalize api` subprocess for ``settings``' namespace (plus ``PERSONALIZE_*`` overrides),
    yielding its base URL once /v1/health answers 200; stopped on exit."""
    import httpx

    port = free_port()
    env = child_env(settings, **env_overrides)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "api", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"the API did not become healthy; log:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
