"""``personalize api|dashboard|api-key|experiments``: the serving side's commands.

Thin like the rest of the CLI: the HTTP API, the live dashboard, API keys and the experiments' report.
"""

from __future__ import annotations

__all__ = ["app"]

import asyncio
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from engine.cli.support import err, settings_or_exit, table_console
from engine.store.redis_store import RedisStore

app = typer.Typer()
api_key_app = typer.Typer(no_args_is_help=True, help="API keys of the HTTP API.")
app.add_typer(api_key_app, name="api-key")
experiments_app = typer.Typer(no_args_is_help=True, help="A/B experiments of rank/reward.")
app.add_typer(experiments_app, name="experiments")


@app.command("api")
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default PERSONALIZE_API_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default PERSONALIZE_API_PORT).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes serving the port.")] = 1,
) -> None:
    """Serve the HTTP API: events to Kafka, recommendations from Redis, OpenAPI at /openapi.json."""
    from engine import api as http_api

    settings = settings_or_exit()
    overrides = {k: v for k, v in {"api_host": host, "api_port": port}.items() if v is not None}
    settings = settings.model_copy(update=overrides)
    err.print(f"serving namespace {settings.namespace} on http://{settings.api_host}:{settings.api_port}")
    http_api.run(settings, workers)


@app.command()
def dashboard(
    metrics_url: Annotated[
        list[str] | None,
        typer.Option(help="A worker's /metrics URL; repeat for several (default: from the settings)."),
    ] = None,
) -> None:
    """Serve a live dashboard page: throughput, freshness, HR@k, drift events, experiment variants."""
    from engine.dashboard import serve

    serve(settings_or_exit(), metrics_url or [], log=lambda m: err.print(m, soft_wrap=True))


@api_key_app.command("new")
def api_key_new(
    name: Annotated[
        str, typer.Option(help="What logs and metrics call the key (letters, digits, _ . -).")
    ] = "app",
    scope: Annotated[
        list[str] | None,
        typer.Option(help="events, read or admin (admin may do everything); repeat for several."),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(help="The namespace whose data the key reaches (default: the API's own)."),
    ] = None,
) -> None:
    """Mint an API key: the key goes to stdout, its settings entry (tenant, name, scopes, sha256) to
    stderr."""
    import re

    from engine.api.auth import Scope, key_entry, new_key

    scopes = scope or ["events"]
    unknown = sorted(set(scopes) - {s.value for s in Scope})
    bad_tenant = tenant is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", tenant)
    if unknown or bad_tenant or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        problem = (
            f"unknown scope(s) {', '.join(unknown)}"
            if unknown
            else "bad tenant"
            if bad_tenant
            else "bad name"
        )
        err.print(f"[red]error:[/] {problem}")
        raise typer.Exit(2)
    key = new_key()
    typer.echo(key)
    err.print(
        f"{key_entry(name, [Scope(s) for s in scopes], key, tenant)}\n"
        "add this entry to PERSONALIZE_API_KEY_HASHES (comma-separated) on the API servers and send the "
        "key in the X-API-Key header; only its sha256 is in the entry, the key is not stored anywhere",
        soft_wrap=True,
    )


@experiments_app.command("srm")
def experiments_srm(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Users, decisions and mean reward per variant, and the sample-ratio-mismatch check (exit 1 on one)."""
    from engine.serving.experiment_stats import ExperimentStats
    from engine.serving.experiments import load_experiments

    settings = settings_or_exit()
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
        table_console().print(table)
    if not reports:
        err.print("no experiments configured (PERSONALIZE_EXPERIMENTS or PERSONALIZE_EXPERIMENTS_FILE)")
    if any(r["srm"]["mismatch"] for r in reports):
        raise typer.Exit(1)
