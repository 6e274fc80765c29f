"""User routes: explicit preferences (``PUT``/``GET /v1/users/{id}/preferences``) and erasure (``DELETE``).

Both take effect in Redis before the answer (the next read sees them) and are produced to the events
topic keyed by user_id, so the worker's models can learn them too. An erasure or a reset also leaves the
user's tombstone at the record's offset, so a worker still holding the user's older events cannot write
their list again (`engine.store.scripts.FENCE_USER`). Serving applies them in `engine.serving.recommend`.
User ids are pseudonymized before Redis or Kafka see them; answers name the user as the caller did.
"""

from __future__ import annotations

__all__ = ["Erased", "ErasureAnswer", "PreferencesAnswer", "PreferencesState", "users_router"]

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from engine.api.auth import ApiKey, Scope, require
from engine.api.bodies import ErrorBody
from engine.api.consent import admitted
from engine.api.openapi import ID_PATTERN
from engine.api.services import Services, produce_user_record, services
from engine.ingest.erase import erase
from engine.serving.experiment_stats import user_sets
from engine.serving.experiments import Experiments
from engine.store import erasures
from engine.store.preferences import Preferences, changes
from schemas.errors import InvalidEventError, Problem, RequestRejectedError
from schemas.users import PreferencesRecord, PreferencesRequest

UserId = Annotated[
    str,
    Path(min_length=1, max_length=256, pattern=ID_PATTERN, description="The user (may contain `/`)."),
]


class PreferencesState(BaseModel):
    """A user's choices as serving applies them."""

    liked_categories: list[str]
    liked_items: list[str]
    muted_categories: list[str]
    hidden_items: list[str]


class PreferencesAnswer(BaseModel):
    user_id: str
    event_id: str | None = Field(description="id of the `preferences` record produced (PUT only)")
    preferences: PreferencesState


class Erased(BaseModel):
    user_id: str
    event_id: str = Field(description="id of the `erasure` record produced to the events topic")
    deleted_keys: int = Field(description="how many of the user's Redis keys existed")


class ErasureAnswer(BaseModel):
    user_id: str
    status: str = Field(
        description="`done` once the owner of the user's partition forgot the user and every worker "
        "beating at the request (and still beating) scrubbed its model state and checkpoints; else `pending`"
    )
    event_id: str = Field(description="id of the latest `erasure` record")
    requested_ms: int
    done_ms: int | None = Field(description="when the erasure completed (epoch ms); null while pending")
    forgotten_ms: int | None = Field(
        description="when the owner of the user's partition forgot them (profile table, model, tombstone)"
    )
    workers: dict[str, int] = Field(
        description="worker id -> when it scrubbed its model state and checkpoint files (epoch ms)"
    )
    waiting: list[str] = Field(description="workers beating at the request and now that have not scrubbed")
    gone: list[str] = Field(description="workers beating at the request that stopped before scrubbing")
    by: str = Field(description="the name of the API key that asked (`cli:<user>` for `personalize forget`)")
    deleted_keys: int
    removed: list[str] = Field(description="what the request deleted in Redis, by kind with counts")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    # 404: a user id with a line break never reaches the route (the path does not match).
    return {status: {"model": ErrorBody} for status in sorted({*statuses, 404})}


def _answer(user_id: str, prefs: Preferences, event_id: str | None) -> PreferencesAnswer:
    state = PreferencesState.model_validate(prefs.to_json())
    return PreferencesAnswer(user_id=user_id, event_id=event_id, preferences=state)


