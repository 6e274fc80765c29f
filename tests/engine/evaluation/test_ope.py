"""Reading Open Bandit Pipeline logs, checking them, and off-policy evaluation through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.evaluation import ope
from models.bandit_log import synthetic_log
from schemas.errors import DataFormatError

DATA = Path(__file__).parents[2] / "data" / "obp"
LOG, ITEMS = DATA / "log.csv", DATA / "item_context.csv"


def test_the_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    log, items = ope.write_synthetic(tmp_path)
    assert log.read_bytes() == LOG.read_bytes()
    assert items.read_bytes() == ITEMS.read_bytes()
    assert LOG.stat().st_size < 100_000


def test_load_encodes_the_committed_log() -> None:
    data = ope.load(LOG, ITEMS)
    assert len(data) == 400 and data.item_ids == [str(i) for i in range(6)]
    # three hashed user features with 3, 2 and 4 values, one-hot; positions 1-3 apart, 0-based
    assert data.contexts.shape == (400, 3 + 2 + 4)
    assert np.allclose(data.contexts.sum(axis=1), 3.0)
    assert data.n_positions == 3 and set(data.positions.tolist()) == {0, 1, 2}
    assert data.positions.tolist() == synthetic_log().positions.tolist()
    assert data.action_features(0).shape[0] == 6
    assert set(np.unique(data.rewards)) <= {0.0, 1.0}
    assert np.all((data.propensities > 0) & (data.propensities <= 1))


def test_rows_are_put_in_timestamp_order(tmp_path: Path) -> None:
    lines = LOG.read_text().splitlines()
    (tmp_path / "log.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    assert np.array_equal(ope.load(tmp_path / "log.csv", ITEMS).actions, ope.load(LOG, ITEMS).actions)


def test_uniform_target_estimates_contain_its_true_value(tmp_path: Path) -> None:
    log, items = ope.write_synthetic(tmp_path, n_rounds=3000, seed=11)
    truth = synthetic_log(n_rounds=3000, seed=11).click_probability[1500:].mean()
    result = ope.evaluate(ope.load(log, items), "uniform", train_fraction=0.5)
    assert result["rounds_train"] == result["rounds_eval"] == 1500
    for name, e in result["estimates"].items():
        assert e["ci_low"] <= truth <= e["ci_high"], name


def test_a_learned_policy_is_estimated_better_than_the_logger(tmp_path: Path) -> None:
    log, items = ope.write_synthetic(tmp_path, n_rounds=3000, seed=12)
    result = ope.evaluate(ope.load(log, items), "linucb", train_fraction=0.5)
    assert result["estimates"]["dr"]["ci_low"] > result["logging_policy_value"]["ci_high"]


def _broken(tmp_path: Path, line: int, column: str, value: str) -> Path:
    rows = [r.split(",") for r in LOG.read_text().splitlines()]
    rows[line - 1][rows[0].index(column)] = value
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("propensity_score", "1.5", "propensity_score 1.5 is outside (0, 1]"),
        ("propensity_score", "0", "propensity_score 0.0 is outside (0, 1]"),
        ("propensity_score", "abc", "propensity_score 'abc' is not a number"),
        ("click", "2", "click '2' is not 0 or 1"),
        ("item_id", "99", "item_id '99' is not in"),
        ("timestamp", "yesterday", "timestamp 'yesterday' is neither"),
        ("user-item_affinity_2", "x", "user-item_affinity_2 'x' is not a number"),
    ],
)
def test_malformed_rows_name_the_file_and_line(tmp_path: Path, column: str, value: str, message: str) -> None:
    path = _broken(tmp_path, 7, column, value)
    with pytest.raises(DataFormatError, match=r"broken\.csv:7: ") as info:
        ope.load(path, ITEMS)
    assert message in str(info.value) and info.value.line == 7


def test_missing_columns_and_short_rows_are_reported(tmp_path: Path) -> None:
    lines = LOG.read_text().splitlines()
    (tmp_path / "a.csv").write_text(lines[0].replace("propensity_score", "pscore") + "\n" + lines[1] + "\n")
    with pytest.raises(DataFormatError, match="a.csv:1: missing column 'propensity_score'"):
        ope.load(tmp_path / "a.csv", ITEMS)
    (tmp_path / "b.csv").write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2].rsplit(",", 1)[0] + "\n")
    with pytest.raises(DataFormatError, match="b.csv:3: 14 fields, the header has 15"):
        ope.load(tmp_path / "b.csv", ITEMS)
    (tmp_path / "items.csv").write_text("item_id,item_feature_0\n0,1\n0,2\n")
    with pytest.raises(DataFormatError, match="one row per item"):
        ope.load(LOG, tmp_path / "items.csv")


def test_cli_ope_json() -> None:
    result = CliRunner().invoke(app, ["ope", str(LOG), "--items", str(ITEMS), "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["policy"] == "logts"
    assert (report["rounds_train"], report["rounds_eval"]) == (200, 200)
    assert 0 <= report["logging_policy_value"]["value"] <= 1
    for name in ("ips", "snips", "dr"):
        e = report["estimates"][name]
        assert e["ci_low"] <= e["value"] <= e["ci_high"]


def test_cli_ope_reports_a_malformed_file(tmp_path: Path) -> None:
    path = _broken(tmp_path, 3, "propensity_score", "1.5")
    result = CliRunner().invoke(app, ["ope", str(path), "--items", str(ITEMS), "--json"])
    assert result.exit_code == 1
    assert "broken.csv:3: propensity_score 1.5 is outside (0, 1]" in " ".join(result.stderr.split())
    assert result.stdout == ""
