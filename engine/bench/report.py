"""The benchmark's targets (issue E), whether a report meets them, and the table shown after a run.

Targets live here once so the CLI, the JSON file and docs/benchmarks.md agree on them.
"""

from __future__ import annotations

__all__ = ["TARGETS", "judge", "table"]

from typing import Any

from rich.table import Table

#: field (dotted for nested) -> (comparison, threshold, unit). "ratio_1m_10k" is derived.
TARGETS: dict[str, tuple[str, float, str]] = {
    "events_per_s": (">=", 20_000.0, "events/s"),
    "ratio": (">=", 0.2, ""),
    "freshness_ms.p99": ("<=", 250.0, "ms"),
    "lookup_ms.p99": ("<=", 1.0, "ms"),
    "lookups_per_s": (">=", 20_000.0, "lookups/s"),
    "scaling_1m_over_10k": ("<=", 2.0, "x"),
    "redis_bytes_per_user": ("<=", 512.0, "bytes"),
}


def _value(report: dict[str, Any], field: str) -> float:
    if field == "scaling_1m_over_10k":
        return float(report["us_per_event_1m_items"]) / float(report["us_per_event_10k_items"])
    value: Any = report
    for part in field.split("."):
        value = value[part]
    return float(value)


def judge(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per target: the measured value, the target and whether it is met (targets whose measure the run
    skipped, e.g. the in-process model cost of a ``--river`` run, are left out).

    >>> r = {"events_per_s": 150.0, "ratio": 0.01, "freshness_ms": {"p99": 40.0}, "lookup_ms": {"p99": 3.0},
    ...      "lookups_per_s": 9000.0, "us_per_event_1m_items": 9e4, "us_per_event_10k_items": 900.0,
    ...      "redis_bytes_per_user": 700.0}
    >>> {k: v["met"] for k, v in judge(r).items() if v["met"]}
    {'freshness_ms.p99': True}
    """
    out = {}
    for field, (op, threshold, unit) in TARGETS.items():
        try:
            value = _value(report, field)
        except KeyError:
            continue
        met = value >= threshold if op == ">=" else value <= threshold
        out[field] = {"value": value, "target": f"{op} {threshold:g}{' ' + unit if unit else ''}", "met": met}
    return out


def table(report: dict[str, Any]) -> Table:
    """Measured value against its target, one row per target."""
    t = Table("measure", "measured", "target", "met", title=f"personalize bench ({report['seconds']:.0f}s)")
    for field, verdict in report["targets"].items():
        mark = "[green]yes[/]" if verdict["met"] else "[red]no[/]"
        t.add_row(field, f"{verdict['value']:,.3f}", verdict["target"], mark)
    t.add_row("raw_consume_per_s", f"{report['raw_consume_per_s']:,.0f}", "", "")
    t.add_row("freshness_ms.p50", f"{report['freshness_ms']['p50']:,.1f}", "", "")
    t.add_row("lookup_ms.p50", f"{report['lookup_ms']['p50']:,.3f}", "", "")
    t.add_row("lookup client", report["lookup_client"], "", "")
    python = report["lookup_python"]
    t.add_row("lookup_python p99 / rate", f"{python['p99_ms']:,.3f} ms / {python['per_s']:,.0f}/s", "", "")
    if "cpu_us_per_event" in report:
        t.add_row("worker cpu_us_per_event", f"{report['cpu_us_per_event']:,.0f}", "", "")
    for field in ("us_per_event_10k_items", "us_per_event_1m_items"):
        if field in report:
            t.add_row(field, f"{report[field]:,.0f}", "", "")
    if report.get("settings", {}).get("river"):
        t.add_row("river reranker", str(report["settings"]["river"])[:60], "", "")
    t.add_row("rss_mb_per_100k_users", f"{report['rss_mb_per_100k_users']:,.1f}", "", "")
    return t
