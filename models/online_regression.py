"""The online regressions behind the bandit policies, and the features they learn from.

`OnlineRidge` (least squares) and `OnlineLogistic` (Bayesian logistic regression, for sparse clicks) keep
the same state, ``(A^-1, b)`` with the posterior mean ``A^-1 b``, so a policy snapshot stores either.
Pure numpy: no I/O; the only randomness is the generator a caller passes to `OnlineLogistic.sample`.
"""

from __future__ import annotations

__all__ = ["OnlineLogistic", "OnlineRidge", "features", "logit"]

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

Floats = NDArray[np.float64]


def features(context: ArrayLike, actions: ArrayLike) -> Floats:
    """Shared-weights ADF features: one row per action, ``[action, 1] ⊗ [context, 1]`` flattened.

    The cross terms let one linear model learn how each context feature changes each action feature's
    value; the constant columns keep the plain action and context effects. The last column is the
    constant 1 (the intercept).

    >>> features([2.0], [[1.0], [0.0]]).tolist()
    [[2.0, 1.0, 2.0, 1.0], [0.0, 0.0, 2.0, 1.0]]
    """
    x = np.asarray(context, dtype=np.float64)
    a = np.asarray(actions, dtype=np.float64)
    if x.ndim != 1 or a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"need a 1-d context and a non-empty 2-d action matrix, got {x.shape} and {a.shape}")
    x1 = np.append(x, 1.0)
    a1 = np.hstack([a, np.ones((a.shape[0], 1))])
    out: Floats = (a1[:, :, None] * x1[None, None, :]).reshape(a.shape[0], -1)
    return out


def logit(p: float) -> float:
    """``log(p / (1 - p))``.

    >>> round(logit(0.5), 6), round(logit(0.01), 3)
    (0.0, -4.595)
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"need a probability in (0, 1), got {p}")
    return math.log(p / (1.0 - p))


class OnlineRidge:
    """Ridge regression updated one (weighted) example at a time with the Sherman-Morrison identity.

    Keeps the inverse of ``ridge * I + sum(w * phi phi^T)``, so predictions and confidence widths cost
    O(d^2) per row and an update O(d^2); the dimension is fixed by the first row seen.

    >>> m = OnlineRidge(ridge=1.0)
    >>> for _ in range(200):
    ...     m.learn_one(np.array([1.0, 0.0]), 1.0); m.learn_one(np.array([0.0, 1.0]), 0.0)
    >>> m.predict(np.eye(2)).round(2).tolist()
    [1.0, 0.0]
    """

    def __init__(self, ridge: float = 1.0) -> None:
        self.ridge = ridge
        self._a_inv: Floats | None = None
        self._b: Floats | None = None
        self._theta: Floats | None = None

    def _prior_mean(self, dim: int) -> Floats:
        return np.zeros(dim)

    def _ensure(self, dim: int) -> tuple[Floats, Floats, Floats]:
        if self._a_inv is None or self._b is None or self._theta is None:
            self._a_inv = np.eye(dim) / self.ridge
            self._theta = self._prior_mean(dim)
            self._b = self.ridge * self._theta
        elif self._b.shape[0] != dim:
            raise ValueError(f"feature dimension changed from {self._b.shape[0]} to {dim}")
        return self._a_inv, self._b, self._theta

    def _update(self, phi: Floats, curvature: float, gradient: float) -> None:
        """Add ``curvature * phi phi^T`` to ``A`` and ``gradient * phi`` to ``b``; refresh the mean."""
        a_inv, b, _ = self._ensure(phi.shape[0])
        u = a_inv @ phi
        a_inv -= (curvature / (1.0 + curvature * float(phi @ u))) * np.outer(u, u)
        b += gradient * phi
        self._theta = a_inv @ b

    def learn_one(self, phi: Floats, reward: float, weight: float = 1.0) -> None:
        if weight <= 0:
            return
        self._update(phi, weight, weight * reward)

    def get_state(self) -> tuple[Floats, Floats] | None:
        """``(A^-1, b)``, or None before the first update; enough to rebuild the model exactly."""
        if self._a_inv is None or self._b is None:
            return None
        return self._a_inv, self._b

    def set_state(self, a_inv: Floats, b: Floats) -> None:
        """Restore what `get_state` returned (the arrays are copied)."""
        self._a_inv = np.array(a_inv, dtype=np.float64)
        self._b = np.array(b, dtype=np.float64)
        self._theta = self._a_inv @ self._b

    @property
    def mean(self) -> Floats | None:
        """The posterior mean of the weights (None before the dimension is known)."""
        return self._theta

    def predict(self, phi: Floats) -> Floats:
        """Predicted reward of each row of ``phi``."""
        _, _, theta = self._ensure(phi.shape[1])
        out: Floats = phi @ theta
        return out

    def covariance(self, phi: Floats) -> Floats:
        """``phi A^-1 phi^T``: the (unscaled) posterior covariance of the rows' predictions."""
        a_inv, _, _ = self._ensure(phi.shape[1])
        # a contiguous copy of phi^T: OpenBLAS takes a much slower path for a transposed view here
        out: Floats = phi @ a_inv @ np.ascontiguousarray(phi.T)
        return out


