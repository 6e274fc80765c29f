"""`observe_all` leaves the same samples as observing each value (it reads prometheus_client's private
fields, so a change of the library must fail here, not in a worker)."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram

from engine.ops.histograms import observe_all


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_observe_all_equals_observing_each_value() -> None:
    rng = random.Random(0)
    buckets = (0.001, 0.01, 0.1, 1.0, 10.0)
    values = [rng.choice([0.0, 0.001, 0.01, 1.0, 10.0, 11.0]) for _ in range(50)]
    values += [rng.expovariate(10.0) for _ in range(500)]
    one, many = CollectorRegistry(), CollectorRegistry()
    each = Histogram("h", "doc", buckets=buckets, registry=one)
    for value in values:
        each.observe(value)
    observe_all(Histogram("h", "doc", buckets=buckets, registry=many), values)
    observe_all(Histogram("g", "doc", buckets=buckets, registry=many), [])
    expected = _samples(one)
    found = {key: value for key, value in _samples(many).items() if key[0].startswith("h")}
    assert found.keys() == expected.keys()
    for key, value in expected.items():
        assert abs(found[key] - value) <= 1e-9 * max(1.0, abs(value)), key
    assert many.get_sample_value("g_count") == 0.0
