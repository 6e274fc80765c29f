"""The ranker's blend of candidate features, learned online from what each user took next.

A linear score over the features of `models.ranking_kernels.FEATURES`, trained listwise: a softmax over
the user's remembered candidates should give the item the user took the highest probability (one
gradient step of its log-likelihood per taken item). Every remembered candidate takes part, not only
those ranked above the taken one: comparing it only with them pushes down whatever the ranking already
weighs most, so a blend trained that way drifts away from the very signals that rank well. Weights
start at a prior and are pulled gently back towards it.
"""

from __future__ import annotations

__all__ = ["Blend", "OnlineBlend"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit


@dataclass(frozen=True, slots=True)
class Blend:
    """Prior weights of the features in the final score (`ranking_kernels.FEATURES` order).

    Chosen by replay on MovieLens (docs/models.md): sequence neighbours carry most of the signal,
    co-occurrence and transitions add to it, decayed popularity and the item's share of positive
    ratings (``quality``) break ties towards well-liked items; ``affinity`` is the context-aware
    category model, which carries new users and new items; ``taste`` is the user's category shares
    times the item's popularity within them (`models.taste`). `OnlineBlend` learns from here.
    """

    sequence: float = 1.0
    cooccurrence: float = 0.3
    transitions: float = 0.3
    content: float = 0.2
    popularity: float = 0.2
    quality: float = 0.8
    affinity: float = 0.6
    taste: float = 0.5


Matrix = npt.NDArray[np.float64]
Rows = npt.NDArray[np.floating[Any]]


@njit(cache=True, nogil=True)
def _step(rows, taken, weights, prior, learning_rate, pull):  # type: ignore[no-untyped-def]
    """One gradient step of the softmax log-likelihood of row ``taken``, pulled to ``prior``, in place."""
    k, d = rows.shape
    chance = np.empty(k)
    top = -np.inf
    for i in range(k):
        score = 0.0
        for j in range(d):
            score += rows[i, j] * weights[j]
        chance[i] = score
        top = max(top, score)
    total = 0.0
    for i in range(k):
        chance[i] = np.exp(chance[i] - top)
        total += chance[i]
    for j in range(d):
        expected = 0.0
        for i in range(k):
            expected += chance[i] * rows[i, j]
        step = rows[taken, j] - expected / total - pull * (weights[j] - prior[j])
        weights[j] = max(weights[j] + learning_rate * step, 0.0)


class OnlineBlend:
    """Listwise logistic (softmax) regression on candidate features, one update per taken item.

    >>> blend = OnlineBlend([1.0, 0.0], learning_rate=0.5, pull=0.0)
    >>> shown = np.array([[1.0, 0.0], [0.2, 1.0], [0.5, 0.1]])  # ranked first, second, third
    >>> for _ in range(20):
    ...     _ = blend.learn_one(shown, taken=1)
    >>> [round(w, 2) for w in blend.weights.tolist()]
    [0.0, 2.86]
    >>> blend.learn_one(shown, taken=5)  # not among the candidates: nothing to learn
    False
    """

    def __init__(self, prior: Sequence[float], *, learning_rate: float = 0.1, pull: float = 0.01) -> None:
        self.prior = tuple(prior)
        self.learning_rate = learning_rate
        self.pull = pull
        self.weights: Matrix = np.array(self.prior, dtype=np.float64)
        self._prior = self.weights.copy()
        self.updates = 0

    def step_state(self) -> tuple[Any, ...]:
        """What a compiled step takes (`models.ranking_kernels.learn_taken`): weights (updated in place),
        prior, learning rate, pull."""
        return self.weights, self._prior, self.learning_rate, self.pull

    def learn_one(self, shown: Rows, taken: int) -> bool:
        """Learn that row ``taken`` of ``shown`` (candidate features, best first) was the one taken.

        Returns whether anything was learned. Weights stay non-negative: each feature was built to
        point towards what users take.
        """
        if not 0 <= taken < len(shown) or len(shown) < 2:
            return False
        if not np.isfinite(shown).all():  # one inf feature would make every weight NaN for good
            return False
        _step(shown, taken, self.weights, self._prior, self.learning_rate, self.pull)
        self.updates += 1
        return True

    def reset(self) -> None:
        """Back to the prior (a drift response)."""
        self.weights[:] = self._prior
