"""Why the items of a batch's lists are there, as the worker stores them with each list.

The hybrid model's reasons come in the stored form, all of a batch's lists in one pass
(`models.explain_batch`); the popular tier's items are there for their popularity; other models say
nothing. Explaining never costs a user their list: a failure leaves that list without reasons.
"""

from __future__ import annotations

__all__ = ["POPULAR", "Reasons", "reasons_of", "reasons_of_all"]

import logging
from collections.abc import Sequence

from models.explain_batch import stored_reasons
from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.registry import PopularRecommender
from schemas.reasons import Reason, Stored, Tokens

log = logging.getLogger(__name__)

#: What the popular tier's items are there for (it has no `explain` of its own).
POPULAR = Reason("popular", None, ("popularity",))

Reasons = list[Reason | None] | Tokens | Stored | None


def reasons_of(model: object, profile: UserProfile, items: list[tuple[str, float]]) -> Reasons:
    """Why each of ``items`` (the model's latest ranking for the user) is there, or None if the model
    cannot say. Must run right after that `recommend` (or others' after it): the model explains from
    that ranking's features.

    >>> reasons_of(object(), UserProfile("u1"), [("i1", 0.5)]) is None
    True
    """
    return reasons_of_all(model, [(profile, items)])[0]


def reasons_of_all(
    model: object, lists: Sequence[tuple[UserProfile, list[tuple[str, float]]]]
) -> list[Reasons]:
    """`reasons_of` each (profile, items) of ``lists``, in one pass for the hybrid model; a list whose
    explaining fails gets None (logged), the others keep theirs."""
    if isinstance(model, PopularRecommender):
        return [[POPULAR] * len(items) for _, items in lists]
    if not isinstance(model, HybridRecommender):
        return [None] * len(lists)
    try:
        return list(stored_reasons(model, lists))
    except Exception:  # noqa: BLE001 - a bug in explaining must not cost the users their lists
        if len(lists) == 1:
            log.exception("could not explain the list of %s; published without reasons", lists[0][0].user_id)
            return [None]
        log.exception("could not explain %d lists at once; explaining them one by one", len(lists))
        return [reasons_of(model, profile, items) for profile, items in lists]
