"""Business rules per surface (filter, boost, pin, bury, diversity) and applying them to one list.

Pure: the rules document is validated here (`RuleSet`), loaded and hot-reloaded by
`engine.serving.rules_file`, and applied by `engine.serving.recommend` to candidates whose
`ItemMeta` it already fetched.
"""

from __future__ import annotations

__all__ = [
    "LIKED_BOOST",
    "Boost",
    "Diversity",
    "Filter",
    "Match",
    "Pin",
    "RuleSet",
    "SurfaceRules",
    "apply",
]

from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.serving.diversity import diversify
from engine.store.item_meta import UNKNOWN, ItemMeta
from engine.store.preferences import Preferences

#: Score multiplier for items the user liked (or in categories they liked) at onboarding.
LIKED_BOOST = 1.5

_NO_PREFERENCES = Preferences()

_Name = Annotated[str, Field(min_length=1, max_length=256)]


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Match(_Rule):
    """Items to act on: listed ids, or items in any listed category or with any listed tag.

    >>> Match(categories=["sale"]).matches("i1", ItemMeta(frozenset({"sale", "shoes"})))
    True
    """

    items: tuple[_Name, ...] = ()
    categories: tuple[_Name, ...] = ()
    tags: tuple[_Name, ...] = ()

    def matches(self, item_id: str, meta: ItemMeta) -> bool:
        return (
            item_id in self.items
            or not meta.categories.isdisjoint(self.categories)
            or not meta.tags.isdisjoint(self.tags)
        )

    @property
    def empty(self) -> bool:
        return not (self.items or self.categories or self.tags)


class _Targeted(Match):
    @model_validator(mode="after")
    def _targets_something(self) -> _Targeted:
        if self.empty:
            raise ValueError("give at least one of items, categories, tags")
        return self


class Boost(_Targeted):
    """Matching items' scores become ``score * multiply + add`` (boosts apply in the order listed)."""

    multiply: float = Field(1.0, gt=0.0, le=1e6)
    add: float = Field(0.0, ge=-1e6, le=1e6)


class Bury(_Targeted):
    """Matching items go after every other item (in their own order)."""


class Pin(_Rule):
    """An item shown at a fixed 1-based position, if it passes the filters (even if not a candidate)."""

    item: _Name
    position: int = Field(ge=1, le=1000)


class Filter(_Rule):
    """What is removed: unavailable items, items limited to other regions/languages, denied items."""

    unavailable: bool = True
    region: bool = True
    language: bool = True
    deny: Match = Match()


class Diversity(_Rule):
    """Per-surface diversity; None inherits ``PERSONALIZE_DIVERSITY_STRENGTH`` / the strength's cap."""

    strength: float | None = Field(None, ge=0.0, le=1.0)
    max_per_category: int | None = Field(None, ge=1, le=1000)


class SurfaceRules(_Rule):
    """Everything that applies to one surface's lists."""

    filter: Filter = Filter()
    boost: tuple[Boost, ...] = ()
    pin: tuple[Pin, ...] = ()
    bury: tuple[Bury, ...] = ()
    diversity: Diversity = Diversity()

    @model_validator(mode="after")
    def _one_pin_per_position(self) -> SurfaceRules:
        positions = [p.position for p in self.pin]
        if len(set(positions)) != len(positions):
            raise ValueError(f"two pins share a position: {sorted(positions)}")
        return self


class RuleSet(_Rule):
    """The rules document: ``default`` applies to surfaces not listed under ``surfaces`` (or none given).

    >>> home = {"pin": [{"item": "i1", "position": 1}]}
    >>> rules = RuleSet.model_validate({"version": 1, "surfaces": {"home": home}})
    >>> rules.for_surface("home").pin[0].item, rules.for_surface("search").pin
    ('i1', ())
    """

    version: Literal[1]
    default: SurfaceRules = SurfaceRules()
    surfaces: dict[_Name, SurfaceRules] = Field(default_factory=dict)

    def for_surface(self, surface: str | None) -> SurfaceRules:
        if surface is None:
            return self.default
        return self.surfaces.get(surface, self.default)

    def pinned_items(self, surface: str | None) -> list[str]:
        """Ids whose metadata serving must fetch besides the candidates'."""
        return [p.item for p in self.for_surface(surface).pin]


