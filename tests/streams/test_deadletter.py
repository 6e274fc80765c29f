"""Tests for the dead-letter envelope in `streams.deadletter`."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from schemas.errors import InvalidEventError, Problem
from schemas.events import parse_event
from streams.deadletter import envelope


def _envelope(raw: bytes | None, error: Exception, key: bytes | None = b"u1") -> dict[str, Any]:
    out = orjson.loads(envelope(raw, error, topic="p13n.t.events", partition=3, offset=42, key=key))
    assert isinstance(out, dict)
    return out


def test_invalid_event_lists_every_problem() -> None:
    raw = b'{"event_id":"e1","user_id":"u1","item_id":"i1","type":"wave","ts":1700000000}'
    with pytest.raises(InvalidEventError) as info:
        parse_event(raw)
    out = _envelope(raw, info.value)
    assert out["kind"] == "invalid"
    assert [p["field"] for p in out["problems"]] == ["type", "ts"]
    assert out["problems"][1]["message"].endswith("was it sent in seconds?")
    assert out["reason"] == info.value.reason
    assert out["original"] == raw.decode()
    assert base64.b64decode(out["original_b64"]) == raw


def test_source_is_recorded() -> None:
    out = _envelope(b"{}", InvalidEventError([Problem("", "x")]))
    assert out["source"] == {"topic": "p13n.t.events", "partition": 3, "offset": 42, "key": "u1"}
    assert _envelope(b"{}", InvalidEventError([]), key=None)["source"]["key"] is None
    assert _envelope(b"{}", InvalidEventError([]), key=b"\xffu")["source"]["key"] == "\ufffdu"


def test_internal_error_has_type_and_message_and_no_problems() -> None:
    out = _envelope(b'{"a":1}', KeyError("boom"))
    assert out["kind"] == "internal"
    assert out["reason"] == "KeyError: 'boom'"
    assert out["problems"] == []
    assert out["original"] == '{"a":1}'


def test_non_utf8_bytes_survive_in_base64_only() -> None:
    raw = b"\xff\xfe\x00garbage\x80"
    out = _envelope(raw, InvalidEventError([Problem("", "not valid JSON")]))
    assert out["original"] is None
    assert base64.b64decode(out["original_b64"]) == raw


def test_missing_value_is_an_empty_original() -> None:
    out = _envelope(None, ValueError("no value"))
    assert out["original"] == "" and out["original_b64"] == ""


def test_failure_time_is_epoch_milliseconds() -> None:
    out = _envelope(b"{}", ValueError("x"))
    assert isinstance(out["failed_at_ms"], int)
    assert 1_600_000_000_000 < out["failed_at_ms"] < 4_102_444_800_000
