"""Prometheus metrics of the worker's reward join and policy learning, in one container on a registry.

Registered beside `engine.metrics.Metrics` on the worker's registry; the per-variant reward summary
gives decisions rewarded (``_count``) and their mean (``_sum / _count``) per experiment variant.
"""

from __future__ import annotations

__all__ = ["BanditMetrics"]

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Summary


@dataclass(frozen=True, slots=True)
class BanditMetrics:
    """Join outcomes, examples learned per policy, rewards per experiment variant, snapshots published.

    >>> m = BanditMetrics.create(CollectorRegistry())
    >>> m.rewards.labels(experiment="e", variant="a").observe(1.0)
    >>> m.registry.get_sample_value("personalize_bandit_reward_sum", {"experiment": "e", "variant": "a"})
    1.0
    """

    registry: CollectorRegistry
    joins: Counter
    learned: Counter
    rewards: Summary
    publishes: Counter
    publish_errors: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BanditMetrics:
        return cls(
            registry=registry,
            joins=Counter(
                "personalize_bandit_joins",
                "Decision and reward records by join outcome (joined, waiting, duplicate, late, expired, "
                "orphan, dead_letter).",
                ["outcome"],
                registry=registry,
            ),
            learned=Counter(
                "personalize_bandit_learned",
                "Examples a policy learned, by policy id and reward source (rewarded, default).",
                ["policy", "source"],
                registry=registry,
            ),
            rewards=Summary(
                "personalize_bandit_reward",
                "Rewards learned per experiment variant (`none` outside experiments), defaults included.",
                ["experiment", "variant"],
                registry=registry,
            ),
            publishes=Counter(
                "personalize_bandit_snapshots",
                "Policy snapshots published to Redis, by policy id.",
                ["policy"],
                registry=registry,
            ),
            publish_errors=Counter(
                "personalize_bandit_snapshot_errors", "Failed snapshot publications.", registry=registry
            ),
        )
