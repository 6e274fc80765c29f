"""One rank decision: candidates filtered, the user's variant, the policy's choice and its log record.

Reads the policy snapshot (through `PolicyCache`) and counts the decision in Redis in the same round trip;
never learns. The caller produces the returned `DecisionRecord` to the decisions topic.
"""

from __future__ import annotations

__all__ = ["Ranker", "stamp_events"]

import math
import time
from collections.abc import Sequence

from engine.ops.settings import Settings
from engine.serving.experiment_stats import ExperimentStats
from engine.serving.experiments import Experiment, Experiments, Variant, assign, policy_spec
from engine.store.policy_store import PolicyCache
from models.bandit_features import action_matrix, hash_features
from schemas import keys
from schemas.decisions import DecisionRecord, PolicySpec, RankRequest
from schemas.errors import InvalidEventError, Problem
from schemas.events import Event
from schemas.keys import PolicyField


def stamp_events(events: Sequence[Event], experiments: Experiments) -> list[Event]:
    """Each event with its user's experiment and variant in ``context`` (unless the app set them).

    >>> from engine.serving.experiments import Experiment, Variant
    >>> exps = Experiments(experiments=[Experiment(name="e", variants=[Variant(name="a", weight=1)])])
    >>> ev = Event(event_id="e1", user_id="u1", item_id="i1", type="view", ts=1_700_000_000_000)
    >>> stamp_events([ev], exps)[0].context.variant
    'a'
    """
    stamped = []
    for event in events:
        experiment = experiments.for_surface(event.context.surface)
        if experiment is None or event.context.experiment is not None:
            stamped.append(event)
            continue
        context = event.context.model_copy(
            update={"experiment": experiment.name, "variant": assign(experiment, event.user_id).name}
        )
        stamped.append(event.model_copy(update={"context": context}))
    return stamped


class Ranker:
    """Decides for `RankRequest`s of one namespace."""

    def __init__(self, settings: Settings, experiments: Experiments, cache: PolicyCache) -> None:
        self.settings = settings
        self.experiments = experiments
        self.cache = cache
        self.stats = ExperimentStats(cache.store.client, settings.namespace)

    def _experiment(self, request: RankRequest) -> tuple[Experiment | None, Variant | None]:
        if request.experiment is not None:
            experiment = self.experiments.get(request.experiment)
            if experiment is None:
                known = ", ".join(e.name for e in self.experiments.experiments) or "none configured"
                raise InvalidEventError([Problem("experiment", f"unknown experiment (known: {known})")])
            if request.user_id is None:
                raise InvalidEventError([Problem("user_id", "an experiment needs a user_id to assign")])
        else:
            experiment = self.experiments.for_surface(request.surface)
        if experiment is None or request.user_id is None:
            return None, None
        return experiment, assign(experiment, request.user_id)

    async def decide(self, request: RankRequest) -> DecisionRecord:
        """Rank the request's candidates (minus ``exclude``); raises `InvalidEventError` if none remain."""
        excluded = set(request.exclude)
        actions = [a for a in request.actions if a.id not in excluded]
        if not actions:
            raise InvalidEventError([Problem("exclude", "every action is excluded; nothing to rank")])
        experiment, variant = self._experiment(request)
        spec = policy_spec(self.settings, experiment, variant)
        async with self.cache.store.client.pipeline(transaction=False) as pipe:
            pipe.hget(keys.policy(self.settings.namespace, spec.id), PolicyField.VERSION)
            if experiment is not None and variant is not None and request.user_id is not None:
                self.stats.count_decision(pipe, experiment.name, variant.name, request.user_id)
            version, *_ = await pipe.execute()
        cached = await self.cache.get(spec, int(version) if version is not None else 0)
        x = hash_features(request.context, cached.context_dims)
        matrix = action_matrix([(a.id, a.features) for a in actions], cached.action_dims)
        decision = cached.policy.decide(x, matrix)
        probabilities = [min(1.0, p) for p in decision.probabilities]
        if not all(math.isfinite(p) and p > 0 for p in probabilities):
            raise InvalidEventError([Problem("", "the policy cannot rank these features; scale them")])
        used = PolicySpec(
            id=spec.id,
            name=cached.name,
            params=spec.params,
            context_dims=cached.context_dims,
            action_dims=cached.action_dims,
        )
        return DecisionRecord(
            decision_id=decision.decision_id,
            ts=time.time_ns() // 1_000_000,
            context=request.context,
            actions=actions,
            chosen=actions[decision.action].id,
            probabilities=probabilities,
            ranking=[actions[i].id for i in decision.ranking],
            policy=used,
            policy_version=cached.used_version,
            user_id=request.user_id,
            surface=request.surface,
            experiment=experiment.name if experiment is not None else None,
            variant=variant.name if variant is not None else None,
        )
