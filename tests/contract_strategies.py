"""Hypothesis strategies for the record contract: good records, and bad ones that know what is wrong.

A bad record comes as a `Broken`: the JSON object (or raw bytes) and the field whose problem the parser
must name (``""`` for problems of the whole record, such as bytes that are not JSON). The fuzz tests of
`schemas`, `streams.pipeline` and `engine.api` share these, so each layer is fed the same hostile input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import strategies as st

from schemas.events import MAX_VALUE, EventType
from schemas.users import MAX_PREFERENCE_IDS

TS_MIN, TS_MAX = 100_000_000_000, 4_102_444_800_000
CONTROL = [chr(c) for c in (*range(32), 127)]

#: What the contract's ids and labels accept: no control characters, not blank, no lone surrogates.
_SAFE = st.characters(codec="utf-8", exclude_characters=CONTROL)


def texts(max_size: int) -> st.SearchStrategy[str]:
    """Valid ids (``max_size`` 256) or labels (128): printable, not blank; mostly short, sometimes exotic."""
    short = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_:/."), min_size=1, max_size=12)
    exotic = st.text(_SAFE, min_size=1, max_size=max_size)
    return st.one_of(short, exotic).filter(lambda s: bool(s.strip()))


ids = texts(256)
labels = texts(128)
timestamps = st.integers(TS_MIN, TS_MAX)
#: Any JSON value (what a wrong-typed field may hold).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@dataclass(frozen=True)
class Broken:
    """A record with one known defect: the parser must reject it with a problem naming ``field``."""

    record: dict[str, Any] | bytes
    field: str
    how: str

    def raw(self) -> bytes:
        return self.record if isinstance(self.record, bytes) else orjson.dumps(self.record)


def names(problems: list[Any], field: str) -> bool:
    """Whether some problem is about ``field`` (or a part of it); ``""`` matches any problem."""
    return any(p.field == field or p.field.startswith(f"{field}.") or not field for p in problems)


# Good records ---------------------------------------------------------------------------------------


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, str]:
    fields = ("device", "locale", "region", "surface", "experiment", "variant")
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields)))
    return {name: draw(labels) for name in chosen}


@st.composite
def events(draw: st.DrawFn, user_ids: st.SearchStrategy[str] = ids) -> dict[str, Any]:
    """A valid event as a JSON object, optional fields present or not."""
    kind = draw(st.sampled_from(list(EventType)))
    event: dict[str, Any] = {
        "event_id": draw(ids),
        "user_id": draw(user_ids),
        "item_id": draw(ids),
        "type": kind.value,
        "ts": draw(timestamps),
    }
    if draw(st.booleans()):
        high = 10.0 if kind is EventType.RATING else MAX_VALUE
        event["value"] = draw(st.floats(0.0, high) | st.integers(0, int(high)).map(float))
    if draw(st.booleans()):
        event["context"] = draw(contexts())
    if draw(st.booleans()):
        event["decision_id"] = draw(ids)
    if draw(st.booleans()):
        event["v"] = 1
    return event


attribute_values = (
    st.text(max_size=64)
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
)


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    """A valid catalog record as a JSON object."""
    item: dict[str, Any] = {"item_id": draw(ids)}
    for name in ("categories", "tags"):
        if draw(st.booleans()):
            item[name] = draw(st.lists(labels, max_size=8))
    if draw(st.booleans()):
        item["attributes"] = draw(st.dictionaries(labels, attribute_values, max_size=6))
    if draw(st.booleans()):
        item["available"] = draw(st.booleans())
    for name in ("regions", "languages"):
        if draw(st.booleans()):
            item[name] = draw(st.lists(labels, max_size=5) | st.none())
    return item


@st.composite
def preferences(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ``preferences`` user record."""
    record: dict[str, Any] = {
        "type": "preferences",
        "event_id": draw(ids),
        "user_id": draw(ids),
        "ts": draw(timestamps),
    }
    for name in ("liked_categories", "muted_categories", "unmuted_categories"):
        if draw(st.booleans()):
            record[name] = draw(st.lists(labels, max_size=5))
    for name in ("liked_items", "hidden_items", "unhidden_items"):
        if draw(st.booleans()):
            record[name] = draw(st.lists(ids, max_size=5))
    if draw(st.booleans()):
        record["reset"] = draw(st.booleans())
    return record


# Bad records ----------------------------------------------------------------------------------------

_ID_FIELDS = ("event_id", "user_id", "item_id")
_REQUIRED = (*_ID_FIELDS, "type", "ts")
_EVENT_FIELDS = {*_REQUIRED, "value", "context", "decision_id", "v"}
_CONTEXT_FIELDS = {"device", "locale", "region", "surface", "experiment", "variant"}


def _not_a_string(value: Any) -> bool:
    return not isinstance(value, str)


