"""The bulk producers' edge (`engine.ingest.edge`): pseudonymized records, consent read once per user."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import orjson

from engine.ingest.edge import ConsentGate, pseudonymize_record
from engine.store.consent import ConsentState
from engine.store.redis_store import RedisStore
from schemas.pseudonyms import Pseudonyms

PS = Pseudonyms(b"a-pseudonym-key-of-at-least-32-characters")


class _Store:
    def __init__(self, states: dict[str, bool]) -> None:
        self.states = states
        self.asked: list[str] = []

    async def consent_states(self, user_ids: Sequence[str]) -> list[ConsentState]:
        self.asked += user_ids
        return [ConsentState(self.states.get(u), None) for u in user_ids]


def _line(**fields: object) -> tuple[bytes | None, bytes]:
    user = fields.get("user_id")
    return (user.encode() if isinstance(user, str) else None, orjson.dumps(fields))


async def test_the_gate_reads_each_user_once_and_lets_user_records_through() -> None:
    store = _Store({"out": False, "in": True})
    gate = ConsentGate(cast(RedisStore, store), required=False)
    verdicts = [
        await gate.admits_record(_line(user_id="out", type="click")),
        await gate.admits_record(_line(user_id="out", type="view")),
        await gate.admits_record(_line(user_id="out", type="consent", granted=True)),
        await gate.admits_record(_line(user_id="in", type="click")),
        await gate.admits_record(_line(user_id="new", type="click")),
        await gate.admits_record((None, b"not json")),
    ]
    assert verdicts == [False, False, True, True, True, True]
    assert store.asked == ["out", "in", "new"] and gate.dropped == 2
    opt_in = ConsentGate(cast(RedisStore, _Store({})), required=True)
    assert not await opt_in.admits("new")


def test_jsonl_records_are_keyed_and_valued_by_the_pseudonym() -> None:
    key, value = pseudonymize_record(_line(user_id="alice", type="click"), PS)
    assert key == PS.of("alice").encode() and orjson.loads(value)["user_id"] == PS.of("alice")
    untouched = _line(user_id=7, type="click")
    assert pseudonymize_record(untouched, PS) == untouched
    assert pseudonymize_record(_line(user_id="alice"), Pseudonyms(None)) == _line(user_id="alice")
