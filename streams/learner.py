"""The policy learner: joined examples in, policy snapshots out to Redis (for the API's next rank).

Examples arrive keyed by policy id, so each policy is learned by exactly one worker. A policy this worker
has not seen yet starts from its latest snapshot in Redis, so a restart or rebalance keeps what was learned
up to the last publish (at most ``publish_s`` seconds or ``publish_every`` rewards behind). Snapshots are
published by compare-and-set on the version this worker loaded: when another worker published since (the
previous owner finishing after a rebalance, or the next one), the write is refused and the policy is
reloaded from Redis on its next example.
"""

from __future__ import annotations

__all__ = ["Learner"]

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.exceptions

from engine.ops.metrics import Metrics
from engine.serving.experiment_stats import ExperimentStats
from engine.store.policy_store import PolicyStore
from models.bandit_features import action_matrix, hash_features
from models.bandit_snapshot import SnapshotPolicy, dumps, fresh
from schemas.decisions import DecisionRecord, PolicySpec
from schemas.errors import PolicySnapshotError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Learned:
    policy: SnapshotPolicy
    name: str
    context_dims: int
    action_dims: int
    rewards: int
    #: The published version this state was learned on top of (0: none).
    version: int = 0
    unpublished: int = 0
    first_unpublished: float = 0.0


class Learner:
    """Learns every policy whose examples this worker owns and publishes their snapshots."""

    def __init__(
        self,
        store: PolicyStore,
        stats: ExperimentStats,
        metrics: Metrics,
        *,
        publish_every: int,
        publish_s: float,
    ) -> None:
        self.store = store
        self.stats = stats
        self.metrics = metrics
        self.publish_every = publish_every
        self.publish_s = publish_s
        self.policies: dict[str, _Learned] = {}
        self._tally: dict[tuple[str, str], tuple[int, float]] = {}
        #: One publication at a time: the timer's flush and a learn-triggered one, interleaved at their
        #: awaits, published the same version twice, so the second was refused as "another worker's".
        self._publishing = asyncio.Lock()

    async def _policy(self, decision: DecisionRecord) -> _Learned:
        spec = decision.policy
        learned = self.policies.get(spec.id)
        if learned is None:
            learned = await self._load(spec)
            self.policies[spec.id] = learned
        return learned

    async def _load(self, spec: PolicySpec) -> _Learned:
        """The policy from its latest snapshot, or untrained (on top of a refused snapshot's version,
        whose place its next publish takes)."""
        params: dict[str, Any] = dict(spec.params)
        try:
            loaded = await self.store.load(spec.id, seed=0)
        except PolicySnapshotError as exc:
            log.error("policy %s: %s; learning it from scratch", spec.id, exc)
            self.metrics.bandit_snapshot_refused.labels(reason=exc.reason).inc()
            version = await self.store.version(spec.id)
            policy = fresh(spec.name, seed=0, **params)
            return _Learned(policy, spec.name, spec.context_dims, spec.action_dims, 0, version)
        if loaded is None:
            policy = fresh(spec.name, seed=0, **params)
            return _Learned(policy, spec.name, spec.context_dims, spec.action_dims, 0)
        version, s = loaded
        return _Learned(s.policy, s.name, s.context_dims, s.action_dims, s.rewards, version)

    async def learn(self, example: dict[str, Any]) -> str:
        """Learn one joined example (the JSON of `streams.reward_join.Example`); returns the outcome."""
        decision = DecisionRecord.model_validate(example["decision"])
        reward = float(example["reward"])
        learned = await self._policy(decision)
        if (learned.context_dims, learned.action_dims) != (
            decision.policy.context_dims,
            decision.policy.action_dims,
        ):
            log.warning("decision %s was ranked with other feature sizes; not learned", decision.decision_id)
            return "skipped"
        x = hash_features(decision.context, learned.context_dims)
        matrix = action_matrix([(a.id, a.features) for a in decision.actions], learned.action_dims)
        # On-policy: the policy being learned is the one that chose, so every example counts once.
        learned.policy.learn_one(x, matrix, decision.chosen_index, reward)
        learned.rewards += 1
        if not learned.unpublished:
            learned.first_unpublished = time.monotonic()
        learned.unpublished += 1
        source = "default" if example.get("outcome") == "expired" else "rewarded"
        self.metrics.bandit_learned.labels(policy=decision.policy.id, source=source).inc()
        if decision.propensity < max(decision.probabilities):
            # Not the policy's most probable action: an exploration (never counted for a uniform policy).
            self.metrics.bandit_explored.labels(policy=decision.policy.id).inc()
        experiment, variant = decision.experiment or "none", decision.variant or "none"
        self.metrics.bandit_rewards.labels(experiment=experiment, variant=variant).observe(reward)
        if decision.experiment is not None and decision.variant is not None:
            count, total = self._tally.get((experiment, variant), (0, 0.0))
            self._tally[(experiment, variant)] = (count + 1, total + reward)
        if learned.unpublished >= self.publish_every:
            await self.flush(force=True)
        return "learned"

    async def flush(self, force: bool = False) -> None:
        """Publish every policy with unpublished learning older than ``publish_s`` (all if ``force``)."""
        async with self._publishing:
            await self._flush(force)

    async def _flush(self, force: bool) -> None:
        now = time.monotonic()
        for policy_id, learned in list(self.policies.items()):
            if not learned.unpublished or (not force and now - learned.first_unpublished < self.publish_s):
                continue
            blob = dumps(
                learned.policy,
                learned.name,
                context_dims=learned.context_dims,
                action_dims=learned.action_dims,
                rewards=learned.rewards,
            )
            try:
                version = await self.store.publish(policy_id, blob, learned.rewards, learned.version)
            except (redis.exceptions.RedisError, OSError):
                log.exception("could not publish the snapshot of policy %s", policy_id)
                self.metrics.bandit_snapshot_errors.inc()
                continue
            if version is None:
                log.warning("policy %s was published by another worker; reloading it", policy_id)
                self.metrics.bandit_snapshot_conflicts.labels(policy=policy_id).inc()
                del self.policies[policy_id]
                continue
            learned.version = version
            learned.unpublished = 0
            self.metrics.bandit_snapshots.labels(policy=policy_id).inc()
        tally, self._tally = self._tally, {}
        try:
            await self.stats.add_rewards(tally)
        except (redis.exceptions.RedisError, OSError):
            log.exception("could not add reward counts of experiments")
            for key, (count, total) in tally.items():
                old = self._tally.get(key, (0, 0.0))
                self._tally[key] = (old[0] + count, old[1] + total)