def _not_an_int(value: Any) -> bool:
    return not isinstance(value, int) or isinstance(value, bool)


def _not_a_number(value: Any) -> bool:
    return not isinstance(value, int | float) or isinstance(value, bool)


def _bad_strings(max_size: int) -> st.SearchStrategy[tuple[str, str]]:
    """(how, text): too long, blank, or holding a control character."""
    long = st.text(_SAFE, min_size=max_size + 1, max_size=max_size * 20).filter(lambda s: bool(s.strip()))
    blank = st.text(st.sampled_from(" \u00a0\u2003\u3000"), min_size=1, max_size=5)
    control = st.tuples(st.text(_SAFE, max_size=10), st.sampled_from(CONTROL), st.text(_SAFE, max_size=10))
    return st.one_of(
        long.map(lambda s: ("huge string", s)),
        blank.map(lambda s: ("blank string", s)),
        control.map(lambda t: ("control character", "".join(t))),
        st.just(("empty string", "")),
    )


def _missing(draw: st.DrawFn, event: dict[str, Any]) -> str:
    field = draw(st.sampled_from(_REQUIRED))
    del event[field]
    return field


def _extra(draw: st.DrawFn, event: dict[str, Any]) -> str:
    field = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in _EVENT_FIELDS))
    event[field] = draw(json_values)
    return field


def _extra_in_context(draw: st.DrawFn, event: dict[str, Any]) -> str:
    key = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in _CONTEXT_FIELDS))
    event["context"] = {**event.get("context", {}), key: draw(json_values)}
    return f"context.{key}"


def _wrong_type(draw: st.DrawFn, event: dict[str, Any]) -> str:
    field = draw(st.sampled_from([*_ID_FIELDS, "type", "ts", "value"]))
    wrong = {
        "ts": json_values.filter(_not_an_int),
        "value": json_values.filter(_not_a_number),
    }.get(field, json_values.filter(_not_a_string))
    event[field] = draw(wrong)
    return field


def _bad_string(draw: st.DrawFn, event: dict[str, Any]) -> str:
    field = draw(st.sampled_from([*_ID_FIELDS, "decision_id", "context.device", "context.locale"]))
    _what, text = draw(_bad_strings(128 if field.startswith("context") else 256))
    if field.startswith("context."):
        event["context"] = {**event.get("context", {}), field.split(".")[1]: text}
    else:
        event[field] = text
    return field


def _far_timestamp(draw: st.DrawFn, event: dict[str, Any]) -> str:
    event["ts"] = draw(st.integers(-(2**63), TS_MIN - 1) | st.integers(TS_MAX + 1, 2**63 - 1))
    return "ts"


def _bad_value(draw: st.DrawFn, event: dict[str, Any]) -> str:
    if event["type"] == "rating" and draw(st.booleans()):
        event["value"] = draw(st.floats(10.0, exclude_min=True, allow_infinity=False))
    elif draw(st.booleans()):
        event["value"] = draw(st.floats(MAX_VALUE, exclude_min=True, allow_infinity=False))
    else:
        event["value"] = draw(st.floats(max_value=-1e-300, allow_infinity=False))
    return "value"


def _unknown_type(draw: st.DrawFn, event: dict[str, Any]) -> str:
    event["type"] = draw(st.text(max_size=20).filter(lambda t: t not in {k.value for k in EventType}))
    return "type"


def _bad_version(draw: st.DrawFn, event: dict[str, Any]) -> str:
    event["v"] = draw(json_values.filter(lambda v: not (type(v) is int and v == 1)))
    return "v"


def _context_not_an_object(draw: st.DrawFn, event: dict[str, Any]) -> str:
    event["context"] = draw(json_values.filter(lambda v: not isinstance(v, dict) and v is not None))
    return "context"


_EVENT_DEFECTS = {
    "missing": _missing,
    "extra": _extra,
    "extra in context": _extra_in_context,
    "wrong type": _wrong_type,
    "bad string": _bad_string,
    "far timestamp": _far_timestamp,
    "bad value": _bad_value,
    "unknown type": _unknown_type,
    "bad version": _bad_version,
    "context not an object": _context_not_an_object,
}


@st.composite
def broken_events(draw: st.DrawFn) -> Broken:
    """A valid event with exactly one defect, and the field it is in."""
    event = draw(events())
    how = draw(st.sampled_from(sorted(_EVENT_DEFECTS)))
    return Broken(event, _EVENT_DEFECTS[how](draw, event), how)


@st.composite
def non_finite_events(draw: st.DrawFn) -> Broken:
    """NaN or an infinity where a number goes: only a decoded object can carry one (JSON has none)."""
    event = draw(events())
    event["value"] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return Broken(event, "value", "non-finite value")


