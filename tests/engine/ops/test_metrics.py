"""Tests for `engine.ops.metrics`: one registry per Metrics, with the documented names."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from engine.ops.metrics import Metrics


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


def test_the_api_names_itself_apart_and_counts_its_requests() -> None:
    m = Metrics.create(CollectorRegistry(), "shop")
    assert m.registry.get_sample_value("personalize_api_info", {"namespace": "shop"}) == 1.0
    assert m.registry.get_sample_value("personalize_info", {"namespace": "shop", "model_version": ""}) is None
    m.api_requests.labels(method="GET", route="/v1/health", status="200").inc()
    labels = {"method": "GET", "route": "/v1/health", "status": "200"}
    assert m.registry.get_sample_value("personalize_api_requests_total", labels) == 1.0


def test_one_container_holds_every_family_under_its_documented_name() -> None:
    registry, api = CollectorRegistry(), CollectorRegistry()
    Metrics.create(registry, "t", "m")
    Metrics.create(api, "t")
    names = {metric.name for metric in registry.collect()} | {metric.name for metric in api.collect()}
    # Names the dashboards, alert rules and docs rely on (counters without their _total suffix).
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


def test_each_process_exposes_only_its_own_families() -> None:
    worker_registry, api_registry = CollectorRegistry(), CollectorRegistry()
    worker, api = Metrics.create(worker_registry, "t", "m"), Metrics.create(api_registry, "t")
    worker_names = {metric.name for metric in worker_registry.collect()}
    api_names = {metric.name for metric in api_registry.collect()}
    assert "personalize_users" in worker_names and "personalize_api_requests" not in worker_names
    assert api_names == {
        "personalize_api",  # the info family
        *(name for name in (m.name for m in _every_family(api)) if name.startswith("personalize_api_")),
    }
    # The other role's families still take updates (shared code may touch them); nobody sees them.
    api.users.set(5)
    worker.api_coverage.set(7)
    assert api_registry.get_sample_value("personalize_users") is None
    assert worker_registry.get_sample_value("personalize_api_catalog_coverage_items") is None
    assert api_registry.get_sample_value("personalize_checkpoint_age_seconds") is None


def _every_family(m: Metrics) -> list[Any]:
    """The collected families of every metric object in the container (registered or not)."""
    found = []
    for name in Metrics.__dataclass_fields__:
        value = getattr(m, name)
        if hasattr(value, "collect") and name != "registry":
            found += value.collect()
    return found
