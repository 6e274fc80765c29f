"""The scaling run's analysis: replicated and partitioned CPU per event, the 16-worker projection, the
targets of issue G and the table shown after a run.

Pure arithmetic on the measured per-count results (`engine.bench.scaling`); no I/O.
"""

from __future__ import annotations

__all__ = [
    "PROJECTED_WORKERS",
    "SCALING_TARGETS",
    "analyse",
    "machine_ceiling",
    "measured_projection",
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


def table(report: dict[str, Any]) -> Table:
    """One row per worker count, then the derived figures against their targets."""
    t = Table(
        "workers",
        "events/s",
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
            f"{c['events_per_s']:,.0f}",
            f"{c['cpu_us_per_event']:,.0f}",
            f"{c['services_cpu_us_per_event']:,.0f}" if "services_cpu_us_per_event" in c else "",
            f"{c['freshness_ms']['p50']:,.0f} / {c['freshness_ms']['p99']:,.0f}",
            f"{sum(rss) / len(rss):,.0f}",
            f"{c['rss_mb_per_100k_users']:,.0f}",
            f"{c['redis_bytes']['total']:,.0f}",
        )
    if report.get("bare_faust"):
        t.add_row("bare Faust", f"{report['bare_faust']['bare_faust_per_s']:,.0f}", *[""] * 6)
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
    if "two_over_one_ceiling" in report:
        ceiling = f"{report['two_over_one_ceiling']:,.2f}"
        t.add_row("two_over_one_ceiling", ceiling, "(this machine)", *[""] * 5)
    for field, verdict in report["targets"].items():
        mark = "[green]met[/]" if verdict["met"] else "[red]missed[/]"
        t.add_row(field, f"{verdict['value']:,.3f}", verdict["target"], mark, *[""] * 4)
    return t
