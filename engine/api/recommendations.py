"""``GET /v1/recommendations/{user_id}``: a user's list from Redis, or trending when there is none.

Reads only; one Redis round trip for a known user. The fallback order lives in `engine.serving`.
"""

from __future__ import annotations

__all__ = ["recommendations_router"]

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response

from engine.api.auth import require_key
from engine.api.bodies import ErrorBody, RecommendationsBody
from engine.api.openapi import ID_PATTERN
from engine.api.services import Services, services
from engine.serving import recommend

UserId = Annotated[
    str,
    Path(min_length=1, max_length=256, pattern=ID_PATTERN, description="The user (may contain `/`)."),
]
Label = Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)]


def recommendations_router(read_auth: bool) -> APIRouter:
    """The recommendations route, behind the API key check when reads need one."""
    router = APIRouter(tags=["recommendations"], dependencies=[Depends(require_key)] if read_auth else [])
    statuses = (401, 403, 422, 503) if read_auth else (422, 503)

    @router.get(
        "/v1/recommendations/{user_id:path}",
        response_model=RecommendationsBody,
        summary="A user's recommendations",
        responses={status: {"model": ErrorBody} for status in statuses},
    )
    async def get_recommendations(
        user_id: UserId,
        svc: Annotated[Services, Depends(services)],
        n: Annotated[int, Query(ge=1, le=1000, description="How many items.")] = 10,
        surface: Label = None,
        locale: Label = None,
    ) -> Response:
        """The user's current top-n, best first, as the worker last wrote it.

        A user without a list gets trending items of `locale` (then of its language), then global
        trending, then an empty list; `source` says which. `surface` is accepted and not used yet.
        """
        served = await recommend(svc.store, user_id, n, locale)
        svc.metrics.served.labels(source="trending_locale" if ":" in served.source else served.source).inc()
        # Serialised here rather than through the response model: this is the hot read path.
        return Response(orjson.dumps(served.to_json()), media_type="application/json")

    return router
