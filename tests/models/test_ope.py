"""Off-policy estimators on synthetic logs whose true values are known."""

from __future__ import annotations

import numpy as np
import pytest

from models import ope
from models.bandit_env import LinearBanditEnv
from models.bandit_log import synthetic_log


def _logged(seed: int, n: int = 2000) -> dict[str, np.ndarray]:
    """A softmax logging policy on the environment, an epsilon-greedy oracle as the target."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list[float]] = {
        k: [] for k in ("r", "mu", "pi", "q_log", "q_pi", "true", "good", "good_pi")
    }
    for r in LinearBanditEnv(n_items=30, n_candidates=5, seed=seed).rounds(n):
        k = r.expected.shape[0]
        logging = np.exp(2.0 * r.context[0] * np.arange(k) / k)
        logging /= logging.sum()
        target = np.full(k, 0.1 / k)
        target[r.best] += 0.9
        a = int(rng.choice(k, p=logging))
        cols["r"].append(r.reward(a))
        cols["mu"].append(float(logging[a]))
        cols["pi"].append(float(target[a]))
        cols["q_log"].append(0.0)
        cols["q_pi"].append(0.0)
        cols["good"].append(float(r.expected[a]))
        cols["good_pi"].append(float(target @ r.expected))
        cols["true"].append(float(target @ r.expected))
    return {k: np.array(v) for k, v in cols.items()}


def test_evaluating_the_logging_policy_recovers_the_observed_value() -> None:
    log = synthetic_log(n_rounds=500, seed=3)
    mu = log.logging_probability[np.arange(500), log.actions]
    for estimate in (ope.ips(log.clicks, mu, mu), ope.snips(log.clicks, mu, mu)):
        assert estimate.value == pytest.approx(log.clicks.mean())
        assert estimate.effective_sample_size == pytest.approx(500)


def test_a_known_target_policy_lies_within_every_interval() -> None:
    d = _logged(0)
    truth = d["true"].mean()
    # One seed at 99%: four correlated intervals on one log; calibration over many seeds is the next test.
    estimates = {
        "ips": ope.ips(d["r"], d["pi"], d["mu"], level=0.99),
        "snips": ope.snips(d["r"], d["pi"], d["mu"], level=0.99),
        "dr_zero_model": ope.dr(d["r"], d["pi"], d["mu"], d["q_log"], d["q_pi"], level=0.99),
        "dr_true_model": ope.dr(d["r"], d["pi"], d["mu"], d["good"], d["good_pi"], level=0.99),
    }
    for name, e in estimates.items():
        assert e.ci_low <= truth <= e.ci_high, name
    assert truth > d["r"].mean() + 0.1  # the target is much better than the logger: a real test
    width = {name: e.ci_high - e.ci_low for name, e in estimates.items()}
    assert width["dr_true_model"] < 0.75 * width["ips"]


def test_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    covered = {"ips": 0, "snips": 0, "dr": 0}
    for seed in range(40):
        d = _logged(100 + seed, n=400)
        truth = d["true"].mean()
        for name, e in (
            ("ips", ope.ips(d["r"], d["pi"], d["mu"])),
            ("snips", ope.snips(d["r"], d["pi"], d["mu"])),
            ("dr", ope.dr(d["r"], d["pi"], d["mu"], d["q_log"], d["q_pi"])),
        ):
            covered[name] += e.ci_low <= truth <= e.ci_high
    assert all(33 <= n <= 40 for n in covered.values()), covered


def test_invalid_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        ope.ips([1.0], [1.0], [0.0])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        ope.snips([1.0], [1.0], [1.5])
    with pytest.raises(ValueError, match="equal length"):
        ope.dr([1.0, 0.0], [1.0, 1.0], [0.5, 0.5], [0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="non-empty"):
        ope.mean_with_ci([])


def test_synthetic_log_rows_match_its_truths() -> None:
    log = synthetic_log(n_rounds=300, n_items=5, seed=4)
    header = log.log_header
    for t, row in enumerate(log.log_rows):
        assert int(row[header.index("item_id")]) == log.actions[t]
        assert float(row[header.index("propensity_score")]) == pytest.approx(
            log.logging_probability[t, log.actions[t]], rel=1e-6
        )
    timestamps = [row[1] for row in log.log_rows]
    assert timestamps == sorted(timestamps)
    assert synthetic_log(n_rounds=300, n_items=5, seed=4).log_rows == log.log_rows
