"""Tests for `engine.ops.settings`: derived names, validation and the strict environment loader."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pydantic
import pytest

from engine.ops.settings import Settings, load
from schemas.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No PERSONALIZE_* variable from the outer environment, and no cached settings, in or after a test."""
    for name in list(os.environ):
        if name.upper().startswith("PERSONALIZE_"):
            monkeypatch.delenv(name)
    load.cache_clear()
    yield
    load.cache_clear()


def test_names_derive_from_namespace() -> None:
    s = Settings(namespace="shop_2")
    assert s.app_id == "p13n-shop_2"
    assert s.events_topic == "p13n.shop_2.events"
    assert s.items_topic == "p13n.shop_2.items"
    assert s.dead_letter_topic == "p13n.shop_2.dead-letter"


def test_defaults_point_at_the_local_stack() -> None:
    s = Settings()
    assert s.namespace == "default"
    assert s.bootstrap == "127.0.0.1:19092"
    assert s.redis == "redis://127.0.0.1:16379/0"
    assert Settings(kafka_bootstrap="k:9092", redis_url="redis://r:6379/1").bootstrap == "k:9092"
    assert Settings(kafka_bootstrap="k:9092", redis_url="redis://r:6379/1").redis == "redis://r:6379/1"


@pytest.mark.parametrize("namespace", ["", "has space", "dots.here", "colon:s", "x" * 65, "ünï"])
def test_invalid_namespace_is_rejected(namespace: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings(namespace=namespace)


@pytest.mark.parametrize(("field", "value"), [("top_n", 0), ("partitions", 2000), ("log_level", "loud")])
def test_out_of_range_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings.model_validate({field: value})


def test_settings_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings().namespace = "other"  # type: ignore[misc]


def test_load_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONALIZE_NAMESPACE", "tenant1")
    monkeypatch.setenv("PERSONALIZE_TOP_N", "7")
    s = load()
    assert (s.namespace, s.top_n, s.events_topic) == ("tenant1", 7, "p13n.tenant1.events")
    monkeypatch.setenv("PERSONALIZE_NAMESPACE", "tenant2")
    assert load() is s
    load.cache_clear()
    assert load().namespace == "tenant2"


def test_load_rejects_an_unknown_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONALIZE_NAMSPACE", "typo")
    with pytest.raises(ConfigError) as info:
        load()
    assert "PERSONALIZE_NAMSPACE" in str(info.value)
    assert "PERSONALIZE_NAMESPACE" in str(info.value)  # the known names are listed


def test_load_rejects_an_invalid_namespace_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONALIZE_NAMESPACE", "not valid")
    with pytest.raises(pydantic.ValidationError):
        load()


def test_api_key_hashes_are_comma_separated_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = "ab" * 32
    monkeypatch.setenv("PERSONALIZE_API_KEY_HASHES", f" {digest.upper()} ,{'cd' * 32},")
    assert load().api_key_hashes == (digest, "cd" * 32)
    monkeypatch.delenv("PERSONALIZE_API_KEY_HASHES")
    assert Settings().api_key_hashes == ()


@pytest.mark.parametrize("value", ["not-hex", "ab" * 31, "zz" * 32])
def test_api_key_hashes_must_be_sha256_hex(value: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings(api_key_hashes=(value,))


def test_river_policies_on_the_rank_path_need_a_policy_key() -> None:
    with pytest.raises(ConfigError, match="PERSONALIZE_POLICY_KEY"):
        Settings(bandit_policy="river-linucb")
    assert Settings(bandit_policy="river-linucb", policy_key="k" * 32).policy_signing_key == b"k" * 32
    with pytest.raises(pydantic.ValidationError):
        Settings(bandit_policy="river-exp3", policy_key="k" * 32)  # its update needs its own pull
    with pytest.raises(pydantic.ValidationError):
        Settings(policy_key="short")


def test_the_selectable_policies_are_ours_and_rivers_rank_policies() -> None:
    import typing

    from models.bandits import POLICIES
    from models.river_bandits import RANK_POLICIES

    allowed = typing.get_args(Settings.model_fields["bandit_policy"].annotation)
    assert set(allowed) == set(POLICIES) | set(RANK_POLICIES)
