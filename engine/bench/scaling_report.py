"""The scaling run's analysis: replicated and partitioned CPU per event, the 16-worker projection, the
targets of issue G and the table shown after a run.

Pure arithmetic on the measured per-count results (`engine.bench.scaling`); no I/O.
"""

from __future__ import annotations

__all__ = [
    "DRAIN_FIELDS",
    "PROJECTED_WORKERS",
    "SCALING_TARGETS",
    "analyse",
    "machine_ceiling",
    "measured_projection",
    "median_ceiling",
    "median_drain",
    "projected_rate",
    "replica_cost",
    "split_cost",
    "table",
]

from collections.abc import Sequence
from typing import Any

from rich.table import Table

#: field -> (comparison, threshold, unit).
SCALING_TARGETS: dict[str, tuple[str, float, str]] = {
    "one_worker_over_bare_faust": (">=", 0.3, ""),
    "two_over_one_worker": (">=", 1.6, "x"),
    "projected_events_per_s_16": (">=", 20_000.0, "events/s"),
    "redis_bytes_per_user": ("<=", 512.0, "bytes"),
}

#: Workers (each on a core of its own) of the projection.
PROJECTED_WORKERS = 16


#: What one drain measures (`engine.bench.scaling`): taken together from the median drain of a count.
DRAIN_FIELDS = (
    "namespace", "backlog_write_s", "events_per_s", "window_events", "window_s", "cpu_us_per_event",
    "services_cpu_us_per_event", "replica_cpu_s", "replica_records", "per_worker", "rss_mb_per_worker",
)  # fmt: skip


