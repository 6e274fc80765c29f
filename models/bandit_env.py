"""A seeded synthetic contextual bandit whose best policy is known, for benchmarks and tests.

Each round shows a context and a few candidate items; a click is Bernoulli with a probability the
environment knows, so regret is exact. Pure numpy; no I/O.
"""

from __future__ import annotations

__all__ = ["LinearBanditEnv", "Round"]

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class Round:
    """One round: the context, the candidates' features and ids, and each candidate's click probability.

    ``uniforms`` are drawn once per candidate, so every policy that picks the same action in the same
    round gets the same reward (common random numbers make policy comparisons less noisy).
    """

    context: Floats
    actions: Floats
    item_ids: Ints
    expected: Floats
    uniforms: Floats

    def reward(self, action: int) -> float:
        """The realised reward (click = 1.0) of playing ``action``."""
        return 1.0 if self.uniforms[action] < self.expected[action] else 0.0

    @property
    def best(self) -> int:
        """The action with the highest click probability: what the optimal policy plays."""
        return int(np.argmax(self.expected))

    def regret(self, action: int) -> float:
        """Expected reward lost by playing ``action`` instead of the best one."""
        return float(self.expected.max() - self.expected[action])


class LinearBanditEnv:
    """Items with unit-length feature vectors; click probability ``sigmoid(bias + x'Wa + c'a)``.

    ``x`` is the round's context (standard normal, scaled by ``1/sqrt(context_dim)``), ``a`` an item's
    features, ``W`` a hidden standard normal matrix scaled by ``strength`` and ``c`` a hidden
    context-free item preference. Each round draws ``n_candidates`` distinct items from the catalog.
    The same seed gives the same catalog and the same sequence of rounds.

    >>> env = LinearBanditEnv(seed=1)
    >>> r = next(env.rounds(1))
    >>> r.actions.shape, r.context.shape, bool(0 < r.expected.min() <= r.expected.max() < 1)
    ((10, 5), (5,), True)
    >>> r.regret(r.best)
    0.0
    >>> [x.item_ids.tolist() for x in env.rounds(2)] == [x.item_ids.tolist() for x in env.rounds(2)]
    True
    """

    def __init__(
        self,
        n_items: int = 100,
        n_candidates: int = 10,
        context_dim: int = 5,
        action_dim: int = 5,
        strength: float = 2.0,
        bias: float = -1.0,
        seed: int = 0,
    ) -> None:
        if not 1 <= n_candidates <= n_items:
            raise ValueError("need 1 <= n_candidates <= n_items")
        self.n_items = n_items
        self.n_candidates = n_candidates
        self.context_dim = context_dim
        self.action_dim = action_dim
        self.strength = strength
        self.bias = bias
        self.seed = seed
        rng = np.random.default_rng([seed, 0])
        items = rng.standard_normal((n_items, action_dim))
        self.items: Floats = items / np.linalg.norm(items, axis=1, keepdims=True)
        self.weights: Floats = strength * rng.standard_normal((context_dim, action_dim))
        self.item_preference: Floats = 0.5 * rng.standard_normal(action_dim)

    def click_probability(self, context: Floats, item_ids: Ints) -> Floats:
        """The true click probability of each item for this context."""
        a = self.items[item_ids]
        logit = self.bias + a @ (self.weights.T @ context) + a @ self.item_preference
        out: Floats = 1.0 / (1.0 + np.exp(-logit))
        return out

    def rounds(self, n: int) -> Iterator[Round]:
        """The first ``n`` rounds (the same ones on every call)."""
        rng = np.random.default_rng([self.seed, 1])
        for _ in range(n):
            context = rng.standard_normal(self.context_dim) / np.sqrt(self.context_dim)
            ids = rng.choice(self.n_items, size=self.n_candidates, replace=False).astype(np.int64)
            yield Round(
                context=context,
                actions=self.items[ids],
                item_ids=ids,
                expected=self.click_probability(context, ids),
                uniforms=rng.random(self.n_candidates),
            )
