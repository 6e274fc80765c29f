"""Tests for the Redis key contract in `schemas.keys` and the error tree in `schemas.errors`."""

from __future__ import annotations

import pytest

from schemas import keys
from schemas.errors import (
    ConfigError,
    DeliveryError,
    InvalidEventError,
    PersonalizeError,
    Problem,
    RequestRejectedError,
    ServiceUnavailableError,
    StackError,
)


def test_keys_are_versioned_and_namespaced() -> None:
    assert keys.user_list("shop", "u7") == f"{keys.KEY_PREFIX}:{keys.KEY_VERSION}:shop:list:u7"
    assert keys.user_list("shop", "u7") != keys.user_list("books", "u7")
    assert keys.user_list("shop", "u7") != keys.preferences("shop", "u7")


def test_user_ids_with_separators_are_kept_verbatim() -> None:
    assert keys.user_list("ns", "a:b") == "p13n:v1:ns:list:a:b"


def test_trending_keys_per_locale_and_global() -> None:
    assert keys.trending("shop", "en-GB") == "p13n:v1:shop:trending:en-GB"
    assert keys.trending("shop") == keys.trending("shop", None) == "p13n:v1:shop:trending:_global"
    assert keys.trending("shop", "en") != keys.trending("books", "en")


def test_problem_str_with_and_without_field() -> None:
    assert str(Problem("ts", "bad")) == "ts: bad"
    assert str(Problem("", "not valid JSON")) == "not valid JSON"


def test_invalid_event_error_without_event_id() -> None:
    error = InvalidEventError([Problem("a", "x"), Problem("", "y")])
    assert str(error) == "invalid event: a: x; y"
    assert error.reason == "a: x; y"
    assert error.event_id is None


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("c"),
        StackError("s"),
        ServiceUnavailableError("redis", "127.0.0.1:1", 2.4),
        DeliveryError("kafka", "timeout"),
        InvalidEventError([]),
        RequestRejectedError(401, "no key"),
    ],
)
def test_every_error_is_a_personalize_error(error: Exception) -> None:
    assert isinstance(error, PersonalizeError)


def test_error_messages_carry_context() -> None:
    unavailable = ServiceUnavailableError("redis", "127.0.0.1:16379", 29.6)
    assert str(unavailable) == "redis at 127.0.0.1:16379 did not answer within 30s"
    assert isinstance(unavailable, StackError) and unavailable.service == "redis"
    delivery = DeliveryError("kafka", "broker down")
    assert str(delivery) == "could not deliver to kafka: broker down" and delivery.target == "kafka"
