"""What the model does when drift is detected: forget part of the users' tastes, or explore more for a while.

Works on `HybridRecommender`'s public parts (``affinity``, ``shares``, ``explore_slots``) so the
recommender itself needs no change. Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["RESPONSES", "DriftResponder"]

from models.recommender import HybridRecommender

#: Responses the worker can be configured with (``PERSONALIZE_DRIFT_RESPONSE``).
RESPONSES = ("none", "reset_affinity", "boost_exploration")


class DriftResponder:
    """Applies one configured response per detection, at most once per ``cooldown`` events.

    ``reset_affinity`` multiplies the personal user x category weights and the users' own category
    positives by ``decay`` (0 forgets them), so tastes learned before the change stop outvoting the
    events after it. ``boost_exploration``
    gives ``explore_slots`` places of each list to fresh items for ``cooldown`` events.

    >>> from models.recommender import HybridRecommender
    >>> model = HybridRecommender()
    >>> model.affinity.learn_one("u1", ["jazz"], 1, None, None)
    >>> r = DriftResponder(model, "reset_affinity", decay=0.0, cooldown=10)
    >>> r.respond(at=5), r.respond(at=9), model.affinity.weights
    (True, False, {})
    >>> boost = DriftResponder(model, "boost_exploration", explore_slots=3, cooldown=10)
    >>> boost.respond(at=0), model.explore_slots, boost.tick(at=10), model.explore_slots
    (True, 3, True, 1)
    """

    def __init__(
        self,
        model: HybridRecommender,
        response: str,
        *,
        decay: float = 0.5,
        explore_slots: int = 3,
        cooldown: int = 2000,
    ) -> None:
        if response not in RESPONSES:
            raise ValueError(f"unknown drift response {response!r}; known: {', '.join(RESPONSES)}")
        self.model = model
        self.response = response
        self.decay = decay
        self.explore_slots = explore_slots
        self.cooldown = cooldown
        #: Event count of the last response, and the explore slots a temporary boost replaced (a
        #: checkpoint keeps both: the restored model may still hold the boost).
        self.last: int | None = None
        self.saved_slots: int | None = None

    def respond(self, at: int) -> bool:
        """React to a detection at event count ``at``; False when off or still cooling down."""
        if self.response == "none" or (self.last is not None and at - self.last < self.cooldown):
            return False
        self.last = at
        if self.response == "reset_affinity":
            self.model.affinity.scale_personal(self.decay)
            self.model.shares.scale(self.decay)
        elif self.saved_slots is None:
            self.saved_slots = self.model.explore_slots
            self.model.explore_slots = max(self.explore_slots, self.saved_slots)
        return True

    def tick(self, at: int) -> bool:
        """Called per event: ends a temporary response after ``cooldown`` events; True when it ended."""
        if self.saved_slots is None or self.last is None or at - self.last < self.cooldown:
            return False
        self.model.explore_slots, self.saved_slots = self.saved_slots, None
        return True
