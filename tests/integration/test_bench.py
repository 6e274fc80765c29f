"""`personalize bench` (and `--workers`) at smoke size against the real stack: every reported figure is
there and positive.

No targets asserted: this checks the harness, not the engine's speed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rich.console import Console

from engine.bench import BenchConfig, ScalingConfig, run, run_scaling
from engine.bench.scaling_report import SCALING_TARGETS
from engine.ops.settings import Settings

pytestmark = pytest.mark.integration

FIELDS = (
    "events_per_s",
    "cpu_us_per_event",
    "raw_consume_per_s",
    "ratio",
    "lookups_per_s",
    "us_per_event_10k_items",
    "us_per_event_1m_items",
    "redis_bytes_per_user",
)


SMOKE = BenchConfig(
    events=300,
    users=30,
    items=100,
    freshness_s=2.0,
    lookup_s=1.0,
    lookup_processes=1,
    lookup_native_requests=2_000,
    memory_users=200,
    scaling_items=(200, 1_000),
    scaling_warm_events=30,
    scaling_events=20,
)


def test_smoke_bench_reports_every_field(settings: Settings, tmp_path: Path) -> None:
    report = run(settings, SMOKE, console=Console(stderr=True, quiet=True), log_dir=tmp_path)
    for field in FIELDS:
        assert report[field] > 0, field
    # The worker's RSS growth over 30 users can be nothing (or negative, reported as 0).
    assert report["rss_mb_per_100k_users"] >= 0
    for field in ("freshness_ms", "lookup_ms"):
        assert report[field]["p50"] > 0 and report[field]["p99"] >= report[field]["p50"], field
    assert report["lookup_python"]["per_s"] > 0 and report["lookup_client"]
    assert report["machine"]["cores"] >= 1 and report["settings"]["events"] == 300
    assert set(report["targets"]) and all("met" in v for v in report["targets"].values())
    assert "+river" not in report["model_version"]


def test_smoke_bench_with_a_river_reranker_runs_the_worker_with_it(
    settings: Settings, tmp_path: Path
) -> None:
    config = dataclasses.replace(SMOKE, river="river.linear_model.LogisticRegression: {}")
    report = run(settings, config, console=Console(stderr=True, quiet=True), log_dir=tmp_path)
    assert "+river-" in report["model_version"]
    assert report["events_per_s"] > 0 and report["cpu_us_per_event"] > 0
    # The in-process model cost times the built-in model only: not reported, not judged.
    assert "us_per_event_10k_items" not in report and "scaling_1m_over_10k" not in report["targets"]
    assert report["settings"]["river"] == config.river


def test_smoke_scaling_reports_every_worker_count(settings: Settings, tmp_path: Path) -> None:
    config = ScalingConfig(
        workers=(1, 2),
        backlog=1_500,
        users=60,
        items=100,
        freshness_s=1.0,
        memory_users=200,
        memory_sample=20,
        owner_events=400,
        phases=True,
        rounds=2,
    )
    report = run_scaling(settings, config, console=Console(stderr=True, quiet=True), log_dir=tmp_path)
    assert [c["workers"] for c in report["counts"]] == [1, 2]
    for count in report["counts"]:
        assert count["events_per_s"] > 0 and count["window_events"] > 0, count
        assert count["cpu_us_per_event"] > 0 and len(count["rss_mb_per_worker"]) == count["workers"]
        assert count["services_cpu_us_per_event"] > 0  # the broker and Redis served the drain
        assert count["freshness_ms"]["p99"] >= count["freshness_ms"]["p50"] > 0
        memory = count["redis_bytes"]
        assert memory["list"] > 0 and memory["total"] == memory["list"]
        assert count["rss_mb_per_100k_users"] >= 0
        # Each worker's own events and CPU; every event of the backlog learned by exactly one owner.
        assert len(count["per_worker"]) == count["workers"]
        assert sum(w["events"] for w in count["per_worker"]) == config.backlog
        assert all(w["cpu_s"] > 0 and w["busy"] > 0 for w in count["per_worker"])
    assert report["bare_faust"]["bare_faust_per_s"] > 0 and len(report["bare_faust"]["rounds"]) == 2
    # Two rounds: each count's figures are one of its two drains' (the slower: the lower middle).
    for count in report["counts"]:
        rates = [drain["events_per_s"] for drain in count["drains"]]
        assert len(rates) == 2 and count["events_per_s"] == min(rates), count["drains"]
    assert len(report["two_over_one_rounds"]) == 2 and all(r > 0 for r in report["two_over_one_rounds"])
    # Two worker counts give the replicated / partitioned split and the projection; values not asserted.
    assert {"replicated_us_per_event", "partitioned_us_per_event", "projected_events_per_s_16"} <= set(report)
    assert report["two_over_one_ceiling"] > 0
    # With 2 workers each learns the other's events through its replica reader, and its CPU is measured.
    assert report["counts"][0]["replica_records"] == 0 < report["counts"][1]["replica_records"]
    assert report["replica_us_per_record"] > 0 and "fitted_events_per_s_16" in report
    assert set(report["targets"]) == set(SCALING_TARGETS)
    assert report["owner_in_process_us"] > 0  # the owner's path timed without Kafka
    # And phase by phase, against the real Redis: every phase ran, the list writes included.
    phases = report["owner_phases_us"]
    assert set(phases) == {"parse", "quality", "learn", "rank", "explain", "write", "rest", "total"}
    assert all(phases[phase] > 0 for phase in ("parse", "learn", "rank", "explain", "write")), phases
