"""River's bandit policies (`river.bandit`) behind our `models.bandits.Policy` contract, so they play in
the bandit bench, in off-policy evaluation and on the rank/reward path next to ours.

River pulls one arm and keeps its own randomness. To log an honest propensity, the adapter plays
River's pull with probability ``1 - epsilon`` and a uniformly drawn action otherwise, and records that
mixture; River's internal draw acts as one more context variable of the logging policy, so IPS over
these propensities stays unbiased. Arms are named by their action feature rows (an item's features
are its identity here), the context becomes River's feature dict. Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["RANK_POLICIES", "RIVER_POLICIES", "RiverPolicy", "make_any"]

import inspect
import random
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike
from river import bandit, proba

from models.bandits import AnyPolicy, Decision, _Base, _greedy_mix, _slate, make

#: Our name -> (River class, whether it takes a context, its default parameters).
RIVER_POLICIES: dict[str, tuple[type[Any], bool, dict[str, Any]]] = {
    "river-linucb": (bandit.LinUCBDisjoint, True, {}),
    "river-ts": (bandit.ThompsonSampling, False, {"reward_obj": proba.Beta()}),
    "river-bayes-ucb": (bandit.BayesUCB, False, {"reward_obj": proba.Beta()}),
    "river-ucb": (bandit.UCB, False, {"delta": 1.0}),
    "river-egreedy": (bandit.EpsilonGreedy, False, {"epsilon": 0.1}),
    "river-exp3": (bandit.Exp3, False, {"gamma": 0.1}),
}

#: The River policies that can rank on the rank/reward path, where the API decides and the worker
#: learns from snapshots. Not Exp3: its update divides by the probability of its own latest pull, which
#: happened in another process (the API), so the worker has none to divide by.
RANK_POLICIES: tuple[str, ...] = tuple(name for name in RIVER_POLICIES if name != "river-exp3")


def _arm(row: np.ndarray[Any, Any]) -> str:
    """An action's name: its feature row, rounded so that float noise does not split one arm in two.

    >>> _arm(np.array([1.0, 0.30000000000000004]))
    '1,0.3'
    """
    return ",".join(f"{v:.9g}" for v in row.tolist())


class RiverPolicy(_Base):
    """One `river.bandit` policy by our name (see `RIVER_POLICIES`), mixed with ``epsilon`` uniform play.

    >>> policy = RiverPolicy("river-ts", seed=0)
    >>> d = policy.decide([1.0], [[1.0, 0.0], [0.0, 1.0]])
    >>> round(sum(d.probabilities), 6), min(d.probabilities) >= 0.025
    (1.0, True)
    >>> policy.learn_one([1.0], [[1.0, 0.0], [0.0, 1.0]], d.action, 1.0)
    >>> RiverPolicy("river-linucb", epsilon=0.1, seed=2)
    RiverPolicy(name='river-linucb', epsilon=0.1, seed=2)
    """

    def __init__(self, name: str = "river-linucb", epsilon: float = 0.05, seed: int | None = None) -> None:
        if name not in RIVER_POLICIES:
            raise ValueError(
                f"unknown River policy {name!r}; choose from {', '.join(sorted(RIVER_POLICIES))}"
            )
        self.name = name
        self.epsilon = epsilon
        self.seed = seed
        self._start()
        cls, self._contextual, defaults = RIVER_POLICIES[name]
        params = dict(defaults)
        if "seed" in inspect.signature(cls).parameters:
            params["seed"] = seed
        self._river = cls(**{k: v.clone() if hasattr(v, "clone") else v for k, v in params.items()})

    def _context(self, context: ArrayLike) -> dict[str, float]:
        x = {f"x{i}": float(v) for i, v in enumerate(np.atleast_1d(np.asarray(context, dtype=float)))}
        x["bias"] = 1.0  # River's Bayesian linear regression has no intercept of its own
        return x

    def _pull(self, arms: list[str], context: ArrayLike) -> str:
        if self._contextual:
            return str(self._river.pull(arms, context=self._context(context)))
        return str(self._river.pull(arms))

    def decide(self, context: ArrayLike, actions: ArrayLike) -> Decision:
        rows = np.atleast_2d(np.asarray(actions, dtype=float))
        arms = [_arm(row) for row in rows]
        pulled = self._pull(arms, context)
        preference = np.array([arm == pulled for arm in arms], dtype=float)
        return self._decision(_greedy_mix(preference, self.epsilon), preference)

    def slate(self, context: ArrayLike, actions: ArrayLike, n_positions: int) -> np.ndarray[Any, Any]:
        """``out[a, k]``: one ranking drawn as the policy plays (River pulls place after place among the
        arms not placed yet), as position indicators, mixed with ``epsilon`` uniform rankings.

        One draw, not the policy's exact marginals (River does not expose them): its indicator is an
        unbiased estimate of them, so an off-policy estimate built on it stays unbiased, with more
        variance (each evaluated round draws afresh, so the interval carries it).

        >>> RiverPolicy("river-ucb", epsilon=0.0, seed=0).slate([1.0], [[1.0], [2.0], [3.0]], 2).sum(axis=0)
        array([1., 1.])
        """
        rows = np.atleast_2d(np.asarray(actions, dtype=float))
        arms = [_arm(row) for row in rows]
        left = list(range(len(arms)))
        order: list[int] = []
        for _ in range(min(n_positions, len(arms))):
            pulled = self._pull([arms[i] for i in left], context)
            place = next(i for i in left if arms[i] == pulled)
            order.append(place)
            left.remove(place)
        order += left
        return _slate(np.array([order], dtype=np.intp), len(arms), n_positions, self.epsilon)

    def reseed(self, seed: int | None) -> None:
        """Draw from fresh generators seeded by ``seed``: the exploration share's and River's own (the
        policy's and each arm's distribution's), so that a policy restored from a snapshot does not
        replay the draws of the process that wrote it.

        >>> a, b = RiverPolicy("river-ts", seed=1), RiverPolicy("river-ts", seed=2)
        >>> a.reseed(5); b.reseed(5)
        >>> [a.decide([0.0], [[1.0], [2.0]]).action for _ in range(8)] == [
        ...     b.decide([0.0], [[1.0], [2.0]]).action for _ in range(8)]
        True
        """
        self.seed = seed
        self._start()
        draw = random.Random(int(self._rng.integers(2**63)))
        if hasattr(self._river, "_rng"):
            self._river._rng = random.Random(draw.getrandbits(64))
        for table in ("_rewards", "_posteriors"):
            for value in getattr(self._river, table, {}).values():
                if hasattr(value, "_rng"):
                    value._rng = random.Random(draw.getrandbits(64))

    def learn_one(
        self, context: ArrayLike, actions: ArrayLike, chosen: int, reward: float, *, weight: float = 1.0
    ) -> None:
        """Update River's estimate of the chosen arm. ``weight`` is not used: River's policies keep one
        estimate per arm, which samples of that arm already estimate without re-weighting."""
        rows = np.atleast_2d(np.asarray(actions, dtype=float))
        if not 0 <= chosen < rows.shape[0]:
            raise ValueError(f"chosen action {chosen} is not among the {rows.shape[0]} actions")
        arm = _arm(rows[chosen])
        if self._contextual:
            self._river.update(arm, self._context(context), float(reward))
        else:
            self._river.update(arm, float(reward))

    def clone(self) -> Self:
        return type(self)(self.name, self.epsilon, self.seed)


def make_any(name: str, seed: int | None = None, **params: Any) -> AnyPolicy | RiverPolicy:
    """Ours by `models.bandits.make`, or River's through `RiverPolicy`.

    >>> make_any("river-ucb", seed=0).name, make_any("uniform", seed=0)
    ('river-ucb', UniformRandom(seed=0))
    """
    if name in RIVER_POLICIES:
        return RiverPolicy(name, seed=seed, **params)
    return make(name, seed=seed, **params)
