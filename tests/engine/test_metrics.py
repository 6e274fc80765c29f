"""Tests for `engine.metrics`: one registry per Metrics, with the documented names."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from engine.metrics import Metrics


def test_info_names_namespace_and_model() -> None:
    m = Metrics.create(CollectorRegistry(), "shop", "m1")
    labels = {"namespace": "shop", "model_version": "m1"}
    assert m.registry.get_sample_value("personalize_info", labels) == 1.0


def test_registries_are_independent() -> None:
    a = Metrics.create(CollectorRegistry(), "t", "m")
    b = Metrics.create(CollectorRegistry(), "t", "m")
    a.items.inc(3)
    assert a.registry.get_sample_value("personalize_items_total") == 3.0
    assert b.registry.get_sample_value("personalize_items_total") == 0.0


def test_one_registry_holds_one_metrics() -> None:
    registry = CollectorRegistry()
    Metrics.create(registry, "t", "m")
    with pytest.raises(ValueError):
        Metrics.create(registry, "t", "m")


def test_labelled_counters_and_histograms() -> None:
    m = Metrics.create(CollectorRegistry(), "t", "m")
    m.dead_letter("invalid", "json")
    m.freshness.observe(0.02)
    m.users.set(5)
    labels = {"kind": "invalid", "reason": "json"}
    assert m.registry.get_sample_value("personalize_dead_letters_total", labels) == 1.0
    assert m.registry.get_sample_value("personalize_freshness_seconds_bucket", {"le": "0.025"}) == 1.0
    assert m.registry.get_sample_value("personalize_freshness_seconds_bucket", {"le": "0.01"}) == 0.0
    assert m.registry.get_sample_value("personalize_users") == 5.0


def test_the_api_names_itself_apart_and_shares_the_families() -> None:
    m = Metrics.create(CollectorRegistry(), "shop")
    assert m.registry.get_sample_value("personalize_api_info", {"namespace": "shop"}) == 1.0
    assert m.registry.get_sample_value("personalize_info", {"namespace": "shop", "model_version": ""}) is None
    m.api_requests.labels(method="GET", route="/v1/health", status="200").inc()
    labels = {"method": "GET", "route": "/v1/health", "status": "200"}
    assert m.registry.get_sample_value("personalize_api_requests_total", labels) == 1.0


def test_one_container_holds_every_family_under_its_documented_name() -> None:
    registry = CollectorRegistry()
    Metrics.create(registry, "t", "m")
    names = {metric.name for metric in registry.collect()}
    # Names the dashboards, alert rules and README rely on (counters without their _total suffix).
    assert {
        "personalize_events",
        "personalize_dead_letters",
        "personalize_freshness_seconds",
        "personalize_consumer_lag",
        "personalize_prequential_hits",
        "personalize_prequential_scored",
        "personalize_prequential_hit_rate",
        "personalize_ranker_log_loss",
        "personalize_slate_events",
        "personalize_drift_detections",
        "personalize_drift_responses",
        "personalize_event_types",
        "personalize_bandit_reward",
        "personalize_bandit_explored",
        "personalize_api_requests",
        "personalize_api_decisions",
    } <= names
    assert registry.get_sample_value("personalize_checkpoint_age_seconds") == -1.0
