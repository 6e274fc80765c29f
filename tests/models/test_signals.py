"""Tests for the event -> signal table in `models.signals`."""

from __future__ import annotations

import pytest

from models.signals import POSITIVE_RATING, Signal, signal_of
from schemas.events import Event, EventType

#: (type, value) -> expected signal, covering every event type at least once.
CASES: list[tuple[EventType, float, Signal]] = [
    (EventType.VIEW, 1.0, Signal(label=1, weight=1.0, consumed=True)),
    (EventType.VIEW, 2.0, Signal(label=1, weight=2.0, consumed=True)),
    (EventType.CLICK, 1.0, Signal(label=1, weight=2.0, consumed=True)),
    (EventType.ADD_TO_CART, 1.0, Signal(label=1, weight=3.0, consumed=True)),
    (EventType.PURCHASE, 1.0, Signal(label=1, weight=4.0, consumed=True)),
    (EventType.PURCHASE, 0.5, Signal(label=1, weight=2.0, consumed=True)),
    (EventType.RATING, 5.0, Signal(label=1, weight=2.0, consumed=True)),
    (EventType.RATING, POSITIVE_RATING, Signal(label=1, weight=1.0, consumed=True)),
    (EventType.RATING, 3.5, Signal(label=0, weight=1.0, consumed=True)),
    (EventType.RATING, 0.0, Signal(label=0, weight=1.0, consumed=True)),
    (EventType.DWELL, 0.0, Signal(label=1, weight=1.0, consumed=True)),
    (EventType.DWELL, 30.0, Signal(label=1, weight=2.0, consumed=True)),
    (EventType.DWELL, 600.0, Signal(label=1, weight=3.0, consumed=True)),
    (EventType.IMPRESSION, 1.0, Signal(label=None, weight=0.0, consumed=False)),
    (EventType.DISMISS, 1.0, Signal(label=0, weight=1.0, consumed=True)),
]


def _event(kind: EventType, value: float) -> Event:
    return Event(event_id="e", user_id="u", item_id="i", type=kind, value=value, ts=10**12)


def test_cases_cover_every_event_type() -> None:
    assert {kind for kind, _, _ in CASES} == set(EventType)


@pytest.mark.parametrize(("kind", "value", "expected"), CASES)
def test_signal_of(kind: EventType, value: float, expected: Signal) -> None:
    assert signal_of(_event(kind, value)) == expected


def test_stronger_actions_weigh_more() -> None:
    order = [EventType.VIEW, EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE]
    weights = [signal_of(_event(kind, 1.0)).weight for kind in order]
    assert weights == sorted(weights) and len(set(weights)) == len(weights)


def test_only_impressions_leave_items_recommendable() -> None:
    for kind in EventType:
        assert signal_of(_event(kind, 1.0)).consumed is (kind is not EventType.IMPRESSION)


def test_the_signals_kept_made_once_give_what_the_table_says_each_time() -> None:
    """Unit-valued kinds and ratings come from signals made once: asked again they still say what the
    table says, for ratings of every tenth from 0 to 10 too."""
    for _ in range(2):
        for kind, value, expected in CASES:
            assert signal_of(_event(kind, value)) == expected
    for tenth in range(0, 101):  # 0.0 .. 10.0, ratings on both sides of the threshold
        value = tenth / 10
        label = 1 if value >= POSITIVE_RATING else 0
        weight = value - POSITIVE_RATING + 1.0 if label else 1.0
        assert signal_of(_event(EventType.RATING, value)) == Signal(label, weight, True)