def _middle(runs: Sequence[dict[str, Any]], field: str) -> dict[str, Any]:
    """The run with the median ``field`` (of an even number, the lower of the middle two)."""
    return sorted(runs, key=lambda run: float(run[field]))[(len(runs) - 1) // 2]


def median_drain(drains: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One worker count's figures over its rounds: the first round's (the one with the freshness and
    memory phases) with every drain figure taken from the median drain by events/s, and each drain's
    rate, CPU and window under ``drains`` (in round order).

    >>> a, b, c = ({"events_per_s": r, "cpu_us_per_event": 1e6 / r, "window_s": 2.0} for r in (500, 400, 450))
    >>> m = median_drain([{**a, "freshness_ms": {"p50": 9}}, b, c])
    >>> m["events_per_s"], m["freshness_ms"], [d["events_per_s"] for d in m["drains"]]
    (450, {'p50': 9}, [500, 400, 450])
    """
    middle = _middle(drains, "events_per_s")
    out = {**drains[0], **{field: middle[field] for field in DRAIN_FIELDS if field in middle}}
    kept = ("events_per_s", "cpu_us_per_event", "services_cpu_us_per_event", "window_s")
    out["drains"] = [{field: drain[field] for field in kept if field in drain} for drain in drains]
    return out


def median_ceiling(ceilings: Sequence[dict[str, float]]) -> dict[str, Any]:
    """The bare Faust agent's median run over the rounds, with every run's rate under ``rounds``.

    >>> median_ceiling([{"bare_faust_per_s": 9.0}, {"bare_faust_per_s": 7.0}, {"bare_faust_per_s": 8.0}])
    {'bare_faust_per_s': 8.0, 'rounds': [9.0, 7.0, 8.0]}
    """
    return {**_middle(ceilings, "bare_faust_per_s"), "rounds": [c["bare_faust_per_s"] for c in ceilings]}


def split_cost(points: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
    """``(replicated, partitioned)`` us per event from ``(workers, CPU us per cluster event)`` points.

    With N workers each event costs the cluster ``replicated * N + partitioned``: the replicated part is
    work every worker does for every event (reading it, learning item-side state from it), the
    partitioned part is done once, by the owner of the event's user. A least-squares line through the
    points; None with fewer than two distinct worker counts.

    >>> split_cost([(1, 700.0), (2, 900.0), (4, 1300.0)])
    (200.0, 500.0)
    >>> split_cost([(1, 700.0)]) is None
    True
    """
    xs = [float(n) for n, _ in points]
    if len(set(xs)) < 2:
        return None
    ys = [cost for _, cost in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return slope, mean_y - slope * mean_x


def projected_rate(replicated: float, partitioned: float, workers: int) -> float:
    """Cluster events/s when each of ``workers`` workers has a core to itself: each spends
    ``replicated + partitioned / workers`` us per cluster event. A negative fitted replicated cost
    (noise) counts as none.

    >>> round(projected_rate(20.0, 640.0, 16))
    16667
    """
    per_worker_us = max(replicated, 0.0) + partitioned / workers
    return 1e6 / per_worker_us


def replica_cost(counts: Sequence[dict[str, Any]]) -> float | None:
    """The replica readers' measured CPU per record they learned for another worker (us), over every
    count that had some; None when none did (one worker only, or no readings).

    >>> one, two = {"replica_cpu_s": 0, "replica_records": 0}, {"replica_cpu_s": 1.5, "replica_records": 3e4}
    >>> replica_cost([one, two])
    50.0
    """
    seconds = sum(float(c.get("replica_cpu_s", 0.0)) for c in counts)
    records = sum(float(c.get("replica_records", 0.0)) for c in counts)
    return seconds / records * 1e6 if records > 0 else None


def measured_projection(owner_us: float, replica_us: float, workers: int) -> float:
    """Cluster events/s of ``workers`` workers, each on a core of its own, from measured costs: an event
    costs its owner ``owner_us`` (one worker's whole CPU per event: its learn, ranking, list and
    changelog) and every other worker ``replica_us`` (its replica reader learning it).

    >>> round(measured_projection(600.0, 50.0, 16))
    11852
    """
    return 1e6 * workers / (owner_us + (workers - 1) * replica_us)


def machine_ceiling(count: dict[str, Any], cores: int) -> float | None:
    """The most events/s this machine's ``cores`` allow at one worker count's measured CPU per event: the
    workers' plus the stack's services' (Kafka, Redis), with every core busy on nothing else. None when
    the services' CPU was not measured.

    >>> machine_ceiling({"cpu_us_per_event": 900.0, "services_cpu_us_per_event": 100.0}, 2)
    2000.0
    """
    services = count.get("services_cpu_us_per_event")
    if services is None:
        return None
    return cores * 1e6 / (float(count["cpu_us_per_event"]) + max(float(services), 0.0))


def analyse(
    counts: list[dict[str, Any]], bare_faust: dict[str, float] | None, cores: int | None = None
) -> dict[str, Any]:
    """The derived figures and the targets' verdicts from the per-count results; with ``cores``, also the
    ceiling the machine puts on 2 workers over 1 (`machine_ceiling` at 2 workers over 1 worker's rate)."""
    by_workers = {c["workers"]: c for c in counts}
    out: dict[str, Any] = {}
    one = by_workers.get(1)
    if one is not None and bare_faust:
        out["one_worker_over_bare_faust"] = one["events_per_s"] / bare_faust["bare_faust_per_s"]
    if one is not None and 2 in by_workers:
        out["two_over_one_worker"] = by_workers[2]["events_per_s"] / one["events_per_s"]
        pairs = zip(by_workers[2].get("drains", []), one.get("drains", []), strict=False)
        # Shown beside the medians' ratio: each round's own (its two drains ~30 s apart).
        out["two_over_one_rounds"] = [two["events_per_s"] / alone["events_per_s"] for two, alone in pairs]
        ceiling = machine_ceiling(by_workers[2], cores) if cores else None
        if ceiling is not None:
            out["two_over_one_ceiling"] = ceiling / one["events_per_s"]
    split = split_cost([(c["workers"], c["cpu_us_per_event"]) for c in counts])
    if split is not None:
        out["replicated_us_per_event"], out["partitioned_us_per_event"] = split
        out["fitted_events_per_s_16"] = projected_rate(*split, PROJECTED_WORKERS)
    replica = replica_cost(counts)
    if replica is not None:
        out["replica_us_per_record"] = replica
    if one is not None and replica is not None:
        # From measured costs (one worker's CPU per event, the replica readers' CPU per record); the fit
        # above is kept beside it, but its 4-worker point shares 2 cores with 6 processes.
        out["projected_events_per_s_16"] = measured_projection(
            one["cpu_us_per_event"], replica, PROJECTED_WORKERS
        )
    elif "fitted_events_per_s_16" in out:
        out["projected_events_per_s_16"] = out["fitted_events_per_s_16"]
    if counts:
        out["redis_bytes_per_user"] = counts[0]["redis_bytes"]["total"]
    verdicts = {}
    for field, (op, threshold, unit) in SCALING_TARGETS.items():
        if field not in out:
            continue
        value = float(out[field])
        met = value >= threshold if op == ">=" else value <= threshold
        verdicts[field] = {
            "value": value,
            "target": f"{op} {threshold:g}{' ' + unit if unit else ''}",
            "met": met,
        }
    out["targets"] = verdicts
    return out


def _rate(rounds: Sequence[float], median: float) -> str:
    """A median rate, with the range of the rounds' when there were several.

    >>> _rate([4100.0, 4300.0, 4200.0], 4200.0), _rate([], 4200.0)
    ('4,200 (4,100-4,300)', '4,200')
    """
    spread = f" ({min(rounds):,.0f}-{max(rounds):,.0f})" if len(rounds) > 1 else ""
    return f"{median:,.0f}{spread}"


def table(report: dict[str, Any]) -> Table:
    """One row per worker count, then the derived figures against their targets."""
    t = Table(
        "workers",
        "events/s (median of the rounds)",
        "CPU us/event",
        "Kafka+Redis CPU us/event",
        "freshness p50/p99 ms",
        "RSS MB/worker",
        "RSS MB/100k users",
        "Redis B/user",
        title=f"personalize bench --workers ({report['seconds']:.0f}s)",
    )
    for c in report["counts"]:
        rss = c["rss_mb_per_worker"]
        t.add_row(
            str(c["workers"]),
            _rate([d["events_per_s"] for d in c.get("drains", [])], c["events_per_s"]),
            f"{c['cpu_us_per_event']:,.0f}",
            f"{c['services_cpu_us_per_event']:,.0f}" if "services_cpu_us_per_event" in c else "",
            f"{c['freshness_ms']['p50']:,.0f} / {c['freshness_ms']['p99']:,.0f}",
            f"{sum(rss) / len(rss):,.0f}",
            f"{c['rss_mb_per_100k_users']:,.0f}",
            f"{c['redis_bytes']['total']:,.0f}",
        )
    if report.get("bare_faust"):
        bare = report["bare_faust"]
        t.add_row("bare Faust", _rate(bare.get("rounds", []), bare["bare_faust_per_s"]), *[""] * 6)
    fields = (
        "replicated_us_per_event",
        "partitioned_us_per_event",
        "replica_us_per_record",
        "owner_in_process_us",
    )
    for field in fields:
        if field in report:
            t.add_row(field, "", f"{report[field]:,.1f}", *[""] * 5)
    for phase, us in report.get("owner_phases_us", {}).items():
        t.add_row(f"owner: {phase}", "", f"{us:,.1f}", *[""] * 5)
    if len(report.get("two_over_one_rounds", [])) > 1:
        rounds = ", ".join(f"{ratio:.2f}" for ratio in report["two_over_one_rounds"])
        t.add_row("two_over_one, per round", rounds, "(each round's drains)", *[""] * 5)
    if "two_over_one_ceiling" in report:
        ceiling = f"{report['two_over_one_ceiling']:,.2f}"
        t.add_row("two_over_one_ceiling", ceiling, "(this machine)", *[""] * 5)
    for field, verdict in report["targets"].items():
        mark = "[green]met[/]" if verdict["met"] else "[red]missed[/]"
        t.add_row(field, f"{verdict['value']:,.3f}", verdict["target"], mark, *[""] * 4)
    return t
