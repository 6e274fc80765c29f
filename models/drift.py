"""Concept-drift detection over the worker's streams with River's detectors (ADWIN, Page-Hinkley).

Three signals. ``hit_rate`` (the prequential miss stream: the model stops predicting what users take next)
and ``taste`` (users take items outside their usual categories) are concept drift, reported only when they
get worse; ``category_mix`` (which categories positive events fall in) is input drift, in both directions,
and also moves with ordinary cycles such as the time of day. Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["CONCEPT_SIGNALS", "DriftMonitor", "DriftRecord", "SideStats", "taste_miss"]

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

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
    # Called on every positive event: counts only what decides the rank of ``category`` (the same
    # verdict as ranking a Counter of the history, tests/models/test_drift_equivalence.py).
    seen = history if isinstance(history, list) else list(history)
    if len(seen) < min_history:
        return None
    own = seen.count(category)
    if not own or top <= 0:
        return True
    if len(seen) - own < top * own:  # fewer than ``top`` others can have as many values
        return False
    ahead, earlier = 0, True
    for other in dict.fromkeys(seen):  # distinct, in the order first seen
        if other == category:
            earlier = False
        else:
            n = seen.count(other)
            if n > own or (earlier and n == own):
                ahead += 1
                if ahead == top:
                    return True
    return False


@dataclass(frozen=True, slots=True)
class SideStats:
    """Mean of one stream's values on one side of a detection, and how many values it covers."""

    mean: float
    n: int


