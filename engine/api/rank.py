"""``POST /v1/rank``, ``POST /v1/reward`` and ``GET /v1/experiments``: Personalizer-style decisions.

Rank decides with the latest policy snapshot from Redis and logs the decision to Kafka (keyed by its
decision_id) before answering; reward only produces. The worker joins the two and learns; this never does.
"""

from __future__ import annotations

__all__ = ["rank_router"]

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from engine.api.auth import Scope, require
from engine.api.bodies import ErrorBody
from engine.api.consent import admitted
from engine.api.services import Services, services
from engine.serving.experiment_stats import ExperimentStats
from engine.serving.experiments import Experiments
from engine.serving.ranker import Ranker
from engine.store.policy_store import PolicyCache, PolicyStore
from schemas.decisions import RankRequest, RewardRecord, RewardRequest, encode
from schemas.errors import ServiceUnavailableError


class RankedAction(BaseModel):
    id: str
    probability: float = Field(description="the probability the policy gave this action (its propensity)")


class RankBody(BaseModel):
    """The ranking (chosen action first), every action's probability and the id to send rewards for."""

    decision_id: str
    chosen: str
    ranking: list[RankedAction]
    experiment: str | None
    variant: str | None
    policy: str = Field(description="the policy that ranked: `default` or `<experiment>.<variant>`")
    policy_version: int = Field(description="the snapshot version used; 0 means not trained yet")


class RewardAccepted(BaseModel):
    decision_id: str
    accepted: bool = True


class VariantReport(BaseModel):
    variant: str
    policy: str
    expected_ratio: float
    users: int
    decisions: int
    rewards: int
    mean_reward: float | None


class SrmReport(BaseModel):
    counts: dict[str, int]
    expected_ratios: dict[str, float]
    chi2: float
    p_value: float
    mismatch: bool = Field(description="true when p < 0.001: the split does not match the weights")


class ExperimentReport(BaseModel):
    experiment: str
    variants: list[VariantReport]
    srm: SrmReport


async def _produce(svc: Services, topic: str, key: str, value: bytes) -> None:
    timeout = svc.settings.api_timeout_s
    try:
        await asyncio.wait_for(svc.producer.send_nowait(topic, value, key.encode()), timeout + 1.0)
    except Exception as exc:  # noqa: BLE001 - a timeout or a refused delivery: Kafka is not answering
        raise ServiceUnavailableError("kafka", svc.settings.bootstrap, timeout) from exc


async def _private(svc: Services, body: RankRequest) -> RankRequest:
    """The request as the decision log may keep it: the user pseudonymized, or, for a user without
    consent, no user (nor experiment, which needs one) at all: ranked by the default policy, anonymously."""
    if body.user_id is None:
        return body
    user = svc.pseudonyms.of(body.user_id)
    if await admitted(svc, [user]):
        return body.model_copy(update={"user_id": user})
    return body.model_copy(update={"user_id": None, "experiment": None})


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def rank_router(experiments: Experiments, read_auth: bool) -> APIRouter:
    """The rank, reward and experiments routes for one deployment's experiments."""
    router = APIRouter(tags=["rank"])
    rankers: dict[int, Ranker] = {}

    def ranker(svc: Services) -> Ranker:
        # One per Services (per app start): the policy cache lives as long as the Redis client does.
        key = id(svc)
        if key not in rankers:
            store = PolicyStore(svc.store.client, svc.settings.namespace, svc.settings.policy_signing_key)
            rankers.clear()
            rankers[key] = Ranker(svc.settings, experiments, PolicyCache(store, svc.metrics))
        return rankers[key]

    @router.post(
        "/v1/rank",
        response_model=RankBody,
        summary="Rank candidate actions for a context",
        responses=_errors(401, 403, 413, 422, 429, 503),
        dependencies=[Depends(require(Scope.EVENTS))],
    )
    async def post_rank(body: RankRequest, svc: Annotated[Services, Depends(services)]) -> RankBody:
        """Rank `actions` (minus `exclude`) with the contextual bandit policy for this user's variant.

        The decision (context, actions, every probability, the chosen action) is logged to Kafka before
        the answer. Send `POST /v1/reward` with its `decision_id` within the reward wait window.
        """
        decision = await ranker(svc).decide(await _private(svc, body))
        await _produce(svc, svc.settings.decisions_topic, decision.decision_id, encode(decision))
        svc.metrics.api_decisions.labels(
            experiment=decision.experiment or "none", variant=decision.variant or "none"
        ).inc()
        probability = dict(zip([a.id for a in decision.actions], decision.probabilities, strict=True))
        return RankBody(
            decision_id=decision.decision_id,
            chosen=decision.chosen,
            ranking=[RankedAction(id=i, probability=probability[i]) for i in decision.ranking],
            experiment=decision.experiment,
            variant=decision.variant,
            policy=decision.policy.id,
            policy_version=decision.policy_version,
        )

    @router.post(
        "/v1/reward",
        status_code=202,
        response_model=RewardAccepted,
        summary="Report the reward of a decision",
        responses=_errors(401, 403, 413, 422, 429, 503),
        dependencies=[Depends(require(Scope.EVENTS))],
    )
    async def post_reward(body: RewardRequest, svc: Annotated[Services, Depends(services)]) -> RewardAccepted:
        """Produce the reward keyed by `decision_id`; the worker joins it to the decision and learns.

        The first reward within the wait window counts; a decision without one is learned with the
        default reward when the window closes.
        """
        now_ms = time.time_ns() // 1_000_000
        record = RewardRecord(decision_id=body.decision_id, reward=body.reward, ts=now_ms)
        await _produce(svc, svc.settings.rewards_topic, record.decision_id, encode(record))
        svc.metrics.api_rewards.inc()
        return RewardAccepted(decision_id=body.decision_id)

    @router.get(
        "/v1/experiments",
        response_model=list[ExperimentReport],
        summary="Experiments: counts per variant and the sample-ratio-mismatch check",
        responses=_errors(401, 403, 429, 503) if read_auth else _errors(503),
        dependencies=[Depends(require(Scope.READ))] if read_auth else [],
    )
    async def get_experiments(svc: Annotated[Services, Depends(services)]) -> list[dict[str, Any]]:
        """Per variant: users assigned, decisions, rewards, mean reward; and a chi-square test of the
        users assigned against the configured weights (`mismatch` when p < 0.001)."""
        return await ExperimentStats(svc.store.client, svc.settings.namespace).report(experiments)

    return router
