"""Latency of reading recommendations: through the HTTP API at a fixed request rate, and from Redis directly.

Starts `personalize api` on a free port in its own namespace, publishes lists for ``--users`` users,
then sends GET /v1/recommendations at ``--rate`` per second for ``--seconds`` (open loop: latency counts
from when a request was due, so a stalled server cannot hide its queue), and finally reads the Redis key
directly. Prints p50/p99/max and a JSON line. A measurement, not a test: nothing here asserts a target.

    .venv/bin/python bench/api_latency.py --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson

from engine.redis_store import RedisStore
from engine.settings import Settings
from schemas import keys

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _summary(latencies_s: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies_s)

    def pick(q: float) -> float:
        return ms[min(len(ms) - 1, int(q * len(ms)))]

    return {
        "n": len(ms),
        "p50_ms": round(pick(0.50), 3),
        "p99_ms": round(pick(0.99), 3),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol for small GETs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await self.reader.readexactly(length)
        return status


async def _load(port: int, users: int, rate: float, seconds: float, connections: int) -> dict[str, object]:
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(_Connection(*await asyncio.open_connection("127.0.0.1", port)))
    latencies: list[float] = []
    errors = 0
    rng = random.Random(0)

    async def one(due: float, user: str) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status = await conn.get(f"/v1/recommendations/{user}?n=10")
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        errors += status != 200

    total = int(rate * seconds)
    started = time.perf_counter()
    tasks = []
    for i in range(total):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, f"bench-u{rng.randrange(users)}")))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait().writer.close()
    return {"achieved_rps": round(total / elapsed, 1), "errors": errors, **_summary(latencies)}


async def _direct(store: RedisStore, users: int, reads: int) -> dict[str, object]:
    rng = random.Random(1)
    raw, full = [], []
    for _ in range(reads):
        key = keys.recs(store.namespace, f"bench-u{rng.randrange(users)}")
        t = time.perf_counter()
        await store.client.zrevrange(key, 0, 9, withscores=True)
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        await store.read(f"bench-u{rng.randrange(users)}", 10)  # the SDK's direct read: list + meta
        full.append(time.perf_counter() - t)
    return {"zrevrange": _summary(raw), "sdk_read": _summary(full)}


async def _publish(store: RedisStore, users: int) -> None:
    rng = random.Random(2)
    for u in range(users):
        items = [(f"i{rng.randrange(5000)}", rng.random()) for _ in range(50)]
        await store.publish(f"bench-u{u}", items, model_version="bench", last_event_ts=1, events_seen=1)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the API did not become healthy")


async def _main(args: argparse.Namespace) -> dict[str, object]:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    settings = Settings(namespace=namespace)
    store = RedisStore.from_url(settings.redis, namespace)
    await _publish(store, args.users)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONALIZE_")}
    env.update(PERSONALIZE_NAMESPACE=namespace, PERSONALIZE_LOG_LEVEL="warn")
    proc = subprocess.Popen([sys.executable, "-m", "engine", "api", "--port", str(port)], env=env, cwd=ROOT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        await _load(port, args.users, args.rate, 1.0, args.connections)  # warm-up
        http = await _load(port, args.users, args.rate, args.seconds, args.connections)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    direct = await _direct(store, args.users, args.reads)
    async for key in store.client.scan_iter(match=f"{keys.KEY_PREFIX}:{keys.KEY_VERSION}:{namespace}:*"):
        await store.client.delete(key)
    await store.close()
    return {"rate": args.rate, "seconds": args.seconds, "users": args.users, "http": http, "redis": direct}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="GET requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections to the API")
    parser.add_argument("--reads", type=int, default=10_000, help="direct Redis reads")
    report = asyncio.run(_main(parser.parse_args()))
    http = report["http"]
    print(f"HTTP GET /v1/recommendations at {report['rate']:.0f}/s: {http}", file=sys.stderr)
    print(f"Redis direct: {report['redis']}", file=sys.stderr)
    print(orjson.dumps(report).decode())


if __name__ == "__main__":
    main()
