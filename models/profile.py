"""Per-user state: recent positives, consumed items, seen event ids, counters.

This is what the stream keeps per user in a changelog-backed Faust table, so it must round-trip
through plain JSON (`to_dict` / `from_dict`). Bounded in size so a heavy user cannot grow it forever.
"""

from __future__ import annotations

__all__ = ["UserProfile"]

from dataclasses import dataclass, field
from typing import Any

from models.signals import Signal
from schemas.events import Event

#: Bounds: recent positives feed co-occurrence; consumed items are filtered out of recommendations;
#: seen ids deduplicate redelivered events (a Kafka redelivery replays at most one commit interval).
MAX_RECENT = 30
MAX_CONSUMED = 2_000
MAX_SEEN_IDS = 512


def _push(ordered: dict[str, None], key: str, cap: int) -> None:
    ordered.pop(key, None)
    ordered[key] = None
    while len(ordered) > cap:
        del ordered[next(iter(ordered))]


@dataclass(slots=True)
class UserProfile:
    """What we remember about one user.

    >>> from schemas.events import Event
    >>> from models.signals import signal_of
    >>> p = UserProfile("u1")
    >>> e = Event(event_id="e1", user_id="u1", item_id="i1", type="click", ts=10**12)
    >>> p.observe(e, signal_of(e)), p.observe(e, signal_of(e))
    (True, False)
    >>> p.events_seen, p.recent, p.has_consumed("i1")
    (1, ['i1'], True)
    """

    user_id: str
    events_seen: int = 0
    last_ts: int = 0
    recent: list[str] = field(default_factory=list)
    consumed: dict[str, None] = field(default_factory=dict)
    seen_ids: dict[str, None] = field(default_factory=dict)
    #: The user's consent as last stated (`schemas.users.ConsentRecord`); None: never stated.
    consent: bool | None = None

    def has_seen(self, event_id: str) -> bool:
        return event_id in self.seen_ids

    def has_consumed(self, item_id: str) -> bool:
        return item_id in self.consumed

    def observe(self, event: Event, signal: Signal) -> bool:
        """Record the event; False (and no change) when this event_id was already observed."""
        if event.event_id in self.seen_ids:
            return False
        _push(self.seen_ids, event.event_id, MAX_SEEN_IDS)
        self.events_seen += 1
        self.last_ts = max(self.last_ts, event.ts)
        if signal.consumed:
            _push(self.consumed, event.item_id, MAX_CONSUMED)
        if signal.label == 1:
            if event.item_id in self.recent:
                self.recent.remove(event.item_id)
            self.recent.append(event.item_id)
            del self.recent[:-MAX_RECENT]
        return True

    def to_dict(self) -> dict[str, Any]:
        """The profile as the table stores it: plain JSON, ``consumed`` and ``seen_ids`` as objects of
        nulls in their order (copied: a dict copies ~10x faster than one is built from a list, and a
        heavy user's 2,000 consumed items are copied out and back in for each of their events)."""
        return {
            "user_id": self.user_id,
            "events_seen": self.events_seen,
            "last_ts": self.last_ts,
            "recent": list(self.recent),
            "consumed": self.consumed.copy(),
            "seen_ids": self.seen_ids.copy(),
            # Only when stated: the profiles of users who never said keep their old shape.
            **({} if self.consent is None else {"consent": self.consent}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserProfile:
        """Inverse of `to_dict`; also reads the lists earlier releases stored for ``consumed`` and
        ``seen_ids``.

        >>> p = UserProfile("u1", events_seen=3, recent=["a"], consumed={"a": None})
        >>> UserProfile.from_dict(p.to_dict()) == p, "consent" in p.to_dict()
        (True, False)
        >>> UserProfile.from_dict(UserProfile("u2", consent=False).to_dict()).consent
        False
        >>> old = {"user_id": "u3", "events_seen": 1, "last_ts": 5, "recent": [], "consumed": ["a"],
        ...        "seen_ids": ["e1"]}
        >>> UserProfile.from_dict(old).has_seen("e1"), UserProfile.from_dict(old).has_consumed("a")
        (True, True)
        """
        return cls(
            user_id=data["user_id"],
            events_seen=int(data["events_seen"]),
            last_ts=int(data["last_ts"]),
            recent=list(data["recent"]),
            consumed=_ordered(data["consumed"]),
            seen_ids=_ordered(data["seen_ids"]),
            consent=data.get("consent"),
        )


def _ordered(keys: dict[str, None] | list[str]) -> dict[str, None]:
    """A copy of stored keys as an insertion-ordered dict (from a dict, or a list of an earlier release)."""
    return keys.copy() if isinstance(keys, dict) else dict.fromkeys(keys)
