"""What serve-time rules know about a catalog item, and its layout in the Redis item hash.

Pure conversion between `ItemRecord`, the hash of `schemas.keys.item` and `ItemMeta`; no I/O. An item
without a hash is unknown: available, without categories, allowed everywhere.
"""

from __future__ import annotations

__all__ = ["FIELDS", "UNKNOWN", "ItemMeta", "from_hash", "to_hash"]

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from schemas.events import ItemRecord
from schemas.keys import ItemField

#: The order `RedisStore.read_items` asks for the hash's fields in (HMGET), which `from_hash` expects.
FIELDS = tuple(ItemField)


@dataclass(frozen=True, slots=True)
class ItemMeta:
    """An item's categories, tags, availability, and where (regions) and for whom (languages) it fits.

    ``regions`` and ``languages`` of None mean everywhere / any language; codes compare case-blind.

    >>> ItemMeta(frozenset({"news"}), regions=frozenset({"gb"})).allowed_in("GB", None)
    True
    >>> ItemMeta(languages=frozenset({"de"})).allowed_in(None, "en")
    False
    """

    categories: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    available: bool = True
    regions: frozenset[str] | None = None
    languages: frozenset[str] | None = None

    def allowed_in(self, region: str | None, language: str | None) -> bool:
        """False if the item is limited to other regions or languages than the request's."""
        if region and self.regions is not None and region.lower() not in self.regions:
            return False
        return not (language and self.languages is not None and language.lower() not in self.languages)


UNKNOWN = ItemMeta()


def _lower(values: Sequence[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(v.lower() for v in values)


def to_hash(record: ItemRecord) -> dict[str, str]:
    """The item hash of a catalog record (lists as JSON arrays; regions/languages only when limited).

    >>> to_hash(ItemRecord(item_id="i1", categories=["a"], regions=["GB"]))
    {'categories': '["a"]', 'tags': '[]', 'available': '1', 'regions': '["GB"]'}
    """
    fields = {
        ItemField.CATEGORIES.value: orjson.dumps(record.categories).decode(),
        ItemField.TAGS.value: orjson.dumps(record.tags).decode(),
        ItemField.AVAILABLE.value: "1" if record.available else "0",
    }
    if record.regions is not None:
        fields[ItemField.REGIONS.value] = orjson.dumps(record.regions).decode()
    if record.languages is not None:
        fields[ItemField.LANGUAGES.value] = orjson.dumps(record.languages).decode()
    return fields


def _list(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # a field another writer garbled must not break serving: treat it as unset
    return [str(v) for v in value] if isinstance(value, list) else None


def from_hash(values: Sequence[str | None]) -> ItemMeta:
    """`ItemMeta` from the HMGET answer for `FIELDS` (all None: the item has no hash).

    >>> meta = from_hash(['["a","b"]', None, "0", '["GB"]', None])
    >>> sorted(meta.categories), meta.available, meta.regions, meta.languages
    (['a', 'b'], False, frozenset({'gb'}), None)
    >>> from_hash([None] * 5) is UNKNOWN
    True
    """
    if all(v is None for v in values):
        return UNKNOWN
    categories, tags, available, regions, languages = values
    return ItemMeta(
        categories=frozenset(_list(categories) or ()),
        tags=frozenset(_list(tags) or ()),
        available=available != "0",
        regions=_lower(_list(regions)),
        languages=_lower(_list(languages)),
    )
