"""`personalize demo`: a worker, a simulated live clickstream, and what came out of it in Redis.

Starts a background worker when none is beating, streams synthetic events at a steady rate, then shows
a few users' recommendations next to their true tastes, and the measured freshness.
"""

from __future__ import annotations

__all__ = ["freshness", "run"]

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping

from rich.console import Console
from rich.table import Table

from engine.ingest import produce
from engine.ops import workers
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.synth import Clickstream
from schemas.errors import ServiceUnavailableError


async def _wait(what: str, check: Callable[[], Awaitable[object]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise ServiceUnavailableError(what, "redis heartbeat", timeout_s)


async def freshness(store: RedisStore, last_event_ts: Mapping[str, int]) -> list[float]:
    """Milliseconds from each user's last sent event to their list written in Redis (users caught up)."""
    out = []
    for user, ts in last_event_ts.items():
        recs = await store.read(user, 1)
        if recs.last_event_ts == ts and recs.updated_ms is not None:
            out.append(float(recs.updated_ms - ts))
    return out


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def run(
    settings: Settings, *, users: int, items: int, events: int, rate: float, seed: int, console: Console
) -> dict[str, float]:
    store = RedisStore.from_url(settings.redis, settings.namespace)
    try:
        if not await store.workers():
            pid = workers.spawn(settings)
            console.print(f"started a worker (pid {pid}), log: {settings.stack_dir / 'worker.log'}")
        await _wait("worker", store.workers, 90.0)
        manifest = await produce.simulate(
            settings,
            users=users,
            items=items,
            events=events,
            rate=rate,
            seed=seed,
            categories=12,
            console=console,
        )

        last_ts: dict[str, int] = manifest["last_event_ts"]

        async def caught_up() -> bool:
            return len(await freshness(store, last_ts)) == len(last_ts)

        await _wait("worker catching up", caught_up, 180.0)
        fresh = await freshness(store, last_ts)
        world = Clickstream(users, items, n_categories=12, seed=seed)
        categories = {record.item_id: record.categories for record in world.items()}
        for user in ("u1", "u2", "u3"):
            recs = await store.read(user, 5)
            taste = sorted(world.taste(user).items(), key=lambda kv: -kv[1])[:2]
            title = f"{user}: likes " + ", ".join(f"{c} ({p:.0%})" for c, p in taste)
            table = Table("#", "item", "categories", "score", title=title)
            for rank, (item, score) in enumerate(recs.items, 1):
                table.add_row(str(rank), item, ",".join(categories.get(item, ())), f"{score:.3f}")
            console.print(table)
        summary = {
            "events": float(manifest["events"]),
            "users_measured": float(len(fresh)),
            "freshness_p50_ms": _percentile(fresh, 50) if fresh else float("nan"),
            "freshness_p99_ms": _percentile(fresh, 99) if fresh else float("nan"),
        }
        console.print(
            f"freshness (event ts -> user's list in Redis) over {len(fresh)} users: "
            f"p50 {summary['freshness_p50_ms']:.1f} ms, p99 {summary['freshness_p99_ms']:.1f} ms"
        )
        console.print(
            f"metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics   "
            f"read a user: .venv/bin/personalize recs u7   stop everything: .venv/bin/personalize stack down"
        )
        return summary
    finally:
        await store.close()
