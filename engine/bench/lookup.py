"""Read-side load: concurrent clients reading users' stored lists (GET: the top-N with its metadata and
reasons, `schemas.stored_list`) straight from Redis.

Two clients. `measure`: several Python processes (so the client is not the one-core bottleneck), each an
asyncio loop with concurrent tasks sharing a few connections, on random users: what a Python service
sees, client CPU included. `measure_native`: ``redis-benchmark`` (C, from Debian's redis-tools, installed
with redis-server) on one user's key: what Redis itself serves to an efficient client; every user's key
is the same size, so one key stands for all. Latency is per command as the client sees it.
"""

from __future__ import annotations

__all__ = ["LookupResult", "measure", "measure_native", "parse_benchmark_csv"]

import asyncio
import csv
import multiprocessing
import random
import shutil
import subprocess
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import redis.asyncio as aioredis

from engine.bench.machine import percentile
from schemas import keys


@dataclass(frozen=True, slots=True)
class LookupResult:
    p50_ms: float
    p99_ms: float
    per_s: float
    lookups: int
    empty: int


async def _client(
    url: str, user_keys: list[str], tasks: int, connections: int, seconds: float
) -> tuple[list[float], int, float]:
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=connections)
    client = aioredis.Redis(connection_pool=pool)
    latencies: list[float] = []
    empty = 0
    rng = random.Random()
    await client.ping()
    # Half a second untimed first: connections open and the interpreter warms up.
    measure_from = time.perf_counter() + 0.5
    deadline = measure_from + seconds

    async def reader() -> None:
        nonlocal empty
        while time.perf_counter() < deadline:
            key = rng.choice(user_keys)
            started = time.perf_counter()
            got = await client.get(key)
            if started >= measure_from:
                latencies.append((time.perf_counter() - started) * 1000.0)
                empty += not got

    await asyncio.gather(*(reader() for _ in range(tasks)))
    elapsed = time.perf_counter() - measure_from
    await client.aclose()
    await pool.aclose()
    return latencies, empty, elapsed


def _process(
    url: str, user_keys: list[str], tasks: int, connections: int, seconds: float
) -> tuple[list[float], int, float]:
    return asyncio.run(_client(url, user_keys, tasks, connections, seconds))


def measure(
    url: str,
    namespace: str,
    user_ids: list[str],
    *,
    processes: int = 2,
    tasks: int = 32,
    connections: int = 4,
    seconds: float = 5.0,
) -> LookupResult:
    """Run ``processes`` x ``tasks`` concurrent readers for ``seconds``; latency percentiles and rate."""
    user_keys = [keys.user_list(namespace, u) for u in user_ids]
    # spawn, not fork: the caller runs threads (Kafka clients), and forking those can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            pool.submit(_process, url, user_keys, tasks, connections, seconds) for _ in range(processes)
        ]
        results = [f.result() for f in futures]
    latencies = [x for lat, _, _ in results for x in lat]
    elapsed = max(seconds for _, _, seconds in results)
    return LookupResult(
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        per_s=len(latencies) / elapsed,
        lookups=len(latencies),
        empty=sum(e for _, e, _ in results),
    )


def parse_benchmark_csv(text: str) -> LookupResult:
    """The result of ``redis-benchmark --csv`` (one test).

    >>> head = '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
    >>> head += '"p99_latency_ms","max_latency_ms"'
    >>> row = '"GET","74266.62","0.179","0.064","0.175","0.263","0.359","3.919"'
    >>> out = "\\n".join([head, row])
    >>> parse_benchmark_csv(out)
    LookupResult(p50_ms=0.175, p99_ms=0.359, per_s=74266.62, lookups=0, empty=0)
    """
    rows = list(csv.DictReader(line for line in text.splitlines() if line.startswith('"')))
    if not rows:
        raise ValueError(f"no result in redis-benchmark's output: {text[-200:]!r}")
    row = rows[-1]
    return LookupResult(
        p50_ms=float(row["p50_latency_ms"]),
        p99_ms=float(row["p99_latency_ms"]),
        per_s=float(row["rps"]),
        lookups=0,
        empty=0,
    )


def measure_native(url: str, key: str, *, clients: int = 16, requests: int = 100_000) -> LookupResult | None:
    """``redis-benchmark`` reading ``key`` (a stored list) with ``clients`` connections; None without
    the tool."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return None
    parts = urllib.parse.urlsplit(url)
    command = [tool, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    if parts.password:
        command += ["-a", urllib.parse.unquote(parts.password), "--no-auth-warning"]
    command += [
        "-c",
        str(clients),
        "-n",
        str(requests),
        "--csv",
        "GET",
        key,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    result = parse_benchmark_csv(done.stdout)
    return LookupResult(result.p50_ms, result.p99_ms, result.per_s, requests, 0)
