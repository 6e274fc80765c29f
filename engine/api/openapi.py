"""The event contract as OpenAPI components, so ``/openapi.json`` describes ``POST /v1/events`` exactly;
and the links between operations (a user's consent, preferences, list and erasure; a decision's reward).

Events are validated by `schemas.events.parse_event` (not by FastAPI), so their JSON schema is added to
the document here, with the rules the validators enforce written out as schema keywords. The links let
clients (and schemathesis' stateful phase) follow one user or one decision from call to call.
"""

from __future__ import annotations

__all__ = ["ID_PATTERN", "LINKS", "add_links", "event_components", "events_request_body"]

from typing import Any

from schemas.events import ID_PATTERN, MAX_VALUE, Event

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


_USER = {"user_id": "$request.path.user_id"}
_RANKED = {"decision_id": "$response.body#/decision_id", "reward": 1}

#: (method, path, status) of an answer -> link name -> (method, path of the next call, parameters or body).
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, Any]]]] = {
    ("put", "/v1/users/{user_id}/consent", "200"): {
        "ReadConsent": ("get", "/v1/users/{user_id}/consent", _USER),
        "SetPreferences": ("put", "/v1/users/{user_id}/preferences", _USER),
        "ReadRecommendations": ("get", "/v1/recommendations/{user_id}", _USER),
        "Erase": ("delete", "/v1/users/{user_id}", _USER),
    },
    ("put", "/v1/users/{user_id}/preferences", "200"): {
        "ReadPreferences": ("get", "/v1/users/{user_id}/preferences", _USER),
        "ReadRecommendations": ("get", "/v1/recommendations/{user_id}", _USER),
        "SetConsent": ("put", "/v1/users/{user_id}/consent", _USER),
        "Erase": ("delete", "/v1/users/{user_id}", _USER),
    },
    ("delete", "/v1/users/{user_id}", "202"): {
        "ReadPreferences": ("get", "/v1/users/{user_id}/preferences", _USER),
        "ReadConsent": ("get", "/v1/users/{user_id}/consent", _USER),
        "SetPreferences": ("put", "/v1/users/{user_id}/preferences", _USER),
    },
    ("post", "/v1/rank", "200"): {"Reward": ("post", "/v1/reward", {"requestBody": _RANKED})},
}


def _pointer(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """Add `LINKS` to the answers of a generated OpenAPI ``document`` (operations it lacks are skipped).

    >>> doc = {"paths": {"/v1/rank": {"post": {"responses": {"200": {}}}}, "/v1/reward": {"post": {}}}}
    >>> add_links(doc)["paths"]["/v1/rank"]["post"]["responses"]["200"]["links"]["Reward"]["operationRef"]
    '#/paths/~1v1~1reward/post'
    """
    paths = document.get("paths", {})
    for (method, path, status), links in LINKS.items():
        answer = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if answer is None:
            continue
        for name, (next_method, next_path, how) in links.items():
            if next_method not in paths.get(next_path, {}):
                continue
            link: dict[str, Any] = {"operationRef": f"#/paths/{_pointer(next_path)}/{next_method}"}
            link.update(how if "requestBody" in how else {"parameters": how})
            answer.setdefault("links", {})[name] = link
    return document
