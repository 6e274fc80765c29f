"""Users' tastes as shares of their positives per category, and which of an item's categories draw its users.

With an item's popularity within a category (`models.popular_heads`) they make the ranker's ``taste``
feature: the chance that the user's next item is this one if they pick a category by their shares, then an
item by its popularity there. An item listed under several categories is mostly taken for one of them;
its *fit* learns which, from the tastes of the users who take it, so a category it only nominally carries
lends it little. Pure numpy state, read by the ranking kernel; no I/O.
"""

from __future__ import annotations

__all__ = ["CategoryShares", "ItemCategories", "learn_positive", "shares_of"]

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from models.arrays import Vocabulary, grown

Vector = npt.NDArray[np.float64]
Ids = npt.NDArray[np.int64]

#: Weight of one onboarding "I like this category": as many positives.
LIKED_WEIGHT = 5.0


@njit(cache=True, nogil=True)
def shares_of(user, counts, totals, everyone, n, prior):  # type: ignore[no-untyped-def]
    """The shares of `CategoryShares.vector` (``user`` -1: unknown), in one compiled call."""
    width = min(n, everyone.size)
    mass = 0.0
    for c in range(width):
        mass += everyone[c]
    out = np.zeros(n)
    for c in range(n):
        if mass > 0.0:
            out[c] = everyone[c] / mass if c < width else 0.0
        else:
            out[c] = 1.0 / n
    if user < 0 or totals[user] <= 0.0:
        return out
    scale = 1.0 / (totals[user] + prior)
    own = min(n, counts.shape[1])
    for c in range(n):
        out[c] = ((counts[user, c] if c < own else 0.0) + prior * out[c]) * scale
    return out


@njit(cache=True, nogil=True)
def learn_positive(user, row, fit_row, fit_prior, keep, counts, totals, everyone, n, prior, trust):  # type: ignore[no-untyped-def]
    """One positive of ``user`` for an item with the categories of ``row`` (-1 padded, -2: none).

    The positive is spread by the item's fit (``fit_row`` plus ``fit_prior`` each) into the user's and
    everyone's counts; then the user's shares before it, normalised over the item's categories and times
    the trust in them, are added to the item's fit. Returns (those shares over the first ``n`` category
    ids, empty for a user without own positives; how the positive was spread).
    """
    evidence = totals[user]
    shares = shares_of(user, counts, totals, everyone, n, prior) if evidence > 0.0 else np.zeros(0)
    size = 0
    while size < row.size and row[size] >= 0:
        size += 1
    weights = np.empty(size)
    total = 0.0
    for j in range(size):
        weights[j] = fit_row[j] + fit_prior
        total += weights[j]
    for c in range(counts.shape[1]):
        counts[user, c] *= keep
    totals[user] = evidence * keep + 1.0
    mine = 0.0
    for j in range(size):
        weights[j] /= total
        counts[user, row[j]] += weights[j]
        everyone[row[j]] += weights[j]
        mine += shares[row[j]] if row[j] < shares.size else 0.0
    if mine > 0.0:
        confidence = evidence / (evidence + trust)
        for j in range(size):
            fit_row[j] += confidence * (shares[row[j]] if row[j] < shares.size else 0.0) / mine
    return shares, weights


