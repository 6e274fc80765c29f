"""Serving one user's recommendations from Redis, with the fallback for users who have none yet.

The HTTP API and the SDK's direct-Redis mode both answer through `recommend`, so they never disagree.
Reads only: nothing here learns or writes.
"""

from __future__ import annotations

__all__ = ["DEFAULT_POLICY", "Served", "ServingPolicy", "locale_scopes", "recommend", "region_of"]

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.serving import rules as business_rules
from engine.serving.diversity import intra_list_diversity
from engine.serving.rules import RuleSet, SurfaceRules
from engine.serving.rules_file import DEFAULT_RULES
from engine.store.item_cache import ItemCache
from engine.store.item_meta import ItemMeta
from engine.store.preferences import Preferences
from engine.store.redis_store import RedisStore
from schemas.reasons import Reason, reason_json


@dataclass(frozen=True, slots=True)
class Served:
    """What a caller gets for one user, and where it came from.

    ``source`` is ``personalized`` (the user's own list), ``trending:<locale>`` (trending in the
    caller's locale or its language), ``trending`` (trending everywhere) or ``none``. ``reasons``
    says why each item is there, by item id (an item without one has null reason fields).

    >>> why = {"i1": Reason("trending", "en")}
    >>> Served("u1", [("i1", 0.5)], "trending:en", None, None, reasons=why).to_json()["items"]
    [{'item_id': 'i1', 'score': 0.5, 'reason': 'popular in your language', 'reason_code': 'trending',
      'anchor': 'en', 'signals': []}]
    """

    user_id: str
    items: list[tuple[str, float]]
    source: str
    updated_ms: int | None
    model_version: str | None
    #: Intra-list diversity of ``items`` (`engine.serving.diversity`), for metrics; not in the answer.
    diversity: float | None = field(default=None, compare=False)
    reasons: dict[str, Reason] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "items": [
                {"item_id": item, "score": score, **reason_json(self.reasons.get(item))}
                for item, score in self.items
            ],
            "source": self.source,
            "updated_ms": self.updated_ms,
            "model_version": self.model_version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Served:
        """The inverse of `to_json` (what the SDK does with the API's answer).

        >>> s = Served("u1", [("i1", 0.5), ("i2", 0.4)], "personalized", 17, "m1",
        ...            reasons={"i1": Reason("item", "i0", ("sequence",))})
        >>> Served.from_json(s.to_json()) == s
        True
        """
        why = {str(e["item_id"]): Reason.from_json(e) for e in data["items"]}
        return cls(
            user_id=str(data["user_id"]),
            items=[(str(e["item_id"]), float(e["score"])) for e in data["items"]],
            source=str(data["source"]),
            updated_ms=data.get("updated_ms"),
            model_version=data.get("model_version"),
            reasons={item: reason for item, reason in why.items() if reason is not None},
        )


def locale_scopes(locale: str | None) -> list[str]:
    """Trending scopes to try for a locale, most specific first: the locale, then its language.

    >>> locale_scopes("en-GB"), locale_scopes("fr"), locale_scopes(None)
    (['en-GB', 'en'], ['fr'], [])
    """
    if not locale:
        return []
    language = locale.replace("_", "-").split("-", 1)[0]
    return [locale] if language in ("", locale) else [locale, language]


