"""The bandit benchmark: every policy on the same rounds, VW optional."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.evaluation import bandit_bench
from models.river_bandits import RIVER_POLICIES


def test_cli_bandit_bench_json() -> None:
    result = CliRunner().invoke(app, ["bandit-bench", "--rounds", "400", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["rounds"] == 400 and report["seed"] == 3
    assert 0 < report["best_possible_mean_reward"] < 1
    names = set(report["policies"]) | set(report["skipped"])
    assert {"linucb", "lints", "egreedy", "uniform", "vw-squarecb", "vw-epsilon"} <= names
    for policy in report["policies"].values():
        assert 0 <= policy["regret"] <= 400 and 0 <= policy["mean_reward"] <= 1 and policy["seconds"] >= 0
    assert report["policies"]["linucb"]["regret"] < report["policies"]["uniform"]["regret"]


def test_same_seed_same_report_apart_from_timings() -> None:
    def strip(report: dict[str, object]) -> object:
        policies = report["policies"]
        assert isinstance(policies, dict)
        return {name: (p["regret"], p["mean_reward"]) for name, p in policies.items()}

    assert strip(bandit_bench.run(100, seed=4)) == strip(bandit_bench.run(100, seed=4))


def test_missing_vowpal_wabbit_is_skipped_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bandit_bench, "_vw_missing", lambda: "vowpalwabbit is not installed")
    report = bandit_bench.run(50, seed=0)
    assert set(report["policies"]) == {*bandit_bench.OURS, *RIVER_POLICIES}  # River's play beside ours
    assert report["skipped"] == {name: "vowpalwabbit is not installed" for name in bandit_bench.VW_CONFIGS}
