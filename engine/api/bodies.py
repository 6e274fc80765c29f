"""Request and response bodies of the HTTP API as pydantic models, so the OpenAPI document is exact.

Events themselves are validated by `schemas.events.parse_event`, not here: these models only describe
what the API answers.
"""

from __future__ import annotations

__all__ = [
    "Accepted",
    "ErrorBody",
    "Health",
    "ItemScore",
    "ProblemBody",
    "RecommendationsBody",
    "error_code",
]

from http import HTTPStatus
from typing import Literal

from pydantic import BaseModel, Field

#: RFC 9110 names, spelled out because Python's HTTPStatus phrases changed between versions.
_CODES = {413: "content_too_large", 422: "unprocessable_content", 503: "service_unavailable"}


def error_code(status: int) -> str:
    """The ``error`` field of an answer with this status.

    >>> error_code(422), error_code(403)
    ('unprocessable_content', 'forbidden')
    """
    return _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


class ProblemBody(BaseModel):
    """One problem with the input: a dotted field path (prefixed by the event's index in a batch)."""

    field: str = Field(examples=["1.ts"])
    message: str = Field(examples=["Input should be 'view', 'click', ... or 'dismiss'"])


class ErrorBody(BaseModel):
    """Every error answer: a short code, a sentence, and for invalid input every problem found."""

    error: str = Field(examples=["unprocessable_content"])
    message: str
    problems: list[ProblemBody] = []


class Accepted(BaseModel):
    """Events validated and confirmed by Kafka (the worker learns from them shortly after), and those
    dropped because their user has not consented (never written)."""

    accepted: int = Field(ge=0)
    event_ids: list[str]
    dropped: list[str] = Field(
        default=[], description="ids of events dropped, their user has not consented (counted, never sent)"
    )


class ItemScore(BaseModel):
    """One recommended item, with why it is there (null reason fields: no reason is known)."""

    item_id: str
    score: float
    reason: str | None = Field(
        description="short human text; an item is named by its id (the engine knows no titles)",
        examples=["because you liked i42", "because you like Comedy", "popular in your region"],
    )
    reason_code: str | None = Field(
        description="machine-readable reason: `item`, `category`, `popular`, `well_rated`, "
        "`similar_users`, `exploring` (from the model); `pinned`, `promoted`, `trending` (added at serve "
        "time by pins, boosts and the trending fallback)",
        examples=["item", "category", "trending"],
    )
    anchor: str | None = Field(
        description="what the reason points at: the user's item (`item`), the category (`category`), "
        "the locale or language (`trending`); else null",
        examples=["i42", "Comedy", "en-GB"],
    )
    signals: list[str] = Field(
        description="the model's strongest contributing signals, strongest first: `sequence`, "
        "`cooccurrence`, `transitions`, `content`, `popularity`, `quality`, `affinity`",
        examples=[["cooccurrence", "sequence"]],
    )


class RecommendationsBody(BaseModel):
    """A user's list, best first, and where it came from."""

    user_id: str
    items: list[ItemScore]
    source: str = Field(
        description="`personalized`, `trending:<locale or language>`, `trending` (global) or `none`",
        examples=["personalized", "trending:en-GB", "trending", "none"],
    )
    updated_ms: int | None = Field(description="when the worker wrote a personalized list, epoch ms")
    model_version: str | None


class Health(BaseModel):
    """Whether this API process can reach Redis and Kafka (503 when either is unreachable)."""

    status: Literal["ok", "unavailable"]
    namespace: str
    redis: Literal["ok", "unavailable"]
    kafka: Literal["ok", "unavailable"]
