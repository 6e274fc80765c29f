"""Tests for `engine.dashboard.scrape` and `engine.dashboard.points`: worker metrics text to chart points."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from engine.dashboard.points import point
from engine.dashboard.scrape import Scrape, parse, quantile
from engine.ops.metrics import Metrics


class _Worker:
    """The worker's real metrics container on one registry, exposed as the worker serves it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.m = Metrics.create(self.registry, "shop", "hybrid-9")

    def scrape(self, t: float) -> Scrape:
        return Scrape.combine(t, [parse(generate_latest(self.registry).decode())])


def test_rates_freshness_and_hit_rate_over_the_interval() -> None:
    w = _Worker()
    w.m.events.labels(outcome="learned").inc(100)
    w.m.prequential_scored.labels(model_version="hybrid-9").inc(100)
    w.m.prequential_hits.labels(model_version="hybrid-9").inc(50)
    old = w.scrape(10.0)
    w.m.events.labels(outcome="learned").inc(40)
    w.m.events.labels(outcome="duplicate").inc(10)
    for _ in range(99):
        w.m.freshness.observe(0.02)
    w.m.freshness.observe(3.0)
    w.m.prequential_scored.labels(model_version="hybrid-9").inc(100)
    w.m.prequential_hits.labels(model_version="hybrid-9").inc(10)
    p = point(w.scrape(15.0), old, old)
    assert p.up == 1 and p.model_versions == ("hybrid-9",)
    assert p.learned_per_s == pytest.approx(8.0) and p.consumed_per_s == pytest.approx(10.0)
    assert p.freshness_p50_s is not None and 0.01 < p.freshness_p50_s <= 0.025
    assert p.freshness_p99_s is not None and p.freshness_p99_s <= 0.025 < 2.5
    assert p.hr_recent == pytest.approx(0.1) and p.hr_total == pytest.approx(0.3)


def test_a_restarted_worker_counts_from_zero_instead_of_going_negative() -> None:
    before = Scrape.combine(0.0, [parse('personalize_events_total{outcome="learned"} 500')])
    after = Scrape.combine(2.0, [parse('personalize_events_total{outcome="learned"} 6')])
    assert point(after, before, before).learned_per_s == pytest.approx(3.0)


def test_drift_and_variants_come_from_the_counters_and_the_reward_summary() -> None:
    w = _Worker()
    w.m.drift_detections.labels(signal="hit_rate", detector="adwin").inc()
    w.m.drift_detections.labels(signal="category_mix", detector="kswin").inc(2)
    for reward in (1.0, 0.0, 1.0, 1.0):
        w.m.bandit_rewards.labels(experiment="home", variant="control").observe(reward)
    p = point(w.scrape(1.0), None, None)
    assert p.drift == {"category_mix": 2.0, "hit_rate": 1.0}
    assert p.variants == {"home/control": {"rewards": 4.0, "mean_reward": 0.75}}
    assert p.learned_per_s is None and p.hr_recent is None  # nothing to compare with yet


def test_no_worker_answering_is_a_gap_not_a_zero() -> None:
    p = point(Scrape.combine(1.0, []), None, None)
    assert p.up == 0 and p.learned_per_s is None and p.drift == {} and p.to_json()["hr_total"] is None


def test_workers_add_up() -> None:
    one = parse('personalize_events_total{outcome="learned"} 10\npersonalize_consumer_lag{partition="0"} 3')
    two = parse('personalize_events_total{outcome="learned"} 30\npersonalize_consumer_lag{partition="1"} 4')
    s = Scrape.combine(0.0, [one, two])
    assert s.up == 2 and s.total("personalize_events_total") == 40.0
    assert point(s, None, None).lag == 7.0


def test_quantile_matches_prometheus_histogram_quantile() -> None:
    buckets = {0.1: 10.0, 0.5: 30.0, 1.0: 40.0, math.inf: 40.0}
    assert quantile(0.5, buckets) == pytest.approx(0.3)  # rank 20: half-way through (0.1, 0.5]
    assert quantile(1.0, buckets) == pytest.approx(1.0)
    assert quantile(0.99, {0.1: 0.0, 1.0: 0.0, math.inf: 5.0}) == 1.0  # all above the last bound
