"""Contextual bandit policies over action-dependent features (a shared context plus one vector per action).

Every decision carries the probability of each action, so the chosen one's propensity can be logged and
the policy evaluated off-line. Pure numpy: no I/O, no clocks; all randomness comes from the seed.
"""

from __future__ import annotations

__all__ = [
    "POLICIES",
    "AnyPolicy",
    "Decision",
    "EpsilonGreedy",
    "LinUCB",
    "LinearTS",
    "LogisticTS",
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

from models.online_regression import OnlineLogistic, OnlineRidge, features

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


def _slate(orders: NDArray[np.intp], n_actions: int, n_positions: int, epsilon: float) -> Floats:
    """Position marginals of a ranking drawn from ``orders`` (one ranking per row, equally likely) with
    probability ``1 - epsilon``, else a uniformly random ranking (every action ``1 / n`` at each place).

    >>> _slate(np.array([[2, 0, 1], [2, 1, 0]]), 3, 2, 0.0).tolist()
    [[0.0, 0.5], [0.0, 0.5], [1.0, 0.0]]
    """
    if not 1 <= n_positions <= n_actions:
        raise ValueError(f"need 1 <= n_positions <= {n_actions} actions, got {n_positions}")
    counts = np.stack(
        [np.bincount(orders[:, k], minlength=n_actions) for k in range(n_positions)], axis=1
    ).astype(np.float64)
    out: Floats = (1.0 - epsilon) * counts / orders.shape[0] + epsilon / n_actions
    return out


def _order(scores: Floats) -> NDArray[np.intp]:
    """One ranking (best first) per column of ``scores`` (actions x draws), ties broken by index."""
    return np.argsort(-scores.T, axis=1, kind="stable")


class _RidgePolicy(_Base):
    ridge: float

    def _start(self) -> None:
        super()._start()
        self._model = self._new_model()

    def _new_model(self) -> OnlineRidge:
        return OnlineRidge(self.ridge)

    @property
    def model(self) -> OnlineRidge:
        """The regression behind the policy (its state is what a snapshot stores)."""
        return self._model

    def learn_one(
        self, context: ArrayLike, actions: ArrayLike, chosen: int, reward: float, *, weight: float = 1.0
    ) -> None:
        """Learn the reward of the chosen action; ``weight`` > 1 counts it more (e.g. an IPS weight)."""
        a = np.asarray(actions, dtype=np.float64)
        if a.ndim != 2 or not 0 <= chosen < a.shape[0]:
            n = features(context, a).shape[0]  # raises for malformed input first
            raise ValueError(f"chosen action {chosen} is not among the {n} actions")
        self._model.learn_one(features(context, a[chosen : chosen + 1])[0], float(reward), float(weight))

    def _scores(self, context: ArrayLike, actions: ArrayLike) -> Floats:
        raise NotImplementedError

    def slate(self, context: ArrayLike, actions: ArrayLike, n_positions: int) -> Floats:
        """``out[a, k]``: the probability that action ``a`` is shown at place ``k`` when the policy ranks
        ``actions`` (its best-scoring first; with ``epsilon``, a uniformly random ranking instead)."""
        scores = self._scores(context, actions)
        epsilon = float(getattr(self, "epsilon", 0.0))
        return _slate(_order(scores[:, None]), scores.shape[0], n_positions, epsilon)


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

    def _scores(self, context: ArrayLike, actions: ArrayLike) -> Floats:
        phi = features(context, actions)
        width = np.sqrt(np.clip(np.diag(self._model.covariance(phi)), 0.0, None))
        out: Floats = self._model.predict(phi) + self.alpha * width
        return out

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision:
        scores = self._scores(context, actions)
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

    def _scores(self, context: ArrayLike, actions: ArrayLike) -> Floats:
        return self._model.predict(features(context, actions))

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision:
        scores = self._scores(context, actions)
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

    def _draws(self, phi: Floats) -> tuple[Floats, Floats]:
        """The posterior mean of each action and ``n_samples`` draws (actions x draws)."""
        mean = self._model.predict(phi)
        k = phi.shape[0]
        cov = self._model.covariance(phi)
        chol = np.linalg.cholesky((cov + cov.T) / 2.0 + 1e-9 * np.eye(k))
        draws = mean + self.scale * self._rng.standard_normal((self.n_samples, k)) @ chol.T
        return mean, draws.T

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision:
        mean, draws = self._draws(features(context, actions))
        k = mean.shape[0]
        wins = np.bincount(np.argmax(draws, axis=0), minlength=k) / self.n_samples
        probabilities = (1.0 - self.epsilon) * wins + self.epsilon / k
        return self._decision(probabilities, probabilities + 1e-9 * mean)

    def slate(self, context: ArrayLike, actions: ArrayLike, n_positions: int) -> Floats:
        """As `LinUCB.slate`, each of ``n_samples`` posterior draws ranking the actions once."""
        _, draws = self._draws(features(context, actions))
        return _slate(_order(draws), draws.shape[0], n_positions, self.epsilon)


class LogisticTS(_RidgePolicy):
    """Thompson sampling on a Bayesian logistic regression: the policy for sparse clicks.

    The click probability is ``sigmoid(w . phi)`` with the prior ``w ~ N(m0, I / ridge)`` centred on
    ``prior_ctr`` (`models.online_regression.OnlineLogistic`), so at a click-through rate of 0.5% a
    handful of clicks counts for what it is worth instead of being drowned by the prior (ridge on 0/1
    rewards) or by an exploration bonus in reward units (LinUCB's). ``n_samples`` weight vectors are
    drawn from the posterior and kept until the next update; an action's probability is the share of
    draws that rank it first, mixed with ``epsilon`` uniform, and the action is drawn from exactly that.

    >>> policy = LogisticTS(seed=3)
    >>> d = policy.decide([0.5, -1.0], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> round(sum(d.probabilities), 6), min(d.probabilities) > 0
    (1.0, True)
    """

    def __init__(
        self,
        prior_ctr: float = 0.01,
        ridge: float = 1.0,
        epsilon: float = 0.02,
        n_samples: int = 100,
        seed: int | None = None,
    ) -> None:
        self.prior_ctr = prior_ctr
        self.ridge = ridge
        self.epsilon = epsilon
        self.n_samples = n_samples
        self.seed = seed
        self._weights: Floats | None = None
        self._start()

    def _new_model(self) -> OnlineLogistic:
        return OnlineLogistic(self.ridge, self.prior_ctr)

    def _draws(self, phi: Floats) -> Floats:
        """Each action's logit under each kept posterior draw (actions x draws)."""
        if self._weights is None or self._weights.shape[0] != phi.shape[1]:
            model = self._model
            assert isinstance(model, OnlineLogistic)
            # kept as features x draws, contiguous: a product with a transposed view is 10x slower here
            self._weights = np.ascontiguousarray(model.sample(self.n_samples, self._rng, phi.shape[1]).T)
        out: Floats = phi @ self._weights
        return out

    def learn_one(
        self, context: ArrayLike, actions: ArrayLike, chosen: int, reward: float, *, weight: float = 1.0
    ) -> None:
        """Learn a click (1) or not (0) of the chosen action; the kept posterior draws are renewed."""
        super().learn_one(context, actions, chosen, reward, weight=weight)
        self._weights = None

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision:
        phi = features(context, actions)
        draws = self._draws(phi)
        k = phi.shape[0]
        wins = np.bincount(np.argmax(draws, axis=0), minlength=k) / self.n_samples
        probabilities = (1.0 - self.epsilon) * wins + self.epsilon / k
        return self._decision(probabilities, probabilities + 1e-9 * self._model.predict(phi))

    def slate(self, context: ArrayLike, actions: ArrayLike, n_positions: int) -> Floats:
        """As `LinUCB.slate`, each kept posterior draw ranking the actions once."""
        draws = self._draws(features(context, actions))
        return _slate(_order(draws), draws.shape[0], n_positions, self.epsilon)


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

    def slate(self, context: ArrayLike, actions: ArrayLike, n_positions: int) -> Floats:
        """Every action ``1 / n`` at every place."""
        k = features(context, actions).shape[0]
        return _slate(np.zeros((1, k), dtype=np.intp), k, n_positions, 1.0)


AnyPolicy = LinUCB | LinearTS | LogisticTS | EpsilonGreedy | UniformRandom

#: Every policy by name; ``make(name, seed)`` builds one with its default parameters.
POLICIES: dict[str, type[AnyPolicy]] = {
    "linucb": LinUCB,
    "lints": LinearTS,
    "logts": LogisticTS,
    "egreedy": EpsilonGreedy,
    "uniform": UniformRandom,
}


def make(name: str, seed: int | None = None, **params: Any) -> AnyPolicy:
    """Build a registered policy by name.

    >>> make("linucb", seed=0, alpha=1.0)
    LinUCB(alpha=1.0, ridge=1.0, epsilon=0.02, seed=0)
    """
    try:
        factory = POLICIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; choose from {', '.join(sorted(POLICIES))}") from None
    return factory(seed=seed, **params)
