"""Tests for the seeded synthetic clickstream in `models.synth`."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from models.synth import DEVICES, Clickstream
from schemas.events import Event, EventType, encode, parse_event

_MAIN = {
    EventType.VIEW,
    EventType.CLICK,
    EventType.ADD_TO_CART,
    EventType.PURCHASE,
    EventType.DWELL,
    EventType.RATING,
}


def _primary(stream: Clickstream) -> dict[str, str]:
    return {item.item_id: item.categories[0] for item in stream.items()}


def test_same_arguments_give_the_same_catalog_and_events() -> None:
    a, b = Clickstream(50, 200, seed=3), Clickstream(50, 200, seed=3)
    assert a.items() == b.items()
    assert list(a.events(2000)) == list(b.events(2000))
    assert [a.taste(f"u{u}") for u in range(1, 51)] == [b.taste(f"u{u}") for u in range(1, 51)]


def test_a_different_seed_gives_a_different_world() -> None:
    a, b = Clickstream(50, 200, seed=3), Clickstream(50, 200, seed=4)
    assert a.items() != b.items()
    assert [(e.user_id, e.item_id, e.type) for e in a.events(500)] != [
        (e.user_id, e.item_id, e.type) for e in b.events(500)
    ]


def test_events_restart_and_a_shorter_stream_is_a_prefix() -> None:
    s = Clickstream(30, 100, seed=1)
    long = list(s.events(10_000))
    assert list(s.events(9_000)) == long[:9_000]
    assert list(s.events(0)) == []


def test_catalog_does_not_depend_on_the_number_of_users() -> None:
    assert Clickstream(5, 300, seed=2).items() == Clickstream(500, 300, seed=2).items()


def test_ids_formats_and_counts() -> None:
    s = Clickstream(40, 150, n_categories=12, seed=5)
    assert s.categories == tuple(f"c{c:02d}" for c in range(1, 13))
    items = s.items()
    assert [i.item_id for i in items] == [f"i{j}" for j in range(1, 151)]
    assert {i.categories[0] for i in items} == set(s.categories)  # every category has an item
    for item in items:
        assert 1 <= len(item.categories) <= 2 and len(set(item.categories)) == len(item.categories)
        assert 1 <= len(item.tags) <= 3 and all(re.fullmatch(r"t([1-9]|[1-3]\d|40)", t) for t in item.tags)
        assert isinstance(item.attributes["price"], float) and item.attributes["price"] > 0
        assert item.attributes["language"] in {"en", "de", "fr", "es"} and item.available
    secondary = sum(len(i.categories) == 2 for i in items) / len(items)
    assert 0.1 < secondary < 0.3
    events = list(s.events(3000))
    assert len(events) == 3000
    assert [e.event_id for e in events] == [f"s5-{k}" for k in range(3000)]
    assert {e.user_id for e in events} <= {f"u{u}" for u in range(1, 41)}
    assert {e.item_id for e in events} <= {i.item_id for i in items}


def test_every_user_appears_once_in_the_first_n_users_events() -> None:
    s = Clickstream(300, 100, seed=8)
    first = [e.user_id for e in s.events(300)]
    assert sorted(first) == sorted(f"u{u}" for u in range(1, 301))
    assert first != [f"u{u}" for u in range(1, 301)]  # shuffled, not in id order


def test_events_validate_against_the_contract() -> None:
    s = Clickstream(100, 300, seed=9)
    for event in s.events(5000):
        assert parse_event(encode(event)) == event
        assert event.context == s.user_context(event.user_id).model_copy(
            update={"surface": event.context.surface}
        )
        assert event.context.surface in {"home", "pdp"}
        if event.type is EventType.RATING:
            assert event.value in {1.0, 2.0, 3.0, 4.0, 5.0}
        elif event.type is EventType.DWELL:
            assert event.value > 0
        else:
            assert event.value == 1.0


def test_ts_strictly_increasing_by_step() -> None:
    s = Clickstream(20, 50, seed=1, start_ms=1_600_000_000_000, step_ms=250)
    ts = [e.ts for e in s.events(2000)]
    assert ts[0] == 1_600_000_000_000
    assert all(b - a == 250 for a, b in zip(ts, ts[1:], strict=False))


def test_event_type_mix() -> None:
    counts = Counter(e.type for e in Clickstream(200, 500, seed=2).events(50_000))
    main = sum(counts[t] for t in _MAIN)
    assert counts[EventType.VIEW] / main == pytest.approx(0.60, abs=0.02)
    assert counts[EventType.CLICK] / main == pytest.approx(0.25, abs=0.02)
    assert counts[EventType.ADD_TO_CART] / main == pytest.approx(0.07, abs=0.01)
    for t in (EventType.PURCHASE, EventType.DWELL, EventType.RATING):
        assert 0.01 < counts[t] / main < 0.045
    assert counts[EventType.IMPRESSION] / main == pytest.approx(0.10, abs=0.015)
    assert counts[EventType.DISMISS] / main == pytest.approx(0.03, abs=0.008)


def test_devices_and_locales_are_fixed_per_user_and_skewed() -> None:
    s = Clickstream(3000, 50, seed=4)
    contexts = [s.user_context(f"u{u}") for u in range(1, 3001)]
    shares = Counter(c.device for c in contexts)
    assert set(shares) == set(DEVICES)
    assert shares["mobile"] > shares["desktop"] > shares["tablet"]
    assert {(c.locale, c.region) for c in contexts} == {
        ("en-US", "US"),
        ("en-GB", "GB"),
        ("de-DE", "DE"),
        ("fr-FR", "FR"),
    }
    with pytest.raises(KeyError):
        s.user_context("u3001")


def test_taste_is_a_distribution() -> None:
    s = Clickstream(50, 100, seed=6)
    for u in range(1, 51):
        taste = s.taste(f"u{u}")
        assert list(taste) == list(s.categories)
        assert sum(taste.values()) == pytest.approx(1.0) and min(taste.values()) >= 0.0
    top_shares = [max(s.taste(f"u{u}").values()) for u in range(1, 51)]
    assert sum(top_shares) / len(top_shares) > 0.4  # concentrated, Dirichlet(0.3)
    with pytest.raises(KeyError):
        s.taste("x1")


def test_a_users_events_follow_their_taste() -> None:
    s = Clickstream(60, 400, seed=11)
    primary = _primary(s)
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    for e in s.events(40_000):
        if e.type in _MAIN:
            seen[e.user_id][primary[e.item_id]] += 1
    active = decisive = agree = 0
    for user, counts in seen.items():
        if sum(counts.values()) < 200:
            continue
        ranked = sorted(s.taste(user).items(), key=lambda kv: kv[1], reverse=True)
        active += 1
        agree += counts.most_common(1)[0][0] == ranked[0][0]
        if ranked[0][1] >= 4 * ranked[1][1]:  # device x evening boosts are at most x4: must win
            decisive += 1
            assert counts.most_common(1)[0][0] == ranked[0][0], user
    assert active >= 30 and decisive >= 3
    assert agree >= 0.75 * active  # boosts can tip close races, but the top taste usually wins


def _boost_ratio(events: list[Event], s: Clickstream, boosted: set[str], keep: set[str]) -> float:
    """Observed share of `boosted` categories among kept events over the share the tastes alone predict."""
    primary, observed, expected, n = _primary(s), 0.0, 0.0, 0
    for e in events:
        if e.type in _MAIN and e.context.device in keep:
            observed += primary[e.item_id] in boosted
            expected += sum(v for c, v in s.taste(e.user_id).items() if c in boosted)
            n += 1
    assert n > 1000
    return observed / expected


def test_device_effect_is_measurable() -> None:
    s = Clickstream(3000, 600, seed=12)
    events = list(s.events(60_000))
    mobile = set(s.device_boosts["mobile"])
    assert len(mobile) == 3 and not mobile & set(s.device_boosts["desktop"])
    on_mobile = _boost_ratio(events, s, mobile, {"mobile"})
    on_desktop = _boost_ratio(events, s, mobile, {"desktop"})
    assert on_mobile > 1.2 and on_mobile > 1.4 * on_desktop


def test_evening_effect_is_measurable() -> None:
    s = Clickstream(2000, 600, seed=13, step_ms=60_000)  # ~1 event a minute spans many days
    evening = set(s.evening_boosts)
    events = list(s.events(40_000))
    late = [e for e in events if (e.ts // 3_600_000) % 24 >= 18]
    early = [e for e in events if (e.ts // 3_600_000) % 24 < 18]
    assert _boost_ratio(late, s, evening, set(DEVICES)) > 1.3 * _boost_ratio(early, s, evening, set(DEVICES))


def test_ratings_are_higher_for_liked_categories_and_dismissals_hit_disliked_ones() -> None:
    s = Clickstream(300, 500, seed=14)
    primary = _primary(s)
    liked: list[float] = []
    other: list[float] = []
    for e in s.events(60_000):
        taste = s.taste(e.user_id)
        if e.type is EventType.RATING:
            top = max(taste, key=lambda c: taste[c])
            (liked if primary[e.item_id] == top else other).append(e.value)
        elif e.type is EventType.DISMISS:
            assert taste[primary[e.item_id]] <= sorted(taste.values())[len(taste) // 2]
    assert len(liked) > 100 and len(other) > 100
    assert sum(liked) / len(liked) > sum(other) / len(other) + 0.5


def test_drift_changes_the_taste_of_drift_fraction_of_users() -> None:
    s = Clickstream(200, 300, seed=15, drift_at=1000, drift_fraction=0.3)
    users = [f"u{u}" for u in range(1, 201)]
    before = [s.taste(u) for u in users]
    stream = s.events(3000)
    for _ in range(999):
        next(stream)
    assert [s.taste(u) for u in users] == before
    next(stream)  # the 1000th event: drift applies from here on
    changed = sum(s.taste(u) != b for u, b in zip(users, before, strict=True))
    assert changed == 60
    assert Clickstream(200, 300, seed=15, drift_at=1000, drift_fraction=0.3).taste("u1") == before[0]


def test_events_after_drift_follow_the_new_taste() -> None:
    s = Clickstream(10, 400, seed=16, drift_at=1000, drift_fraction=1.0)
    primary = _primary(s)
    old = {f"u{u}": s.taste(f"u{u}") for u in range(1, 11)}
    events = list(s.events(30_000))
    new = {u: s.taste(u) for u in old}
    hits_new = hits_old = 0.0
    for e in events[1000:]:
        if e.type in _MAIN:
            hits_new += new[e.user_id][primary[e.item_id]]
            hits_old += old[e.user_id][primary[e.item_id]]
    assert hits_new > 2 * hits_old


def test_no_drift_keeps_tastes() -> None:
    s = Clickstream(50, 100, seed=17)
    before = [s.taste(f"u{u}") for u in range(1, 51)]
    list(s.events(5000))
    assert [s.taste(f"u{u}") for u in range(1, 51)] == before


def test_fewer_items_than_categories() -> None:
    s = Clickstream(10, 5, n_categories=12, seed=18)
    used = {i.categories[0] for i in s.items()}
    assert len(used) == 5
    primary = _primary(s)
    events = list(s.events(3000))
    assert {primary[e.item_id] for e in events} <= used
    assert len(list(Clickstream(3, 1, n_categories=1).events(100))) == 100


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_users": 0},
        {"n_items": 0},
        {"n_categories": 0},
        {"n_categories": 100},
        {"seed": -1},
        {"step_ms": 0},
        {"drift_at": -1},
        {"drift_fraction": 1.5},
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, int | float]) -> None:
    args: dict[str, int | float] = {"n_users": 5, "n_items": 5, **kwargs}
    with pytest.raises(ValueError):
        Clickstream(**args)  # type: ignore[arg-type]


def test_negative_event_count_is_rejected_eagerly() -> None:
    with pytest.raises(ValueError):
        Clickstream(5, 5).events(-1)