def _allowed(
    item: str, meta: ItemMeta, rules: Filter, prefs: Preferences, region: str | None, language: str | None
) -> bool:
    if rules.unavailable and not meta.available:
        return False
    if (rules.region or rules.language) and not meta.allowed_in(
        region if rules.region else None, language if rules.language else None
    ):
        return False
    if item in prefs.hidden_items or not meta.categories.isdisjoint(prefs.muted_categories):
        return False
    return not rules.deny.matches(item, meta)


def _boosted(item: str, score: float, meta: ItemMeta, rules: SurfaceRules, prefs: Preferences) -> float:
    for boost in rules.boost:
        if boost.matches(item, meta):
            score = score * boost.multiply + boost.add
    if item in prefs.liked_items or not meta.categories.isdisjoint(prefs.liked_categories):
        score *= LIKED_BOOST
    return score


def _pin(
    ranked: list[tuple[str, float]], pins: Sequence[Pin], allowed: set[str], n: int
) -> list[tuple[str, float]]:
    for pin in sorted(pins, key=lambda p: p.position):
        if pin.item not in allowed:
            continue
        own = next((s for i, s in ranked if i == pin.item), None)
        ranked = [(i, s) for i, s in ranked if i != pin.item]
        at = min(pin.position - 1, len(ranked))
        score = own if own is not None else (ranked[at][1] if at < len(ranked) else 0.0)
        ranked.insert(at, (pin.item, score))
    return ranked[:n]


def apply(
    candidates: Sequence[tuple[str, float]],
    items: Mapping[str, ItemMeta],
    rules: SurfaceRules,
    *,
    n: int,
    strength: float,
    region: str | None = None,
    language: str | None = None,
    prefs: Preferences = _NO_PREFERENCES,
) -> list[tuple[str, float]]:
    """The n items to serve from ``candidates`` (best first): filter, boost, bury, diversify, pin.

    ``strength`` is the default diversity strength (the surface's own wins); ``items`` holds the
    metadata of the candidates and pinned ids (missing ones are `UNKNOWN`).

    >>> cands = [("i1", 0.9), ("i2", 0.8), ("i3", 0.7)]
    >>> meta = {"i2": ItemMeta(available=False)}
    >>> rules = SurfaceRules(pin=(Pin(item="i3", position=1),))
    >>> apply(cands, meta, rules, n=2, strength=0.0)
    [('i3', 0.7), ('i1', 0.9)]
    """
    meta_of = {item: items.get(item, UNKNOWN) for item, _ in candidates}
    for pin in rules.pin:
        meta_of.setdefault(pin.item, items.get(pin.item, UNKNOWN))
    allowed = {i for i, m in meta_of.items() if _allowed(i, m, rules.filter, prefs, region, language)}
    scored = [(i, _boosted(i, s, meta_of[i], rules, prefs)) for i, s in candidates if i in allowed]
    scored.sort(key=lambda pair: -pair[1])  # stable: equal scores keep the model's order
    buried = [(i, s) for i, s in scored if any(b.matches(i, meta_of[i]) for b in rules.bury)]
    buried_ids = {i for i, _ in buried}
    head = [(i, s) for i, s in scored if i not in buried_ids]
    strength = rules.diversity.strength if rules.diversity.strength is not None else strength
    categories = {i: m.categories for i, m in meta_of.items()}
    served = diversify(head, categories, n, strength, rules.diversity.max_per_category)
    served += buried[: n - len(served)]
    return _pin(served, rules.pin, allowed, n)
