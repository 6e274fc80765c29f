"""Tests for the business rules (`engine.serving.rules`): each rule kind, per surface, and with
preferences."""

from __future__ import annotations

from typing import Any

import pytest

from engine.serving.rules import LIKED_BOOST, RuleSet, SurfaceRules, apply
from engine.store.item_meta import ItemMeta
from engine.store.preferences import Preferences

CANDIDATES = [("a1", 0.9), ("a2", 0.8), ("b1", 0.7), ("b2", 0.6), ("c1", 0.5)]
META = {
    "a1": ItemMeta(frozenset({"a"}), tags=frozenset({"clearance"})),
    "a2": ItemMeta(frozenset({"a"}), available=False),
    "b1": ItemMeta(frozenset({"b"}), regions=frozenset({"de"})),
    "b2": ItemMeta(frozenset({"b", "sale"}), languages=frozenset({"fr"})),
    "c1": ItemMeta(frozenset({"c"})),
    "p1": ItemMeta(frozenset({"c"})),
    "gone": ItemMeta(available=False),
}


def rules(**surface: Any) -> SurfaceRules:
    return SurfaceRules.model_validate(surface)


def ids(items: list[tuple[str, float]]) -> list[str]:
    return [item for item, _ in items]


def served(surface: SurfaceRules, n: int = 5, **kwargs: Any) -> list[str]:
    return ids(apply(CANDIDATES, META, surface, n=n, strength=0.0, **kwargs))


def test_default_filters_drop_unavailable_and_other_regions_and_languages() -> None:
    assert served(rules()) == ["a1", "b1", "b2", "c1"]  # no region or language given: only a2 goes
    assert served(rules(), region="GB", language="en") == ["a1", "c1"]
    assert served(rules(), region="DE", language="fr") == ["a1", "b1", "b2", "c1"]


def test_filters_can_be_turned_off_per_kind() -> None:
    off = rules(filter={"unavailable": False, "region": False, "language": False})
    assert served(off, region="GB", language="en") == ["a1", "a2", "b1", "b2", "c1"]


def test_deny_lists_by_item_category_and_tag() -> None:
    assert served(rules(filter={"deny": {"items": ["c1"]}})) == ["a1", "b1", "b2"]
    assert served(rules(filter={"deny": {"categories": ["b"]}})) == ["a1", "c1"]
    assert served(rules(filter={"deny": {"tags": ["clearance"]}})) == ["b1", "b2", "c1"]


def test_boost_multiplies_and_adds_in_order() -> None:
    boosted = apply(
        CANDIDATES,
        META,
        rules(boost=[{"categories": ["sale"], "multiply": 2.0}, {"items": ["c1"], "add": 0.5}]),
        n=3,
        strength=0.0,
    )
    assert boosted == [("b2", 1.2), ("c1", 1.0), ("a1", 0.9)]


def test_pin_places_items_at_fixed_positions_even_from_outside_the_list() -> None:
    pinned = rules(pin=[{"item": "c1", "position": 1}, {"item": "p1", "position": 3}])
    assert served(pinned, n=4) == ["c1", "a1", "p1", "b1"]
    assert served(rules(pin=[{"item": "a1", "position": 9}]), n=3) == ["b1", "b2", "a1"]


def test_a_pinned_item_that_fails_the_filters_is_not_shown() -> None:
    assert served(rules(pin=[{"item": "gone", "position": 1}]), n=2) == ["a1", "b1"]


def test_bury_moves_matching_items_after_the_rest() -> None:
    assert served(rules(bury=[{"tags": ["clearance"]}, {"items": ["b1"]}])) == ["b2", "c1", "a1", "b1"]


def test_rules_are_chosen_per_surface_with_default_for_the_rest() -> None:
    ruleset = RuleSet.model_validate(
        {"version": 1, "default": {"filter": {"deny": {"items": ["a1"]}}}, "surfaces": {"search": {}}}
    )
    assert served(ruleset.for_surface(None)) == ["b1", "b2", "c1"]
    assert served(ruleset.for_surface("home")) == ["b1", "b2", "c1"]
    assert served(ruleset.for_surface("search")) == ["a1", "b1", "b2", "c1"]


def test_preferences_mute_categories_hide_items_and_boost_liked_ones() -> None:
    prefs = Preferences(muted_categories=frozenset({"a"}), hidden_items=frozenset({"c1"}))
    assert served(rules(), prefs=prefs) == ["b1", "b2"]
    liked = Preferences(liked_categories=frozenset({"c"}))
    top = apply(CANDIDATES, META, rules(), n=1, strength=0.0, prefs=liked)
    assert top == [("a1", 0.9)] and 0.5 * LIKED_BOOST < 0.9  # a boost, not an override
    liked_item = Preferences(liked_items=frozenset({"b2"}))
    assert served(rules(), prefs=liked_item)[:2] == ["a1", "b2"]


def test_the_surface_diversity_overrides_the_default_strength() -> None:
    same = [(f"a{i}", 1.0 - i / 10) for i in range(5)] + [("b1", 0.1)]
    meta = {item: ItemMeta(frozenset({item[0]})) for item, _ in same}
    assert "b1" not in ids(apply(same, meta, rules(), n=3, strength=0.0))
    capped = rules(diversity={"max_per_category": 2})
    assert ids(apply(same, meta, capped, n=3, strength=0.0)) == ["a0", "a1", "b1"]


@pytest.mark.parametrize(
    ("surface", "problem"),
    [
        ({"boost": [{"multiply": 2.0}]}, "give at least one of items, categories, tags"),
        ({"pin": [{"item": "x", "position": 0}]}, "greater than or equal to 1"),
        ({"pin": [{"item": "x", "position": 1}, {"item": "y", "position": 1}]}, "share a position"),
        ({"diversity": {"strength": 1.5}}, "less than or equal to 1"),
        ({"filter": {"deny": {"item": ["x"]}}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_rules_say_what_is_wrong(surface: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SurfaceRules.model_validate(surface)