@dataclass(frozen=True, slots=True)
class DriftRecord:
    """One detection: which signal and detector, when (values observed, event time), before and after.

    ``before`` and ``after`` are the two sides of the detector's cut: for ADWIN the values it dropped and
    the window it kept, for Page-Hinkley the values up to and after the lowest point of its statistic.
    For ``category_mix`` the means are the category's share of positives.
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


Sides = tuple[SideStats, SideStats]


def _sides(n_before: int, sum_before: float, n_after: int, sum_after: float) -> Sides:
    before = SideStats(sum_before / n_before if n_before else 0.0, n_before)
    return before, SideStats(sum_after / n_after if n_after else 0.0, n_after)


class _Adwin:
    """River's ADWIN; a detection's sides are the values it dropped and the window it kept.

    River's ADWIN forgets its whole window on the update after a detection, so the values seen since
    then are the window it cut; counting them here costs less than asking the detector per update.
    Updates go straight to the detector's compiled window (``_helper``, read and fed, never replaced
    here): the wrapper's ``update`` adds only that deferred reset, which `cut` does at once instead
    (tests/models/test_drift_equivalence.py checks both give the same detections).
    """

    def __init__(self, delta: float) -> None:
        self.detector = drift.ADWIN(delta=delta)  # type: ignore[no-untyped-call]
        self.n, self.total = 0, 0.0

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.detector.drift_detected:  # pickled by the wrapper-fed version, which reset on the next update
            self.detector._reset()  # type: ignore[no-untyped-call]
            self.n, self.total = 0, 0.0

    def update(self, x: float) -> Sides | None:
        self.n += 1
        self.total += x
        if not self.detector._helper.update(x):
            return None
        return self.cut(self.n, self.total)

    def cut(self, n: int, total: float) -> Sides:
        """The sides of a detection after ``n`` values summing to ``total`` since the last; starts afresh."""
        kept_n, kept_total = int(self.detector.width), self.detector.total
        self.detector._reset()  # type: ignore[no-untyped-call]
        self.n, self.total = 0, 0.0
        return _sides(n - kept_n, total - kept_total, kept_n, kept_total)


class _Share(_Adwin):
    """ADWIN over one category's share of positives: 1 for a positive in the category, else 0.

    Every category's detector takes a value on every positive event, so the monitor feeds them in one
    loop (never through `update`; ``n`` stays 0): the count since the last detection is the monitor's
    positives now less ``since`` (its positives before that window's first value), and ``total``
    counts the category's own, so a positive costs one detector call per category and nothing more.
    """

    def __init__(self, delta: float, since: int) -> None:
        super().__init__(delta)
        self.since = since


class _PageHinkley:
    """River's Page-Hinkley (upward); a detection's sides split where its cumulative statistic was lowest.

    That lowest point is Page-Hinkley's own estimate of where the change began. River keeps the
    statistic and its minimum as private attributes (read, never written, here).
    """

    def __init__(self, delta: float, threshold: float) -> None:
        self.detector = drift.PageHinkley(min_instances=100, delta=delta, threshold=threshold, mode="up")
        self.n, self.total, self.cut = 0, 0.0, (0, 0.0)

    def update(self, x: float) -> Sides | None:
        if self.detector.drift_detected:
            self.n, self.total, self.cut = 0, 0.0, (0, 0.0)
        self.detector.update(x)  # type: ignore[no-untyped-call]
        self.n += 1
        self.total += x
        if self.detector._sum_increase <= self.detector._min_increase:
            self.cut = (self.n, self.total)
        if not self.detector.drift_detected:
            return None
        n, total = self.cut
        return _sides(n, total, self.n - n, self.total - total)


class DriftMonitor:
    """Feeds the signals to their detectors and returns a `DriftRecord` per detection.

    ADWIN and Page-Hinkley (upward) watch the prequential miss rate and ADWIN the taste-miss rate; a
    change of either is reported only when it got worse (ADWIN also finds the slow improvement of a
    model that is still learning, which is no reason to act). One ADWIN per category watches that
    category's share of positive events: a change of the category mix is a change of some category's
    share. (A KSWIN over category codes once ran beside them: a KS test on arbitrary codes, ~0.5 ms per
    update, and it found nothing the per-category ADWINs missed.) Picklable, so a checkpoint keeps it.

    >>> import random
    >>> rng, mon = random.Random(3), DriftMonitor()
    >>> found = [r for t in range(6000) for r in mon.hit(rng.random() < (0.6 if t < 3000 else 0.2), t)]
    >>> found[0].signal, 3000 < found[0].at < 3500, sorted({r.detector for r in found})
    ('hit_rate', True, ['adwin', 'page_hinkley'])
    >>> first = found[0]  # ADWIN: the 2,688 values it dropped, the 384 it kept (72 after the change)
    >>> first.detector, round(first.before.mean, 2), first.before.n, round(first.after.mean, 2), first.after.n
    ('adwin', 0.39, 2688, 0.47, 384)
    """

    def __init__(
        self, *, adwin_delta: float = 0.002, ph_threshold: float = 100.0, ph_delta: float = 0.01
    ) -> None:
        self.adwin_delta = adwin_delta
        self.ph_threshold = ph_threshold
        self.ph_delta = ph_delta
        self._miss_detectors: dict[str, _Adwin | _PageHinkley] = {
            "adwin": _Adwin(adwin_delta),
            "page_hinkley": _PageHinkley(ph_delta, ph_threshold),
        }
        self._taste_detectors: dict[str, _Adwin | _PageHinkley] = {"adwin": _Adwin(adwin_delta)}
        self._categories: dict[str, _Share] = {}
        self._positives = 0
        self.hits_seen = 0
        self.tastes_seen = 0

    def hit(self, hit: bool, ts: int) -> list[DriftRecord]:
        """One prequential outcome: was the positive event's item in the user's current top-k?"""
        self.hits_seen += 1
        return _worse("hit_rate", self._miss_detectors, not hit, self.hits_seen, ts)

    def taste(self, miss: bool, ts: int) -> list[DriftRecord]:
        """One positive event scored by `taste_miss`: was it outside the user's usual categories?"""
        self.tastes_seen += 1
        return _worse("taste", self._taste_detectors, miss, self.tastes_seen, ts)

    def category(self, categories: tuple[str, ...], ts: int) -> list[DriftRecord]:
        """One positive event in these categories (the first is its primary category)."""
        if not categories:
            return []
        self._positives += 1
        positives, shares = self._positives, self._categories
        for c in categories:
            if c not in shares and len(shares) < MAX_CATEGORIES:
                shares[c] = _Share(self.adwin_delta, positives - 1)
        found = []
        for name, share in shares.items():
            if name in categories:
                share.total += 1.0
                tipped = share.detector._helper.update(1.0)
            else:
                tipped = share.detector._helper.update(0.0)
            if tipped:
                sides = share.cut(positives - share.since, share.total)
                share.since = positives
                found.append(DriftRecord("category_mix", "adwin", positives, ts, *sides, name))
        return found

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; a checkpoint of the version that fed each category's `_Adwin` alone is converted."""
        self.__dict__.update(state)
        for name, old in list(self._categories.items()):
            if not isinstance(old, _Share):
                share = _Share(self.adwin_delta, self._positives - old.n)
                share.detector, share.total = old.detector, old.total
                self._categories[name] = share


def _worse(
    signal: str, detectors: dict[str, _Adwin | _PageHinkley], miss: bool, at: int, ts: int
) -> list[DriftRecord]:
    """Feed one miss (1) or hit (0) to the detectors; a detection counts when misses went up.

    Up or down is the detector's own verdict: the mean after its cut against the mean before it
    (Page-Hinkley runs in mode ``up``, so its detections are all up).
    """
    x = 1.0 if miss else 0.0
    found = []
    for name, detector in detectors.items():
        sides = detector.update(x)
        if sides is not None and sides[1].mean > sides[0].mean:
            found.append(DriftRecord(signal, name, at, ts, *sides))
    return found
