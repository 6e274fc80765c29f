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
#: The signal of each weighted kind at value 1 (most events), and of each rating value seen (a few
#: hundred at most are kept): made once, as building a frozen dataclass costs more than the rest of
#: `signal_of`, which every event goes through several times (the worker's and the replica's paths).
_UNIT = {kind: Signal(label=1, weight=weight, consumed=True) for kind, weight in _WEIGHTS.items()}
_RATED: dict[float, Signal] = {}
_MAX_RATED = 512


def signal_of(event: Event) -> Signal:
    """Interpret one event.

    >>> from schemas.events import Event
    >>> signal_of(Event(event_id="e", user_id="u", item_id="i", type="rating", value=2, ts=10**12))
    Signal(label=0, weight=1.0, consumed=True)
    >>> signal_of(Event(event_id="e", user_id="u", item_id="i", type="purchase", ts=10**12)).weight
    4.0
    """
    kind, value = event.type, event.value
    if kind in _WEIGHTS:
        if value == 1.0:
            return _UNIT[kind]
        return Signal(label=1, weight=_WEIGHTS[kind] * value, consumed=True)
    if kind is EventType.RATING:
        found = _RATED.get(value)
        if found is None:
            found = _rating(value)
            if len(_RATED) < _MAX_RATED:
                _RATED[value] = found
        return found
    if kind is EventType.DWELL:
        return Signal(label=1, weight=min(1.0 + value / 30.0, 3.0), consumed=True)
    if kind is EventType.DISMISS:
        return _DISMISS
    return _IMPRESSION


def _rating(value: float) -> Signal:
    if value >= POSITIVE_RATING:
        return Signal(label=1, weight=value - POSITIVE_RATING + 1.0, consumed=True)
    return Signal(label=0, weight=1.0, consumed=True)
