"""Tests for the preferences model (`engine.store.preferences`) and its records (`schemas.users`)."""

from __future__ import annotations

import orjson
import pytest

from engine.store.preferences import Preferences, changes
from schemas.errors import InvalidEventError
from schemas.users import PreferencesRecord, PreferencesRequest, encode_user_record, parse_user_record


def apply(fields: dict[str, str], request: PreferencesRequest, now_ms: int = 7) -> dict[str, str]:
    to_set, to_delete = changes(request, now_ms)
    fields = {} if request.reset else dict(fields)
    for name in to_delete:
        fields.pop(name, None)
    return {**fields, **to_set}


def test_onboarding_then_overrides_then_removals() -> None:
    fields = apply({}, PreferencesRequest(liked_categories=["jazz", "rock"], liked_items=["i1"]))
    fields = apply(fields, PreferencesRequest(muted_categories=["rock"], hidden_items=["i1", "i2"]))
    prefs = Preferences.from_hash(fields)
    assert prefs.to_json() == {
        "liked_categories": ["jazz"],
        "liked_items": [],
        "muted_categories": ["rock"],
        "hidden_items": ["i1", "i2"],
    }
    fields = apply(fields, PreferencesRequest(unmuted_categories=["rock"], unhidden_items=["i2"]))
    assert Preferences.from_hash(fields).to_json()["hidden_items"] == ["i1"]
    assert Preferences.from_hash(fields).muted_categories == frozenset()


def test_the_same_request_twice_gives_the_same_state() -> None:
    request = PreferencesRequest(liked_categories=["a"], muted_categories=["b"], hidden_items=["i"])
    once = apply({}, request)
    assert apply(once, request) == once


def test_a_removal_wins_over_an_addition_in_the_same_request() -> None:
    fields = apply({}, PreferencesRequest(muted_categories=["a"], unmuted_categories=["a"]))
    assert Preferences.from_hash(fields).muted_categories == frozenset()


def test_reset_forgets_earlier_choices_then_applies_the_rest() -> None:
    fields = apply({}, PreferencesRequest(muted_categories=["a"]))
    fields = apply(fields, PreferencesRequest(reset=True, liked_items=["i9"]))
    assert Preferences.from_hash(fields) == Preferences(liked_items=frozenset({"i9"}))


def test_ids_may_contain_colons() -> None:
    fields = apply({}, PreferencesRequest(hidden_items=["sku:42"]))
    assert Preferences.from_hash(fields).hidden_items == frozenset({"sku:42"})


def test_empty_requests_are_recognised() -> None:
    assert PreferencesRequest().empty and not PreferencesRequest(reset=True).empty


def test_records_round_trip_and_carry_only_what_was_chosen() -> None:
    record = PreferencesRecord(
        event_id="p1", user_id="u1", ts=1_700_000_000_000, muted_categories=["x"], reset=True
    )
    raw = encode_user_record(record)
    assert orjson.loads(raw) == {
        "v": 1,
        "type": "preferences",
        "event_id": "p1",
        "user_id": "u1",
        "ts": 1_700_000_000_000,
        "muted_categories": ["x"],
        "reset": True,
    }
    assert parse_user_record(raw) == record


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"type": "click", "event_id": "e", "user_id": "u", "ts": 1700000000000}', "type"),
        (b'{"type": "preferences", "event_id": "e", "user_id": " ", "ts": 1700000000000}', "user_id"),
        (b'{"type": "erasure", "event_id": "e", "user_id": "u", "ts": 1700000000000, "x": 1}', "x"),
        (b"[1]", ""),
    ],
)
def test_invalid_records_name_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_user_record(raw)
    assert caught.value.problems[0].field == field


def test_requests_limit_list_lengths() -> None:
    with pytest.raises(ValueError, match="at most 200"):
        PreferencesRequest(hidden_items=[f"i{n}" for n in range(201)])
