"""``personalize replay|bench|bandit-bench|ope``: offline evaluation and benchmarks of the engine.

Thin like the rest of the CLI: parses options, calls the module that measures, prints a table or JSON.
Heavy modules are imported inside each command so that other commands start fast.
"""

from __future__ import annotations

__all__ = ["app"]

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from engine.cli.support import err, settings_or_exit, table_console
from engine.ops.settings import Settings
from schemas.errors import PersonalizeError

if TYPE_CHECKING:
    from models.registry import Recommender

app = typer.Typer()


def _replay_records(
    path: Path, fmt: str, movies: Path | None, tags: Path | None, catalog: Path | None
) -> tuple[list[Any], dict[str, Any]]:
    """The log's records (a list: the progress bar needs its length) and, for MovieLens, its catalog."""
    from engine.evaluation import replay as replaying
    from engine.ingest import logs

    if fmt == "movielens":
        events, items = replaying.load_movielens(path, movies, tags)
        return list(events), dict(items)
    records: list[Any] = list(logs.read_log(catalog)) if catalog is not None else []
    return records + list(logs.read_log(path)), {}


def _replay_table(report: dict[str, Any], k: int) -> Table:
    table = Table(
        "ranker",
        f"HR@{k}",
        f"NDCG@{k}",
        "coverage",
        "top-2 share",
        "new users",
        "onboarded",
        "new items",
        title=f"{report['events_scored']} of {report['events']} events scored; HR@{k} per cold-start slice "
        "(scored events)",
    )
    rows = {f"{report['model_version']} (ours)": report, **report["baselines"]}
    for name, result in rows.items():
        slices = result["slices"]
        share = f"{result['top2_share']:.3f}" if "top2_share" in result else "-"
        table.add_row(
            name,
            f"{result['hr']:.4f}",
            f"{result['ndcg']:.4f}",
            f"{result['coverage']:.3f}",
            share,
            *(
                f"{slices[s]['hr']:.4f} ({slices[s]['scored']})" if slices[s]["scored"] else "-"
                for s in ("new_users", "onboarded_new_users", "new_items")
            ),
        )
    return table


@app.command()
def replay(
    log: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="History file: ratings.csv or a JSON Lines log."),
    ],
    format: Annotated[  # noqa: A002
        str,
        typer.Option("--format", help="movielens, jsonl, or auto (by the file's suffix: .csv is movielens)."),
    ] = "auto",
    catalog: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="jsonl: catalog records learned before the log."),
    ] = None,
    tastes: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="jsonl: users' true tastes (default: LOG.tastes.json if present).",
        ),
    ] = None,
    movies: Annotated[Path | None, typer.Option(help="movies.csv (default: beside the ratings).")] = None,
    tags: Annotated[Path | None, typer.Option(help="tags.csv (default: beside the ratings).")] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Length of the ranked list scored.")] = 10,
    from_ts: Annotated[
        int | None, typer.Option("--from-ts", help="Score only events at or after this epoch time (s or ms).")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    river: Annotated[
        str | None,
        typer.Option(
            "--river",
            help="A River classifier spec (YAML/JSON inline or a file) re-ranking the model's lists, as "
            "PERSONALIZE_RIVER_RERANKER does in the worker.",
        ),
    ] = None,
    river_top: Annotated[
        int, typer.Option("--river-top", min=2, help="Items the River stage re-orders.")
    ] = 50,
) -> None:
    """Prequential replay of a history through the worker's model beside simple baselines: HR@k, NDCG@k,
    coverage, cold-start slices and, with true tastes, the share of each ranker's lists in them."""
    from rich.progress import Progress

    from engine.evaluation import replay as replaying
    from engine.ingest import logs

    fmt = format if format != "auto" else ("movielens" if log.suffix.lower() == ".csv" else "jsonl")
    if fmt not in ("movielens", "jsonl"):
        err.print("[red]error:[/] --format must be movielens, jsonl or auto")
        raise typer.Exit(2)
    records, items = _replay_records(log, fmt, movies, tags, catalog)
    truth_file = tastes or (logs.tastes_path(log) if fmt == "jsonl" else None)
    truth = logs.read_tastes(truth_file) if truth_file is not None and truth_file.exists() else None
    since = None if from_ts is None else (from_ts * 1000 if from_ts < 10**11 else from_ts)
    # Two refreshes a second: the bar's thread competes for the GIL with the replay it times.
    with Progress(console=err, transient=True, refresh_per_second=2) as bar:
        task = bar.add_task("replaying", total=len(records))
        result = replaying.replay(
            records, items, k=k, from_ts=since, tastes=truth, progress=lambda n: bar.advance(task, n),
            model=_river_model(river, river_top),
        )  # fmt: skip
    report = result.to_json()
    if result.invalid:
        err.print(
            f"[yellow]{result.invalid} line(s) could not be read and were skipped;[/] "
            f"first: {result.first_invalid}"
        )
    if json:
        typer.echo(orjson.dumps(report).decode())
        return
    table_console().print(_replay_table(report, k))
    err.print(
        f"{report['events_per_s']:.0f} scored events/s; "
        f"the model {report['model_us_per_event']:.0f} us per event"
        + (f"; top-2 share over {report['share_users']} users with >= 15 events" if truth else "")
    )


