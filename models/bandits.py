"""Contextual bandit policies over action-dependent features (a shared context plus one vector per action).

Every decision carries the probability of each action, so the chosen one's propensity can be logged and
the policy evaluated off-line. Pure numpy: no I/O, no clocks; all randomness comes from the seed.
"""

from __future__ import annotations

__all__ = [
    "POLICIES",
    "Decision",
    "EpsilonGreedy",
    "LinUCB",
    "LinearTS",
    "OnlineRidge",
    "Policy",
    "UniformRandom",
    "features",
    "make",
]

import inspect
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision: which action was chosen, with what probability, and every action's probability.

    ``ranking`` lists action indices in display order: the chosen action first, then the others by the
    policy's preference. Log ``decision_id`` and ``propensity`` with the impression so that a reward can
    be joined back and the policy evaluated off-line.
    """

    decision_id: str
    action: int
    probabilities: tuple[float, ...]
    ranking: tuple[int, ...]

    @property
    def propensity(self) -> float:
        """The probability with which the chosen action was drawn (always > 0)."""
        return self.probabilities[self.action]


def features(context: ArrayLike, actions: ArrayLike) -> Floats:
    """Shared-weights ADF features: one row per action, ``[action, 1] ⊗ [context, 1]`` flattened.

    The cross terms let one linear model learn how each context feature changes each action feature's
    value; the constant columns keep the plain action and context effects.

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

    def _ensure(self, dim: int) -> tuple[Floats, Floats, Floats]:
        if self._a_inv is None or self._b is None or self._theta is None:
            self._a_inv = np.eye(dim) / self.ridge
            self._b = np.zeros(dim)
            self._theta = np.zeros(dim)
        elif self._b.shape[0] != dim:
            raise ValueError(f"feature dimension changed from {self._b.shape[0]} to {dim}")
        return self._a_inv, self._b, self._theta

    def learn_one(self, phi: Floats, reward: float, weight: float = 1.0) -> None:
        if weight <= 0:
            return
        a_inv, b, _ = self._ensure(phi.shape[0])
        u = a_inv @ phi
        a_inv -= (weight / (1.0 + weight * float(phi @ u))) * np.outer(u, u)
        b += weight * reward * phi
        self._theta = a_inv @ b

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

    def predict(self, phi: Floats) -> Floats:
        """Predicted reward of each row of ``phi``."""
        _, _, theta = self._ensure(phi.shape[1])
        out: Floats = phi @ theta
        return out

    def covariance(self, phi: Floats) -> Floats:
        """``phi A^-1 phi^T``: the (unscaled) posterior covariance of the rows' predictions."""
        a_inv, _, _ = self._ensure(phi.shape[1])
        out: Floats = phi @ a_inv @ phi.T
        return out


class Policy(Protocol):
    """What every bandit policy offers (River-style: parameters in the constructor, state inside)."""

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision: ...

    def learn_one(
        self, context: ArrayLike, actions: ArrayLike, chosen: int, reward: float, *, weight: float = 1.0
    ) -> None: ...

    def clone(self) -> Self: ...


