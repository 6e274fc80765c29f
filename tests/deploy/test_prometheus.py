"""The shipped Prometheus configuration and alert rules pass ``promtool`` (installed by ``make install``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from engine.ops.scrape import targets_path
from engine.ops.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make install` installs it (Debian package prometheus)"
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60, check=False)


def test_prometheus_config_is_valid() -> None:
    done = _promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_are_valid() -> None:
    done = _promtool("check", "rules", str(DEPLOY / "prometheus" / "personalize.rules.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout + done.stderr


def test_dashboard_is_json_with_the_promised_panels() -> None:
    board = json.loads((DEPLOY / "grafana" / "dashboards" / "personalize.json").read_text())
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    for metric in (
        "personalize_events_total",
        "personalize_freshness_seconds_bucket",
        "personalize_dead_letters_total",
        "personalize_prequential_hits_total",
        "personalize_drift_detections_total",
        "personalize_info",
        "personalize_ranker_log_loss_sum",
        "personalize_slate_events_total",
        "personalize_bandit_explored_total",
    ):
        assert metric in exprs


def test_dead_letter_alert_names_the_most_frequent_reason() -> None:
    done = _promtool("test", "rules", str(Path(__file__).with_name("dead_letters.test.yml")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_worker_job_reads_the_targets_file_the_stack_writes() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "personalize-worker"]
    [[files]] = [sd["files"] for sd in job["file_sd_configs"]]
    root = DEPLOY.parent
    assert (DEPLOY / "prometheus" / files).resolve() == targets_path(Settings(stack_dir=root / ".stack"))
