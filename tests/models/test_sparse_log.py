"""The low click-rate log generator, and our estimators' intervals on it against its known truths."""

from __future__ import annotations

import numpy as np
import pytest

from models import ope
from models.bandit_log import SyntheticLog, sparse_log

Floats = np.ndarray


def test_rows_follow_the_open_bandit_dataset_layout() -> None:
    log = sparse_log(n_impressions=3000, n_items=20, n_positions=3, base_ctr=0.005, seed=2)
    header = log.log_header
    assert header[:6] == ["", "timestamp", "item_id", "position", "click", "propensity_score"]
    assert len(log.log_rows) == 9000 and log.click_probability.shape == (9000, 20)
    for i in range(0, 9000, 3):  # one impression: three distinct items at positions 1-3, one user
        rows = log.log_rows[i : i + 3]
        assert [r[3] for r in rows] == ["1", "2", "3"]
        assert len({r[2] for r in rows}) == 3
        assert len({tuple(r[1:2] + r[6:]) for r in rows}) == 1
        assert [int(r[2]) for r in rows] == log.actions[i : i + 3].tolist()
    assert {r[5] for r in log.log_rows} == {"0.05"}
    assert log.click_probability[np.arange(9000), log.actions].mean() == pytest.approx(0.005, rel=1e-6)
    assert 0.003 < log.clicks.mean() < 0.007
    assert sparse_log(n_impressions=3000, n_items=20, seed=2).log_rows == log.log_rows


def test_lower_positions_are_clicked_less() -> None:
    log = sparse_log(n_impressions=2000, seed=0)
    rows = np.arange(log.actions.shape[0])
    by_place = [log.click_probability[rows[log.positions == k]].mean() for k in range(3)]
    assert by_place[0] > by_place[1] > by_place[2]
    assert by_place[1] / by_place[0] == pytest.approx(0.8, rel=0.01)


def _ranking_slate(log: SyntheticLog, epsilon: float) -> Floats:
    """A target that knows each row's click probabilities: its best items at the top places, mixed with
    ``epsilon`` uniformly random rankings. ``slate[t, item, position]``."""
    n, k = log.click_probability.shape
    order = np.argsort(-log.click_probability, axis=1)[:, :3]
    slate = np.full((n, k, 3), epsilon / k)
    for place in range(3):
        slate[np.arange(n), order[:, place], place] += 1.0 - epsilon
    return slate


def test_intervals_cover_the_true_value_at_half_a_percent_and_the_logged_rate_does_not() -> None:
    covered = {"ips": 0, "snips": 0, "dr": 0, "dr_true_model": 0, "logged_click_rate": 0}
    lifts = []
    for seed in range(20):
        log = sparse_log(n_impressions=4000, n_items=20, seed=100 + seed)
        slate = _ranking_slate(log, epsilon=0.3)
        truth = log.true_value(slice(None), slate)
        lifts.append(truth / log.click_probability[np.arange(12000), log.actions].mean())
        mu = log.logging_probability[np.arange(12000), log.actions]
        q = np.repeat(log.click_probability[:, :, None], 3, axis=2)  # true at the logged place only
        pi, q_logged, q_target = ope.at_positions(slate, log.actions, log.positions, q)
        for name, e in (
            ("ips", ope.ips(log.clicks, pi, mu)),
            ("snips", ope.snips(log.clicks, pi, mu)),
            ("dr", ope.dr(log.clicks, pi, mu, np.zeros(12000), np.zeros(12000))),
            ("dr_true_model", ope.dr(log.clicks, pi, mu, q_logged, q_target)),
            ("logged_click_rate", ope.mean_with_ci(log.clicks)),  # what ignoring propensities gives
        ):
            covered[name] += e.ci_low <= truth <= e.ci_high
    assert min(lifts) > 1.5  # the target is far from the logger: the check has something to find
    assert all(16 <= covered[name] <= 20 for name in ("ips", "snips", "dr", "dr_true_model")), covered
    assert covered["logged_click_rate"] <= 2, covered
