"""``POST /v1/events``: validate one event or a batch against the contract, then produce it to Kafka.

All or nothing: a batch is validated in full before anything is sent, and the answer is given only
once Kafka confirmed every record. A retry after a 503 is safe: the worker drops known event_ids. The
edge's privacy happens here too: user ids pseudonymized, events of users without consent dropped.
"""

from __future__ import annotations

__all__ = ["events_router", "parse_batch"]

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request

from engine.api.auth import Scope, require
from engine.api.bodies import Accepted, ErrorBody
from engine.api.consent import admitted_events
from engine.api.openapi import events_request_body
from engine.api.services import Services, services
from engine.ingest.produce import send_event
from engine.serving.experiments import Experiments
from engine.serving.ranker import stamp_events
from schemas.errors import InvalidEventError, Problem, ServiceUnavailableError
from schemas.events import Event, parse_event, parse_events


def parse_batch(body: bytes, max_batch: int) -> list[Event]:
    """Events from a JSON object or array; raises listing every problem of every event.

    In a batch each problem's field starts with the event's index.

    >>> [e.event_id for e in parse_batch(b'{"event_id":"e1","user_id":"u","item_id":"i",'
    ...                                   b'"type":"view","ts":1700000000000}', 10)]
    ['e1']
    >>> parse_batch(b'[{"event_id":"e1"}, 7]', 10)
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidEventError: invalid event: 0.user_id: Field required; ...; 1: expected a JSON...
    """
    try:
        decoded: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError([Problem("", f"the body is not valid JSON: {exc}")]) from None
    if isinstance(decoded, dict):
        return [parse_event(decoded)]
    if not isinstance(decoded, list):
        raise InvalidEventError([Problem("", "expected an event object or an array of events")])
    if not decoded:
        raise InvalidEventError([Problem("", "an empty batch: send at least one event")])
    if len(decoded) > max_batch:
        raise InvalidEventError([Problem("", f"{len(decoded)} events in one batch; at most {max_batch}")])
    return parse_events(decoded)


async def _deliver(svc: Services, events: list[Event]) -> None:
    timeout = svc.settings.api_timeout_s
    futures = [send_event(svc.producer, svc.settings, event) for event in events]
    try:
        outcomes = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), timeout + 1.0)
    except TimeoutError:
        raise ServiceUnavailableError("kafka", svc.settings.bootstrap, timeout) from None
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if failed:
        raise ServiceUnavailableError("kafka", svc.settings.bootstrap, timeout) from failed[0]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def events_router(max_batch: int, experiments: Experiments | None = None) -> APIRouter:
    """The events route; its documented body carries this deployment's batch limit.

    With ``experiments``, each event's context gets its user's experiment and variant before it is sent.
    """
    router = APIRouter(tags=["events"])

    @router.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        summary="Send one event or a batch",
        responses=_errors(401, 403, 413, 422, 429, 503),
        openapi_extra={"requestBody": events_request_body(max_batch)},
        dependencies=[Depends(require(Scope.EVENTS))],
    )
    async def post_events(request: Request, svc: Annotated[Services, Depends(services)]) -> Accepted:
        """Validate against the event contract v1 and produce to Kafka keyed by `user_id`.

        Answers 202 once Kafka confirmed every event. An invalid event anywhere in a batch means 422
        listing every problem, and nothing is written. Events of users without consent are dropped
        (listed in `dropped`, counted, never written); with PERSONALIZE_PSEUDONYM_KEY set, Kafka gets
        each event with its user id pseudonymized.
        """
        try:
            events = parse_batch(await request.body(), max_batch)
        except InvalidEventError:
            svc.metrics.api_events.labels(outcome="rejected").inc()
            raise
        if svc.pseudonyms.enabled:
            events = [e.model_copy(update={"user_id": svc.pseudonyms.of(e.user_id)}) for e in events]
        events, dropped = await admitted_events(svc, events)
        if experiments is not None and experiments.experiments:
            events = stamp_events(events, experiments)
        if events:
            await _deliver(svc, events)
        svc.metrics.api_events.labels(outcome="accepted").inc(len(events))
        svc.metrics.api_events.labels(outcome="no_consent").inc(len(dropped))
        return Accepted(
            accepted=len(events),
            event_ids=[e.event_id for e in events],
            dropped=[e.event_id for e in dropped],
        )

    return router
