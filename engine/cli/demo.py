"""`personalize demo`: a worker, a simulated live clickstream, and proof of what came out of it in Redis.

Each run has a namespace of its own (``<namespace>-demo-<hex>``) and a worker of its own, so its figures
are this run's and it never touches what other runs or test suites left; the previous demo's worker is
stopped first. After streaming it shows, for a few users, their true tastes, the share of their top 10
in those tastes and why each item is there; then the engine's live HR@10 (from the worker's own
metrics) beside simple baselines scored the same way on the same stream, and the freshness measured.
"""

from __future__ import annotations

__all__ = ["freshness", "run"]

import asyncio
import os
import secrets
import signal
import socket
import statistics
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from engine.bench import sandbox
from engine.evaluation.prequential import score_stream
from engine.evaluation.scoreboard import taste_share
from engine.ingest import produce
from engine.ops import workers
from engine.ops.settings import Settings
from engine.store.redis_store import Recommendations, RedisStore
from models.registry import RECOMMENDERS
from models.synth import Clickstream
from schemas.errors import ServiceUnavailableError

#: Users whose lists are shown one by one.
SHOWN = ("u1", "u2", "u3")
#: HR@k and the taste share are measured on top-10 lists.
K = 10
#: A user counts in the taste share once the engine has seen this many of their events.
MIN_EVENTS = 15


