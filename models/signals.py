"""What an event says about the user's taste: its implicit weight and whether it is a positive.

One table for every model, so that the meaning of a purchase or a dismissal is decided once.
"""

from __future__ import annotations

__all__ = ["Signal", "signal_of"]

from dataclasses import dataclass

from schemas.events import Event, EventType

#: Ratings at or above this are positives, below it consumed-but-negative (MovieLens convention).
POSITIVE_RATING = 4.0

_WEIGHTS = {
    EventType.VIEW: 1.0,
    EventType.CLICK: 2.0,
    EventType.ADD_TO_CART: 3.0,
    EventType.PURCHASE: 4.0,
}


@dataclass(frozen=True, slots=True)
class Signal:
    """``label`` is 1 (liked), 0 (disliked) or None (no opinion); ``consumed`` hides the item from recs."""

    label: int | None
    weight: float
    consumed: bool


_IMPRESSION = Signal(label=None, weight=0.0, consumed=False)
_DISMISS = Signal(label=0, weight=1.0, consumed=True)


def signal_of(event: Event) -> Signal:
    """Interpret one event.

    >>> from schemas.events import Event
    >>> signal_of(Event(event_id="e", user_id="u", item_id="i", type="rating", value=2, ts=10**12))
    Signal(label=0, weight=1.0, consumed=True)
    >>> signal_of(Event(event_id="e", user_id="u", item_id="i", type="purchase", ts=10**12)).weight
    4.0
    """
    kind = event.type
    if kind in _WEIGHTS:
        return Signal(label=1, weight=_WEIGHTS[kind] * event.value, consumed=True)
    if kind is EventType.RATING:
        if event.value >= POSITIVE_RATING:
            return Signal(label=1, weight=event.value - POSITIVE_RATING + 1.0, consumed=True)
        return Signal(label=0, weight=1.0, consumed=True)
    if kind is EventType.DWELL:
        return Signal(label=1, weight=min(1.0 + event.value / 30.0, 3.0), consumed=True)
    if kind is EventType.DISMISS:
        return _DISMISS
    return _IMPRESSION
