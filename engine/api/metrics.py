"""Prometheus metrics of the HTTP API in one typed container, built against an explicit registry.

The API is its own process, so it has its own container beside the worker's `engine.metrics.Metrics`;
names share the ``personalize_`` prefix so one dashboard reads both.
"""

from __future__ import annotations

__all__ = ["ApiMetrics"]

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

_SHARES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class ApiMetrics:
    """Requests by route template and status, accepted events, and where served lists came from.

    >>> m = ApiMetrics.create(CollectorRegistry(), namespace="test")
    >>> m.requests.labels(method="GET", route="/v1/health", status="200").inc()
    >>> m.registry.get_sample_value(
    ...     "personalize_api_requests_total", {"method": "GET", "route": "/v1/health", "status": "200"}
    ... )
    1.0
    """

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    diversity: Histogram
    coverage: Gauge
    rules_reloads: Counter
    events: Counter
    served: Counter
    decisions: Counter
    rewards: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, namespace: str) -> ApiMetrics:
        info = Info("personalize_api", "Which namespace this API process serves.", registry=registry)
        info.info({"namespace": namespace})
        return cls(
            registry=registry,
            requests=Counter(
                "personalize_api_requests",
                "HTTP requests by method, route template (`unmatched` for unknown paths) and status.",
                ["method", "route", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "personalize_api_request_seconds",
                "HTTP request time in the server, from the first byte read to the last byte sent.",
                ["method", "route"],
                buckets=_BUCKETS,
                registry=registry,
            ),
            diversity=Histogram(
                "personalize_api_list_diversity",
                "Intra-list diversity of served lists: 1 - mean pairwise Jaccard of the items' categories.",
                buckets=_SHARES,
                registry=registry,
            ),
            coverage=Gauge(
                "personalize_api_catalog_coverage_items",
                "Distinct items served by all API processes of the namespace over the coverage window "
                "(PERSONALIZE_COVERAGE_WINDOW_HOURS; HyperLogLog estimate).",
                registry=registry,
            ),
            rules_reloads=Counter(
                "personalize_api_rules_reloads",
                "Rules file versions seen, by outcome (loaded; rejected: the last good one stays).",
                ["outcome"],
                registry=registry,
            ),
            events=Counter(
                "personalize_api_events",
                "Events received over HTTP, by outcome (accepted: confirmed by Kafka; rejected: invalid).",
                ["outcome"],
                registry=registry,
            ),
            served=Counter(
                "personalize_api_recommendations",
                "Recommendation lists served, by source (personalized, trending_locale, trending, none).",
                ["source"],
                registry=registry,
            ),
            decisions=Counter(
                "personalize_api_decisions",
                "Rank decisions logged, by experiment and variant (`none` outside experiments).",
                ["experiment", "variant"],
                registry=registry,
            ),
            rewards=Counter(
                "personalize_api_rewards", "Rewards accepted (confirmed by Kafka).", registry=registry
            ),
        )