def users_router(read_auth: bool, experiments: Experiments) -> APIRouter:
    router = APIRouter(tags=["users"])
    read_deps = [Depends(require(Scope.READ))] if read_auth else []

    @router.put(
        "/v1/users/{user_id:path}/preferences",
        response_model=PreferencesAnswer,
        summary="Onboarding choices and overrides (mute a category, less like this, reset)",
        responses=_errors(401, 403, 409, 413, 422, 429, 503),
        dependencies=[Depends(require(Scope.EVENTS))],
    )
    async def put_preferences(
        user_id: UserId, body: PreferencesRequest, svc: Annotated[Services, Depends(services)]
    ) -> PreferencesAnswer:
        """Add or remove liked categories/items, muted categories and hidden items ("less like this").

        Takes effect on the next read: muted categories and hidden items are filtered out, liked ones
        boosted. `reset: true` first forgets the user's list and earlier choices (the worker also gets
        the record, to forget what it learned; no list from the user's earlier events is written again).
        Repeating a request is harmless. Then produced to the events topic as a `preferences` record
        keyed by `user_id`; 503 if Kafka does not confirm it (Redis has changed already; resend). 409
        (nothing stored) for a user without consent.
        """
        if body.empty:
            raise InvalidEventError([Problem("", "the request changes nothing")])
        stored = svc.pseudonyms.of(user_id)
        if not await admitted(svc, [stored]):
            raise RequestRejectedError(409, "the user has not consented to personalization: nothing stored")
        now = _now_ms()
        to_set, to_delete = changes(body, now)
        prefs = await svc.store.update_preferences(stored, to_set, to_delete, reset=body.reset)
        record = PreferencesRecord(
            event_id=f"prefs-{uuid.uuid4().hex}", user_id=stored, ts=now, **body.model_dump()
        )
        delivered = await produce_user_record(svc, record)
        if body.reset:
            await svc.store.fence_users({stored: delivered.offset}, svc.settings.tombstone_ttl_s)
        return _answer(user_id, prefs, record.event_id)

    @router.get(
        "/v1/users/{user_id:path}/preferences",
        response_model=PreferencesAnswer,
        summary="A user's current preferences",
        responses=_errors(*((401, 403, 422, 429, 503) if read_auth else (422, 503))),
        dependencies=read_deps,
    )
    async def get_preferences(
        user_id: UserId, svc: Annotated[Services, Depends(services)]
    ) -> PreferencesAnswer:
        """Liked categories and items, muted categories and hidden items, as serving applies them."""
        return _answer(user_id, await svc.store.read_preferences(svc.pseudonyms.of(user_id)), None)

    # The paths of a user's preferences, consent and erasure status name no other user: DELETE there is
    # no erasure.
    @router.delete("/v1/users/{user_id:path}/preferences", include_in_schema=False)
    @router.delete("/v1/users/{user_id:path}/consent", include_in_schema=False)
    @router.delete("/v1/users/{user_id:path}/erasure", include_in_schema=False)
    async def not_an_erasure() -> None:
        raise HTTPException(405, "Method Not Allowed", headers={"Allow": "GET, PUT"})

    @router.get(
        "/v1/users/{user_id:path}/erasure",
        response_model=ErasureAnswer,
        summary="Whether a user's erasure is done (a key with the admin scope)",
        responses=_errors(401, 403, 404, 422, 429, 503),
        dependencies=[Depends(require(Scope.ADMIN))],
    )
    async def erasure_status(user_id: UserId, svc: Annotated[Services, Depends(services)]) -> ErasureAnswer:
        """The user's latest erasure: `pending` (Redis done, the workers' state not yet) or `done` (the
        owner of the user's partition forgot the user, and every worker beating at the request that
        still beats forgot them in its model and quality state and rewrote its checkpoints), with when,
        by which key and what was removed. 404: none on record (never erased, or longer ago than
        `PERSONALIZE_TOMBSTONE_TTL_S`)."""
        live = await svc.store.workers_by_id()
        found = await erasures.status(
            svc.store.client, svc.settings.namespace, svc.pseudonyms.of(user_id), live.keys()
        )
        if found is None:
            raise HTTPException(404, "no erasure of this user on record")
        return ErasureAnswer(
            user_id=user_id, status=found.state, event_id=found.event_id, requested_ms=found.requested_ms,
            done_ms=found.done_ms, forgotten_ms=found.forgotten_ms, workers=found.workers,
            waiting=list(found.waiting), gone=list(found.gone), by=found.by, deleted_keys=found.deleted_keys,
            removed=[r for r in found.removed.split(",") if r],
        )  # fmt: skip

    @router.delete(
        "/v1/users/{user_id:path}",
        status_code=202,
        response_model=Erased,
        summary="Erase a user (a key with the admin scope)",
        responses=_errors(401, 403, 422, 429, 503),
    )
    async def erase_user(
        user_id: UserId,
        svc: Annotated[Services, Depends(services)],
        key: Annotated[ApiKey, Depends(require(Scope.ADMIN))],
    ) -> Erased:
        """Produce an `erasure` record to the events topic for the workers' state (202: that part
        follows; `GET .../erasure` says when it is done), then delete the user's keys in Redis (list,
        metadata, preferences, experiment membership; a consent grant, not a withdrawal) before
        answering, leaving a tombstone at the record's offset: a worker still holding the user's earlier
        events cannot write their list again (`PERSONALIZE_TOMBSTONE_TTL_S`). If Kafka does not confirm
        the record: the keys are deleted all the same, without a tombstone, and the answer is 503
        (resend). `engine.ingest.erase`, shared with `personalize forget`."""
        sets = user_sets(experiments, svc.settings.namespace)
        stored = svc.pseudonyms.of(user_id)
        done = await erase(svc.producer, svc.store, svc.settings, stored, by=key.name, experiment_sets=sets)
        return Erased(user_id=user_id, event_id=done.event_id, deleted_keys=done.deleted_keys)

    return router
