"""Per-variant counters of experiments in Redis, and the report that `/v1/experiments` and the CLI print.

The API counts assigned users (a set per variant, so the sample-ratio check counts people, not requests)
and decisions; the worker adds rewards and their sum. Async only.
"""

from __future__ import annotations

__all__ = ["ExperimentStats", "RewardTally", "user_sets"]

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from engine.serving.experiments import Experiment, Experiments
from engine.serving.srm import srm_check
from schemas import keys

#: (experiment, variant) -> [rewards counted, sum of rewards]; flushed to Redis in one round trip.
RewardTally = Mapping[tuple[str, str], tuple[int, float]]


def user_sets(experiments: Experiments, namespace: str) -> list[str]:
    """The keys of every variant's set of assigned users (an erased user leaves each of them).

    >>> from engine.serving.experiments import Variant
    >>> home = Experiment(name="e", variants=[Variant(name="a", weight=1)])
    >>> user_sets(Experiments(experiments=[home]), "shop")
    ['p13n:v1:shop:experiment-users:e:a']
    """
    return [
        keys.experiment_users(namespace, experiment.name, variant.name)
        for experiment in experiments.experiments
        for variant in experiment.variants
    ]


class ExperimentStats:
    """Counters of one namespace's experiments (a client with ``decode_responses=True``)."""

    def __init__(self, client: aioredis.Redis, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def count_decision(self, pipe: Any, experiment: str, variant: str, user_id: str) -> None:
        """Queue on ``pipe`` what one decision adds: the user to the variant's set, one decision."""
        pipe.sadd(keys.experiment_users(self.namespace, experiment, variant), user_id)
        pipe.hincrby(keys.experiment(self.namespace, experiment), f"{variant}.decisions", 1)

    async def add_rewards(self, tally: RewardTally) -> None:
        """Add joined rewards (count and sum per variant) in one round trip."""
        if not tally:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for (experiment, variant), (count, total) in tally.items():
                key = keys.experiment(self.namespace, experiment)
                pipe.hincrby(key, f"{variant}.rewards", count)
                pipe.hincrbyfloat(key, f"{variant}.reward_sum", total)
            await pipe.execute()

    async def report_one(self, experiment: Experiment) -> dict[str, Any]:
        """Counts, expected ratios, mean reward per variant and the sample-ratio-mismatch verdict."""
        async with self.client.pipeline(transaction=False) as pipe:
            for variant in experiment.variants:
                pipe.scard(keys.experiment_users(self.namespace, experiment.name, variant.name))
            pipe.hgetall(keys.experiment(self.namespace, experiment.name))
            *users, counters = await pipe.execute()
        fields: dict[str, dict[str, float]] = defaultdict(dict)
        for field, value in counters.items():
            variant_name, _, counter = str(field).rpartition(".")
            fields[variant_name][counter] = float(value)
        ratios = experiment.expected_ratios()
        srm = srm_check({v.name: int(n) for v, n in zip(experiment.variants, users, strict=True)}, ratios)
        variants = []
        for variant, n_users in zip(experiment.variants, users, strict=True):
            c = fields.get(variant.name, {})
            rewards = int(c.get("rewards", 0))
            variants.append(
                {
                    "variant": variant.name,
                    "policy": variant.policy,
                    "expected_ratio": ratios[variant.name],
                    "users": int(n_users),
                    "decisions": int(c.get("decisions", 0)),
                    "rewards": rewards,
                    "mean_reward": c.get("reward_sum", 0.0) / rewards if rewards else None,
                }
            )
        return {"experiment": experiment.name, "variants": variants, "srm": srm.to_json()}

    async def report(self, experiments: Experiments) -> list[dict[str, Any]]:
        return [await self.report_one(e) for e in experiments.experiments]
