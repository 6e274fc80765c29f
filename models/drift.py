"""Concept-drift detection over the worker's streams with River's detectors (ADWIN, Page-Hinkley).

Three signals. ``hit_rate`` (the prequential miss stream: the model stops predicting what users take next)
and ``taste`` (users take items outside their usual categories) are concept drift, reported only when they
get worse; ``category_mix`` (which categories positive events fall in) is input drift, in both directions,
and also moves with ordinary cycles such as the time of day. Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["CONCEPT_SIGNALS", "DriftMonitor", "DriftRecord", "SideStats", "taste_miss"]

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from river import drift

#: Most categories that get their own detector; later ones are ignored (bounded cost per event).
MAX_CATEGORIES = 32
#: Signals that say the model's picture of users went stale (the worker responds to these only).
CONCEPT_SIGNALS = frozenset({"hit_rate", "taste"})


def taste_miss(category: str, history: Iterable[str], *, top: int = 3, min_history: int = 5) -> bool | None:
    """Whether a positive in ``category`` falls outside the ``top`` most frequent categories of the user's
    ``history`` (primary categories of their recent positives); None while the history is shorter than
    ``min_history``. Ties go to the category seen first.

    >>> taste_miss("jazz", ["rock", "rock", "jazz", "pop", "folk"], top=2)
    False
    >>> taste_miss("folk", ["rock", "rock", "jazz", "pop", "folk"], top=2), taste_miss("jazz", ["jazz"])
    (True, None)
    """
    counts = Counter(history)
    if counts.total() < min_history:
        return None
    return category not in {c for c, _ in counts.most_common(top)}


class _Detector(Protocol):
    @property
    def drift_detected(self) -> bool: ...

    def update(self, x: float) -> None: ...


def _adwin(delta: float) -> _Detector:
    return drift.ADWIN(delta=delta)  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class SideStats:
    """Mean of one stream's values on one side of a detection, and how many values it covers."""

    mean: float
    n: int


@dataclass(frozen=True, slots=True)
class DriftRecord:
    """One detection: which signal and detector, when (values observed, event time), before and after.

    ``before`` covers the values since the previous detection of the signal up to the recent window,
    ``after`` the recent window. For ``category_mix`` the means are the category's share of positives.
    """

    signal: str
    detector: str
    at: int
    ts: int
    before: SideStats
    after: SideStats
    category: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Stream:
    """Running statistics of one value stream: since the last detection, and a recent window."""

    def __init__(self, window: int) -> None:
        self.recent: deque[float] = deque(maxlen=window)
        self.total = 0.0
        self.count = 0

    def add(self, x: float) -> None:
        self.recent.append(x)
        self.total += x
        self.count += 1

    def split(self) -> tuple[SideStats, SideStats]:
        recent_sum, n_recent = sum(self.recent), len(self.recent)
        n_before = self.count - n_recent
        before = SideStats((self.total - recent_sum) / n_before if n_before else 0.0, n_before)
        return before, SideStats(recent_sum / n_recent if n_recent else 0.0, n_recent)

    def reset(self) -> None:
        self.total, self.count = sum(self.recent), len(self.recent)


class DriftMonitor:
    """Feeds the signals to their detectors and returns a `DriftRecord` per detection.

    ADWIN and Page-Hinkley (upward) watch the prequential miss rate and ADWIN the taste-miss rate; a
    change of either is reported only when the recent window is worse than before (ADWIN also finds the
    slow improvement of a model that is still learning, which is no reason to act). One ADWIN per
    category watches that category's share of positive events: a change of the category mix is a change
    of some category's share. (A KSWIN over category codes once ran beside them: a KS test on arbitrary
    codes, ~0.5 ms per update, and it found nothing the per-category ADWINs missed.)

    >>> import random
    >>> rng, mon = random.Random(3), DriftMonitor()
    >>> found = [r for t in range(6000) for r in mon.hit(rng.random() < (0.6 if t < 3000 else 0.2), t)]
    >>> found[0].signal, 3000 < found[0].at < 3500, sorted({r.detector for r in found})
    ('hit_rate', True, ['adwin', 'page_hinkley'])
    >>> round(found[0].before.mean, 1), found[0].after.mean > found[0].before.mean
    (0.4, True)
    """

    def __init__(
        self,
        *,
        adwin_delta: float = 0.002,
        ph_threshold: float = 100.0,
        ph_delta: float = 0.01,
        window: int = 500,
    ) -> None:
        self.adwin_delta = adwin_delta
        self.ph_threshold = ph_threshold
        self.ph_delta = ph_delta
        self.window = window
        self._miss = _Stream(window)
        self._miss_detectors: dict[str, _Detector] = {
            "adwin": _adwin(adwin_delta),
            "page_hinkley": drift.PageHinkley(
                min_instances=100, delta=ph_delta, threshold=ph_threshold, mode="up"
            ),
        }
        self._taste = _Stream(window)
        self._taste_detectors = {"adwin": _adwin(adwin_delta)}
        self._categories: dict[str, tuple[_Stream, _Detector]] = {}
        self._positives = 0
        self.hits_seen = 0
        self.tastes_seen = 0

    def hit(self, hit: bool, ts: int) -> list[DriftRecord]:
        """One prequential outcome: was the positive event's item in the user's current top-k?"""
        self.hits_seen += 1
        return _worse("hit_rate", self._miss, self._miss_detectors, not hit, self.hits_seen, ts)

    def taste(self, miss: bool, ts: int) -> list[DriftRecord]:
        """One positive event scored by `taste_miss`: was it outside the user's usual categories?"""
        self.tastes_seen += 1
        return _worse("taste", self._taste, self._taste_detectors, miss, self.tastes_seen, ts)

    def category(self, categories: tuple[str, ...], ts: int) -> list[DriftRecord]:
        """One positive event in these categories (the first is its primary category)."""
        if not categories:
            return []
        self._positives += 1
        for c in categories:
            if c not in self._categories and len(self._categories) < MAX_CATEGORIES:
                self._categories[c] = (_Stream(self.window), _adwin(self.adwin_delta))
        found = []
        for name, (stream, detector) in self._categories.items():
            x = 1.0 if name in categories else 0.0
            stream.add(x)
            detector.update(x)
            if detector.drift_detected:
                before, after = stream.split()
                stream.reset()
                found.append(DriftRecord("category_mix", "adwin", self._positives, ts, before, after, name))
        return found


def _worse(
    signal: str, stream: _Stream, detectors: dict[str, _Detector], miss: bool, at: int, ts: int
) -> list[DriftRecord]:
    """Feed one miss (1) or hit (0) to the detectors; a detection counts when misses went up.

    Up or down is ADWIN's own verdict: the mean of the window it keeps against the window before the cut
    (Page-Hinkley runs in mode ``up``, so its detections are all up).
    """
    x = 1.0 if miss else 0.0
    stream.add(x)
    found, detected = [], False
    for name, detector in detectors.items():
        old = getattr(detector, "estimation", None)
        detector.update(x)
        if detector.drift_detected:
            detected = True
            new = getattr(detector, "estimation", None)
            if old is None or new is None or new > old:
                before, after = stream.split()
                found.append(DriftRecord(signal, name, at, ts, before, after))
    if detected:
        stream.reset()
    return found
