"""Context-aware user-category affinity learned online by a logistic regression.

Features cross the category with the user (personal taste) and, at a smaller scale, with the device,
locale and time of day (context effects shared by everyone), and generalise to items never seen.
No global per-category feature: with sampled negatives it learns popularity and drowns out taste.

The regression is River's `LogisticRegression` with plain SGD written out over numpy arrays (a
user x category matrix, a context-part x category matrix): it is asked for every category on every
request, where River's per-call feature dicts cost about 15 µs per category (replay profile,
docs/models.md). Same update, same numbers; one vector operation per request.
"""

from __future__ import annotations

__all__ = ["CategoryAffinity"]

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from models import kernels
from models.arrays import Vocabulary, grown
from schemas.events import Context

#: Scale of the shared context crosses relative to the personal one (measured on the synthetic
#: clickstream: 0.3 keeps taste dominant while context still moves the ranking).
CONTEXT_SCALE = 0.3

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
#: 1970-01-01 was a Thursday (Monday = 0).
_EPOCH_WEEKDAY = 3


def _context(context: Context | None, ts: int | None) -> tuple[str, ...]:
    """The shared context parts of the features (UTC quarter of the day, weekend), once per call.

    >>> _context(None, 1_700_000_000_000)  # Tuesday 2023-11-14 22:13 UTC
    ('h=3', 'we=0')
    """
    parts = []
    if context is not None:
        if context.device:
            parts.append(f"d={context.device}")
        if context.locale:
            parts.append(f"l={context.locale}")
    if ts is not None:
        parts.append(f"h={(ts // _HOUR_MS) % 24 // 6}")
        parts.append(f"we={int((ts // _DAY_MS + _EPOCH_WEEKDAY) % 7 >= 5)}")
    return tuple(parts)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class CategoryAffinity:
    """P(user likes an item of this category | context), updated one event at a time.

    >>> aff = CategoryAffinity()
    >>> for _ in range(20):
    ...     aff.learn_one("u1", ["jazz"], 1, None, None)
    ...     aff.learn_one("u1", ["metal"], 0, None, None)
    >>> probs = aff.predict_many("u1", ["jazz", "metal"], None, None)
    >>> probs["jazz"] > 0.7 > 0.3 > probs["metal"]
    True
    """

    def __init__(self, learning_rate: float = 0.3, intercept_lr: float = 0.01) -> None:
        self.learning_rate = learning_rate
        self.intercept_lr = intercept_lr
        self.categories = Vocabulary()
        self._users = Vocabulary()
        self._parts = Vocabulary()
        self._personal = np.zeros((64, 8))
        self._shared = np.zeros((64, 8))
        self._intercept = np.zeros(1)
        #: Context part ids by (device, locale, hour since the epoch): one lookup per event.
        self._shared_cache: dict[tuple[str | None, str | None, int], npt.NDArray[np.int64]] = {}

    @property
    def intercept(self) -> float:
        return float(self._intercept[0])

    @property
    def weights(self) -> dict[str, float]:
        """The non-zero weights by feature name (``u=<user>|c=<category>``, ``<part>|c=<category>``)."""
        out: dict[str, float] = {}
        for prefix, names, matrix in (
            ("u=", self._users.names, self._personal),
            ("", self._parts.names, self._shared),
        ):
            rows, columns = np.nonzero(matrix[: len(names), : len(self.categories)])
            for r, c in zip(rows.tolist(), columns.tolist(), strict=True):
                out[f"{prefix}{names[r]}|c={self.categories.names[c]}"] = float(matrix[r, c])
        return out

    def category_id(self, name: str) -> int:
        """The id of a category, making room for it in the weight matrices when it is new."""
        category = self.categories.id(name)
        if category >= self._personal.shape[1]:
            size = max(category + 1, 2 * self._personal.shape[1])
            self._personal = np.pad(self._personal, ((0, 0), (0, size - self._personal.shape[1])))
            self._shared = np.pad(self._shared, ((0, 0), (0, size - self._shared.shape[1])))
        return category

    def shared_ids(self, context: Context | None, ts: int | None) -> npt.NDArray[np.int64]:
        """Ids of the shared context parts of ``context`` at ``ts`` (made, with room, when new)."""
        key = (
            context.device if context else None,
            context.locale if context else None,
            -1 if ts is None else ts // _HOUR_MS,
        )
        found = self._shared_cache.get(key)
        if found is None:
            if len(self._shared_cache) > 4096:
                self._shared_cache.clear()
            found = np.array([self._parts.id(part) for part in _context(context, ts)], dtype=np.int64)
            if found.size and found.max() >= len(self._shared):
                self._shared = grown(self._shared, int(found.max()) + 1)
            self._shared_cache[key] = found
        return found

    def learn_one(
        self,
        user_id: str,
        categories: Iterable[str],
        label: int,
        context: Context | None,
        ts: int | None,
        weight: float = 1.0,
    ) -> None:
        ids = np.array([self.category_id(name) for name in categories], dtype=np.int64)
        self.learn_ids(user_id, ids, np.full(ids.size, float(label)), context, ts, weight)

    def learn_ids(
        self,
        user_id: str,
        ids: npt.NDArray[np.int64],
        labels: npt.NDArray[np.float64],
        context: Context | None,
        ts: int | None,
        weight: float = 1.0,
    ) -> None:
        """`learn_one` by category ids (from `category_id`), each with its own label, in order."""
        shared = self.shared_ids(context, ts)
        kernels.affinity_learn(self.row(user_id), ids, labels, shared, weight, *self.learn_state())

    def row(self, user_id: str) -> int:
        """The user's row of personal weights (made if new)."""
        user = self._users.id(user_id)
        if user >= len(self._personal):
            self._personal = grown(self._personal, user + 1)
        return user

    def learn_state(self) -> tuple[Any, ...]:
        """What `kernels.affinity_learn` takes after (user, categories, labels, shared ids, weight)."""
        return (
            self._personal, self._shared, self._intercept, self.learning_rate, self.intercept_lr,
            CONTEXT_SCALE,
        )  # fmt: skip

    def scale_personal(self, factor: float, user_id: str | None = None) -> None:
        """Multiply personal weights (of one user, or of everyone) by ``factor``; 0 forgets them."""
        if user_id is None:
            self._personal *= factor
        elif (user := self._users.get(user_id)) >= 0:
            self._personal[user] *= factor

    def forget(self, user_id: str) -> None:
        """Delete the user's personal weights and their name (context weights are shared and stay)."""
        self.scale_personal(0.0, user_id)
        self._users.drop(user_id)

    def predict_vector(
        self, user_id: str, context: Context | None, ts: int | None
    ) -> npt.NDArray[np.float64]:
        """Probability of a positive for every known category, in the order of ``categories``."""
        return kernels.affinity_predict(*self.predict_state(user_id, context, ts))  # type: ignore[no-any-return]

    def predict_state(self, user_id: str, context: Context | None, ts: int | None) -> tuple[Any, ...]:
        """The arguments of `kernels.affinity_predict` for this user and context."""
        return (
            self._users.get(user_id), self.shared_ids(context, ts), self._personal, self._shared,
            self._intercept, len(self.categories), CONTEXT_SCALE,
        )  # fmt: skip

    def predict_many(
        self, user_id: str, categories: Iterable[str], context: Context | None, ts: int | None
    ) -> dict[str, float]:
        """Probability of a positive per category (the intercept alone for a category never learned)."""
        vector = self.predict_vector(user_id, context, ts).tolist()
        base = _sigmoid(self.intercept)
        return {c: vector[i] if (i := self.categories.get(c)) >= 0 else base for c in categories}
