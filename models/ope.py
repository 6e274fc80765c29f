"""Off-policy estimators: the value a target policy would have had, from another policy's logged decisions.

IPS, self-normalised IPS and doubly robust, each with a normal-approximation confidence interval. Pure
numpy over arrays of logged rounds; reading logs is `engine.evaluation.ope`'s job.
"""

from __future__ import annotations

__all__ = ["Estimate", "dr", "importance_weight", "ips", "mean_with_ci", "snips"]

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A policy value with a two-sided confidence interval (``level``) and the number of rounds used.

    ``effective_sample_size`` is ``(sum w)^2 / sum w^2`` of the importance weights: how many rounds
    the estimate is worth; far below ``n`` means the target policy strays from the logging policy.
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    effective_sample_size: float
    level: float = 0.95

    def to_json(self) -> dict[str, float]:
        return {
            "value": round(self.value, 6),
            "ci_low": round(self.ci_low, 6),
            "ci_high": round(self.ci_high, 6),
            "effective_sample_size": round(self.effective_sample_size, 1),
        }


def _z(level: float) -> float:
    """The standard normal quantile for a two-sided interval, by bisection on ``math.erf``."""
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if math.erf(mid / math.sqrt(2.0)) < level:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _arrays(*values: ArrayLike) -> list[Floats]:
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    n = arrays[0].shape
    if any(a.shape != n or a.ndim != 1 for a in arrays) or n[0] == 0:
        raise ValueError("need non-empty 1-d arrays of equal length")
    return arrays


def _ess(weights: Floats) -> float:
    total = float(np.sum(weights**2))
    return float(np.sum(weights)) ** 2 / total if total > 0 else 0.0


def mean_with_ci(terms: ArrayLike, level: float = 0.95, weights: ArrayLike | None = None) -> Estimate:
    """The mean of per-round terms with a normal-approximation interval.

    >>> e = mean_with_ci([0.0, 1.0] * 50)
    >>> round(e.value, 3), round(e.ci_low, 3), round(e.ci_high, 3)
    (0.5, 0.402, 0.598)
    """
    (t,) = _arrays(terms)
    w = np.ones_like(t) if weights is None else _arrays(weights)[0]
    n = t.shape[0]
    mean = float(t.mean())
    half = _z(level) * float(t.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return Estimate(mean, mean - half, mean + half, n, _ess(w), level)


def importance_weight(target: ArrayLike, logged: ArrayLike) -> Floats:
    """``target / logged`` probability of each logged action; propensities must lie in (0, 1].

    >>> importance_weight([0.5, 0.0], [0.25, 0.5]).tolist()
    [2.0, 0.0]
    """
    pi, mu = _arrays(target, logged)
    if np.any(mu <= 0) or np.any(mu > 1):
        raise ValueError("logged propensities must lie in (0, 1]")
    if np.any(pi < 0) or np.any(pi > 1):
        raise ValueError("target probabilities must lie in [0, 1]")
    out: Floats = pi / mu
    return out


def ips(rewards: ArrayLike, target: ArrayLike, logged: ArrayLike, level: float = 0.95) -> Estimate:
    """Inverse propensity scoring: the mean of ``w * reward``. Unbiased when the logging policy gives
    every action the target might play a positive probability; high variance when weights are large.

    >>> round(ips([1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.5] * 4).value, 3)
    0.5
    """
    r, w = _arrays(rewards)[0], importance_weight(target, logged)
    return mean_with_ci(w * r, level, w)


def snips(rewards: ArrayLike, target: ArrayLike, logged: ArrayLike, level: float = 0.95) -> Estimate:
    """Self-normalised IPS: ``sum(w r) / sum(w)``, a little biased, much steadier; the interval comes
    from the delta method.

    >>> round(snips([1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.5] * 4).value, 3)
    0.5
    """
    r, w = _arrays(rewards)[0], importance_weight(target, logged)
    n, total = r.shape[0], float(w.sum())
    if total == 0:
        return Estimate(0.0, -math.inf, math.inf, n, 0.0, level)
    value = float((w * r).sum()) / total
    influence = w * (r - value) / (total / n)
    half = _z(level) * float(influence.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return Estimate(value, value - half, value + half, n, _ess(w), level)


def dr(
    rewards: ArrayLike,
    target: ArrayLike,
    logged: ArrayLike,
    predicted_logged: ArrayLike,
    predicted_target: ArrayLike,
    level: float = 0.95,
) -> Estimate:
    """Doubly robust: the reward model's value of the target policy, corrected by IPS on its errors.

    ``predicted_logged`` is the model's reward for the logged action, ``predicted_target`` its expected
    reward under the target policy (``sum_a pi(a|x) q(x, a)``). Unbiased if either the propensities or
    the reward model are right; lower variance than IPS when the model is good.

    >>> round(dr([1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.8, 0.2], [0.8, 0.6]).value, 3)
    0.8
    """
    r, q_logged, q_target = _arrays(rewards, predicted_logged, predicted_target)
    w = importance_weight(target, logged)
    if r.shape != w.shape:
        raise ValueError("need non-empty 1-d arrays of equal length")
    return mean_with_ci(q_target + w * (r - q_logged), level, w)
