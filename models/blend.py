"""The ranker's blend of candidate features, learned online from what each user took next.

A linear score over the features of `models.ranking_kernels.FEATURES`, trained pairwise: the item
the user took should outscore the candidates that were ranked above it. Weights start at a prior
and are pulled back towards it, so a short burst of odd events cannot wreck the ranking.
"""

from __future__ import annotations

__all__ = ["OnlineBlend"]

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]
Rows = npt.NDArray[np.floating[Any]]


class OnlineBlend:
    """Pairwise logistic regression (BPR-style) on candidate features, one update per taken item.

    >>> blend = OnlineBlend([1.0, 0.0], learning_rate=0.5, pull=0.0)
    >>> shown = np.array([[1.0, 0.0], [0.2, 1.0]])  # ranked first, second
    >>> for _ in range(20):
    ...     _ = blend.learn_one(shown, taken=1)
    >>> [round(w, 2) for w in blend.weights.tolist()]
    [0.0, 2.29]
    >>> blend.learn_one(shown, taken=5)  # not among the candidates: nothing to learn
    False
    """

    def __init__(
        self,
        prior: Sequence[float],
        *,
        learning_rate: float = 0.1,
        pull: float = 0.01,
        pairs: int = 5,
    ) -> None:
        self.prior = tuple(prior)
        self.learning_rate = learning_rate
        self.pull = pull
        self.pairs = pairs
        self.weights: Matrix = np.array(self.prior, dtype=np.float64)
        self._prior = self.weights.copy()
        self.updates = 0

    def learn_one(self, shown: Rows, taken: int) -> bool:
        """Learn that row ``taken`` of ``shown`` (candidate features, best first) was the one taken.

        The taken item is paired with up to ``pairs`` candidates ranked above it (with the next
        one when it was first). Returns whether anything was learned. Weights stay non-negative:
        each feature was built to point towards what users take.
        """
        if not 0 <= taken < len(shown) or len(shown) < 2:
            return False
        others = shown[max(taken - self.pairs, 0) : taken] if taken else shown[1:2]
        differences = shown[taken] - others
        margins = np.minimum(differences @ self.weights, 50.0)
        gradient = (1.0 / (1.0 + np.exp(margins))) @ differences
        step = gradient / len(others) - self.pull * (self.weights - self._prior)
        np.maximum(self.weights + self.learning_rate * step, 0.0, out=self.weights)
        self.updates += 1
        return True

    def reset(self) -> None:
        """Back to the prior (a drift response)."""
        self.weights[:] = self._prior