async def _wait(what: str, check: Callable[[], Awaitable[object]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise ServiceUnavailableError(what, "redis", timeout_s)


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _record(settings: Settings) -> Path:
    """Where the demo of ``settings.namespace`` names its worker (one per namespace, so a test suite's
    demo never stops the user's)."""
    return settings.stack_dir / f"demo-{settings.namespace}.json"


def _stop_previous(settings: Settings, console: Console) -> str | None:
    """Stop the worker the previous demo left running (only that one: it is named in the record);
    the previous demo's namespace, if there was one."""
    record = _record(settings)
    if not record.exists():
        return None
    previous = orjson.loads(record.read_bytes())
    pid = int(previous["pid"])
    if pid in workers.running(settings):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while pid in workers.running(settings) and time.monotonic() < deadline:
            time.sleep(0.2)
        console.print(f"stopped the previous demo's worker (pid {pid}, namespace {previous['namespace']})")
    record.unlink(missing_ok=True)
    return str(previous["namespace"])


def _worker_pid(settings: Settings) -> int:
    return int(orjson.loads(_record(settings).read_bytes())["pid"])


async def _start_worker(settings: Settings, console: Console) -> tuple[Settings, str]:
    """A worker for a fresh demo namespace, with its metrics on a free port; its settings and URL.
    The previous demo's worker is stopped and its namespace removed (topics, group, Redis keys)."""
    previous = _stop_previous(settings, console)
    if previous is not None:
        old = settings.model_copy(update={"namespace": previous})
        await sandbox.remove(old, groups=[old.app_id])
    port = _free_port()
    demo = settings.model_copy(
        update={"namespace": f"{settings.namespace}-demo-{secrets.token_hex(3)}", "metrics_port": port}
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("PERSONALIZE_NAMESPACE", "PERSONALIZE_METRICS_PORT")
    }
    env.update(PERSONALIZE_NAMESPACE=demo.namespace, PERSONALIZE_METRICS_PORT=str(port))
    pid = workers.spawn(demo, env)
    demo.stack_dir.mkdir(parents=True, exist_ok=True)
    _record(settings).write_bytes(orjson.dumps({"namespace": demo.namespace, "pid": pid}))
    console.print(
        f"started a worker for namespace {demo.namespace} (pid {pid}), log: {workers.log_path(demo)}"
    )
    return demo, f"http://{demo.metrics_host}:{port}/metrics"


async def _live_hit_rate(metrics_url: str) -> tuple[int, int]:
    """The worker's own prequential hits and scored events, read from its /metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(metrics_url)).text
    totals = {"personalize_prequential_hits": 0.0, "personalize_prequential_scored": 0.0}
    for family in text_string_to_metric_families(text):
        if family.name in totals:
            totals[family.name] = sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(totals["personalize_prequential_hits"]), int(totals["personalize_prequential_scored"])


def _favourites(world: Clickstream, user: str) -> set[str]:
    """The user's two most liked categories in the simulated world (the truth the engine never sees)."""
    return {c for c, _ in sorted(world.taste(user).items(), key=lambda kv: -kv[1])[:2]}


def _show_user(
    console: Console, user: str, recs: Recommendations, world: Clickstream, cats: Mapping[str, Sequence[str]]
) -> None:
    tastes = sorted(world.taste(user).items(), key=lambda kv: -kv[1])[:2]
    liked = _favourites(world, user)
    items = [item for item, _ in recs.items]
    title = (
        f"{user} likes "
        + " and ".join(f"{c} ({p:.0%})" for c, p in tastes)
        + f": {taste_share(items, liked, cats):.0%} of the top {len(items)} in them"
        + f" ({recs.events_seen or 0} events seen)"
    )
    table = Table("#", "item", "categories", "score", "why", title=title, title_justify="left", min_width=90)
    for rank, (item, score) in enumerate(recs.items, 1):
        mark = "*" if cats.get(item) and cats[item][0] in liked else ""
        reason = recs.reasons.get(item)
        table.add_row(
            f"{rank}{mark}", item, ",".join(cats.get(item, ())), f"{score:.3f}", reason.text if reason else ""
        )
    console.print(table)


async def run(
    settings: Settings, *, users: int, items: int, events: int, rate: float, seed: int, console: Console
) -> dict[str, object]:
    """Stream the demo and print what the engine did with it; returns the summary figures."""
    demo, metrics_url = await _start_worker(settings, console)
    store = RedisStore.from_url(demo.redis, demo.namespace)
    try:
        await _wait("the demo worker's first heartbeat", store.workers, 90.0)
        manifest = await produce.simulate(
            demo,
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

        await _wait("the worker catching up", caught_up, 180.0)
        fresh = await freshness(store, last_ts)
        world = Clickstream(users, items, n_categories=12, seed=seed)
        cats = {record.item_id: record.categories for record in world.items()}
        lists = {user: await store.read(user, K) for user in last_ts}
        for user in SHOWN:
            if user in lists:
                _show_user(console, user, lists[user], world, cats)
        summary = await _compare(console, world, events, lists, cats, metrics_url)
        summary.update(
            namespace=demo.namespace,
            worker_pid=_worker_pid(settings),
            events=float(manifest["events"]),
            freshness_p50_ms=_percentile(fresh, 50),
            freshness_p99_ms=_percentile(fresh, 99),
        )
        console.print(
            f"freshness (event -> the user's new list in Redis) over {len(fresh)} users: "
            f"p50 {summary['freshness_p50_ms']:.1f} ms, p99 {summary['freshness_p99_ms']:.1f} ms"
        )
        _next_steps(console, demo, metrics_url)
        return summary
    finally:
        await store.close()


async def _compare(
    console: Console,
    world: Clickstream,
    events: int,
    lists: Mapping[str, Recommendations],
    cats: Mapping[str, Sequence[str]],
    metrics_url: str,
) -> dict[str, object]:
    """The engine's live figures beside every simple baseline's on the same stream."""
    hits, scored = await _live_hit_rate(metrics_url)

    def share(top: Mapping[str, Sequence[str]]) -> float:
        shares = [
            taste_share(top[u], _favourites(world, u), cats)
            for u, recs in lists.items()
            if (recs.events_seen or 0) >= MIN_EVENTS and u in top
        ]
        return sum(shares) / len(shares) if shares else 0.0

    engine_share = share({u: [i for i, _ in r.items] for u, r in lists.items()})
    table = Table(
        "ranker",
        f"HR@{K}",
        "scored events",
        f"top-{K} share in true top-2 tastes",
        title="quality on this stream",
        title_justify="left",
        caption=f"engine: the worker's own prequential HR@{K} (its /metrics); baselines: scored the same way "
        f"in-process on the same stream; taste share over users with >= {MIN_EVENTS} events",
        caption_justify="left",
    )
    live = (f"{hits / max(scored, 1):.3f}", str(scored), f"{engine_share:.2f}")
    table.add_row("engine (live)", *live)
    summary: dict[str, object] = {"engine_hr": hits / max(scored, 1), "engine_share": engine_share}
    for name, factory in RECOMMENDERS.items():
        if name == "hybrid":
            continue
        baseline = score_stream(factory(0), world.items(), world.events(events), k=K)
        baseline_share = share(baseline.lists)
        row = (f"{baseline.hit_rate:.3f}", str(baseline.scored), f"{baseline_share:.2f}")
        table.add_row(f"{name} (baseline)", *row)
        summary[f"{name}_hr"] = baseline.hit_rate
        summary[f"{name}_share"] = baseline_share
    console.print(table)
    return summary


def _next_steps(console: Console, demo: Settings, metrics_url: str) -> None:
    env = f"PERSONALIZE_NAMESPACE={demo.namespace}"
    console.print(
        f"\nThe demo's worker keeps running in namespace {demo.namespace} (the next demo stops it).\n"
        f"  worker metrics:  {metrics_url}\n"
        f"  live dashboard:  {env} .venv/bin/personalize dashboard --metrics-url {metrics_url}\n"
        f"                   then open http://{demo.dashboard_host}:{demo.dashboard_port}/\n"
        f"  a user's list:   {env} .venv/bin/personalize recs u7\n"
        f"  the HTTP API:    {env} .venv/bin/personalize api   (then GET /v1/recommendations/u7)\n"
        f"  more traffic:    {env} .venv/bin/personalize simulate --events 5000\n"
        "  quality offline: .venv/bin/personalize replay ../shared/datasets/ml-latest-small/ratings.csv\n"
        "  stop everything: .venv/bin/personalize stack down",
        soft_wrap=True,
    )
