"""Property-based fuzzing of the record parsers: every input is accepted or rejected with its reasons.

No input may raise anything but `InvalidEventError`, every rejection lists at least one problem naming
the field at fault, every accepted record encodes to JSON that parses back to the same record.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st

from schemas.decisions import parse_decision, parse_reward
from schemas.errors import InvalidEventError, Problem
from schemas.events import encode, parse_event, parse_events, parse_item
from schemas.users import encode_user_record, parse_user_record
from tests.contract_strategies import (
    Broken,
    attribute_values,
    broken_bytes,
    broken_consents,
    broken_events,
    broken_items,
    broken_preferences,
    consents,
    events,
    items,
    json_values,
    names,
    non_finite_events,
    preferences,
)


def _rejected(parse: Any, raw: Any) -> list[Problem]:
    with pytest.raises(InvalidEventError) as info:
        parse(raw)
    problems = info.value.problems
    assert problems and all(p.message for p in problems)
    return problems


@given(events())
def test_every_good_event_is_accepted_and_round_trips(obj: dict[str, Any]) -> None:
    event = parse_event(orjson.dumps(obj))
    assert parse_event(encode(event)) == event == parse_event(obj)


_GOOD = {"event_id": "e", "user_id": "u", "item_id": "i", "type": "view", "ts": 100_000_000_000}


@given(broken_events())
@example(Broken({**_GOOD, "v": True}, "v", "bad version"))  # once accepted: True == 1 in Python
@example(Broken({**_GOOD, "v": 1.0}, "v", "bad version"))
def test_every_broken_event_is_rejected_naming_its_field(broken: Broken) -> None:
    note(f"{broken.how}: {broken.field}")
    problems = _rejected(parse_event, broken.raw())
    assert names(problems, broken.field), problems


@given(non_finite_events())
def test_nan_and_infinities_in_decoded_events_are_rejected(broken: Broken) -> None:
    assert names(_rejected(parse_event, broken.record), "value")


@given(broken_bytes())
def test_bytes_that_are_no_json_object_are_rejected_as_such(broken: Broken) -> None:
    note(broken.how)
    [problem] = _rejected(parse_event, broken.raw())
    assert problem.code in ("json", "object") and problem.field == ""


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_any_bytes_or_text_are_accepted_or_rejected_with_reasons(raw: bytes | str) -> None:
    for parse in (parse_event, parse_item, parse_user_record, parse_reward, parse_decision):
        try:
            parse(raw)
        except InvalidEventError as exc:
            assert exc.problems and all(p.message for p in exc.problems)


_FIELDS = [
    "v",
    "type",
    "event_id",
    "user_id",
    "item_id",
    "ts",
    "value",
    "context",
    "decision_id",
    "reward",
    "item_id",
    "categories",
    "attributes",
    "liked_items",
    "reset",
    "actions",
    "chosen",
    "policy",
]


@given(st.dictionaries(st.sampled_from(_FIELDS), json_values, max_size=8))
@example({"type": []})  # unhashable: once a TypeError out of the user records' dispatch on `type`
def test_any_object_of_known_fields_and_any_values_is_accepted_or_rejected_with_reasons(
    obj: dict[str, Any],
) -> None:
    for parse in (parse_event, parse_item, parse_user_record):
        try:
            parse(obj)
        except InvalidEventError as exc:
            assert exc.problems and all(p.message for p in exc.problems)
    for parse_bytes in (parse_reward, parse_decision):
        try:
            parse_bytes(orjson.dumps(obj))
        except InvalidEventError as exc:
            assert exc.problems


@given(st.lists(events() | broken_events().map(lambda b: b.record) | json_values, min_size=1, max_size=6))
def test_a_batch_is_accepted_whole_or_rejected_listing_each_bad_index(batch: list[Any]) -> None:
    bad = set()
    for index, obj in enumerate(batch):
        try:
            parse_event(obj) if isinstance(obj, dict) else parse_event(orjson.dumps(obj))
        except InvalidEventError:
            bad.add(index)
    if not bad:
        assert len(parse_events(batch)) == len(batch)
        return
    problems = _rejected(parse_events, batch)
    assert {int(p.field.split(".")[0]) for p in problems} == bad


@given(items())
def test_every_good_catalog_record_is_accepted_and_round_trips(obj: dict[str, Any]) -> None:
    item = parse_item(orjson.dumps(obj))
    assert parse_item(encode(item)) == item == parse_item(obj)


@given(broken_items())
def test_every_broken_catalog_record_is_rejected_naming_its_field(broken: Broken) -> None:
    note(f"{broken.how}: {broken.field}")
    assert names(_rejected(parse_item, broken.raw()), broken.field)


@given(st.integers(2**63, 2**200) | st.integers(-(2**200), -(2**63) - 1), attribute_values)
def test_an_accepted_decoded_record_can_always_be_encoded(big: int, other: Any) -> None:
    # orjson reads such literals as floats, but a decoded object can hold them: once accepted as ints,
    # encode() raised TypeError (integer exceeds 64-bit range). Now they are numbers like JSON's.
    item = parse_item({"item_id": "i", "attributes": {"n": big, "other": other}})
    assert parse_item(encode(item)) == item


@given(preferences())
def test_every_good_preferences_record_is_accepted_and_round_trips(obj: dict[str, Any]) -> None:
    record = parse_user_record(orjson.dumps(obj))
    assert parse_user_record(encode_user_record(record)) == record


@given(broken_preferences())
def test_every_broken_preferences_record_is_rejected_naming_its_field(broken: Broken) -> None:
    note(f"{broken.how}: {broken.field}")
    assert names(_rejected(parse_user_record, broken.raw()), broken.field)


@given(consents())
def test_every_good_consent_record_is_accepted_and_round_trips(obj: dict[str, Any]) -> None:
    record = parse_user_record(orjson.dumps(obj))
    assert parse_user_record(encode_user_record(record)) == record


@given(broken_consents())
def test_every_broken_consent_record_is_rejected_naming_its_field(broken: Broken) -> None:
    assert names(_rejected(parse_user_record, broken.raw()), broken.field)
