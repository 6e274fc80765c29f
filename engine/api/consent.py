"""Consent at the edge: ``PUT``/``GET /v1/users/{id}/consent``, and which users' events may go on to Kafka.

A consent takes effect in Redis at once (a withdrawal deletes the user's keys there too) and is then
produced to the events topic keyed by the user, so the worker, which drops the events of users without
consent on its side as well, forgets what it learned of them. User ids are pseudonymized before Redis
or Kafka see them (`Services.pseudonyms`); answers name the user as the caller did.
"""

from __future__ import annotations

__all__ = ["ConsentAnswer", "ConsentRequest", "admitted", "admitted_events", "consent_router"]

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from engine.api.auth import Scope, require
from engine.api.bodies import ErrorBody
from engine.api.openapi import ID_PATTERN
from engine.api.services import Services, produce_user_record, services
from schemas.events import Event
from schemas.users import ConsentRecord, admits

UserId = Annotated[
    str,
    Path(min_length=1, max_length=256, pattern=ID_PATTERN, description="The user (may contain `/`)."),
]


class ConsentRequest(BaseModel):
    """The body of ``PUT /v1/users/{user_id}/consent``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granted: StrictBool = Field(description="true: the user agrees to be personalized; false: withdrawn")


class ConsentAnswer(BaseModel):
    user_id: str
    granted: bool | None = Field(description="what the user said; null: never said")
    admitted: bool = Field(
        description="whether the user's events are learned now (opt-in deployments need a grant; opt-out "
        "ones only no withdrawal)"
    )
    since_ms: int | None = Field(description="when the user said it, epoch ms")
    event_id: str | None = Field(None, description="id of the `consent` record produced (PUT only)")
    deleted_keys: int = Field(0, description="the user's Redis keys deleted at once (a withdrawal)")


async def admitted(svc: Services, user_ids: list[str]) -> set[str]:
    """Which of the (pseudonymous) users may have their events learned and kept: one Redis round trip."""
    states = await svc.store.consent_states(user_ids)
    required = svc.settings.consent_required
    return {user for user, state in zip(user_ids, states, strict=True) if admits(state.granted, required)}


async def admitted_events(svc: Services, events: list[Event]) -> tuple[list[Event], list[Event]]:
    """The events whose users may be learned, and the others (dropped: never sent, only counted)."""
    allowed = await admitted(svc, sorted({e.user_id for e in events}))
    kept = [e for e in events if e.user_id in allowed]
    return kept, [e for e in events if e.user_id not in allowed]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    # 404: a user id with a line break never reaches the route (the path does not match).
    return {status: {"model": ErrorBody} for status in sorted({*statuses, 404})}


def consent_router(read_auth: bool) -> APIRouter:
    router = APIRouter(tags=["users"])

    @router.put(
        "/v1/users/{user_id:path}/consent",
        response_model=ConsentAnswer,
        summary="Grant or withdraw a user's consent to personalization",
        responses=_errors(401, 403, 413, 422, 429, 503),
        dependencies=[Depends(require(Scope.EVENTS))],
    )
    async def put_consent(
        user_id: UserId, body: ConsentRequest, svc: Annotated[Services, Depends(services)]
    ) -> ConsentAnswer:
        """Record the user's consent. A withdrawal deletes the user's list, metadata and preferences in
        Redis at once and leaves a tombstone (as an erasure), and the worker forgets what it learned of
        them; from then on their events are
        dropped (counted in `personalize_api_events_total{outcome="no_consent"}`), never sent to Kafka nor
        learned. Then produced to the events topic as a `consent` record; 503 if Kafka does not confirm it
        (Redis has changed already; resend)."""
        stored = svc.pseudonyms.of(user_id)
        now = time.time_ns() // 1_000_000
        deleted = await svc.store.record_consent(stored, body.granted, now)
        record = ConsentRecord(
            event_id=f"consent-{uuid.uuid4().hex}", user_id=stored, ts=now, granted=body.granted
        )
        delivered = await produce_user_record(svc, record)
        if not body.granted:  # a worker still holding the user's earlier events writes no list again
            await svc.store.fence_users({stored: delivered.offset}, svc.settings.tombstone_ttl_s)
        return ConsentAnswer(
            user_id=user_id,
            granted=body.granted,
            admitted=admits(body.granted, svc.settings.consent_required),
            since_ms=now,
            event_id=record.event_id,
            deleted_keys=deleted,
        )

    @router.get(
        "/v1/users/{user_id:path}/consent",
        response_model=ConsentAnswer,
        summary="A user's consent",
        responses=_errors(*((401, 403, 422, 429, 503) if read_auth else (422, 503))),
        dependencies=[Depends(require(Scope.READ))] if read_auth else [],
    )
    async def get_consent(user_id: UserId, svc: Annotated[Services, Depends(services)]) -> ConsentAnswer:
        """What the user said and whether their events are learned now."""
        [state] = await svc.store.consent_states([svc.pseudonyms.of(user_id)])
        return ConsentAnswer(
            user_id=user_id,
            granted=state.granted,
            admitted=admits(state.granted, svc.settings.consent_required),
            since_ms=state.since_ms,
        )

    return router
