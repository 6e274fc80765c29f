"""Read-side load: many concurrent clients reading users' top-20 (ZREVRANGE) straight from Redis.

Several processes (so the client is not the one-core bottleneck), each an asyncio loop with concurrent
tasks sharing a few connections. Latency is per command as the client sees it (connection wait included).
"""

from __future__ import annotations

__all__ = ["LookupResult", "measure"]

import asyncio
import multiprocessing
import random
import time
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
    url: str, user_keys: list[str], n: int, tasks: int, connections: int, seconds: float
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
            got = await client.zrevrange(key, 0, n - 1, withscores=True)
            if started >= measure_from:
                latencies.append((time.perf_counter() - started) * 1000.0)
                empty += not got

    await asyncio.gather(*(reader() for _ in range(tasks)))
    elapsed = time.perf_counter() - measure_from
    await client.aclose()
    await pool.aclose()
    return latencies, empty, elapsed


def _process(
    url: str, user_keys: list[str], n: int, tasks: int, connections: int, seconds: float
) -> tuple[list[float], int, float]:
    return asyncio.run(_client(url, user_keys, n, tasks, connections, seconds))


def measure(
    url: str,
    namespace: str,
    user_ids: list[str],
    *,
    n: int = 20,
    processes: int = 2,
    tasks: int = 32,
    connections: int = 4,
    seconds: float = 5.0,
) -> LookupResult:
    """Run ``processes`` x ``tasks`` concurrent readers for ``seconds``; latency percentiles and rate."""
    user_keys = [keys.recs(namespace, u) for u in user_ids]
    # spawn, not fork: the caller runs threads (Kafka clients), and forking those can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            pool.submit(_process, url, user_keys, n, tasks, connections, seconds) for _ in range(processes)
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
