"""The drift monitor's fast paths against the plain forms they replaced, on seeded streams.

The references here feed River's ADWIN through its public ``update`` and ``drift_detected`` (the detector
then resets on the update after a detection) and rank a ``Counter`` of the history for `taste_miss`;
the monitor must give the very same records and verdicts, and a checkpoint pickled by the plain form
must carry on as that form would have.
"""

from __future__ import annotations

import pickle
import random
from collections import Counter
from collections.abc import Iterable

import pytest
from river import drift

from models.drift import (
    MAX_CATEGORIES,
    DriftMonitor,
    DriftRecord,
    SideStats,
    _Adwin,
    _PageHinkley,
    taste_miss,
)

DELTA = 0.05  # looser than the default, so that the streams below give many detections


class PlainAdwin:
    """ADWIN fed through River's public API, counting the values since its last detection."""

    def __init__(self, delta: float) -> None:
        self.detector = drift.ADWIN(delta=delta)  # type: ignore[no-untyped-call]
        self.n, self.total = 0, 0.0

    def update(self, x: float) -> tuple[SideStats, SideStats] | None:
        if self.detector.drift_detected:
            self.n, self.total = 0, 0.0
        self.detector.update(x)  # type: ignore[no-untyped-call]
        self.n += 1
        self.total += x
        if not self.detector.drift_detected:
            return None
        kept_n, kept_total = int(self.detector.width), self.detector.total
        before_n, before_total = self.n - kept_n, self.total - kept_total
        return (
            SideStats(before_total / before_n if before_n else 0.0, before_n),
            SideStats(kept_total / kept_n if kept_n else 0.0, kept_n),
        )


class PlainMix:
    """One `PlainAdwin` per category, each fed every positive event in turn."""

    def __init__(self) -> None:
        self.detectors: dict[str, PlainAdwin] = {}
        self.positives = 0

    def category(self, categories: tuple[str, ...], ts: int) -> list[DriftRecord]:
        if not categories:
            return []
        self.positives += 1
        for c in categories:
            if c not in self.detectors and len(self.detectors) < MAX_CATEGORIES:
                self.detectors[c] = PlainAdwin(DELTA)
        found = []
        for name, detector in self.detectors.items():
            sides = detector.update(1.0 if name in categories else 0.0)
            if sides is not None:
                found.append(DriftRecord("category_mix", "adwin", self.positives, ts, *sides, name))
        return found


def plain_taste_miss(
    category: str, history: Iterable[str], *, top: int = 3, min_history: int = 5
) -> bool | None:
    counts = Counter(history)
    if counts.total() < min_history:
        return None
    return category not in {c for c, _ in counts.most_common(top)}


def _mix_stream(seed: int, n: int = 8_000) -> list[tuple[str, ...]]:
    """Positives over 40 categories (more than get a detector) whose favourites move twice; some events
    have no category and some name one category twice."""
    rng = random.Random(seed)
    cats = [f"c{c:02d}" for c in range(40)]
    stream: list[tuple[str, ...]] = []
    for t in range(n):
        phase = 3 * t // n
        weights = [1 + ((c + 13 * phase) % 40 < 8) * 6 for c in range(40)]
        chosen = tuple(rng.choices(cats, weights, k=rng.choice([0, 1, 1, 1, 2, 3])))
        stream.append(chosen)
    return stream


@pytest.mark.parametrize("seed", [0, 1])
def test_category_mix_gives_the_records_of_one_public_adwin_update_per_category(seed: int) -> None:
    monitor, plain = DriftMonitor(adwin_delta=DELTA), PlainMix()
    fast, slow = [], []
    for t, categories in enumerate(_mix_stream(seed)):
        fast += monitor.category(categories, t)
        slow += plain.category(categories, t)
    assert len(slow) > 20  # the comparison covers many detections, back to back in some detectors
    assert fast == slow


@pytest.mark.parametrize("seed", [0, 1])
def test_hit_and_taste_give_the_records_of_the_public_adwin(seed: int) -> None:
    rng = random.Random(seed)
    monitor = DriftMonitor(adwin_delta=DELTA)
    adwin, page_hinkley = PlainAdwin(DELTA), _PageHinkley(monitor.ph_delta, monitor.ph_threshold)
    fast, slow = [], []
    for t in range(12_000):
        hit = rng.random() < (0.4 if (t // 3_000) % 2 == 0 else 0.15)
        fast += monitor.hit(hit, t)
        for name, detector in (("adwin", adwin), ("page_hinkley", page_hinkley)):
            sides = detector.update(0.0 if hit else 1.0)
            if sides is not None and sides[1].mean > sides[0].mean:
                slow.append(DriftRecord("hit_rate", name, t + 1, t, *sides))
    assert {r.detector for r in slow} == {"adwin", "page_hinkley"}
    assert fast == slow


def test_taste_miss_gives_the_verdict_of_ranking_a_counter_of_the_history() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        cats = [f"c{c}" for c in range(rng.randint(1, 12))] + [""]
        history = [rng.choice(cats) for _ in range(rng.choice([0, 4, 5, 6, 12, 30, 30]))]
        category, top = rng.choice([*cats, "elsewhere"]), rng.choice([-1, 0, 1, 2, 3, 3, 5])
        expected = plain_taste_miss(category, history, top=top)
        assert taste_miss(category, history, top=top) is expected
        assert taste_miss(category, iter(history), top=top) is expected  # any iterable


def _plain_state(plain: PlainAdwin) -> _Adwin:
    """A detector as the wrapper-fed version pickled it: River's ADWIN with its pending reset, if any."""
    old = _Adwin.__new__(_Adwin)
    old.__dict__.update(detector=plain.detector, n=plain.n, total=plain.total)
    return old


def test_a_checkpoint_of_the_wrapper_fed_version_carries_on_as_it_would_have() -> None:
    stream = _mix_stream(3)
    whole = PlainMix()
    records = [(t, whole.category(categories, t)) for t, categories in enumerate(stream)]
    cut = next(t for t, found in records if found)  # the checkpoint right after a detection
    plain = PlainMix()
    for t, categories in enumerate(stream[: cut + 1]):
        plain.category(categories, t)
    assert any(d.detector.drift_detected for d in plain.detectors.values())
    old = DriftMonitor(adwin_delta=DELTA)
    old._positives = plain.positives
    old._categories = {name: _plain_state(d) for name, d in plain.detectors.items()}  # type: ignore[misc]
    restored = pickle.loads(pickle.dumps(old))
    later = [r for t, categories in enumerate(stream) if t > cut for r in restored.category(categories, t)]
    assert later
    assert later == [r for t, found in records if t > cut for r in found]
