"""One dashboard point from two scrapes: rates, freshness quantiles and hit rates over the interval.

Pure arithmetic on `Scrape` tables; counters that went down (a worker restarted) count from zero again,
as Prometheus' ``rate`` does. A field is None when the interval has nothing to say (no worker answered,
no event scored), so the charts show a gap rather than a made-up zero.
"""

from __future__ import annotations

__all__ = ["Point", "delta", "point"]

import math
from dataclasses import dataclass, field
from typing import Any

from engine.dashboard.scrape import Scrape, quantile

EVENTS = "personalize_events_total"
FRESHNESS = "personalize_freshness_seconds"
HITS = "personalize_prequential_hits_total"
SCORED = "personalize_prequential_scored_total"
DETECTIONS = "personalize_drift_detections_total"
REWARD = "personalize_bandit_reward"
LAG = "personalize_consumer_lag"
INFO = "personalize_info"


def delta(new: float, old: float) -> float:
    """Increase of a counter; after a reset (the value went down) the new value is the increase.

    >>> delta(10.0, 4.0), delta(3.0, 40.0)
    (6.0, 3.0)
    """
    return new - old if new >= old else new


@dataclass(frozen=True, slots=True)
class Point:
    """What the dashboard plots at time ``t`` (epoch seconds). Rates are per second."""

    t: float
    up: int
    consumed_per_s: float | None = None
    learned_per_s: float | None = None
    dead_letters_per_s: float | None = None
    freshness_p50_s: float | None = None
    freshness_p99_s: float | None = None
    hr_recent: float | None = None
    hr_total: float | None = None
    lag: float | None = None
    #: Cumulative drift detections per signal (worker counters).
    drift: dict[str, float] = field(default_factory=dict)
    #: Per ``experiment/variant``: rewards learned and their mean (the CTR when a reward is a click).
    variants: dict[str, dict[str, float]] = field(default_factory=dict)
    model_versions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t, 3),
            "up": self.up,
            "consumed_per_s": self.consumed_per_s,
            "learned_per_s": self.learned_per_s,
            "dead_letters_per_s": self.dead_letters_per_s,
            "freshness_p50_s": self.freshness_p50_s,
            "freshness_p99_s": self.freshness_p99_s,
            "hr_recent": self.hr_recent,
            "hr_total": self.hr_total,
            "lag": self.lag,
            "drift": self.drift,
            "variants": self.variants,
            "model_versions": list(self.model_versions),
        }


def _rate(new: Scrape, old: Scrape, name: str, **match: str) -> float:
    return delta(new.total(name, **match), old.total(name, **match)) / (new.t - old.t)


def _freshness(new: Scrape, old: Scrape, q: float) -> float | None:
    before = old.buckets(FRESHNESS)
    buckets = {le: delta(count, before.get(le, 0.0)) for le, count in new.buckets(FRESHNESS).items()}
    # Per-bucket resets can break monotonicity; a reset anywhere means: take the new counts as they are.
    ordered = [buckets[le] for le in sorted(buckets)]
    if any(b < a for a, b in zip(ordered, ordered[1:], strict=False)):
        buckets = new.buckets(FRESHNESS)
    return quantile(q, buckets)


def _ratio(hits: float, scored: float) -> float | None:
    return hits / scored if scored > 0 else None


def _variants(scrape: Scrape) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for (name, labels), count in scrape.samples.items():
        if name != f"{REWARD}_count" or count <= 0:
            continue
        tags = dict(labels)
        total = scrape.total(f"{REWARD}_sum", **tags)
        out[f"{tags.get('experiment', 'none')}/{tags.get('variant', 'none')}"] = {
            "rewards": count,
            "mean_reward": total / count,
        }
    return dict(sorted(out.items()))


def point(new: Scrape, recent: Scrape | None, quality: Scrape | None) -> Point:
    """The point at ``new.t``: rates and freshness since ``recent``, HR@k since ``quality`` (an older
    scrape, so the hit rate is over enough scored events), HR@k and the rest since the workers started.

    >>> from engine.dashboard.scrape import parse
    >>> a = Scrape.combine(0.0, [parse('personalize_events_total{outcome="learned"} 10')])
    >>> b = Scrape.combine(2.0, [parse('personalize_events_total{outcome="learned"} 30')])
    >>> p = point(b, a, a)
    >>> p.learned_per_s, p.freshness_p99_s, p.hr_recent
    (10.0, None, None)
    """
    if new.up == 0:
        return Point(new.t, 0)
    versions = tuple(new.label_values(INFO, "model_version"))
    drift = {signal: count for signal, count in sorted(new.by_label(DETECTIONS, "signal").items())}
    common: dict[str, Any] = {
        "hr_total": _ratio(new.total(HITS), new.total(SCORED)),
        "lag": new.total(LAG) if any(n == LAG for n, _ in new.samples) else None,
        "drift": drift,
        "variants": _variants(new),
        "model_versions": versions,
    }
    hr_recent = None
    if quality is not None and quality.up and quality.t < new.t:
        hr_recent = _ratio(
            delta(new.total(HITS), quality.total(HITS)), delta(new.total(SCORED), quality.total(SCORED))
        )
    if recent is None or recent.up == 0 or not recent.t < new.t:
        return Point(new.t, new.up, hr_recent=hr_recent, **common)
    p50, p99 = _freshness(new, recent, 0.5), _freshness(new, recent, 0.99)
    return Point(
        new.t,
        new.up,
        consumed_per_s=_rate(new, recent, EVENTS),
        learned_per_s=_rate(new, recent, EVENTS, outcome="learned"),
        dead_letters_per_s=_rate(new, recent, "personalize_dead_letters_total"),
        freshness_p50_s=None if p50 is None or math.isnan(p50) else p50,
        freshness_p99_s=None if p99 is None or math.isnan(p99) else p99,
        hr_recent=hr_recent,
        **common,
    )
