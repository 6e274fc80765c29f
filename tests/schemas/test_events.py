"""Tests for the event contract in `schemas.events`: round trips and precise validation problems."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import pydantic
import pytest

from schemas.errors import InvalidEventError, PersonalizeError, Problem
from schemas.events import (
    ID_PATTERN,
    SCHEMA_VERSION,
    Context,
    Event,
    EventType,
    ItemRecord,
    encode,
    parse_event,
    parse_item,
)

TS = 1_700_000_000_000


def _event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "click", "ts": TS}
    base.update(changes)
    return base


def _problems(raw: bytes | str | dict[str, Any]) -> list[Problem]:
    with pytest.raises(InvalidEventError) as info:
        parse_event(raw)
    return info.value.problems


def test_full_event_round_trips_through_encode_and_parse() -> None:
    event = Event(
        event_id="e1",
        user_id="u1",
        item_id="i1",
        type=EventType.RATING,
        value=4.5,
        ts=TS,
        context=Context(device="mobile", locale="en-US", region="US", surface="home"),
        decision_id="d1",
    )
    raw = encode(event)
    assert parse_event(raw) == event
    assert parse_event(raw.decode()) == event
    assert parse_event(orjson.loads(raw)) == event
    assert orjson.loads(raw)["v"] == SCHEMA_VERSION


def test_encode_omits_none_fields_and_defaults_survive() -> None:
    event = parse_event(orjson.dumps(_event()))
    decoded = orjson.loads(encode(event))
    assert "decision_id" not in decoded
    assert decoded["context"] == {}
    assert decoded["value"] == 1.0
    assert parse_event(encode(event)) == event


def test_item_round_trips_through_encode_and_parse() -> None:
    item = ItemRecord(
        item_id="i1",
        categories=("shoes", "sale"),
        tags=("red",),
        attributes={"price": 9.5, "brand": "x", "stock": 3, "new": True},
        available=False,
    )
    assert parse_item(encode(item)) == item
    assert parse_item(encode(item)).attributes["stock"] == 3
    assert parse_item(orjson.loads(encode(item))).available is False


def test_missing_field_is_named() -> None:
    raw = _event()
    del raw["item_id"]
    assert _problems(raw) == [Problem("item_id", "Field required", "missing")]


def test_unknown_type_lists_the_allowed_values() -> None:
    [problem] = _problems(_event(type="wave"))
    assert problem.field == "type"
    for kind in EventType:
        assert f"'{kind.value}'" in problem.message


def test_ts_in_seconds_gets_a_hint() -> None:
    [problem] = _problems(_event(ts=1_700_000_000))
    assert problem.field == "ts"
    assert problem.message.endswith("was it sent in seconds?")


def test_ts_after_2100_is_rejected() -> None:
    [problem] = _problems(_event(ts=5_000_000_000_000))
    assert problem == Problem("ts", "5000000000000 is after 2100 in epoch milliseconds")


def test_negative_value_is_rejected() -> None:
    assert _problems(_event(value=-1)) == [Problem("value", "value must not be negative for click, got -1.0")]


@pytest.mark.parametrize("value", [-0.5, 10.5])
def test_rating_out_of_range_is_rejected(value: float) -> None:
    [problem] = _problems(_event(type="rating", value=value))
    assert problem.message == f"a rating's value must be within 0..10, got {value}"


@pytest.mark.parametrize("value", [0.0, 10.0])
def test_rating_bounds_are_inclusive(value: float) -> None:
    assert parse_event(_event(type="rating", value=value)).value == value


def test_non_finite_value_is_rejected() -> None:
    assert _problems(_event(value=float("inf"))) == [Problem("value", "value must be a finite number")]


def test_extra_fields_are_rejected_at_top_level_and_in_context() -> None:
    assert _problems(_event(extra=1)) == [Problem("extra", "Extra inputs are not permitted", "extra")]
    nested = _event(context={"device": "mobile", "colour": "red"})
    assert _problems(nested) == [Problem("context.colour", "Extra inputs are not permitted", "extra")]


@pytest.mark.parametrize(("raw", "kind"), [(b"[1, 2]", "list"), (b'"x"', "str"), (b"42", "int")])
def test_non_object_json_is_rejected(raw: bytes, kind: str) -> None:
    assert _problems(raw) == [Problem("", f"expected a JSON object, got {kind}", "object")]


@pytest.mark.parametrize("raw", [b"\xff\xfe{}", b"{not json", b""])
def test_invalid_json_bytes_are_rejected(raw: bytes) -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_event(raw)
    [problem] = info.value.problems
    assert problem.field == ""
    assert problem.message.startswith("not valid JSON: ")
    assert info.value.event_id is None


def test_wrong_types_are_not_coerced() -> None:
    problems = _problems(_event(user_id=5, ts="1700000000000", decision_id=7))
    assert problems == [
        Problem("user_id", "Input should be a valid string", "type"),
        Problem("ts", "Input should be a valid integer", "type"),
        Problem("decision_id", "Input should be a valid string", "type"),
    ]
    [problem] = _problems(_event(ts=True))
    assert problem.field == "ts"


@pytest.mark.parametrize("value", ["3", True])
def test_value_of_the_wrong_type_is_rejected(value: object) -> None:
    [problem] = _problems(_event(value=value))
    assert problem.field == "value"


def test_empty_ids_are_rejected() -> None:
    problems = _problems(_event(event_id="", user_id="", item_id=""))
    assert [p.field for p in problems] == ["event_id", "user_id", "item_id"]
    assert {p.message for p in problems} == {"String should have at least 1 character"}


def test_unknown_schema_version_is_rejected() -> None:
    assert _problems(_event(v=2)) == [Problem("v", "Input should be 1")]


def test_all_problems_are_listed_together_with_the_event_id() -> None:
    raw = _event(event_id="e7", type="wave", ts=1_700_000_000, extra=True)
    del raw["user_id"]
    with pytest.raises(InvalidEventError) as info:
        parse_event(orjson.dumps(raw))
    error = info.value
    assert [p.field for p in error.problems] == ["user_id", "type", "ts", "extra"]
    assert error.event_id == "e7"
    assert str(error).startswith("invalid event e7: user_id: Field required; type: ")
    assert error.reason == "; ".join(str(p) for p in error.problems)
    assert isinstance(error, PersonalizeError)


def test_non_string_event_id_is_not_reported_as_the_event_id() -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_event(_event(event_id=12))
    assert info.value.event_id is None
    assert str(info.value).startswith("invalid event: event_id: ")


def test_item_problems_are_precise() -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_item({"item_id": "", "categories": "shoes", "available": "yes", "colour": 1})
    assert [p.field for p in info.value.problems] == ["item_id", "categories", "available", "colour"]
    with pytest.raises(InvalidEventError) as info:
        parse_item(b"[]")
    assert info.value.problems == [Problem("", "expected a JSON object, got list", "object")]


def test_models_are_frozen() -> None:
    event = parse_event(_event())
    with pytest.raises(ValueError):
        event.user_id = "u2"  # type: ignore[misc]


def test_the_id_pattern_is_pythons_rule_on_every_code_point() -> None:
    """pydantic-core checks ids and labels against `ID_PATTERN` in Rust; the rule it stands for is
    Python's: not blank (`str.strip`), no control characters. Both judge one character at a time, so
    agreeing on every code point, alone and beside a letter, is agreeing on every text."""
    checked = Annotated[str, pydantic.Field(pattern=ID_PATTERN)]
    adapter: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(checked)
    controls = frozenset(map(chr, [*range(32), 127]))

    def python(text: str) -> bool:
        return bool(text.strip()) and controls.isdisjoint(text)

    def rust(text: str) -> bool:
        try:
            adapter.validate_python(text)
        except pydantic.ValidationError:
            return False
        return True

    differ = [
        hex(point)
        for point in range(0x110000)
        if not 0xD800 <= point <= 0xDFFF
        for text in (chr(point), f"a{chr(point)}")
        if python(text) != rust(text)
    ]
    assert differ == []


@pytest.mark.parametrize(
    ("user_id", "message"),
    [(" \t", "must not be blank"), ("u\x00", "must not contain control characters"), ("", "at least 1")],
)
def test_a_bad_id_is_said_by_the_rule_it_breaks(user_id: str, message: str) -> None:
    raw = orjson.dumps({"event_id": "e1", "user_id": user_id, "item_id": "i", "type": "view", "ts": TS})
    with pytest.raises(InvalidEventError) as caught:
        parse_event(raw)
    [problem] = caught.value.problems
    assert problem.field == "user_id" and message in problem.message and problem.code == "value"
