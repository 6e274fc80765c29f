"""The event contract as OpenAPI components, so ``/openapi.json`` describes ``POST /v1/events`` exactly.

Events are validated by `schemas.events.parse_event` (not by FastAPI), so their JSON schema is added to
the document here, with the rules the validators enforce written out as schema keywords.
"""

from __future__ import annotations

__all__ = ["ID_PATTERN", "event_components", "events_request_body"]

from typing import Any

from schemas.events import MAX_VALUE, Event

#: Not blank and no control characters: what the contract's id and label validators accept.
ID_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"

_EVENT_DESCRIPTION = (
    "One user-item interaction (event contract v1). `ts` is epoch milliseconds; `value` is the rating "
    "(0-10) for `rating`, seconds for `dwell`, else a weight. Unknown fields are rejected."
)


def _string_rules(schema: dict[str, Any]) -> None:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string":
            option["pattern"] = ID_PATTERN


def event_components() -> dict[str, dict[str, Any]]:
    """JSON schemas of `Event` and the models it refers to, keyed by component name.

    >>> components = event_components()
    >>> sorted(components), components["Event"]["properties"]["ts"]["minimum"]
    (['Context', 'Event', 'EventType'], 100000000000)
    """
    event = Event.model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, dict[str, Any]] = event.pop("$defs")
    event["description"] = _EVENT_DESCRIPTION
    props = event["properties"]
    for name in ("event_id", "user_id", "item_id", "decision_id"):
        _string_rules(props[name])
    props["ts"].update(minimum=100_000_000_000, maximum=4_102_444_800_000)
    props["value"].update(minimum=0, maximum=MAX_VALUE)
    context = components["Context"]
    context["description"] = "Where and how the event happened; every field optional."
    for prop in context["properties"].values():
        _string_rules(prop)
    components["Event"] = event
    return components


def events_request_body(max_batch: int) -> dict[str, Any]:
    """The ``requestBody`` of ``POST /v1/events``: one event, or an array of 1..max_batch events."""
    ref = {"$ref": "#/components/schemas/Event"}
    batch = {"type": "array", "items": ref, "minItems": 1, "maxItems": max_batch}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [ref, batch]},
                "example": {
                    "event_id": "e-1f3a",
                    "user_id": "u7",
                    "item_id": "i42",
                    "type": "click",
                    "ts": 1_700_000_000_000,
                    "context": {"locale": "en-GB", "surface": "home"},
                },
            }
        },
    }
