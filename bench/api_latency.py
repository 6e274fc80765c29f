"""Latency of reading recommendations: through the HTTP API at a fixed request rate, and from Redis directly.

Starts `personalize api --workers W` on a free port in its own namespace, publishes lists for ``--users``
users and a catalog (each item in one of 12 categories, so the default rules and diversity do real work),
then sends GET /v1/recommendations at each ``--rate`` per second for ``--seconds`` (open loop: latency
counts from when a request was due, so a stalled server cannot hide its queue; ``from_send`` counts from
when it was written), and finally reads the Redis key directly. The client is one uvloop process with a
bare protocol per connection; its CPU share is reported, and the API processes' CPU per request. Prints
p50/p99/max and a JSON line. A measurement, not a test: nothing here asserts a target.

    .venv/bin/python bench/api_latency.py --rate 1000 --seconds 10 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import cast

import httpx
import orjson
import uvloop

from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from schemas import keys
from schemas.events import ItemRecord

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


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol for small GETs.

    A protocol rather than streams: the client must cost far less than the server it measures.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        found = re.search(rb"content-length: *(\d+)", head)
        length = int(found.group(1)) if found else 0
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        assert self.waiter is not None
        self.waiter.set_result(int(head[9:12]))

    async def get(self, path: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(b"GET " + path + b" HTTP/1.1\r\nhost: bench\r\n\r\n")
        return await self.waiter


async def _load(port: int, users: int, rate: float, seconds: float, connections: int) -> dict[str, object]:
    """Open loop: request i is due at ``i / rate``; each connection sends the next due request as soon as
    it is free, so a slow server makes requests wait in the client, and that wait is counted."""
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(_Connection, "127.0.0.1", port))[1] for _ in range(connections)]
    rng = random.Random(0)
    total = int(rate * seconds)
    paths = [f"/v1/recommendations/bench-u{rng.randrange(users)}?n=10".encode() for _ in range(total)]
    from_due: list[float] = []
    from_send: list[float] = []
    errors = 0
    next_index = 0
    cpu = time.process_time()
    started = time.perf_counter()

    async def run(conn: _Connection) -> None:
        nonlocal next_index, errors
        while next_index < total:
            index, next_index = next_index, next_index + 1
            due = started + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.perf_counter()
            status = await conn.get(paths[index])
            done = time.perf_counter()
            from_due.append(done - due)
            from_send.append(done - sent)
            errors += status != 200

    await asyncio.gather(*(run(conn) for conn in conns))
    elapsed = time.perf_counter() - started
    for conn in conns:
        assert conn.transport is not None
        conn.transport.close()
    return {
        "achieved_rps": round(total / elapsed, 1),
        "errors": errors,
        "client_cpu_share": round((time.process_time() - cpu) / elapsed, 3),
        **_summary(from_due),
        "from_send": _summary(from_send),
    }


async def _direct(store: RedisStore, users: int, reads: int) -> dict[str, object]:
    rng = random.Random(1)
    raw, full = [], []
    for _ in range(reads):
        key = keys.user_list(store.namespace, f"bench-u{rng.randrange(users)}")
        t = time.perf_counter()
        await store.client.get(key)
        raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        await store.read(f"bench-u{rng.randrange(users)}", 10)  # the SDK's direct read, decoded
        full.append(time.perf_counter() - t)
    return {"get": _summary(raw), "sdk_read": _summary(full)}


async def _publish(store: RedisStore, users: int) -> None:
    rng = random.Random(2)
    for u in range(users):
        items = [(f"i{rng.randrange(5000)}", rng.random()) for _ in range(50)]
        await store.publish(f"bench-u{u}", items, model_version="bench", last_event_ts=1, events_seen=1)
    await store.publish_items([ItemRecord(item_id=f"i{i}", categories=[f"c{i % 12}"]) for i in range(5000)])


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants (the API's workers)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, grew = {pid}, True
    while grew:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return sum(times.get(p, 0.0) for p in tree)


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
    command = [sys.executable, "-m", "streams", "api", "--port", str(port), "--workers", str(args.workers)]
    proc = subprocess.Popen(command, env=env, cwd=ROOT)
    http: dict[str, object] = {}
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc)
        for rate in args.rate:
            await _load(port, args.users, rate, 1.0, args.connections)  # warm-up
            cpu = _tree_cpu_s(proc.pid)
            http[str(rate)] = report = await _load(port, args.users, rate, args.seconds, args.connections)
            served = cast(int, report["n"])
            report["server_cpu_us_per_request"] = round((_tree_cpu_s(proc.pid) - cpu) / served * 1e6)
            print(f"HTTP GET /v1/recommendations at {rate:.0f}/s: {http[str(rate)]}", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    direct = await _direct(store, args.users, args.reads)
    async for key in store.client.scan_iter(match=f"{keys.KEY_PREFIX}:{keys.KEY_VERSION}:{namespace}:*"):
        await store.client.delete(key)
    await store.close()
    setup = {"workers": args.workers, "seconds": args.seconds, "users": args.users}
    return {**setup, "http": http, "redis": direct}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, nargs="+", default=[1000.0], help="GET requests per second")
    parser.add_argument("--workers", type=int, default=1, help="API processes (personalize api --workers)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections to the API")
    parser.add_argument("--reads", type=int, default=10_000, help="direct Redis reads")
    report = uvloop.run(_main(parser.parse_args()))
    print(f"Redis direct: {report['redis']}", file=sys.stderr)
    print(orjson.dumps(report).decode())


if __name__ == "__main__":
    main()
