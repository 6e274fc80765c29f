"""Serving one user's recommendations from Redis, with the fallback for users who have none yet.

The HTTP API and the SDK's direct-Redis mode both answer through `recommend`, so they never disagree.
Reads only: nothing here learns or writes.
"""

from __future__ import annotations

__all__ = ["Served", "locale_scopes", "recommend"]

from dataclasses import dataclass
from typing import Any

from engine.redis_store import RedisStore


@dataclass(frozen=True, slots=True)
class Served:
    """What a caller gets for one user, and where it came from.

    ``source`` is ``personalized`` (the user's own list), ``trending:<locale>`` (trending in the
    caller's locale or its language), ``trending`` (trending everywhere) or ``none``.

    >>> Served("u1", [("i1", 0.5)], "trending:en", None, None).to_json()["items"]
    [{'item_id': 'i1', 'score': 0.5}]
    """

    user_id: str
    items: list[tuple[str, float]]
    source: str
    updated_ms: int | None
    model_version: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "items": [{"item_id": item, "score": score} for item, score in self.items],
            "source": self.source,
            "updated_ms": self.updated_ms,
            "model_version": self.model_version,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Served:
        """The inverse of `to_json` (what the SDK does with the API's answer).

        >>> s = Served("u1", [("i1", 0.5)], "personalized", 17, "m1")
        >>> Served.from_json(s.to_json()) == s
        True
        """
        return cls(
            user_id=str(data["user_id"]),
            items=[(str(e["item_id"]), float(e["score"])) for e in data["items"]],
            source=str(data["source"]),
            updated_ms=data.get("updated_ms"),
            model_version=data.get("model_version"),
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


async def recommend(store: RedisStore, user_id: str, n: int, locale: str | None = None) -> Served:
    """The user's top-n; for a user without a list, trending in their locale, then globally, else empty.

    A user the worker knows but has no candidates for yet gets the fallback too: an empty answer is
    the last resort, never an error.
    """
    recs = await store.read(user_id, n)
    if recs.items:
        return Served(user_id, recs.items, "personalized", recs.updated_ms, recs.model_version)
    for scope in locale_scopes(locale):
        items = await store.read_trending(n, scope)
        if items:
            return Served(user_id, items, f"trending:{scope}", None, None)
    items = await store.read_trending(n)
    return Served(user_id, items, "trending" if items else "none", None, None)