@st.composite
def broken_bytes(draw: st.DrawFn) -> Broken:
    """Bytes that are no JSON object: invalid UTF-8 inside a good event, cut JSON, non-finite literals,
    other JSON values, or noise."""
    good = orjson.dumps(draw(events()))
    how = draw(st.sampled_from(["invalid utf-8", "truncated", "literal", "not an object", "noise"]))
    if how == "invalid utf-8":
        at = draw(st.integers(0, len(good)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]))
        return Broken(good[:at] + bad + good[at:], "", how)
    if how == "truncated":
        return Broken(good[: draw(st.integers(0, len(good) - 1))], "", how)
    if how == "literal":
        literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"]))
        return Broken(good.replace(b'"ts":', b'"ts":' + literal + b',"_":', 1), "", how)
    if how == "not an object":
        other = draw(json_values.filter(lambda v: not isinstance(v, dict)))
        return Broken(orjson.dumps(other), "", how)
    noise = draw(st.binary(max_size=200).filter(lambda b: not b.strip().startswith(b"{")))
    return Broken(noise, "", how)


@st.composite
def broken_items(draw: st.DrawFn) -> Broken:
    """A valid catalog record with one defect: oversized lists, nested attributes, wrong types..."""
    item = draw(items())
    how = draw(
        st.sampled_from(
            [
                "missing",
                "extra",
                "oversized list",
                "wrong type",
                "bad label",
                "nested attribute",
                "oversized attributes",
            ]
        )
    )
    if how == "missing":
        del item["item_id"]
        field = "item_id"
    elif how == "extra":
        field = draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in _ITEM_FIELDS))
        item[field] = draw(json_values)
    elif how == "oversized list":
        field = draw(st.sampled_from(["categories", "tags", "regions", "languages"]))
        item[field] = [f"x{n}" for n in range(draw(st.integers(257, 5_000)))]
    elif how == "wrong type":
        field = draw(st.sampled_from(["item_id", "categories", "available", "attributes"]))
        wrong = {
            "categories": json_values.filter(lambda v: not isinstance(v, list)),
            "available": json_values.filter(lambda v: not isinstance(v, bool)),
            "attributes": json_values.filter(lambda v: not isinstance(v, dict)),
        }.get(field, json_values.filter(_not_a_string))
        item[field] = draw(wrong)
    elif how == "bad label":
        field = draw(st.sampled_from(["categories", "tags"]))
        _what, text = draw(_bad_strings(128))
        item[field] = [*item.get(field, []), text]
    elif how == "nested attribute":
        field = "attributes"
        item["attributes"] = {
            "a": draw(st.lists(json_values, max_size=3) | st.dictionaries(ids, json_values))
        }
    else:
        field = "attributes"
        item["attributes"] = {f"a{n}": n for n in range(draw(st.integers(257, 2_000)))}
    return Broken(item, field, how)


_ITEM_FIELDS = {"v", "item_id", "categories", "tags", "attributes", "available", "regions", "languages"}


@st.composite
def broken_preferences(draw: st.DrawFn) -> Broken:
    """A valid preferences record with one defect."""
    record = draw(preferences())
    how = draw(st.sampled_from(["too many ids", "wrong type", "missing", "unknown record type"]))
    if how == "too many ids":
        field = draw(st.sampled_from(["liked_items", "hidden_items", "liked_categories"]))
        record[field] = [f"x{n}" for n in range(MAX_PREFERENCE_IDS + 1, MAX_PREFERENCE_IDS * 3)]
    elif how == "wrong type":
        field = draw(st.sampled_from(["reset", "liked_items", "ts"]))
        record[field] = draw(json_values.filter(lambda v: not isinstance(v, bool | list | int)))
    elif how == "missing":
        field = draw(st.sampled_from(["event_id", "user_id", "ts"]))
        del record[field]
    else:
        field = "type"
        record["type"] = draw(st.text(max_size=12).filter(lambda t: t not in {"preferences", "erasure"}))
    return Broken(record, field, how)


@st.composite
def consents(draw: st.DrawFn, user_ids: st.SearchStrategy[str] = ids) -> dict[str, Any]:
    """A valid ``consent`` user record."""
    return {
        "type": "consent",
        "event_id": draw(ids),
        "user_id": draw(user_ids),
        "ts": draw(timestamps),
        "granted": draw(st.booleans()),
    }


@st.composite
def broken_consents(draw: st.DrawFn) -> Broken:
    """A valid consent record with one defect: ``granted`` missing or not a boolean, or an extra field."""
    record = draw(consents())
    how = draw(st.sampled_from(["missing", "wrong type", "extra"]))
    if how == "missing":
        del record["granted"]
        return Broken(record, "granted", how)
    if how == "wrong type":
        record["granted"] = draw(json_values.filter(lambda v: not isinstance(v, bool)))
        return Broken(record, "granted", how)
    record["reason"] = draw(json_values)
    return Broken(record, "reason", how)
