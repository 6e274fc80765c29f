"""Prometheus metrics of online quality and drift: prequential HR@k, event types, detections, responses.

Registered beside `engine.metrics.Metrics` on the worker's registry (one container per concern, like
`engine.bandit_metrics`); consumer lag per partition is set by the worker's heartbeat.
"""

from __future__ import annotations

__all__ = ["QualityMetrics"]

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True, slots=True)
class QualityMetrics:
    """Prequential hits and scored events per model version, drift detections and responses, lag.

    >>> m = QualityMetrics.create(CollectorRegistry())
    >>> m.detections.labels(signal="hit_rate", detector="adwin").inc()
    >>> m.registry.get_sample_value(
    ...     "personalize_drift_detections_total", {"signal": "hit_rate", "detector": "adwin"})
    1.0
    """

    registry: CollectorRegistry
    hits: Counter
    scored: Counter
    hit_rate: Gauge
    event_types: Counter
    detections: Counter
    responses: Counter
    lag: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> QualityMetrics:
        return cls(
            registry=registry,
            hits=Counter(
                "personalize_prequential_hits",
                "Positive events on an item the user had not consumed that was in the user's last "
                "published top-k, counted before the model learned the event.",
                ["model_version"],
                registry=registry,
            ),
            scored=Counter(
                "personalize_prequential_scored",
                "Positive events on an item the user had not consumed, scored against the user's last "
                "published top-k.",
                ["model_version"],
                registry=registry,
            ),
            hit_rate=Gauge(
                "personalize_prequential_hit_rate",
                "HR@k over the most recent scored events (PERSONALIZE_DRIFT_WINDOW of them).",
                ["model_version"],
                registry=registry,
            ),
            event_types=Counter(
                "personalize_event_types",
                "Valid events learned, by event type.",
                ["type"],
                registry=registry,
            ),
            detections=Counter(
                "personalize_drift_detections",
                "Drift detections by signal (hit_rate, category_mix) and detector (adwin, page_hinkley, "
                "kswin).",
                ["signal", "detector"],
                registry=registry,
            ),
            responses=Counter(
                "personalize_drift_responses",
                "Responses applied to the model after a detection (reset_affinity, boost_exploration).",
                ["response"],
                registry=registry,
            ),
            lag=Gauge(
                "personalize_consumer_lag",
                "Event records behind the high watermark, per events partition this worker owns.",
                ["partition"],
                registry=registry,
            ),
        )
