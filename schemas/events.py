"""Event contract v1: the clickstream events and catalog records apps send, and their validation.

Pure data and validation; no I/O. Every failure becomes an `InvalidEventError` listing each problem
with its field path, which is what the dead-letter topic and the HTTP API report back.
"""

from __future__ import annotations

__all__ = [
    "SCHEMA_VERSION",
    "Context",
    "Event",
    "EventType",
    "ID_PATTERN",
    "ItemRecord",
    "MAX_LABELS",
    "MAX_VALUE",
    "Version",
    "decode_object",
    "encode",
    "parse_event",
    "parse_events",
    "parse_item",
    "problems_of",
]

import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import orjson
import pydantic
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from schemas.errors import InvalidEventError, Problem

SCHEMA_VERSION = 1

#: Earliest and latest plausible event time in epoch milliseconds (1973 .. 2100); a value below the
#: floor is almost always seconds sent by mistake, which the error message says.
_TS_MIN_MS = 100_000_000_000
_TS_MAX_MS = 4_102_444_800_000

#: Largest ``value``: a weight or seconds of dwell beyond this would swamp (or overflow) the models'
#: decayed sums, as fuzzing the worker showed (1e308 turned popularity into inf, then NaN).
MAX_VALUE = 1e6

#: Every id and label: printable (no control characters) and not blank. pydantic-core checks it (in Rust:
#: its ``\s`` and Python's `str.isspace` agree on every code point outside the control characters,
#: which `tests/schemas/test_events.py` checks for all of them), so no Python runs per field.
ID_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def problems_of(errors: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """pydantic's ``errors()`` as the contract's problems; an id or label that breaks `ID_PATTERN` is
    said by the rule it breaks.

    >>> try:
    ...     Event(event_id=" ", user_id="u\\x00", item_id="i", type="view", ts=1_700_000_000_000)
    ... except pydantic.ValidationError as exc:
    ...     [str(p) for p in problems_of(exc.errors())]
    ['event_id: must not be blank', 'user_id: must not contain control characters']
    """
    problems = []
    for error in errors:
        problem = Problem.from_pydantic(error)
        text = error.get("input")
        if error["type"] == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == ID_PATTERN:
            blank = isinstance(text, str) and not text.strip()
            problem = Problem(
                problem.field, "must not be blank" if blank else "must not contain control characters"
            )
        problems.append(problem)
    return problems


def _integer_one(value: object) -> object:
    # Literal[1] alone takes True and 1.0 (equal to 1 in Python); JSON true or 1.0 is no version.
    if type(value) is not int:
        raise ValueError(f"must be the integer {SCHEMA_VERSION}")
    return value


#: The ``v`` field of every record: the schema version, exactly the integer 1.
Version = Annotated[Literal[1], BeforeValidator(_integer_one)]

Id = Annotated[StrictStr, Field(min_length=1, max_length=256, pattern=ID_PATTERN)]
Label = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]


