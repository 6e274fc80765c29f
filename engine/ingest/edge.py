"""What every way in does to a record before Kafka sees it: pseudonymize the user id, and (for bulk
producers) drop the events of users without consent.

The HTTP API checks consent per request (`engine.api.consent`); `ConsentGate` serves `simulate` and
`produce`, which send many events of few users, and asks Redis once per user per run. Never sends.
"""

from __future__ import annotations

__all__ = ["ConsentGate", "pseudonymize", "pseudonymize_record"]

from typing import Any

import orjson

from engine.store.redis_store import RedisStore
from schemas.events import Event
from schemas.pseudonyms import Pseudonyms
from schemas.users import admits, is_user_record

#: A record ready for Kafka: (key, value bytes).
Raw = tuple[bytes | None, bytes]


def pseudonymize(event: Event, pseudonyms: Pseudonyms) -> Event:
    """The event with its user id pseudonymized (itself when pseudonymization is off).

    >>> e = Event(event_id="e1", user_id="u7", item_id="i1", type="view", ts=1_700_000_000_000)
    >>> pseudonymize(e, Pseudonyms(b"k" * 32)).user_id[:2], pseudonymize(e, Pseudonyms(None)) is e
    ('p_', True)
    """
    if not pseudonyms.enabled:
        return event
    return event.model_copy(update={"user_id": pseudonyms.of(event.user_id)})


def pseudonymize_record(record: Raw, pseudonyms: Pseudonyms) -> Raw:
    """A raw events-topic record (a JSON Lines backfill's line) with its ``user_id`` pseudonymized and
    keyed by it; a record without a string user_id goes as it is (the worker dead-letters what is
    invalid, exactly as live traffic; it names no user to hide).

    >>> key, value = pseudonymize_record((b"u7", b'{"user_id":"u7","x":1}'), Pseudonyms(b"k" * 32))
    >>> key == orjson.loads(value)["user_id"].encode(), b"u7" in value
    (True, False)
    >>> pseudonymize_record((None, b"[1]"), Pseudonyms(b"k" * 32))
    (None, b'[1]')
    """
    key, value = record
    if not pseudonyms.enabled:
        return record
    try:
        obj: Any = orjson.loads(value)
    except orjson.JSONDecodeError:
        return record
    if not isinstance(obj, dict) or not isinstance(obj.get("user_id"), str):
        return record
    user = pseudonyms.of(obj["user_id"])
    return user.encode(), orjson.dumps({**obj, "user_id": user})


class ConsentGate:
    """Whether each (pseudonymous) user may have events sent: consent read from Redis once per user and
    kept for the gate's life (a bulk run); every user admitted when no store is given."""

    def __init__(self, store: RedisStore | None, required: bool) -> None:
        self.store = store
        self.required = required
        self._known: dict[str, bool] = {}
        #: Records not sent because their user has not consented.
        self.dropped = 0

    async def admits(self, user_id: str) -> bool:
        if self.store is None:
            return True
        if user_id not in self._known:
            [state] = await self.store.consent_states([user_id])
            self._known[user_id] = admits(state.granted, self.required)
        if not self._known[user_id]:
            self.dropped += 1
        return self._known[user_id]

    async def admits_record(self, record: Raw) -> bool:
        """Whether a raw record may be sent: user records (consent, preferences, erasure) and records
        naming no user always; an event if its user (the record's key) may."""
        key, value = record
        if key is None or self.store is None:
            return True
        try:
            obj: Any = orjson.loads(value)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(obj, dict) or is_user_record(obj):
            return True
        return await self.admits(key.decode("utf-8", "replace"))
