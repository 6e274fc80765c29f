"""The ``personalize`` command line: local stack, worker, simulated and historical traffic, reading recs.

Thin: parses options, then calls the module that does the job; the evaluation commands live in
`engine.cli.evaluation`, the serving ones in `engine.cli.serving`, checkpoints in `engine.cli.checkpoints`,
the stack and its workers in `engine.cli.stack`, the worker's health check in `engine.cli.health`,
erasure in `engine.cli.forget`, tenants' Redis users in `engine.cli.tenants`.
Progress and logs go to stderr so that ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

__all__ = ["app"]

import os

# Before numpy loads: the API and the worker multiply small matrices (a bandit decision is 10 x 289)
# while serving an event loop, where OpenBLAS threads only contend (0.6 ms vs 9-18 ms per decision
# measured on 2 cores). Set OPENBLAS_NUM_THREADS yourself to override.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import asyncio
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from engine.cli import checkpoints as checkpoint_cli
from engine.cli import evaluation as eval_cli
from engine.cli import forget as forget_cli
from engine.cli import health as health_cli
from engine.cli import serving as serve_cli
from engine.cli import stack as stack_cli
from engine.cli import tenants as tenant_cli
from engine.cli.support import err, settings_or_exit, table_console
from engine.ingest import produce as producing
from engine.store.redis_store import RedisStore

app = typer.Typer(no_args_is_help=True, help="Streaming personalization engine.", add_completion=False)
app.add_typer(stack_cli.app, name="stack")
app.add_typer(checkpoint_cli.app, name="checkpoint")
app.add_typer(tenant_cli.app, name="tenant")
# Unnamed: their commands join the top level (`personalize replay`, `personalize api`, ...).
app.add_typer(eval_cli.app)
app.add_typer(serve_cli.app)
app.add_typer(health_cli.app)
app.add_typer(forget_cli.app)


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
    out: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Write the stream to this JSON Lines file instead of Kafka (and the users' "
            "true tastes beside it, as NAME.tastes.json), for `personalize replay`.",
        ),
    ] = None,
    onboarding: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="--out: share of users who like their two favourite categories at sign-up."
        ),
    ] = 0.0,
    step_ms: Annotated[int, typer.Option(min=1, help="--out: milliseconds between events.")] = 1000,
    unavailable: Annotated[
        str, typer.Option(help="Comma-separated item ids sent as unavailable (out of stock) in the catalog.")
    ] = "",
) -> None:
    """Stream a synthetic clickstream (catalog first, then events stamped with the current time), or
    write it to a file with --out (events stamped from 2023-11-14 on, --step-ms apart)."""
    if out is not None:
        from engine.ingest import logs
        from models.synth import Clickstream

        world = Clickstream(
            users, items, n_categories=categories, seed=seed, step_ms=step_ms, drift_at=drift_at,
            drift_fraction=drift_fraction,
        )  # fmt: skip
        written = logs.write_log(out, logs.synthetic_log(world, events, onboarding=onboarding))
        logs.write_tastes(logs.tastes_path(out), world)
        err.print(f"wrote {written} records to {out} and the users' tastes to {logs.tastes_path(out)}")
        return
    settings = settings_or_exit()
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
            unavailable=[i.strip() for i in unavailable.split(",") if i.strip()],
        )
    )
    if manifest is not None:
        manifest.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    err.print(
        f"sent {report['items']} catalog records and {report['events']} events "
        f"to {settings.events_topic} in {report['seconds']:.1f}s"
    )
    if report["dropped_no_consent"]:
        err.print(f"left out {report['dropped_no_consent']} events of users without consent")


@app.command()
def demo(
    users: Annotated[int, typer.Option(min=3)] = 200,
    items: Annotated[int, typer.Option(min=12)] = 300,
    events: Annotated[int, typer.Option(min=1)] = 6_000,
    # One worker drains 1,300-2,000 events/s here (docs/benchmarks.md); stream well below that so the
    # freshness shown is the engine's, not a backlog's.
    rate: Annotated[float, typer.Option(min=1.0, help="Events per second.")] = 300.0,
    seed: Annotated[int, typer.Option()] = 7,
    json: Annotated[
        bool, typer.Option("--json", help="Tables to stderr, the summary figures as JSON to stdout.")
    ] = False,
) -> None:
    """Start a worker in a fresh namespace, stream a simulated clickstream, and show what the engine
    learned: users' lists with reasons against their true tastes, live HR@10 beside simple baselines,
    freshness."""
    from engine.cli import demo as demo_run

    summary = asyncio.run(
        demo_run.run(
            settings_or_exit(),
            users=users,
            items=items,
            events=events,
            rate=rate,
            seed=seed,
            console=err if json else Console(),
        )
    )
    if json:
        typer.echo(orjson.dumps(summary).decode())


@app.command()
def produce(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="History file.")],
    format: Annotated[str, typer.Option("--format", help="movielens (ratings.csv) or jsonl.")] = "jsonl",  # noqa: A002
) -> None:
    """Backfill history into Kafka through the same path as live events."""
    if format not in ("movielens", "jsonl"):
        err.print("[red]error:[/] --format must be movielens or jsonl")
        raise typer.Exit(2)
    settings = settings_or_exit()
    sent = asyncio.run(producing.backfill(settings, file, format, console=err))
    err.print(f"sent {sent['items']} catalog records and {sent['events']} records to {settings.events_topic}")
    if sent["dropped_no_consent"]:
        err.print(f"left out {sent['dropped_no_consent']} events of users without consent")


@app.command()
def recs(
    user: Annotated[str, typer.Argument(help="User id.")],
    n: Annotated[int, typer.Option(min=1, help="How many items.")] = 20,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Read a user's current recommendations from Redis."""
    settings = settings_or_exit()

    async def read() -> dict[str, object]:
        store = RedisStore.from_url(settings.redis, settings.namespace)
        try:
            # Stored under the user's pseudonym when the edge pseudonymizes; shown under the id given.
            return {**(await store.read(settings.pseudonyms.of(user), n)).to_json(), "user_id": user}
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
    table_console().print(table)
