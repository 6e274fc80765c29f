"""Off-policy estimators: the value a target policy would have had, from another policy's logged decisions.

IPS, self-normalised IPS and doubly robust, each with a normal-approximation confidence interval, and
`at_positions`, which turns a ranking policy's per-position distributions into their inputs (the Open
Bandit Pipeline's layout and definitions; tests/models/test_ope_reference.py checks every value against
obp). Pure numpy over arrays of logged rounds; reading logs is `engine.evaluation.ope`'s job.
"""

from __future__ import annotations

__all__ = ["Estimate", "at_positions", "dr", "importance_weight", "ips", "mean_with_ci", "snips"]

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


def at_positions(
    action_dist: ArrayLike,
    actions: ArrayLike,
    positions: ArrayLike | None = None,
    estimated_rewards: ArrayLike | None = None,
) -> tuple[Floats, Floats, Floats]:
    """The per-round inputs of `ips`, `snips` and `dr` for a policy that fills several positions.

    ``action_dist[t, a, k]`` is the target's probability of showing action ``a`` at position ``k`` in
    round ``t`` (each ``[t, :, k]`` sums to 1), ``actions[t]`` and ``positions[t]`` (0-based; None when
    there is one position) what the log shows, and its ``propensity`` must be the logging policy's
    probability of that action *at that position*. ``estimated_rewards[t, a, k]`` is a reward model's
    prediction (None: zeros). Returns ``(pi, q_logged, q_target)``: ``action_dist[t, a_t, k_t]``,
    ``estimated_rewards[t, a_t, k_t]`` and ``sum_a action_dist[t, a, k_t] * estimated_rewards[t, a, k_t]``.
    A log row is one impression at one position, so the value is the expected reward per row, as the
    logged click-through rate is.

    >>> dist = [[[0.9, 0.0], [0.1, 1.0]]]  # one round, actions 0 and 1, two positions
    >>> pi, q_log, q_pi = at_positions(dist, [1], [1], [[[0.2, 0.1], [0.4, 0.3]]])
    >>> pi.tolist(), q_log.tolist(), q_pi.round(6).tolist()
    ([1.0], [0.3], [0.3])
    """
    dist = np.asarray(action_dist, dtype=np.float64)
    a = np.asarray(actions)
    if dist.ndim != 3 or a.ndim != 1 or a.shape[0] != dist.shape[0] or a.shape[0] == 0:
        raise ValueError(f"need action_dist (n, actions, positions) and n actions: {dist.shape}, {a.shape}")
    if not np.issubdtype(a.dtype, np.integer) or np.any(a < 0) or np.any(a >= dist.shape[1]):
        raise ValueError(f"actions must be integers in [0, {dist.shape[1]})")
    k = np.zeros_like(a) if positions is None else np.asarray(positions)
    if k.shape != a.shape or not np.issubdtype(k.dtype, np.integer) or np.any((k < 0) | (k >= dist.shape[2])):
        raise ValueError(f"positions must be n integers in [0, {dist.shape[2]})")
    q = np.zeros_like(dist) if estimated_rewards is None else np.asarray(estimated_rewards, dtype=np.float64)
    if q.shape != dist.shape:
        raise ValueError(f"estimated_rewards has shape {q.shape}, action_dist {dist.shape}")
    rows = np.arange(a.shape[0])
    at_k = dist[rows, :, k]
    q_at_k = q[rows, :, k]
    pi: Floats = at_k[rows, a]
    q_logged: Floats = q_at_k[rows, a]
    q_target: Floats = np.sum(at_k * q_at_k, axis=1)
    return pi, q_logged, q_target


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
