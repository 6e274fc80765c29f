"""The ``personalize`` command line: local stack, worker, simulated and historical traffic, reading recs.

Thin: parses options, then calls the module that does the job. Progress and logs go to stderr so that
``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

__all__ = ["app", "main"]

import os

# Before numpy loads: the API and the worker multiply small matrices (a bandit decision is 10 x 289)
# while serving an event loop, where OpenBLAS threads only contend (0.6 ms vs 9-18 ms per decision
# measured on 2 cores). Set OPENBLAS_NUM_THREADS yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from engine import checkpoint_cli, stack, workers
from engine import produce as producing
from engine.redis_store import RedisStore
from engine.settings import Settings, load
from schemas.errors import PersonalizeError

app = typer.Typer(no_args_is_help=True, help="Streaming personalization engine.", add_completion=False)
stack_app = typer.Typer(no_args_is_help=True, help="The local Kafka (KRaft) + Redis stack on loopback.")
app.add_typer(stack_app, name="stack")
api_key_app = typer.Typer(no_args_is_help=True, help="API keys of the HTTP API.")
app.add_typer(api_key_app, name="api-key")
experiments_app = typer.Typer(no_args_is_help=True, help="A/B experiments of rank/reward.")
app.add_typer(experiments_app, name="experiments")
app.add_typer(checkpoint_cli.app, name="checkpoint")
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        return load()
    except PersonalizeError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


@stack_app.command("up")
def stack_up() -> None:
    """Start Kafka and Redis (fetching Kafka's jars once) and wait until both answer."""
    _print_status(stack.up(_settings(), log=lambda m: err.print(f"[dim]{m}[/]")))


@stack_app.command("down")
def stack_down() -> None:
    """Stop the Kafka and Redis processes that `stack up` started."""
    stack.down(_settings(), log=lambda m: err.print(m))


@stack_app.command("status")
def stack_status() -> None:
    """Say what runs where."""
    _print_status(stack.status(_settings()))


def _print_status(statuses: list[stack.ServiceStatus]) -> None:
    table = Table("service", "state", "pid", "address", "log")
    for s in statuses:
        state = "[green]running[/]" if s.running else "[red]stopped[/]"
        table.add_row(s.service.value, state, str(s.pid or "-"), s.address, str(s.log))
    Console().print(table)


@app.command()
def worker() -> None:
    """Run the Faust worker: consume events, learn, publish recommendations to Redis."""
    settings = _settings()
    from prometheus_client import CollectorRegistry, start_http_server

    from streams.app import create_app
    from streams.checkpointer import restore

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(producing.ensure_engine_topics(settings))
    restored = loop.run_until_complete(restore(settings, say=lambda m: err.print(f"[dim]{m}[/]")))
    registry = CollectorRegistry()
    faust_app, _ = create_app(settings, registry, restored)
    workers.register(settings)
    if settings.metrics_port:
        try:
            server, _ = start_http_server(
                settings.metrics_port, addr=settings.metrics_host, registry=registry
            )
        except OSError:
            # Another worker on this host has the port: serve on a free one rather than not at all.
            server, _ = start_http_server(0, addr=settings.metrics_host, registry=registry)
        err.print(f"metrics on http://{settings.metrics_host}:{server.server_port}/metrics")
    from faust.worker import Worker

    Worker(faust_app, loop=loop, loglevel=settings.log_level, quiet=True).execute_from_commandline()


@app.command()
def simulate(
    users: Annotated[int, typer.Option(min=1, help="Users u1..uN.")] = 200,
    items: Annotated[int, typer.Option(min=1, help="Items i1..iM.")] = 300,
    events: Annotated[int, typer.Option(min=0, help="Events to send.")] = 5000,
    rate: Annotated[
        float | None, typer.Option(min=0.1, help="Events per second (default: as fast as possible).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    categories: Annotated[int, typer.Option(min=1, help="Item categories.")] = 12,
    manifest: Annotated[
        Path | None, typer.Option(help="Write a JSON manifest of events sent per user.")
    ] = None,
    drift_at: Annotated[
        int | None, typer.Option(min=0, help="From this event index on, some users' tastes change.")
    ] = None,
    drift_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of users whose tastes change at --drift-at.")
    ] = 0.5,
) -> None:
    """Stream a synthetic clickstream (catalog first, then events stamped with the current time)."""
    settings = _settings()
    report = asyncio.run(
        producing.simulate(
            settings,
            users=users,
            items=items,
            events=events,
            rate=rate,
            seed=seed,
            categories=categories,
            console=err,
            drift_at=drift_at,
            drift_fraction=drift_fraction,
        )
    )
    if manifest is not None:
        manifest.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    err.print(
        f"sent {report['items']} catalog records and {report['events']} events "
        f"to {settings.events_topic} in {report['seconds']:.1f}s"
    )


@app.command()
def demo(
    users: Annotated[int, typer.Option(min=3)] = 200,
    items: Annotated[int, typer.Option(min=12)] = 300,
    events: Annotated[int, typer.Option(min=1)] = 3_000,
    # One worker handles about 180 events/s today (issue E makes it fast); stream below that so
    # the freshness shown is the engine's, not a backlog's.
    rate: Annotated[float, typer.Option(min=1.0, help="Events per second.")] = 100.0,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Run a worker, stream a simulated clickstream, show live recommendations and freshness."""
    from engine import demo as demo_run

    asyncio.run(
        demo_run.run(
            _settings(), users=users, items=items, events=events, rate=rate, seed=seed, console=Console()
        )
    )


@app.command()
def produce(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="History file.")],
    format: Annotated[str, typer.Option("--format", help="movielens (ratings.csv) or jsonl.")] = "jsonl",  # noqa: A002
) -> None:
    """Backfill history into Kafka through the same path as live events."""
    if format not in ("movielens", "jsonl"):
        err.print("[red]error:[/] --format must be movielens or jsonl")
        raise typer.Exit(2)
    settings = _settings()
    sent = asyncio.run(producing.backfill(settings, file, format, console=err))
    err.print(f"sent {sent['items']} catalog records and {sent['events']} records to {settings.events_topic}")


@app.command()
def recs(
    user: Annotated[str, typer.Argument(help="User id.")],
    n: Annotated[int, typer.Option(min=1, help="How many items.")] = 20,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Read a user's current recommendations from Redis."""
    settings = _settings()

    async def read() -> dict[str, object]:
        store = RedisStore.from_url(settings.redis, settings.namespace)
        try:
            return (await store.read(user, n)).to_json()
        finally:
            await store.close()

    result = asyncio.run(read())
    if json:
        typer.echo(orjson.dumps(result).decode())
        return
    table = Table(
        "#",
        "item",
        "score",
        "why",
        title=f"{user}: {result['events_seen'] or 0} events seen, "
        f"model {result['model_version']}, updated_ms {result['updated_ms']}",
    )
    entries: list[dict[str, Any]] = result["items"]  # type: ignore[assignment]
    for rank, entry in enumerate(entries, 1):
        table.add_row(str(rank), entry["item_id"], f"{entry['score']:.4f}", entry["reason"] or "")
    Console().print(table)


@app.command()
def replay(
    ratings: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="History file (ratings.csv).")],
    format: Annotated[str, typer.Option("--format", help="History format: movielens.")] = "movielens",  # noqa: A002
    movies: Annotated[Path | None, typer.Option(help="movies.csv (default: beside the ratings).")] = None,
    tags: Annotated[Path | None, typer.Option(help="tags.csv (default: beside the ratings).")] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Length of the ranked list scored.")] = 10,
    from_ts: Annotated[
        int | None, typer.Option("--from-ts", help="Score only events at or after this epoch time (s or ms).")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Prequential replay of a history through the worker's model: HR@k, NDCG@k, coverage, baselines."""
    from rich.progress import Progress

    from engine import replay as replaying

    if format != "movielens":
        err.print("[red]error:[/] --format must be movielens")
        raise typer.Exit(2)
    events, items = replaying.load_movielens(ratings, movies, tags)
    since = None if from_ts is None else (from_ts * 1000 if from_ts < 10**11 else from_ts)
    # Two refreshes a second: the bar's thread competes for the GIL with the replay it times.
    with Progress(console=err, transient=True, refresh_per_second=2) as bar:
        task = bar.add_task("replaying", total=len(events))
        report = replaying.replay(
            events, items, k=k, from_ts=since, progress=lambda n: bar.advance(task, n)
        ).to_json()
    if json:
        typer.echo(orjson.dumps(report).decode())
        return
    table = Table(
        "ranker",
        f"HR@{k}",
        f"NDCG@{k}",
        title=f"{report['events_scored']} of {report['events']} events scored",
    )
    table.add_row(f"{report['model_version']} (ours)", f"{report['hr']:.4f}", f"{report['ndcg']:.4f}")
    baselines: dict[str, dict[str, float]] = report["baselines"]  # type: ignore[assignment]
    for name, result in baselines.items():
        table.add_row(name, f"{result['hr']:.4f}", f"{result['ndcg']:.4f}")
    Console().print(table)
    err.print(f"catalog coverage {report['coverage']:.3f}, {report['events_per_s']:.0f} scored events/s")


@app.command()
def bench(
    events: Annotated[int, typer.Option(min=10, help="Events for the throughput phase.")] = 20_000,
    users: Annotated[int, typer.Option(min=1, help="Users u1..uN.")] = 2_000,
    items: Annotated[int, typer.Option(min=12, help="Items i1..iM in the live catalog.")] = 3_000,
    json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    out: Annotated[Path, typer.Option(help="Where to write the JSON report.")] = Path(
        "bench/results/latest.json"
    ),
) -> None:
    """Throughput, raw Kafka ceiling, freshness, lookups, catalog scaling and memory on the local stack."""
    from engine import bench as benchmark

    config = benchmark.BenchConfig(events=events, users=users, items=items)
    report = benchmark.run(_settings(), config, console=err, log_dir=out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if json:
        typer.echo(orjson.dumps(report).decode())
    else:
        Console().print(benchmark.table(report))
    err.print(f"report written to {out}")


@app.command("bandit-bench")
def bandit_bench(
    rounds: Annotated[int, typer.Option(min=1, help="Rounds each policy plays.")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the environment and of every policy.")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Our contextual bandits vs Vowpal Wabbit vs uniform random on one synthetic environment: regret."""
    from engine import bandit_bench as bench

    report = bench.run(rounds, seed, console=err)
    if json:
        typer.echo(orjson.dumps(report).decode())
        return
    table = Table(
        "policy",
        "regret",
        "mean reward",
        "seconds",
        title=f"{rounds} rounds, seed {seed}; best mean reward {report['best_possible_mean_reward']}",
    )
    for name, result in sorted(report["policies"].items(), key=lambda kv: kv[1]["regret"]):
        table.add_row(
            name, f"{result['regret']:.1f}", f"{result['mean_reward']:.4f}", f"{result['seconds']:.2f}"
        )
    for name, reason in report["skipped"].items():
        table.add_row(name, "skipped", reason, "")
    Console().print(table)


@app.command()
def ope(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Open Bandit Pipeline log CSV.")],
    items: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="item_context.csv of the log.")],
    train_fraction: Annotated[
        float, typer.Option(min=0.05, max=0.95, help="Share of the log (oldest first) to learn from.")
    ] = 0.5,
    policy: Annotated[str, typer.Option(help="linucb, lints, egreedy or uniform.")] = "linucb",
    seed: Annotated[int, typer.Option(help="Seed of the policy.")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Learn a bandit policy off-policy from a log, then estimate its value (IPS, SNIPS, DR) on the rest."""
    from engine import ope as off_policy
    from models.bandits import POLICIES

    if policy not in POLICIES:
        err.print(f"[red]error:[/] --policy must be one of {', '.join(POLICIES)}")
        raise typer.Exit(2)
    try:
        result = off_policy.evaluate(off_policy.load(log, items), policy, train_fraction, seed)
    except PersonalizeError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if json:
        typer.echo(orjson.dumps(result).decode())
        return
    logged = result["logging_policy_value"]
    table = Table(
        "estimator",
        "value",
        "95% interval",
        "effective n",
        title=f"{policy}: learned on {result['rounds_train']} rounds, evaluated on {result['rounds_eval']}",
    )
    table.add_row(
        "logging policy", f"{logged['value']:.4f}", f"{logged['ci_low']:.4f} .. {logged['ci_high']:.4f}", ""
    )
    for name, e in result["estimates"].items():
        interval = f"{e['ci_low']:.4f} .. {e['ci_high']:.4f}"
        table.add_row(name, f"{e['value']:.4f}", interval, f"{e['effective_sample_size']:.0f}")
    Console().print(table)


@app.command("api")
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default PERSONALIZE_API_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default PERSONALIZE_API_PORT).")
    ] = None,
) -> None:
    """Serve the HTTP API: events to Kafka, recommendations from Redis, OpenAPI at /openapi.json."""
    from engine import api as http_api

    settings = _settings()
    overrides = {k: v for k, v in {"api_host": host, "api_port": port}.items() if v is not None}
    settings = settings.model_copy(update=overrides)
    err.print(f"serving namespace {settings.namespace} on http://{settings.api_host}:{settings.api_port}")
    http_api.run(settings)


@app.command()
def dashboard(
    metrics_url: Annotated[
        list[str] | None,
        typer.Option(help="A worker's /metrics URL; repeat for several (default: from the settings)."),
    ] = None,
) -> None:
    """Serve a live dashboard page: throughput, freshness, HR@k, drift events, experiment variants."""
    from engine.dashboard import serve

    serve(_settings(), metrics_url or [], log=lambda m: err.print(m, soft_wrap=True))


@api_key_app.command("new")
def api_key_new() -> None:
    """Mint an API key: the key goes to stdout, its sha256 (what the server keeps) to stderr."""
    from engine.api import hash_key, new_key

    key = new_key()
    typer.echo(key)
    err.print(
        f"sha256: {hash_key(key)}\nadd it to PERSONALIZE_API_KEY_HASHES (comma-separated) on the API "
        "servers and send the key in the X-API-Key header; the key itself is not stored anywhere"
    )


@experiments_app.command("srm")
def experiments_srm(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Users, decisions and mean reward per variant, and the sample-ratio-mismatch check (exit 1 on one)."""
    from engine.experiment_stats import ExperimentStats
    from engine.experiments import load_experiments

    settings = _settings()
    experiments = load_experiments(settings)

    async def read() -> list[dict[str, Any]]:
        store = RedisStore.from_url(settings.redis, settings.namespace)
        try:
            return await ExperimentStats(store.client, settings.namespace).report(experiments)
        finally:
            await store.close()

    reports = asyncio.run(read())
    if as_json:
        typer.echo(orjson.dumps(reports).decode())
    for report in [] if as_json else reports:
        srm = report["srm"]
        verdict = "[red]MISMATCH[/]" if srm["mismatch"] else "[green]ok[/]"
        table = Table(
            "variant", "expected", "users", "decisions", "rewards", "mean reward",
            title=f"{report['experiment']}: chi2 {srm['chi2']:.2f}, p {srm['p_value']:.4g} {verdict}",
        )  # fmt: skip
        for v in report["variants"]:
            mean = "-" if v["mean_reward"] is None else f"{v['mean_reward']:.4f}"
            table.add_row(
                v["variant"], f"{v['expected_ratio']:.3f}", str(v["users"]), str(v["decisions"]),
                str(v["rewards"]), mean,
            )  # fmt: skip
        Console().print(table)
    if not reports:
        err.print("no experiments configured (PERSONALIZE_EXPERIMENTS or PERSONALIZE_EXPERIMENTS_FILE)")
    if any(r["srm"]["mismatch"] for r in reports):
        raise typer.Exit(1)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app()
    except PersonalizeError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
