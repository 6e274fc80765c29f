"""Workers' Prometheus text parsed into one summed sample table, with the lookups the dashboard needs.

Parsing goes through prometheus_client's own text parser; nothing here does I/O or keeps history
(`engine.dashboard.points` turns two scrapes into rates and quantiles).
"""

from __future__ import annotations

__all__ = ["Labels", "Scrape", "parse", "quantile"]

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

#: A sample's labels as a sorted tuple of (name, value) pairs, so that it can be a dict key.
Labels = tuple[tuple[str, str], ...]


def parse(text: str) -> dict[tuple[str, Labels], float]:
    """Every sample of a Prometheus text exposition, keyed by sample name and sorted labels.

    >>> parse('# TYPE x_total counter\\nx_total{b="2",a="1"} 3.0\\n')
    {('x_total', (('a', '1'), ('b', '2'))): 3.0}
    """
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


@dataclass(frozen=True, slots=True)
class Scrape:
    """The samples of every reachable worker at one moment, summed over workers (counters add up).

    ``t`` is the wall-clock time of the scrape in epoch seconds; ``up`` counts the workers that answered.

    >>> s = Scrape.combine(1.0, [parse('a_total{k="x"} 1\\na_total{k="y"} 2'), parse('a_total{k="x"} 4')])
    >>> s.total("a_total"), s.total("a_total", k="x"), s.by_label("a_total", "k"), s.up
    (7.0, 5.0, {'x': 5.0, 'y': 2.0}, 2)
    """

    t: float
    samples: Mapping[tuple[str, Labels], float] = field(default_factory=dict)
    up: int = 0

    @classmethod
    def combine(cls, t: float, parts: Iterable[Mapping[tuple[str, Labels], float]]) -> Scrape:
        summed: dict[tuple[str, Labels], float] = {}
        up = 0
        for part in parts:
            up += 1
            for key, value in part.items():
                summed[key] = summed.get(key, 0.0) + value
        return cls(t, summed, up)

    def total(self, name: str, **match: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``match`` (0 when there are none)."""
        wanted = match.items()
        return sum(
            v for (n, labels), v in self.samples.items() if n == name and wanted <= dict(labels).items()
        )

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """Samples called ``name`` summed per value of one label."""
        out: dict[str, float] = {}
        for (n, labels), value in self.samples.items():
            found = dict(labels).get(label)
            if n == name and found is not None:
                out[found] = out.get(found, 0.0) + value
        return out

    def label_values(self, name: str, label: str) -> list[str]:
        """Distinct values of one label among the samples called ``name``, sorted."""
        return sorted(self.by_label(name, label))

    def buckets(self, histogram: str) -> dict[float, float]:
        """Cumulative bucket counts of a histogram by upper bound (``+Inf`` included)."""
        return {float(le): count for le, count in self.by_label(f"{histogram}_bucket", "le").items()}


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """``histogram_quantile`` as Prometheus computes it: linear inside the bucket that holds rank ``q``.

    ``buckets`` maps upper bounds to cumulative counts; None when it holds no observation. A rank in
    the ``+Inf`` bucket answers the highest finite bound.

    >>> quantile(0.5, {0.1: 0.0, 0.2: 10.0, math.inf: 10.0})
    0.15
    >>> quantile(0.99, {0.1: 1.0, math.inf: 2.0}), quantile(0.5, {0.1: 0.0, math.inf: 0.0})
    (0.1, None)
    """
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank and count > below:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower
