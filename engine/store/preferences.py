"""A user's explicit choices as serving sees them, and the hash changes a preferences request makes.

Pure: the Redis hash (`schemas.keys.preferences`) is read and written by `engine.store.redis_store`. Muted
categories and hidden items are filtered at serve time, so they take effect on the very next request.
"""

from __future__ import annotations

__all__ = ["Preferences", "changes"]

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.keys import PreferenceKind, preference_field
from schemas.users import PreferencesRequest


@dataclass(frozen=True, slots=True)
class Preferences:
    """Liked, muted and hidden ids of one user (empty for a user who never chose anything).

    >>> p = Preferences.from_hash({"muted_category:horror": "1", "hidden_item:i9": "1", "x": "1"})
    >>> sorted(p.muted_categories), sorted(p.hidden_items), p.liked_items
    (['horror'], ['i9'], frozenset())
    """

    liked_categories: frozenset[str] = frozenset()
    liked_items: frozenset[str] = frozenset()
    muted_categories: frozenset[str] = frozenset()
    hidden_items: frozenset[str] = frozenset()

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> Preferences:
        """From the HGETALL answer; fields of kinds this version does not know are ignored."""
        found: dict[str, set[str]] = {kind.value: set() for kind in PreferenceKind}
        for name in fields:
            kind, sep, ident = name.partition(":")
            if sep and kind in found:
                found[kind].add(ident)
        return cls(
            liked_categories=frozenset(found[PreferenceKind.LIKED_CATEGORY]),
            liked_items=frozenset(found[PreferenceKind.LIKED_ITEM]),
            muted_categories=frozenset(found[PreferenceKind.MUTED_CATEGORY]),
            hidden_items=frozenset(found[PreferenceKind.HIDDEN_ITEM]),
        )

    def to_json(self) -> dict[str, list[str]]:
        return {
            "liked_categories": sorted(self.liked_categories),
            "liked_items": sorted(self.liked_items),
            "muted_categories": sorted(self.muted_categories),
            "hidden_items": sorted(self.hidden_items),
        }


def changes(request: PreferencesRequest, now_ms: int) -> tuple[dict[str, str], list[str]]:
    """Hash fields to set (value: when, epoch ms) and fields to delete, for one request.

    A removal wins over an addition of the same id in the same request; muting a category also
    un-likes it and hiding an item un-likes it, so the hash never holds both.

    >>> changes(PreferencesRequest(muted_categories=["a"], unmuted_categories=["b"]), 5)
    ({'muted_category:a': '5'}, ['liked_category:a', 'muted_category:b'])
    """
    when = str(now_ms)
    kinds = PreferenceKind
    unmuted, unhidden = set(request.unmuted_categories), set(request.unhidden_items)
    muted, hidden = set(request.muted_categories) - unmuted, set(request.hidden_items) - unhidden
    to_set: dict[str, str] = {}
    to_set.update({preference_field(kinds.LIKED_CATEGORY, c): when for c in request.liked_categories})
    to_set.update({preference_field(kinds.LIKED_ITEM, i): when for i in request.liked_items})
    to_set.update({preference_field(kinds.MUTED_CATEGORY, c): when for c in sorted(muted)})
    to_set.update({preference_field(kinds.HIDDEN_ITEM, i): when for i in sorted(hidden)})
    to_delete = [preference_field(kinds.LIKED_CATEGORY, c) for c in sorted(muted)]
    to_delete += [preference_field(kinds.LIKED_ITEM, i) for i in sorted(hidden)]
    to_delete += [preference_field(kinds.MUTED_CATEGORY, c) for c in sorted(unmuted)]
    to_delete += [preference_field(kinds.HIDDEN_ITEM, i) for i in sorted(unhidden)]
    for name in to_delete:
        to_set.pop(name, None)
    return to_set, to_delete
