"""User records contract v1: explicit preferences (onboarding and overrides), consent and erasure requests.

Pure data and validation; no I/O. They travel on the events topic keyed by ``user_id`` next to the
user's events, told apart from them by ``type``; failures are `InvalidEventError`s with problems.
"""

from __future__ import annotations

__all__ = [
    "MAX_PREFERENCE_IDS",
    "ConsentRecord",
    "ErasureRecord",
    "PreferencesRecord",
    "PreferencesRequest",
    "USER_RECORD_TYPES",
    "UserRecord",
    "admits",
    "encode_user_record",
    "is_user_record",
    "parse_user_record",
]

from typing import Annotated, Any, Literal

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from schemas.errors import InvalidEventError, Problem
from schemas.events import Id, Label, Version, decode_object, problems_of

#: Most ids in one list of a preferences request: onboarding screens show dozens, not thousands.
MAX_PREFERENCE_IDS = 200

_Ms = Annotated[StrictInt, Field(ge=100_000_000_000, le=4_102_444_800_000)]
_Ids = Annotated[tuple[Id, ...], Field(max_length=MAX_PREFERENCE_IDS)]
_Labels = Annotated[tuple[Label, ...], Field(max_length=MAX_PREFERENCE_IDS)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PreferencesRequest(_Record):
    """What ``PUT /v1/users/{user_id}/preferences`` takes: choices to add or remove, and a reset.

    Applying the same request twice gives the same state. ``reset`` forgets everything first (learned
    lists and earlier choices), then the rest of the request applies.

    >>> PreferencesRequest(muted_categories=["horror"], hidden_items=["i9"]).reset
    False
    """

    liked_categories: _Labels = ()
    liked_items: _Ids = ()
    muted_categories: _Labels = ()
    unmuted_categories: _Labels = ()
    #: "Less like this": never show these items again (until un-hidden).
    hidden_items: _Ids = ()
    unhidden_items: _Ids = ()
    reset: StrictBool = False

    @property
    def empty(self) -> bool:
        """True when the request changes nothing."""
        return not self.reset and not any(
            (
                self.liked_categories,
                self.liked_items,
                self.muted_categories,
                self.unmuted_categories,
                self.hidden_items,
                self.unhidden_items,
            )
        )


class PreferencesRecord(PreferencesRequest):
    """A preferences request as produced to the events topic, for the worker's models to learn.

    >>> r = PreferencesRecord(event_id="p-1", user_id="u7", ts=1_700_000_000_000, liked_items=["i1"])
    >>> encode_user_record(r)
    b'{"v":1,"type":"preferences","event_id":"p-1","user_id":"u7","ts":1700000000000,"liked_items":["i1"]}'
    """

    v: Version = 1
    type: Literal["preferences"] = "preferences"
    event_id: Id
    user_id: Id
    ts: _Ms


class ErasureRecord(_Record):
    """A request to forget a user everywhere (Redis is cleared by the API at once; the rest follows).

    >>> encode_user_record(ErasureRecord(event_id="x-1", user_id="u7", ts=1_700_000_000_000))
    b'{"v":1,"type":"erasure","event_id":"x-1","user_id":"u7","ts":1700000000000}'
    """

    v: Version = 1
    type: Literal["erasure"] = "erasure"
    event_id: Id
    user_id: Id
    ts: _Ms


class ConsentRecord(_Record):
    """A user granting or withdrawing consent to be personalized (learned from, their events kept).

    A withdrawal also forgets what was learned of the user, like an erasure, but the withdrawal itself
    is kept (so later events are dropped); see `admits`.

    >>> encode_user_record(ConsentRecord(event_id="c-1", user_id="u7", ts=1_700_000_000_000, granted=False))
    b'{"v":1,"type":"consent","event_id":"c-1","user_id":"u7","ts":1700000000000,"granted":false}'
    """

    v: Version = 1
    type: Literal["consent"] = "consent"
    event_id: Id
    user_id: Id
    ts: _Ms
    granted: StrictBool


def admits(consent: bool | None, required: bool) -> bool:
    """Whether a user's events may be learned and kept, given their consent state (None: never stated).

    With consent ``required`` (opt-in) only after a grant; otherwise (opt-out) unless withdrawn.

    >>> [admits(state, required=False) for state in (None, True, False)]
    [True, True, False]
    >>> [admits(state, required=True) for state in (None, True, False)]
    [False, True, False]
    """
    return consent is True or (consent is None and not required)


UserRecord = PreferencesRecord | ErasureRecord | ConsentRecord

_FIELD_ORDER = ("v", "type", "event_id", "user_id", "ts")

#: ``type`` values of the records about a user (not an item) that share the events topic.
USER_RECORD_TYPES = ("preferences", "erasure", "consent")


def is_user_record(obj: dict[str, Any]) -> bool:
    """Whether a decoded record on the events topic is a user record (by its ``type``), whatever the
    type holds (a list or an object is no user record type, and no error either).

    >>> is_user_record({"type": "erasure"}), is_user_record({"type": "click"}), is_user_record({"type": []})
    (True, False, False)
    """
    kind = obj.get("type")
    return isinstance(kind, str) and kind in USER_RECORD_TYPES


def encode_user_record(record: UserRecord) -> bytes:
    """Canonical JSON: the envelope first, then only the non-empty choices (``reset`` only if true);
    a consent record's ``granted`` always."""
    data = record.model_dump(mode="json")
    head = {name: data.pop(name) for name in _FIELD_ORDER}
    return orjson.dumps({**head, **{k: v for k, v in data.items() if v or k == "granted"}})


def parse_user_record(raw: bytes | str | dict[str, Any]) -> UserRecord:
    """Validate a preferences, consent or erasure record (chosen by its ``type``).

    >>> parse_user_record(b'{"type":"erasure","event_id":"x","user_id":"u","ts":1700000000000}').type
    'erasure'
    >>> parse_user_record({"type": "preferences", "event_id": "p", "user_id": "u", "ts": 1})
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidEventError: invalid event p: ts: Input should be greater than or equal to ...
    """
    obj = decode_object(raw)
    kinds: dict[str, type[UserRecord]] = {
        "preferences": PreferencesRecord,
        "erasure": ErasureRecord,
        "consent": ConsentRecord,
    }
    kind = obj.get("type")
    model = kinds.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InvalidEventError([Problem("type", "Input should be 'preferences', 'consent' or 'erasure'")])
    try:
        return model.model_validate(obj)
    except pydantic.ValidationError as exc:
        problems = problems_of(exc.errors(include_url=False))
        event_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        raise InvalidEventError(problems, event_id=event_id) from None
