"""Tests for the bounded per-user state in `models.profile`."""

from __future__ import annotations

import orjson

from models.profile import MAX_CONSUMED, MAX_RECENT, MAX_SEEN_IDS, UserProfile
from models.signals import signal_of
from schemas.events import Event, EventType

TS = 1_700_000_000_000


def _observe(profile: UserProfile, event_id: str, item_id: str, kind: str = "click", ts: int = TS) -> bool:
    event = Event(event_id=event_id, user_id=profile.user_id, item_id=item_id, type=EventType(kind), ts=ts)
    return profile.observe(event, signal_of(event))


def test_duplicate_event_id_changes_nothing() -> None:
    p = UserProfile("u1")
    assert _observe(p, "e1", "i1")
    before = p.to_dict()
    assert not _observe(p, "e1", "i2", ts=TS + 5)
    assert p.to_dict() == before
    assert p.events_seen == 1 and not p.has_consumed("i2") and p.has_seen("e1")


def test_same_item_with_new_event_id_is_counted_and_moved_to_the_end() -> None:
    p = UserProfile("u1")
    for n, item in enumerate(["a", "b", "a"]):
        assert _observe(p, f"e{n}", item, ts=TS + n)
    assert p.events_seen == 3
    assert p.recent == ["b", "a"]
    assert p.last_ts == TS + 2


def test_last_ts_never_goes_back() -> None:
    p = UserProfile("u1")
    _observe(p, "e1", "a", ts=TS + 100)
    _observe(p, "e2", "b", ts=TS)
    assert p.last_ts == TS + 100


def test_signals_decide_recent_and_consumed() -> None:
    p = UserProfile("u1")
    _observe(p, "e1", "shown", kind="impression")
    _observe(p, "e2", "gone", kind="dismiss")
    _observe(p, "e3", "liked", kind="purchase")
    assert p.recent == ["liked"]
    assert not p.has_consumed("shown")
    assert p.has_consumed("gone") and p.has_consumed("liked")
    assert p.events_seen == 3


def test_recent_is_bounded_and_keeps_the_newest() -> None:
    p = UserProfile("u1")
    for n in range(MAX_RECENT + 10):
        _observe(p, f"e{n}", f"i{n}")
    assert len(p.recent) == MAX_RECENT
    assert p.recent == [f"i{n}" for n in range(10, MAX_RECENT + 10)]


def test_seen_ids_are_bounded_and_evict_the_oldest() -> None:
    p = UserProfile("u1")
    for n in range(MAX_SEEN_IDS + 5):
        _observe(p, f"e{n}", "i1")
    assert len(p.seen_ids) == MAX_SEEN_IDS
    assert not p.has_seen("e4") and p.has_seen("e5") and p.has_seen(f"e{MAX_SEEN_IDS + 4}")
    assert p.events_seen == MAX_SEEN_IDS + 5


def test_consumed_is_bounded_and_evicts_the_oldest() -> None:
    p = UserProfile("u1")
    for n in range(MAX_CONSUMED + 3):
        _observe(p, f"e{n}", f"i{n}", kind="view")
    assert len(p.consumed) == MAX_CONSUMED
    assert not p.has_consumed("i2") and p.has_consumed("i3")
    assert p.has_consumed(f"i{MAX_CONSUMED + 2}")


def test_reconsuming_refreshes_an_item_in_consumed() -> None:
    p = UserProfile("u1")
    for n in range(MAX_CONSUMED):
        _observe(p, f"e{n}", f"i{n}", kind="view")
    _observe(p, "again", "i0", kind="view")  # i0 becomes the newest
    _observe(p, "new", "fresh", kind="view")  # evicts i1, the oldest now
    assert p.has_consumed("i0") and not p.has_consumed("i1") and p.has_consumed("fresh")


def test_to_dict_from_dict_round_trip_through_orjson() -> None:
    p = UserProfile("u1")
    for n in range(50):
        _observe(p, f"e{n}", f"i{n % 7}", kind="dismiss" if n % 5 == 0 else "click", ts=TS + n)
    data = orjson.loads(orjson.dumps(p.to_dict()))
    restored = UserProfile.from_dict(data)
    assert restored == p
    assert list(restored.consumed) == list(p.consumed)  # eviction order survives
    assert list(restored.seen_ids) == list(p.seen_ids)
    assert not _observe(restored, "e3", "x")  # dedup still works after the round trip


def test_from_dict_copies_its_input() -> None:
    data = UserProfile("u1", recent=["a"], consumed={"a": None}).to_dict()
    restored = UserProfile.from_dict(data)
    _observe(restored, "e1", "b")
    assert data["recent"] == ["a"] and data["consumed"] == {"a": None}


def test_a_profile_stored_by_an_earlier_release_with_lists_is_read_in_order() -> None:
    p = UserProfile("u1")
    for n in range(30):
        _observe(p, f"e{n}", f"i{n % 7}", ts=TS + n)
    old = {**p.to_dict(), "consumed": list(p.consumed), "seen_ids": list(p.seen_ids)}
    restored = UserProfile.from_dict(orjson.loads(orjson.dumps(old)))
    assert restored == p and list(restored.consumed) == list(p.consumed)
    assert list(restored.seen_ids) == list(p.seen_ids)