def _river_model(spec: str | None, top: int) -> Recommender | None:
    """The replay's model with a River second stage, or None (the built-in model)."""
    if spec is None:
        return None
    from engine.evaluation.replay import REPLAY_HALF_LIFE_MS
    from models.river_recommender import RiverRecommender

    try:
        document = Settings(river_reranker=spec).river_spec
        return RiverRecommender(document, top=top, half_life_ms=REPLAY_HALF_LIFE_MS)
    except (PersonalizeError, ValueError, TypeError, ImportError) as exc:
        err.print(f"[red]error:[/] --river: {exc}")
        raise typer.Exit(2) from None


def _worker_counts(value: str | None) -> tuple[int, ...]:
    """``--workers 1,2,4`` as a tuple (empty without the option)."""
    if not value:
        return ()
    try:
        counts = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise typer.BadParameter("a comma-separated list of worker counts, e.g. 1,2,4") from None
    if not counts or any(n < 1 or n > 64 for n in counts):
        raise typer.BadParameter("worker counts must be between 1 and 64")
    return counts


@app.command()
def bench(
    events: Annotated[
        int, typer.Option(min=10, help="Events for the throughput phase (the backlog with --workers).")
    ] = 20_000,
    users: Annotated[int, typer.Option(min=1, help="Users u1..uN.")] = 2_000,
    items: Annotated[int, typer.Option(min=12, help="Items i1..iM in the live catalog.")] = 3_000,
    workers: Annotated[
        str | None,
        typer.Option(
            help="Worker counts, e.g. 1,2,4: drain a backlog with each and report the scaling instead."
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    phases: Annotated[
        bool,
        typer.Option(
            "--phases",
            help="With --workers: also time the owner's path phase by phase (parse, quality, learn, rank, "
            "explain, write, rest), in a run of its own.",
        ),
    ] = False,
    rounds: Annotated[
        int,
        typer.Option(
            min=1,
            help="With --workers: drains per worker count, the counts taking turns; each count's figures "
            "are its median drain's.",
        ),
    ] = 5,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the JSON report (bench/results/latest.json, or scaling.json with --workers)."
        ),
    ] = None,
    river: Annotated[
        str | None,
        typer.Option(
            "--river",
            help="A River classifier spec (YAML/JSON inline or a file): the worker runs with it as "
            "PERSONALIZE_RIVER_RERANKER (single worker only; the in-process model-cost phases are skipped).",
        ),
    ] = None,
) -> None:
    """Throughput, raw Kafka ceiling, freshness, lookups, catalog scaling and memory on the local stack;
    with --workers, events/s, CPU and memory per worker count against a bare Faust agent."""
    from engine import bench as benchmark

    counts = _worker_counts(workers)
    if river is not None:
        if counts:
            err.print("[red]error:[/] --river runs the single-worker bench; leave out --workers")
            raise typer.Exit(2)
        _river_model(river, 50)  # a bad spec stops here, not in the worker's log
    target = out or Path("bench/results") / ("scaling.json" if counts else "latest.json")
    if counts:
        scaling = benchmark.ScalingConfig(
            workers=counts, backlog=events, users=users, items=items, phases=phases, rounds=rounds
        )
        report = benchmark.run_scaling(settings_or_exit(), scaling, console=err, log_dir=target.parent)
    else:
        config = benchmark.BenchConfig(events=events, users=users, items=items, river=river)
        report = benchmark.run(settings_or_exit(), config, console=err, log_dir=target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    if json:
        typer.echo(orjson.dumps(report).decode())
    else:
        table_console().print(benchmark.scaling_table(report) if counts else benchmark.table(report))
    err.print(f"report written to {target}")


@app.command("bandit-bench")
def bandit_bench(
    rounds: Annotated[int, typer.Option(min=1, help="Rounds each policy plays.")] = 5000,
    seed: Annotated[int, typer.Option(help="Seed of the environment and of every policy.")] = 0,
    bias: Annotated[
        float, typer.Option(help="Base logit of a click: -1 gives click rates of 35-75%, -5 of 3-15%.")
    ] = -1.0,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Our contextual bandits vs Vowpal Wabbit vs uniform random on one synthetic environment: regret."""
    from engine.evaluation import bandit_bench as bench

    report = bench.run(rounds, seed, bias=bias, console=err)
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
    table_console().print(table)


@app.command("ope-log")
def ope_log(
    out: Annotated[Path, typer.Argument(file_okay=False, help="Directory for log.csv and item_context.csv.")],
    impressions: Annotated[int, typer.Option(min=1, help="Impressions; one row per shown item.")] = 60_000,
    items: Annotated[int, typer.Option(min=2, help="Items in the catalog.")] = 34,
    positions: Annotated[int, typer.Option(min=1, help="Items shown per impression.")] = 3,
    ctr: Annotated[float, typer.Option(min=0.0001, max=0.5, help="Logged click-through rate.")] = 0.005,
    seed: Annotated[int, typer.Option(help="Seed of the generator.")] = 0,
) -> None:
    """Write a seeded synthetic log shaped like real traffic (random slates, clicks under 1%) for `ope`."""
    from engine.evaluation import ope as off_policy
    from models.bandit_log import sparse_log

    if positions > items:
        err.print("[red]error:[/] --positions must not exceed --items")
        raise typer.Exit(2)
    data = sparse_log(
        n_impressions=impressions, n_items=items, n_positions=positions, base_ctr=ctr, seed=seed
    )
    log, item_table = off_policy.write_log(out, data)
    err.print(f"{len(data.log_rows)} rows, click-through rate {data.clicks.mean():.4f}: {log}, {item_table}")


@app.command()
def ope(
    log: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Open Bandit Pipeline log CSV.")],
    items: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="item_context.csv of the log.")],
    train_fraction: Annotated[
        float, typer.Option(min=0.05, max=0.95, help="Share of the log (oldest first) to learn from.")
    ] = 0.5,
    policy: Annotated[
        str,
        typer.Option(
            help="logts, linucb, lints, egreedy, uniform, or one of River's (river-linucb, river-ts, "
            "river-bayes-ucb, river-ucb, river-egreedy)."
        ),
    ] = "logts",
    seed: Annotated[int, typer.Option(help="Seed of the policy.")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Learn a bandit policy off-policy from a log, then estimate its value (IPS, SNIPS, DR) on the rest."""
    from engine.evaluation import ope as off_policy
    from models.bandits import POLICIES
    from models.river_bandits import RANK_POLICIES

    if policy not in POLICIES and policy not in RANK_POLICIES:
        # Not river-exp3: its update divides by its own latest pull's probability, which a log lacks.
        err.print(f"[red]error:[/] --policy must be one of {', '.join([*POLICIES, *RANK_POLICIES])}")
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
        "x logging (95%)",
        title=f"{policy}: learned on {result['rounds_train']} rounds, evaluated on {result['rounds_eval']}",
    )
    table.add_row(
        "logging policy",
        f"{logged['value']:.4f}",
        f"{logged['ci_low']:.4f} .. {logged['ci_high']:.4f}",
        "",
        "1",
    )
    for name, e in result["estimates"].items():
        interval = f"{e['ci_low']:.4f} .. {e['ci_high']:.4f}"
        lift = f"{e['lift']:.2f} ({e['lift_ci_low']:.2f} .. {e['lift_ci_high']:.2f})" if "lift" in e else ""
        table.add_row(name, f"{e['value']:.4f}", interval, f"{e['effective_sample_size']:.0f}", lift)
    table_console().print(table)