class EventType(StrEnum):
    """What the user did with the item."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATING = "rating"
    DWELL = "dwell"
    IMPRESSION = "impression"
    DISMISS = "dismiss"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Context(_Record):
    """Where and how the event happened; every field optional."""

    device: Label | None = None
    locale: Label | None = None
    region: Label | None = None
    surface: Label | None = None
    #: The experiment and variant the user was assigned to (the HTTP API stamps them when configured).
    experiment: Label | None = None
    variant: Label | None = None


class Event(_Record):
    """One user-item interaction.

    ``value`` means: the rating for ``rating`` (0-10), seconds for ``dwell``, else a weight (default 1);
    never negative nor above `MAX_VALUE`.
    ``ts`` is epoch milliseconds.

    >>> e = Event(event_id="e1", user_id="u1", item_id="i9", type="click", ts=1_700_000_000_000)
    >>> e.type is EventType.CLICK, e.value
    (True, 1.0)
    """

    v: Version = 1
    event_id: Id
    user_id: Id
    item_id: Id
    type: EventType
    value: StrictFloat = 1.0
    ts: StrictInt
    context: Context = Context()
    decision_id: Id | None = None

    @pydantic.field_validator("ts")
    @classmethod
    def _ts_in_milliseconds(cls, ts: int) -> int:
        if ts < _TS_MIN_MS:
            raise ValueError(f"{ts} is before 1973 in epoch milliseconds; was it sent in seconds?")
        if ts > _TS_MAX_MS:
            raise ValueError(f"{ts} is after 2100 in epoch milliseconds")
        return ts

    @pydantic.field_validator("value")
    @classmethod
    def _value_fits_type(cls, value: float, info: pydantic.ValidationInfo) -> float:
        # A field validator (not a model one), so the problem names `value`; `type` is checked first.
        kind = info.data.get("type")
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        if kind is EventType.RATING and not 0.0 <= value <= 10.0:
            raise ValueError(f"a rating's value must be within 0..10, got {value}")
        if value > MAX_VALUE:
            raise ValueError(f"value must be at most {MAX_VALUE:g}, got {value:g}; scale it first")
        if value < 0.0:
            for_kind = f" for {kind.value}" if isinstance(kind, EventType) else ""
            raise ValueError(f"value must not be negative{for_kind}, got {value}")
        return value


#: Most entries in one of a catalog record's lists (categories, tags, regions, languages) and attributes:
#: a record is a description of one item, and a list of thousands would only grow the model's tables.
MAX_LABELS = 256
_Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
#: An attribute value; integers as JSON carries them (64-bit), numbers finite, text up to 4 KiB.
Attribute = (
    Annotated[StrictStr, Field(max_length=4096)]
    | StrictBool
    | _Int64
    | Annotated[float, Field(allow_inf_nan=False)]
)
_Labels = Annotated[tuple[Label, ...], Field(max_length=MAX_LABELS)]


class ItemRecord(_Record):
    """A catalog update: the item's content and whether it may be recommended.

    >>> ItemRecord(item_id="i1", categories=["shoes"]).available
    True
    """

    v: Version = 1
    item_id: Id
    categories: _Labels = ()
    tags: _Labels = ()
    attributes: dict[Label, Attribute] = Field(default_factory=dict, max_length=MAX_LABELS)
    available: StrictBool = True
    #: Regions (e.g. ``GB``) and languages (e.g. ``en``) the item may be shown in; None: everywhere, any.
    regions: _Labels | None = None
    languages: _Labels | None = None


_M = TypeVar("_M", bound=_Record)


def decode_object(raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The JSON object in ``raw`` (a dict passes through); `InvalidEventError` for anything else.

    >>> decode_object(b'{"a": 1}')
    {'a': 1}
    >>> decode_object(b"[1]")
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidEventError: invalid event: expected a JSON object, got list
    """
    if isinstance(raw, dict):
        return raw
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError([Problem("", f"not valid JSON: {exc}", "json")]) from None
    if not isinstance(obj, dict):
        raise InvalidEventError([Problem("", f"expected a JSON object, got {type(obj).__name__}", "object")])
    return obj


def _parse(raw: bytes | str | dict[str, Any], model: type[_M]) -> _M:
    obj = decode_object(raw)
    try:
        return model.model_validate(obj)
    except pydantic.ValidationError as exc:
        event_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        raise InvalidEventError(problems_of(exc.errors(include_url=False)), event_id=event_id) from None


def parse_event(raw: bytes | str | dict[str, Any]) -> Event:
    """Validate one event from JSON bytes (or an already decoded object).

    >>> raw = b'{"event_id":"e1","user_id":"u1","item_id":"i1","type":"view","ts":1700000000000}'
    >>> parse_event(raw).item_id
    'i1'
    >>> parse_event(b'{"event_id":"e2","user_id":"u1","item_id":"i1","type":"wave","ts":1700000000}')
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidEventError: invalid event e2: type: Input should be 'view', ...; ts: ...seconds?
    """
    return _parse(raw, Event)


def parse_events(raws: list[Any]) -> list[Event]:
    """Validate a batch of decoded events: all of them, or an error listing every problem of every one.

    Each problem's field starts with the event's index in the batch.

    >>> ok = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "view", "ts": 1700000000000}
    >>> [e.event_id for e in parse_events([ok, ok])]
    ['e1', 'e1']
    >>> parse_events([ok, {**ok, "user_id": " "}, 7])
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidEventError: invalid event: 1.user_id: must not be blank; 2: expected a JSON...
    """
    events: list[Event] = []
    problems: list[Problem] = []
    for index, raw in enumerate(raws):
        if not isinstance(raw, dict):
            problems.append(
                Problem(str(index), f"expected a JSON object, got {type(raw).__name__}", "object")
            )
            continue
        try:
            events.append(parse_event(raw))
        except InvalidEventError as exc:
            problems += [
                Problem(f"{index}.{p.field}" if p.field else str(index), p.message, p.code)
                for p in exc.problems
            ]
    if problems:
        raise InvalidEventError(problems)
    return events


def parse_item(raw: bytes | str | dict[str, Any]) -> ItemRecord:
    """Validate one catalog record.

    >>> parse_item({"item_id": "i1", "categories": ["a", "b"]}).categories
    ('a', 'b')
    """
    return _parse(raw, ItemRecord)


def encode(record: Event | ItemRecord) -> bytes:
    """The canonical JSON bytes of a record (fields left at None are omitted).

    >>> encode(ItemRecord(item_id="i1"))
    b'{"v":1,"item_id":"i1","categories":[],"tags":[],"attributes":{},"available":true}'
    """
    return orjson.dumps(record.model_dump(mode="json", exclude_none=True))
