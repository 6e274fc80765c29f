"""``GET /v1/recommendations/{user_id}``: a user's list from Redis, or trending when there is none.

Reads only; one Redis round trip for a known user. The fallback order lives in `engine.serving.recommend`.
"""

from __future__ import annotations

__all__ = ["ServingState", "recommendations_router"]

import dataclasses
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Query, Response

from engine.api.auth import Scope, require
from engine.api.bodies import ErrorBody, RecommendationsBody
from engine.api.openapi import ID_PATTERN
from engine.api.services import Services, services
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.serving.coverage import Coverage
from engine.serving.recommend import Served, ServingPolicy, recommend
from engine.serving.rules_file import RulesSource
from engine.store.item_cache import ItemCache

UserId = Annotated[
    str,
    Path(min_length=1, max_length=256, pattern=ID_PATTERN, description="The user (may contain `/`)."),
]
Label = Annotated[str | None, Query(min_length=1, max_length=128, pattern=ID_PATTERN)]


@dataclass(frozen=True, slots=True)
class ServingState:
    """What the route keeps per process: the (hot-reloaded) rules; and per tenant (namespace) the coverage
    counter and the items' metadata (see `ItemCache`: a change to an item reaches the answers within
    seconds), so no tenant's catalog or coverage mixes with another's."""

    settings: Settings
    rules: RulesSource
    #: namespace -> (coverage, item cache), made at the tenant's first read.
    tenants: dict[str, tuple[Coverage, ItemCache]] = dataclasses.field(default_factory=dict)

    def of(self, namespace: str) -> tuple[Coverage, ItemCache]:
        """The tenant's coverage counter and item cache."""
        found = self.tenants.get(namespace)
        if found is None:
            found = self.tenants[namespace] = (Coverage(self.settings.coverage_window_hours), ItemCache())
        return found

    @classmethod
    def create(cls, settings: Settings, metrics: Metrics) -> ServingState:
        """Reads the rules file now: an API does not start with rules it cannot use (`DataFormatError`)."""

        def reloaded(outcome: str) -> None:
            metrics.api_rules_reloads.labels(outcome=outcome).inc()

        rules = RulesSource(settings.rules_file, on_reload=reloaded)
        rules.load()
        return cls(settings, rules)

    async def policy(self, namespace: str) -> ServingPolicy:
        return ServingPolicy(
            await self.rules.current(),
            self.settings.diversity_strength,
            self.settings.serve_candidates_factor,
            self.of(namespace)[1],
        )

    async def answer(
        self,
        svc: Services,
        user_id: str,
        n: int,
        surface: str | None = None,
        locale: str | None = None,
        region: str | None = None,
    ) -> bytes:
        """The JSON body of a 200 answer, with the request counted in the metrics: what the FastAPI route
        and the lean path (`engine.api.lean`) both send."""
        policy = await self.policy(svc.settings.namespace)
        stored = svc.pseudonyms.of(user_id)
        served = await recommend(svc.store, stored, n, locale, surface=surface, region=region, policy=policy)
        if stored != user_id:
            served = dataclasses.replace(served, user_id=user_id)  # answered as the caller named the user
        svc.metrics.api_served.labels(
            source="trending_locale" if ":" in served.source else served.source
        ).inc()
        await self.observe(served, svc)
        # Serialised here rather than through the response model: this is the hot read path.
        return orjson.dumps(served.to_json())

    async def observe(self, served: Served, svc: Services) -> None:
        """Diversity of this list; coverage counted in Redis at most once a second (see `Coverage`)."""
        if served.diversity is not None:
            svc.metrics.api_diversity.observe(served.diversity)
        coverage = self.of(svc.settings.namespace)[0]
        coverage.observe(item for item, _ in served.items)
        distinct = await coverage.maybe_flush(svc.store)
        # The gauge is the API's own namespace's (the metrics are the process's, not per tenant).
        if distinct is not None and svc.settings.namespace == self.settings.namespace:
            svc.metrics.api_coverage.set(distinct)


def recommendations_router(read_auth: bool, state: ServingState) -> APIRouter:
    """The recommendations route, behind the API key check when reads need one."""
    deps = [Depends(require(Scope.READ))] if read_auth else []
    router = APIRouter(tags=["recommendations"], dependencies=deps)
    # 404: a user id with a line break never reaches the route (the path does not match).
    statuses = (401, 403, 404, 422, 429, 503) if read_auth else (404, 422, 503)

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
        surface: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=128,
                pattern=ID_PATTERN,
                description="Whose rules apply (the rules file's surfaces).",
            ),
        ] = None,
        locale: Label = None,
        region: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=128,
                pattern=ID_PATTERN,
                description="Region for item limits; default: the locale's.",
            ),
        ] = None,
    ) -> Response:
        """The user's top-n, best first: the worker's list after the surface's rules (filter, boost, pin,
        bury), diversity and the user's preferences (muted categories, hidden items).

        A user without a list (or whose list the rules empty) gets trending items of `locale` (then of its
        language), then global trending, then an empty list; `source` says which.
        """
        body = await state.answer(svc, user_id, n, surface, locale, region)
        return Response(body, media_type="application/json")

    return router