class CategoryShares:
    """Per user and category: positives, each older one counting ``1 - forget`` times less per new one.

    ``prior`` positives spread like everyone's (all-time) smooth a user's shares, so a new user's look
    like the crowd's and move to their own with each positive.

    >>> shares, cats = CategoryShares(forget=0.0, prior=1.0), ItemCategories()
    >>> cats.set(0, [0]); cats.set(1, [1])
    >>> for item in [0, 0, 0, 1]:
    ...     _ = shares.learn_item("u", cats, item, 2, trust=2.0)
    >>> [round(s, 3) for s in shares.vector("u", 2).tolist()], shares.own("u", 3).tolist()
    ([0.75, 0.25], [3.0, 1.0, 0.0])
    >>> [round(s, 2) for s in shares.vector("stranger", 2).tolist()], shares.evidence("stranger")
    ([0.75, 0.25], 0.0)
    """

    def __init__(self, *, forget: float = 0.01, prior: float = 2.0) -> None:
        self.forget = forget
        self.prior = prior
        self._users = Vocabulary()
        self._counts = np.zeros((64, 8))
        self._totals = np.zeros(64)
        self._everyone = np.zeros(8)

    def row(self, user_id: str, top: int) -> int:
        """The user's row (made if new), with room for category ids up to ``top``."""
        user = self._users.id(user_id)
        if user >= len(self._counts):
            self._counts = grown(self._counts, user + 1)
            self._totals = grown(self._totals, user + 1)
        if top >= self._counts.shape[1]:
            size = max(top + 1, 2 * self._counts.shape[1])
            self._counts = np.pad(self._counts, ((0, 0), (0, size - self._counts.shape[1])))
            self._everyone = np.pad(self._everyone, (0, size - len(self._everyone)))
        return user

    def like(self, user_id: str, ids: Ids) -> None:
        """Onboarding: the user says they like these categories (`LIKED_WEIGHT` positives each)."""
        if not ids.size:
            return
        user = self.row(user_id, int(ids.max()))
        self._counts[user, ids] += LIKED_WEIGHT
        self._totals[user] += LIKED_WEIGHT * ids.size

    def forget_user(self, user_id: str) -> None:
        """Zero the user's positives and drop their name (the row stays, unreachable)."""
        self.scale(0.0, user_id)
        self._users.drop(user_id)

    def scale(self, factor: float, user_id: str | None = None) -> None:
        """Multiply users' own positives (one user's, or everyone's) by ``factor``; 0 forgets them."""
        if user_id is None:
            self._counts *= factor
            self._totals *= factor
        elif (user := self._users.get(user_id)) >= 0:
            self._counts[user] *= factor
            self._totals[user] *= factor

    def evidence(self, user_id: str) -> float:
        """How many (decayed) positives and liked categories the user's shares rest on."""
        user = self._users.get(user_id)
        return float(self._totals[user]) if user >= 0 else 0.0

    def own(self, user_id: str, n: int) -> Vector:
        """The user's own (decayed) positives in each of the first ``n`` category ids: zero where the user
        never took an item of the category nor said they like it."""
        out = np.zeros(n)
        user = self._users.get(user_id)
        if user >= 0:
            width = min(n, self._counts.shape[1])
            out[:width] = self._counts[user, :width]
        return out

    def vector(self, user_id: str, n: int) -> Vector:
        """The user's share of each of the first ``n`` category ids (sums to 1 once anything is known)."""
        return shares_of(*self.kernel_state(user_id, n))  # type: ignore[no-any-return]

    def kernel_state(self, user_id: str, n: int) -> tuple[Any, ...]:
        """What `shares_of` takes for the user's shares of the first ``n`` category ids."""
        return self._users.get(user_id), self._counts, self._totals, self._everyone, n, self.prior

    def learn_item(
        self, user_id: str, categories: ItemCategories, item: int, n: int, trust: float
    ) -> tuple[Vector, Vector]:
        """One positive of the user for ``item`` (which has categories): shared among its categories by
        their fit, which then learns from the user's shares before it (`ItemCategories.learn`, each
        user's weight ``evidence / (evidence + trust)``), in one compiled call. Returns (those shares over
        the first ``n`` category ids, empty for a user without own positives; the fractions, in
        `ItemCategories.ids` order).

        >>> cats, shares = ItemCategories(), CategoryShares(forget=0.0)
        >>> cats.set(0, [1, 2])
        >>> shares.like("u", np.array([1]))
        >>> before, spread = shares.learn_item("u", cats, 0, 3, trust=0.0)
        >>> [round(s, 2) for s in before.tolist()], spread.tolist()
        ([0.1, 0.81, 0.1], [0.5, 0.5])
        >>> [round(f, 2) for f in cats.fractions(0).tolist()]
        [0.7, 0.3]
        """
        user = self.row(user_id, n - 1)
        return learn_positive(  # type: ignore[no-any-return]
            user, categories.matrix[item], categories.fit[item], categories.PRIOR, 1.0 - self.forget,
            self._counts, self._totals, self._everyone, n, self.prior, trust,
        )  # fmt: skip


class ItemCategories:
    """Each item's category ids (a row, -1 padded; ``[-2, -1...]`` without any) and their fit: how much
    of the item's take each category explains, learned from the shares of the users who take it.

    >>> cats = ItemCategories()
    >>> cats.set(0, [3, 5]); cats.ids(0).tolist(), cats.fractions(0).tolist()
    ([3, 5], [0.5, 0.5])
    """

    #: Fit every category of an item starts with (as many users' worth).
    PRIOR = 0.5

    def __init__(self) -> None:
        self.matrix: Ids = np.full((64, 1), -2, dtype=np.int64)
        self.fit: Vector = np.zeros((64, 1))
        #: The same ids as Python lists, per item (read for every event).
        self.lists: list[list[int]] = []

    def reserve(self, items: int) -> None:
        """Room for item ids below ``items`` (new rows have no category)."""
        if items > len(self.matrix):
            size = len(self.matrix)
            self.matrix = grown(self.matrix, items, fill=-1)
            self.matrix[size:, 0] = -2
            self.fit = grown(self.fit, items)
        while len(self.lists) < items:
            self.lists.append([])

    def set(self, item: int, ids: Sequence[int]) -> None:
        """The item's categories (a catalog update); a change of categories starts their fit afresh."""
        self.reserve(item + 1)
        if len(ids) > self.matrix.shape[1]:
            extra = len(ids) - self.matrix.shape[1]
            self.matrix = np.pad(self.matrix, ((0, 0), (0, extra)), constant_values=-1)
            self.fit = np.pad(self.fit, ((0, 0), (0, extra)))
        if self.lists[item] != list(ids):
            self.matrix[item] = -1
            self.matrix[item, : max(len(ids), 1)] = list(ids) or [-2]
            self.fit[item] = 0.0
            self.lists[item] = list(ids)

    def ids(self, item: int) -> Ids:
        row: Ids = self.matrix[item]
        return row[row >= 0]

    def fractions(self, item: int) -> Vector:
        """How the item's take divides among its categories (`ids` order; uniform until learned)."""
        count = self.ids(item).size
        row = self.fit[item, :count] + self.PRIOR
        return row / row.sum() if count else np.zeros(0)