class _Base:
    """Shared machinery: seeded sampling, decision ids, ``clone`` and ``repr`` from constructor args."""

    seed: int | None

    def _start(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def _params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def clone(self) -> Self:
        """A fresh, untrained policy with the same parameters."""
        return type(self)(**self._params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def _decision(self, probabilities: Floats, preference: Floats) -> Decision:
        probabilities = probabilities / probabilities.sum()
        chosen = int(self._rng.choice(probabilities.shape[0], p=probabilities))
        decision_id = uuid.UUID(bytes=self._rng.bytes(16), version=4).hex
        others = [int(i) for i in np.argsort(-preference, kind="stable") if i != chosen]
        return Decision(decision_id, chosen, tuple(float(p) for p in probabilities), (chosen, *others))


def _greedy_mix(scores: Floats, epsilon: float) -> Floats:
    """Probability ``1 - epsilon`` split over the best-scoring actions, ``epsilon`` spread uniformly."""
    best = np.isclose(scores, scores.max(), rtol=0.0, atol=1e-12)
    out: Floats = (1.0 - epsilon) * best / best.sum() + epsilon / scores.shape[0]
    return out


class _RidgePolicy(_Base):
    ridge: float

    def _start(self) -> None:
        super()._start()
        self._model = OnlineRidge(self.ridge)

    @property
    def model(self) -> OnlineRidge:
        """The ridge regression behind the policy (its state is what a snapshot stores)."""
        return self._model

    def learn_one(
        self, context: ArrayLike, actions: ArrayLike, chosen: int, reward: float, *, weight: float = 1.0
    ) -> None:
        """Learn the reward of the chosen action; ``weight`` > 1 counts it more (e.g. an IPS weight)."""
        phi = features(context, actions)
        if not 0 <= chosen < phi.shape[0]:
            raise ValueError(f"chosen action {chosen} is not among the {phi.shape[0]} actions")
        self._model.learn_one(phi[chosen], float(reward), float(weight))


class LinUCB(_RidgePolicy):
    """LinUCB with one weight vector shared by all actions, mixed with ``epsilon`` uniform exploration.

    Scores each action by its ridge estimate plus ``alpha`` standard errors and plays the best with
    probability ``1 - epsilon``; the uniform share makes every propensity positive and honest.

    >>> policy = LinUCB(seed=1)
    >>> d = policy.decide([1.0, 0.0], [[1.0], [0.0], [0.5]])
    >>> round(sum(d.probabilities), 6), d.propensity > 0, len(d.decision_id)
    (1.0, True, 32)
    """

    def __init__(
        self, alpha: float = 0.5, ridge: float = 1.0, epsilon: float = 0.02, seed: int | None = None
    ) -> None:
        self.alpha = alpha
        self.ridge = ridge
        self.epsilon = epsilon
        self.seed = seed
        self._start()

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision:
        phi = features(context, actions)
        width = np.sqrt(np.clip(np.diag(self._model.covariance(phi)), 0.0, None))
        scores = self._model.predict(phi) + self.alpha * width
        return self._decision(_greedy_mix(scores, self.epsilon), scores)


class EpsilonGreedy(_RidgePolicy):
    """Plays the action with the best ridge estimate, or a uniformly random one with ``epsilon``.

    >>> policy = EpsilonGreedy(epsilon=0.1, seed=0)
    >>> [round(p, 3) for p in policy.decide([1.0], [[1.0], [2.0]]).probabilities]
    [0.5, 0.5]
    """

    def __init__(self, epsilon: float = 0.05, ridge: float = 1.0, seed: int | None = None) -> None:
        self.epsilon = epsilon
        self.ridge = ridge
        self.seed = seed
        self._start()

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision:
        scores = self._model.predict(features(context, actions))
        return self._decision(_greedy_mix(scores, self.epsilon), scores)


class LinearTS(_RidgePolicy):
    """Linear Thompson sampling whose action probabilities are estimated, then sampled from.

    Draws ``n_samples`` reward vectors from the Gaussian posterior (covariance ``scale**2 * A^-1``) and
    counts how often each action wins; that frequency, mixed with ``epsilon`` uniform, is the distribution
    the action is drawn from, so the logged propensity is exactly the probability that was used.

    >>> policy = LinearTS(seed=3)
    >>> d = policy.decide([0.5, -1.0], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> round(sum(d.probabilities), 6), min(d.probabilities) > 0
    (1.0, True)
    """

    def __init__(
        self,
        scale: float = 0.25,
        ridge: float = 1.0,
        epsilon: float = 0.02,
        n_samples: int = 100,
        seed: int | None = None,
    ) -> None:
        self.scale = scale
        self.ridge = ridge
        self.epsilon = epsilon
        self.n_samples = n_samples
        self.seed = seed
        self._start()

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision:
        phi = features(context, actions)
        mean = self._model.predict(phi)
        k = phi.shape[0]
        cov = self._model.covariance(phi)
        chol = np.linalg.cholesky((cov + cov.T) / 2.0 + 1e-9 * np.eye(k))
        draws = mean + self.scale * self._rng.standard_normal((self.n_samples, k)) @ chol.T
        wins = np.bincount(np.argmax(draws, axis=1), minlength=k) / self.n_samples
        probabilities = (1.0 - self.epsilon) * wins + self.epsilon / k
        return self._decision(probabilities, probabilities + 1e-9 * mean)


class UniformRandom(_Base):
    """Every action with the same probability; learns nothing. The baseline and a logging policy.

    >>> UniformRandom(seed=0).decide([0.0], [[1.0], [2.0], [3.0], [4.0]]).probabilities
    (0.25, 0.25, 0.25, 0.25)
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._start()

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision:
        k = features(context, actions).shape[0]
        return self._decision(np.full(k, 1.0 / k), np.zeros(k))

    def learn_one(
        self, context: ArrayLike, actions: ArrayLike, chosen: int, reward: float, *, weight: float = 1.0
    ) -> None:
        """Nothing to learn."""


#: Every policy by name; ``make(name, seed)`` builds one with its default parameters.
POLICIES: dict[str, type[LinUCB | LinearTS | EpsilonGreedy | UniformRandom]] = {
    "linucb": LinUCB,
    "lints": LinearTS,
    "egreedy": EpsilonGreedy,
    "uniform": UniformRandom,
}


def make(
    name: str, seed: int | None = None, **params: Any
) -> LinUCB | LinearTS | EpsilonGreedy | UniformRandom:
    """Build a registered policy by name.

    >>> make("linucb", seed=0, alpha=1.0)
    LinUCB(alpha=1.0, ridge=1.0, epsilon=0.02, seed=0)
    """
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose from {', '.join(sorted(POLICIES))}") from None
    return factory(seed=seed, **params)
