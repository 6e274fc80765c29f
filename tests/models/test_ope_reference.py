"""Our off-policy estimators against the Open Bandit Pipeline's (obp 0.5.7) and against known truths.

obp's answers were computed once in a Python 3.10 environment (`tests.models.obp_reference` says why and
how) and are committed; here our estimators run on the same inputs and must agree to 1e-9. The logs of
obp's synthetic generator have a click rate of 0.5% and a known value of the target policy.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from models import ope
from tests.models.obp_reference import ACTIONS, CASES, EPSILON, OUT, SEEDS, inputs

REFERENCE = json.loads((OUT / "reference.json").read_text())


def _ours(x: dict[str, Any], positions: bool) -> dict[str, float]:
    pi, q_logged, q_target = ope.at_positions(
        x["action_dist"], x["action"], x["position"] if positions else None, x["estimated_rewards"]
    )
    return {
        "ips": ope.ips(x["reward"], pi, x["pscore"]).value,
        "snips": ope.snips(x["reward"], pi, x["pscore"]).value,
        "dr": ope.dr(x["reward"], pi, x["pscore"], q_logged, q_target).value,
    }


def _by_hand(x: dict[str, Any], positions: bool) -> dict[str, float]:
    """The estimators written out round by round, as obp's documentation defines them."""
    n = x["reward"].shape[0]
    ips_terms, weights, dr_terms = [], [], []
    for t in range(n):
        a, k = int(x["action"][t]), int(x["position"][t]) if positions else 0
        w = x["action_dist"][t, a, k] / x["pscore"][t]
        q = x["estimated_rewards"][t]
        baseline = sum(x["action_dist"][t, b, k] * q[b, k] for b in range(q.shape[0]))
        ips_terms.append(w * x["reward"][t])
        weights.append(w)
        dr_terms.append(baseline + w * (x["reward"][t] - q[a, k]))
    return {
        "ips": sum(ips_terms) / n,
        "snips": sum(ips_terms) / sum(weights),
        "dr": sum(dr_terms) / n,
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_ips_snips_and_dr_equal_obp_to_1e_9(case: str) -> None:
    seed, n, k, p = CASES[case]
    x = inputs(seed, n, k, p)
    expected = REFERENCE["exact"][case]
    rebuilt = float(x["action_dist"].sum() + x["pscore"].sum() + x["estimated_rewards"].sum())
    assert rebuilt == pytest.approx(expected["input_sum"], abs=1e-9), "numpy's random stream changed"
    ours = _ours(x, positions=p > 1)
    for name in ("ips", "snips", "dr"):
        assert abs(ours[name] - expected[name]) < 1e-9, (name, ours[name], expected[name])
        assert abs(_by_hand(x, positions=p > 1)[name] - expected[name]) < 1e-9, name


def test_ignoring_positions_would_not_match_obp() -> None:
    """The check sees position handling: reading every round at the first position gives other values."""
    seed, n, k, p = CASES["three_positions"]
    x = inputs(seed, n, k, p)
    wrong = _ours(x, positions=False)
    expected = REFERENCE["exact"]["three_positions"]
    assert all(abs(wrong[name] - expected[name]) > 1e-3 for name in ("ips", "snips", "dr"))


def _synthetic(seed: int) -> dict[str, Any]:
    arrays = np.load(OUT / f"synthetic_{seed}.npz")
    k, eps = ACTIONS, EPSILON
    best = arrays["action"] == arrays["best"]
    return {
        "reward": arrays["reward"].astype(np.float64),
        "pscore": arrays["pscore"].astype(np.float64),
        "pi": np.where(best, 1.0 - eps + eps / k, eps / k),
        "q_logged": arrays["q_logged"].astype(np.float64),
        "q_target": (1.0 - eps) * arrays["q_best"].astype(np.float64) + eps / k * arrays["q_sum"],
    }


def _estimates(d: dict[str, Any]) -> dict[str, ope.Estimate]:
    return {
        "ips": ope.ips(d["reward"], d["pi"], d["pscore"]),
        "snips": ope.snips(d["reward"], d["pi"], d["pscore"]),
        "dr": ope.dr(d["reward"], d["pi"], d["pscore"], d["q_logged"], d["q_target"]),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_on_obp_synthetic_low_ctr_logs_we_match_obp_and_cover_the_truth(seed: int) -> None:
    expected = REFERENCE["synthetic"][str(seed)]
    assert expected["base_ctr"] == pytest.approx(0.005) and expected["logged_ctr"] < 0.01
    d = _synthetic(seed)
    truth = expected["truth"]
    for name, e in _estimates(d).items():
        assert abs(e.value - expected[name]["value"]) < 1e-9, name
        assert e.ci_low <= truth <= e.ci_high, (name, e, truth)
        # our normal-approximation interval against obp's bootstrap: about as wide
        ours, theirs = e.ci_high - e.ci_low, expected[name]["ci_high"] - expected[name]["ci_low"]
        assert 0.7 < ours / theirs < 1.4, (name, ours, theirs)
    # The check can fail: the logged click rate (what ignoring the propensities gives) misses the truth.
    naive = ope.mean_with_ci(d["reward"])
    assert not naive.ci_low <= truth <= naive.ci_high
    assert truth > 3 * expected["logged_ctr"]
