"""Pseudonymous user ids (`schemas.pseudonyms`): stable per key, unlinkable across keys, never the id."""

from __future__ import annotations

import pydantic
import pytest
from hypothesis import given

from engine.ops.settings import Settings
from schemas.events import parse_event
from schemas.pseudonyms import PSEUDONYM_PREFIX, Pseudonyms
from tests.contract_strategies import ids

KEY = b"a-pseudonym-key-of-at-least-32-characters"


@given(ids, ids)
def test_pseudonyms_are_stable_valid_ids_that_never_contain_the_id(user: str, other: str) -> None:
    ps = Pseudonyms(KEY)
    pseudonym = ps.of(user)
    assert pseudonym == ps.of(user) and pseudonym.startswith(PSEUDONYM_PREFIX) and len(pseudonym) == 34
    assert (pseudonym == ps.of(other)) == (user == other)
    assert pseudonym != Pseudonyms(KEY + b"!").of(user)
    event = {"event_id": "e", "user_id": pseudonym, "item_id": "i", "type": "view", "ts": 1_700_000_000_000}
    assert parse_event(event).user_id == pseudonym  # a pseudonym is itself a valid user id


def test_the_key_is_long_and_secret_in_the_settings() -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings(pseudonym_key="too-short")
    settings = Settings(pseudonym_key=KEY.decode())
    assert KEY.decode() not in repr(settings) and KEY.decode() not in str(settings.model_dump())
    assert settings.pseudonyms.of("u7") == Pseudonyms(KEY).of("u7")
    assert repr(settings.pseudonyms) == "Pseudonyms(enabled)"
