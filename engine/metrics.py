"""All Prometheus metrics of the engine in one typed container, built against an explicit registry.

Tests create their own registry so that nothing leaks between them; the worker exposes its registry
on ``PERSONALIZE_METRICS_PORT``. One process serves one namespace, named in ``personalize_info``.
"""

from __future__ import annotations

__all__ = ["OUTCOMES", "Metrics"]

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

#: Label values of ``personalize_events_total``.
OUTCOMES = ("learned", "duplicate", "redelivered", "rekeyed", "dead_letter")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The engine's metrics.

    >>> m = Metrics.create(CollectorRegistry(), namespace="test", model_version="m1")
    >>> m.events.labels(outcome="learned").inc()
    >>> m.registry.get_sample_value("personalize_events_total", {"outcome": "learned"})
    1.0
    """

    registry: CollectorRegistry
    events: Counter
    items: Counter
    dead_letters: Counter
    publish_errors: Counter
    gap_repairs: Counter
    nudges: Counter
    freshness: Histogram
    process_seconds: Histogram
    users: Gauge
    checkpoint_age: Gauge
    checkpoint_bytes: Gauge
    checkpoints: Gauge
    checkpoint_writes: Counter
    checkpoint_replayed: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry, namespace: str, model_version: str) -> Metrics:
        info = Info("personalize", "Which namespace and model this process serves.", registry=registry)
        info.info({"namespace": namespace, "model_version": model_version})
        return cls(
            registry=registry,
            events=Counter(
                "personalize_events",
                "Event records consumed, by outcome (learned, duplicate event_id, redelivered offset, "
                "rekeyed, dead_letter).",
                ["outcome"],
                registry=registry,
            ),
            items=Counter("personalize_items", "Catalog records applied.", registry=registry),
            dead_letters=Counter(
                "personalize_dead_letters",
                "Records sent to the dead-letter topic, by kind (invalid, internal).",
                ["kind"],
                registry=registry,
            ),
            publish_errors=Counter(
                "personalize_publish_errors", "Failed Redis publications.", registry=registry
            ),
            gap_repairs=Counter(
                "personalize_gap_repairs",
                "Event records re-read from Kafka because the consumer skipped their offsets.",
                registry=registry,
            ),
            nudges=Counter(
                "personalize_nudges",
                "Control records sent to partitions whose consumption stalled behind the high watermark.",
                registry=registry,
            ),
            freshness=Histogram(
                "personalize_freshness_seconds",
                "From the event's timestamp to the user's scores written in Redis.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            process_seconds=Histogram(
                "personalize_process_seconds",
                "Worker time per event, from decode to Redis written.",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            users=Gauge("personalize_users", "Users with state in this worker.", registry=registry),
            checkpoint_age=Gauge(
                "personalize_checkpoint_age_seconds",
                "Seconds since the model state was last checkpointed (or restored); -1 before either.",
                registry=registry,
            ),
            checkpoint_bytes=Gauge(
                "personalize_checkpoint_bytes", "Size of the newest model checkpoint file.", registry=registry
            ),
            checkpoints=Gauge(
                "personalize_checkpoints", "Model checkpoint files kept on disk.", registry=registry
            ),
            checkpoint_writes=Counter(
                "personalize_checkpoint_writes",
                "Model checkpoints attempted, by outcome (written, failed).",
                ["outcome"],
                registry=registry,
            ),
            checkpoint_replayed=Counter(
                "personalize_checkpoint_replayed",
                "Records re-read after a restore to bring the model up to the profile table, by topic kind "
                "(events, items); learned into the model only.",
                ["topic"],
                registry=registry,
            ),
        )
