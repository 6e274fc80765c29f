"""All Prometheus metrics of the engine in one typed container, built against an explicit registry.

The worker and the HTTP API each create it on their own registry and serve that registry; each registers
only its own families (the API's are ``api_*``), so neither exposes the other's. Tests use a fresh registry.
One process serves one namespace, named in ``personalize_info`` (``personalize_api_info`` for the API).
"""

from __future__ import annotations

__all__ = ["MAX_DEAD_LETTER_REASONS", "OUTCOMES", "Metrics"]

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Summary

#: Label values of ``personalize_events_total``.
OUTCOMES = ("learned", "duplicate", "redelivered", "rekeyed", "erased", "dead_letter", "no_consent")
#: Distinct ``reason`` labels of ``personalize_dead_letters_total``; later ones count as ``other``.
MAX_DEAD_LETTER_REASONS = 50

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_API_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SHARES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The engine's metrics: worker pipeline, online quality and drift, rank/reward learning, HTTP API.

    >>> m = Metrics.create(CollectorRegistry(), namespace="test", model_version="m1")
    >>> m.events.labels(outcome="learned").inc()
    >>> m.registry.get_sample_value("personalize_events_total", {"outcome": "learned"})
    1.0
    >>> m.drift_detections.labels(signal="hit_rate", detector="adwin").inc()
    >>> m.registry.get_sample_value(
    ...     "personalize_drift_detections_total", {"signal": "hit_rate", "detector": "adwin"})
    1.0
    >>> api = Metrics.create(CollectorRegistry(), namespace="test")
    >>> api.registry.get_sample_value("personalize_api_info", {"namespace": "test"})
    1.0
    """

    registry: CollectorRegistry
    # The worker's pipeline.
    events: Counter
    items: Counter
    dead_letters: Counter
    publish_errors: Counter
    fenced_writes: Counter
    trending_publishes: Counter
    gap_repairs: Counter
    nudges: Counter
    freshness: Histogram
    process_seconds: Histogram
    users: Gauge
    consumer_lag: Gauge
    checkpoint_age: Gauge
    checkpoint_bytes: Gauge
    checkpoints: Gauge
    checkpoint_writes: Counter
    checkpoint_replayed: Counter
    checkpoint_refused: Counter
    erasures_scrubbed: Counter
    # Dependency outages (streams/gaps.py, streams/republish.py).
    kafka_read_failures: Counter
    republish_pending: Gauge
    republished: Counter
    redis_resets: Counter
    replica_records: Counter
    replica_seconds: Counter
    replica_lag: Gauge
    # Online quality and drift (streams/quality.py).
    event_types: Counter
    prequential_hits: Counter
    prequential_scored: Counter
    prequential_hit_rate: Gauge
    ranker_log_loss: Summary
    slate_events: Counter
    drift_detections: Counter
    drift_responses: Counter
    # Rank/reward learning in the worker (streams/rewards.py, streams/learner.py).
    bandit_joins: Counter
    bandit_learned: Counter
    bandit_explored: Counter
    bandit_rewards: Summary
    bandit_snapshots: Counter
    bandit_snapshot_errors: Counter
    bandit_snapshot_conflicts: Counter
    bandit_snapshot_refused: Counter
    # The HTTP API (engine/api/).
    api_requests: Counter
    api_latency: Histogram
    api_diversity: Histogram
    api_coverage: Gauge
    api_rules_reloads: Counter
    api_events: Counter
    api_served: Counter
    api_decisions: Counter
    api_rewards: Counter
    api_auth_rejected: Counter
    #: ``reason`` labels of `dead_letters` used so far (bounded by MAX_DEAD_LETTER_REASONS).
    dead_letter_reasons: set[str] = field(default_factory=set)

    def dead_letter(self, kind: str, reason: str) -> None:
        """Count one dead letter; a reason past the first MAX_DEAD_LETTER_REASONS counts as ``other``.

        >>> m = Metrics.create(CollectorRegistry(), namespace="test", model_version="m1")
        >>> for n in range(MAX_DEAD_LETTER_REASONS + 2):
        ...     m.dead_letter("invalid", f"extra:field{n}")
        >>> m.registry.get_sample_value(
        ...     "personalize_dead_letters_total", {"kind": "invalid", "reason": "other"})
        2.0
        """
        if reason not in self.dead_letter_reasons:
            if len(self.dead_letter_reasons) >= MAX_DEAD_LETTER_REASONS:
                reason = "other"
            else:
                self.dead_letter_reasons.add(reason)
        self.dead_letters.labels(kind=kind, reason=reason).inc()

    @classmethod
    def create(cls, registry: CollectorRegistry, namespace: str, model_version: str | None = None) -> Metrics:
        """Build every family; register the process's own on ``registry``. The worker passes its
        ``model_version``; the API runs no model, passes none and is named in ``personalize_api_info``.

        The API's families are the ``api_*`` ones; the worker's are the rest. Each process registers
        only its own, so neither exposes the other's at their start values; the other role's families
        still exist, unregistered, so shared code may touch them.
        """
        api = model_version is None

        def target(name: str) -> CollectorRegistry | None:
            return registry if name.startswith("api_") == api else None

        if model_version is None:
            info = Info("personalize_api", "Which namespace this API process serves.", registry=registry)
            info.info({"namespace": namespace})
        else:
            info = Info("personalize", "Which namespace and model this process serves.", registry=registry)
            info.info({"namespace": namespace, "model_version": model_version})

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(f"personalize_{name}", doc, labels, registry=target(name))

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(f"personalize_{name}", doc, labels, registry=target(name))

        def summary(name: str, doc: str, *labels: str) -> Summary:
            return Summary(f"personalize_{name}", doc, labels, registry=target(name))

        def histogram(name: str, doc: str, buckets: tuple[float, ...], *labels: str) -> Histogram:
            return Histogram(f"personalize_{name}", doc, labels, buckets=buckets, registry=target(name))

        checkpoint_age = gauge(
            "checkpoint_age_seconds",
            "Seconds since the model state was last checkpointed (or restored); -1 before either.",
        )
        checkpoint_age.set(-1)
        return cls(
            registry=registry,
            events=counter(
                "events",
                "Event records consumed, by outcome (learned, duplicate event_id, redelivered offset, "
                "rekeyed, erased: an erasure record, dead_letter, no_consent: dropped, the user has not "
                "consented).",
                "outcome",
            ),
            items=counter("items", "Catalog records applied."),
            dead_letters=counter(
                "dead_letters",
                "Records sent to the dead-letter topic, by kind (invalid, internal) and reason (the first "
                "problem's code and field, e.g. missing:user_id; json; internal; other past the first 50).",
                "kind",
                "reason",
            ),
            publish_errors=counter("publish_errors", "Failed Redis publications."),
            fenced_writes=counter(
                "fenced_writes",
                "Lists Redis refused to write, by reason: erased (older than the user's erasure or reset "
                "tombstone) or stale (older than the list already stored).",
                "reason",
            ),
            trending_publishes=counter(
                "trending_publishes",
                "Trending lists written to Redis by this worker (only the owner of events partition 0 "
                "writes them).",
            ),
            gap_repairs=counter(
                "gap_repairs", "Event records re-read from Kafka because the consumer skipped their offsets."
            ),
            nudges=counter(
                "nudges",
                "Control records sent to partitions whose consumption stalled behind the high watermark.",
            ),
            freshness=histogram(
                "freshness_seconds",
                "From the event's timestamp to the user's scores written in Redis.",
                _LATENCY_BUCKETS,
            ),
            process_seconds=histogram(
                "process_seconds", "Worker time per event, from decode to Redis written.", _LATENCY_BUCKETS
            ),
            users=gauge("users", "Users with state in this worker."),
            consumer_lag=gauge(
                "consumer_lag",
                "Event records behind the high watermark, per events partition this worker owns.",
                "partition",
            ),
            checkpoint_age=checkpoint_age,
            checkpoint_bytes=gauge("checkpoint_bytes", "Size of the newest model checkpoint file."),
            checkpoints=gauge("checkpoints", "Model checkpoint files kept on disk."),
            checkpoint_writes=counter(
                "checkpoint_writes", "Model checkpoints attempted, by outcome (written, failed).", "outcome"
            ),
            checkpoint_replayed=counter(
                "checkpoint_replayed",
                "Records re-read after a restore to bring the model up to the profile table, by topic kind "
                "(events, items); learned into the model only.",
                "topic",
            ),
            checkpoint_refused=counter(
                "checkpoint_refused",
                "Checkpoints the worker refused to restore, by reason (version, unsigned, signature: no "
                "valid signature while PERSONALIZE_CHECKPOINT_KEY is set, never unpickled; unreadable).",
                "reason",
            ),
            erasures_scrubbed=counter(
                "erasures_scrubbed",
                "Erasures this worker completed: the user forgotten in its model and quality state and no "
                "checkpoint file of it holds the user (counted when confirmed in Redis).",
            ),
            kafka_read_failures=counter(
                "kafka_read_failures",
                "Failed direct reads of Kafka (gap repair, catch-up replay), each retried with backoff for "
                "up to PERSONALIZE_KAFKA_READ_PATIENCE_S before the error is raised.",
            ),
            republish_pending=gauge(
                "republish_pending",
                "Users of this worker's partitions whose list is waiting to be written to Redis again "
                "(their write failed, or Redis came back without its data).",
            ),
            republished=counter(
                "republished",
                "Lists written again after Redis was away (ranked afresh from the model), by cause: failed "
                "(the list's write had failed) or reset (Redis came back without its data).",
                "cause",
            ),
            redis_resets=counter(
                "redis_resets",
                "Events partitions whose lists Redis no longer held (came back without its data, or "
                "never had them): every user of the partition is queued for republishing.",
            ),
            replica_records=counter(
                "replica_records",
                "Records this worker learned into its model from partitions it does not own (events of "
                "other workers' partitions, and the whole catalog), by topic kind (events, items).",
                "topic",
            ),
            replica_seconds=counter(
                "replica_seconds",
                "CPU seconds (of the threads doing it) this worker's replica reader spent fetching and "
                "learning records of partitions it does not own: the replicated cost of scale-out.",
            ),
            replica_lag=gauge(
                "replica_lag",
                "Records behind the high watermark, summed over the partitions this worker's model follows "
                "without owning them (streams/replica.py), by topic kind (events, items).",
                "topic",
            ),
            event_types=counter("event_types", "Valid events learned, by event type.", "type"),
            prequential_hits=counter(
                "prequential_hits",
                "Positive events on an item the user had not consumed that was in the user's last "
                "published top-k, counted before the model learned the event.",
                "model_version",
            ),
            prequential_scored=counter(
                "prequential_scored",
                "Positive events on an item the user had not consumed, scored against the user's last "
                "published top-k.",
                "model_version",
            ),
            prequential_hit_rate=gauge(
                "prequential_hit_rate",
                "HR@k over the most recent scored events (PERSONALIZE_DRIFT_WINDOW of them).",
                "model_version",
            ),
            ranker_log_loss=summary(
                "ranker_log_loss",
                "Prequential hits only: -ln of the probability the ranker gave the taken item, a softmax of "
                "the published scores over the user's top-k (ln k is chance).",
                "model_version",
            ),
            slate_events=counter(
                "slate_events",
                "Impressions and clicks learned, by surface, experiment and variant (`none` when the event "
                "has none; `other` past the first 200 label sets); CTR = click / impression.",
                "type",
                "surface",
                "experiment",
                "variant",
            ),
            drift_detections=counter(
                "drift_detections",
                "Drift detections by signal (hit_rate, taste, category_mix) and detector (adwin, "
                "page_hinkley).",
                "signal",
                "detector",
            ),
            drift_responses=counter(
                "drift_responses",
                "Responses applied to the model after a detection (reset_affinity, boost_exploration).",
                "response",
            ),
            bandit_joins=counter(
                "bandit_joins",
                "Decision and reward records by join outcome (joined, waiting, duplicate, late, expired, "
                "orphan, dead_letter).",
                "outcome",
            ),
            bandit_learned=counter(
                "bandit_learned",
                "Examples a policy learned, by policy id and reward source (rewarded, default).",
                "policy",
                "source",
            ),
            bandit_explored=counter(
                "bandit_explored",
                "Examples learned whose chosen action had a lower probability than the policy's most "
                "probable action (exploration rate = explored / learned), by policy id.",
                "policy",
            ),
            bandit_rewards=summary(
                "bandit_reward",
                "Rewards learned per experiment variant (`none` outside experiments), defaults included.",
                "experiment",
                "variant",
            ),
            bandit_snapshots=counter(
                "bandit_snapshots", "Policy snapshots published to Redis, by policy id.", "policy"
            ),
            bandit_snapshot_errors=counter("bandit_snapshot_errors", "Failed snapshot publications."),
            bandit_snapshot_conflicts=counter(
                "bandit_snapshot_conflicts",
                "Policy snapshots refused because another worker published a newer version since this "
                "worker loaded it (the policy is then reloaded from Redis), by policy id.",
                "policy",
            ),
            bandit_snapshot_refused=counter(
                "bandit_snapshot_refused", "Policy snapshots refused unread, by reason.", "reason"
            ),
            api_requests=counter(
                "api_requests",
                "HTTP requests by method, route template (`unmatched` for unknown paths) and status.",
                "method",
                "route",
                "status",
            ),
            api_latency=histogram(
                "api_request_seconds",
                "HTTP request time in the server, from the first byte read to the last byte sent.",
                _API_BUCKETS,
                "method",
                "route",
            ),
            api_diversity=histogram(
                "api_list_diversity",
                "Intra-list diversity of served lists: 1 - mean pairwise Jaccard of the items' categories.",
                _SHARES,
            ),
            api_coverage=gauge(
                "api_catalog_coverage_items",
                "Distinct items served by all API processes of the namespace over the coverage window "
                "(PERSONALIZE_COVERAGE_WINDOW_HOURS; HyperLogLog estimate).",
            ),
            api_rules_reloads=counter(
                "api_rules_reloads",
                "Rules file versions seen, by outcome (loaded; rejected: the last good one stays).",
                "outcome",
            ),
            api_events=counter(
                "api_events",
                "Events received over HTTP, by outcome (accepted: confirmed by Kafka; rejected: invalid; "
                "no_consent: dropped, the user has not consented).",
                "outcome",
            ),
            api_served=counter(
                "api_recommendations",
                "Recommendation lists served, by source (personalized, trending_locale, trending, none).",
                "source",
            ),
            api_decisions=counter(
                "api_decisions",
                "Rank decisions logged, by experiment and variant (`none` outside experiments).",
                "experiment",
                "variant",
            ),
            api_rewards=counter("api_rewards", "Rewards accepted (confirmed by Kafka)."),
            api_auth_rejected=counter(
                "api_auth_rejected",
                "Requests refused for their API key, by reason (unauthenticated, forbidden, rate_limited) "
                "and key name (`none` without a key, `unknown` for a key not configured).",
                "reason",
                "key",
            ),
        )