class OnlineLogistic(OnlineRidge):
    """Bayesian logistic regression for 0/1 rewards, one Newton step per example (a Laplace posterior).

    The prior is ``N(m0, I / ridge)`` in logit units with ``m0`` zero except the intercept (the last
    feature, as `features` builds it) at ``logit(prior_rate)``: before any data every action is worth
    the prior click rate, and a few clicks among thousands of views move it by what they are worth. An
    example ``(phi, y)`` adds ``w p (1 - p) phi phi^T`` to the precision ``A`` (``p`` the current
    prediction) and moves the mean by ``A^-1 phi w (y - p)``; ``b = A m`` is kept, as in `OnlineRidge`.

    >>> m = OnlineLogistic(ridge=1.0, prior_rate=0.01)
    >>> x = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    >>> round(float(m.predict(x)[0]), 4)
    0.01
    >>> for t in range(4000):
    ...     m.learn_one(x[t % 2], float(t % 2 == 0 and t % 100 == 0))
    >>> [round(float(p), 3) for p in m.predict(x)]
    [0.02, 0.002]
    """

    def __init__(self, ridge: float = 1.0, prior_rate: float = 0.01) -> None:
        super().__init__(ridge)
        self.prior_rate = prior_rate
        self._intercept = logit(prior_rate)
        self._chol: Floats | None = None

    def _prior_mean(self, dim: int) -> Floats:
        out = np.zeros(dim)
        out[-1] = self._intercept
        return out

    def learn_one(self, phi: Floats, reward: float, weight: float = 1.0) -> None:
        if weight <= 0:
            return
        _, _, theta = self._ensure(phi.shape[0])
        score = float(phi @ theta)
        p = 1.0 / (1.0 + math.exp(-score))
        curvature = weight * p * (1.0 - p)
        self._update(phi, curvature, weight * (reward - p) + curvature * score)
        self._chol = None

    def set_state(self, a_inv: Floats, b: Floats) -> None:
        super().set_state(a_inv, b)
        self._chol = None

    def logits(self, phi: Floats) -> Floats:
        """The posterior mean logit of each row of ``phi``."""
        return OnlineRidge.predict(self, phi)

    def predict(self, phi: Floats) -> Floats:
        """The click probability of each row at the posterior mean."""
        out: Floats = 1.0 / (1.0 + np.exp(-self.logits(phi)))
        return out

    def sample(self, n: int, rng: np.random.Generator, dim: int) -> Floats:
        """``n`` weight vectors drawn from the posterior, one per row."""
        a_inv, _, theta = self._ensure(dim)
        if self._chol is None:
            sym = (a_inv + a_inv.T) / 2.0 + 1e-12 * np.eye(dim)
            chol: Floats = np.linalg.cholesky(sym).astype(np.float64)
            self._chol = chol
        chol = self._chol
        out: Floats = theta + rng.standard_normal((n, dim)) @ chol.T
        return out
