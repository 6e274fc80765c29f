"""`engine.store.item_cache.ItemCache`: young entries from the process, old ones refreshed in the background,
too old or unknown ones read while the request waits."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from engine.store.item_cache import ItemCache
from engine.store.item_meta import ItemMeta


class Catalog:
    def __init__(self) -> None:
        self.available = {"i1": True, "i2": True}
        self.reads: list[list[str]] = []

    async def read(self, ids: Sequence[str]) -> dict[str, ItemMeta]:
        self.reads.append(list(ids))
        return {i: ItemMeta(available=self.available.get(i, True)) for i in ids}


async def test_an_old_entry_is_served_once_more_then_refreshed_in_the_background() -> None:
    now = [0.0]
    cache, catalog = ItemCache(refresh_s=5, max_age_s=30, clock=lambda: now[0]), Catalog()
    assert (await cache.read(catalog.read, ["i1", "i2"]))["i1"].available
    catalog.available["i1"] = False
    now[0] = 6.0
    assert (await cache.read(catalog.read, ["i1"]))["i1"].available  # stale, not waited for
    await asyncio.sleep(0)  # the refresh runs
    assert catalog.reads == [["i1", "i2"], ["i1"]]
    assert not (await cache.read(catalog.read, ["i1"]))["i1"].available


async def test_an_entry_past_its_max_age_is_read_while_the_request_waits() -> None:
    now = [0.0]
    cache, catalog = ItemCache(refresh_s=5, max_age_s=30, clock=lambda: now[0]), Catalog()
    await cache.read(catalog.read, ["i1"])
    catalog.available["i1"] = False
    now[0] = 31.0
    assert not (await cache.read(catalog.read, ["i1"]))["i1"].available


async def test_the_least_recently_read_items_go_first() -> None:
    cache, catalog = ItemCache(max_items=2, clock=lambda: 0.0), Catalog()
    for item in ("a", "b", "c"):
        await cache.read(catalog.read, [item])
    await cache.read(catalog.read, ["a", "c"])
    assert catalog.reads[-1] == ["a"] and len(cache) == 2
