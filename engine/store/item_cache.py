"""Item metadata kept in the API process for a few seconds, so a request reads Redis only once.

An entry older than ``refresh_s`` is still served but re-read in the background (all such items, a few
hundred per script call); only items never seen, or not seen for ``max_age_s``, are read while the request
waits.
Reads only, and never raises for a failed background refresh: the entries just stay until ``max_age_s``.
"""

from __future__ import annotations

__all__ = ["ItemCache"]

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from redis.exceptions import RedisError

from engine.store.item_meta import ItemMeta

log = logging.getLogger(__name__)

#: ``read(item_ids)``: metadata of the given items in one round trip (`RedisStore.read_items`).
Reader = Callable[[Sequence[str]], Awaitable[dict[str, ItemMeta]]]


class ItemCache:
    """Metadata by item id, at most ``max_items`` of them (the least recently read go first).

    >>> from engine.store.item_meta import UNKNOWN
    >>> reads = []
    >>> async def read(ids):
    ...     reads.append(list(ids))
    ...     return {i: UNKNOWN for i in ids}
    >>> cache = ItemCache(clock=lambda: 0.0)
    >>> _ = asyncio.run(cache.read(read, ["i1", "i2"])); _ = asyncio.run(cache.read(read, ["i2", "i3"]))
    >>> reads
    [['i1', 'i2'], ['i3']]
    """

    def __init__(
        self,
        *,
        refresh_s: float = 5.0,
        max_age_s: float = 30.0,
        max_items: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refresh_s = refresh_s
        self.max_age_s = max_age_s
        self.max_items = max_items
        self.clock = clock
        #: item id -> (metadata, when read), least recently read first: the eviction order (an OrderedDict:
        #: evicting a plain dict's first key slows down as its front empties).
        self._entries: OrderedDict[str, tuple[ItemMeta, float]] = OrderedDict()
        self._due: set[str] = set()
        self._refresher: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    async def read(self, reader: Reader, item_ids: Sequence[str]) -> dict[str, ItemMeta]:
        """Metadata of ``item_ids``: from the process where young enough, the rest through ``reader``."""
        now = self.clock()
        found: dict[str, ItemMeta] = {}
        missing: list[str] = []
        for item in item_ids:
            entry = self._entries.get(item)
            if entry is None or now - entry[1] > self.max_age_s:
                missing.append(item)
                continue
            found[item] = entry[0]
            if now - entry[1] > self.refresh_s:
                self._due.add(item)
        if self._due and self._refresher is None:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh(reader))
        if missing:
            fetched = await reader(missing)
            self._keep(fetched, now)
            found.update(fetched)
        return found

    def _keep(self, metas: dict[str, ItemMeta], when: float) -> None:
        for item, meta in metas.items():
            self._entries[item] = (meta, when)
            self._entries.move_to_end(item)  # read recently: evicted last
        for _ in range(len(self._entries) - self.max_items):
            self._entries.popitem(last=False)

    async def _refresh(self, reader: Reader) -> None:
        try:
            while self._due:
                due, self._due = sorted(self._due), set()
                when = self.clock()
                self._keep(await reader(due), when)
        except (RedisError, OSError) as exc:
            log.debug("item metadata not refreshed: %s", exc)
            self._due.clear()
        finally:
            self._refresher = None