def region_of(locale: str | None) -> str | None:
    """The region subtag of a locale (two letters or three digits), if it has one.

    >>> region_of("en-GB"), region_of("pt_BR"), region_of("zh-Hant-TW"), region_of("es-419"), region_of("fr")
    ('GB', 'BR', 'TW', '419', None)
    """
    if not locale:
        return None
    for part in locale.replace("_", "-").split("-")[1:]:
        if (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            return part
    return None


@dataclass(frozen=True, slots=True)
class ServingPolicy:
    """What shapes a served list besides the model: the rules, the default diversity strength, and how
    many candidates are read per item served (so filters and diversity have something to choose from)."""

    rules: RuleSet = DEFAULT_RULES
    strength: float = 0.3
    candidates_factor: int = 3
    #: Where item metadata is read through: None reads Redis on every request (the SDK's direct mode).
    items: ItemCache | None = None


DEFAULT_POLICY = ServingPolicy()


@dataclass(frozen=True, slots=True)
class _Request:
    store: RedisStore
    n: int
    surface: str | None
    region: str | None
    language: str | None
    prefs: Preferences
    policy: ServingPolicy


def _promoted(item: str, meta: ItemMeta, rules: SurfaceRules) -> bool:
    """Whether the surface's boosts raise the item's score (a boost may also lower it)."""
    score = 1.0
    for boost in rules.boost:
        if boost.matches(item, meta):
            score = score * boost.multiply + boost.add
    return score > 1.0


def _explained(
    items: list[tuple[str, float]],
    metas: dict[str, ItemMeta],
    rules: SurfaceRules,
    known: dict[str, Reason],
    default: Reason | None,
) -> dict[str, Reason]:
    """Why each served item is there: a pin, then a business boost (with the model's signals), then the
    stored reason (``known``), else ``default`` (the fallback's)."""
    pinned = {p.item for p in rules.pin}
    out: dict[str, Reason] = {}
    for item, _ in items:
        reason = known.get(item, default)
        if item in pinned:
            out[item] = Reason("pinned")
        elif item in metas and _promoted(item, metas[item], rules):
            out[item] = Reason("promoted", None, reason.signals if reason is not None else ())
        elif reason is not None:
            out[item] = reason
    return out


async def _shaped(
    req: _Request,
    candidates: Sequence[tuple[str, float]],
    known: dict[str, Reason],
    default: Reason | None = None,
) -> tuple[list[tuple[str, float]], float | None, dict[str, Reason]]:
    """Candidates through the surface's rules, with the metadata of all of them read in one round trip,
    and why each served item is there (`_explained`)."""
    if not candidates:
        return [], None, {}
    rules = req.policy.rules.for_surface(req.surface)
    ids = list(dict.fromkeys([item for item, _ in candidates] + [p.item for p in rules.pin]))
    cache = req.policy.items
    metas = await (req.store.read_items(ids) if cache is None else cache.read(req.store.read_items, ids))
    items = business_rules.apply(
        candidates,
        metas,
        rules,
        n=req.n,
        strength=req.policy.strength,
        region=req.region,
        language=req.language,
        prefs=req.prefs,
    )
    diversity = intra_list_diversity([metas[item].categories for item, _ in items if item in metas])
    return items, diversity, _explained(items, metas, rules, known, default)


async def recommend(
    store: RedisStore,
    user_id: str,
    n: int,
    locale: str | None = None,
    *,
    surface: str | None = None,
    region: str | None = None,
    policy: ServingPolicy = DEFAULT_POLICY,
) -> Served:
    """The user's top-n after the surface's rules and the user's preferences; for a user without a
    list (or whose list the rules empty), trending in their locale, then globally, else empty. Each
    item keeps the reason stored with it; pins, boosts and the trending fallback have their own.

    ``region`` defaults to the locale's region subtag. An empty answer is the last resort, never an error.
    """
    depth = n * policy.candidates_factor
    recs, prefs = await store.read_with_preferences(user_id, depth)
    language = locale.replace("_", "-").split("-", 1)[0] if locale else None
    req = _Request(store, n, surface, region or region_of(locale), language, prefs, policy)
    items, diversity, why = await _shaped(req, recs.items, recs.reasons)
    if items:
        return Served(user_id, items, "personalized", recs.updated_ms, recs.model_version, diversity, why)
    for scope in locale_scopes(locale):
        trending = await store.read_trending(depth, scope)
        items, diversity, why = await _shaped(req, trending, {}, Reason("trending", scope))
        if items:
            return Served(user_id, items, f"trending:{scope}", None, None, diversity, why)
    items, diversity, why = await _shaped(req, await store.read_trending(depth), {}, Reason("trending"))
    return Served(user_id, items, "trending" if items else "none", None, None, diversity, why)
