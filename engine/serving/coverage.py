"""Catalog coverage: how many distinct items were served over a rolling window, across API processes.

Served ids are buffered in the process and added to an hourly HyperLogLog in Redis at most once per
``flush_every_s``, so the hot read path pays no extra round trip. A failed flush only loses a count.
"""

from __future__ import annotations

__all__ = ["Coverage"]

import logging
import time
from collections.abc import Callable, Iterable

from redis.exceptions import RedisError

from engine.store.redis_store import RedisStore

log = logging.getLogger(__name__)

#: Most ids kept between two flushes; beyond it new ids are dropped (coverage is an estimate anyway).
_MAX_BUFFER = 100_000


class Coverage:
    """Distinct served items over the last ``window_hours`` (HyperLogLog estimate, about 1% error)."""

    def __init__(
        self,
        window_hours: int,
        *,
        flush_every_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_hours = window_hours
        self.flush_every_s = flush_every_s
        self.clock = clock
        self._buffer: set[str] = set()
        self._next_flush = clock() + flush_every_s

    def observe(self, items: Iterable[str]) -> None:
        """Remember served ids until the next flush."""
        if len(self._buffer) < _MAX_BUFFER:
            self._buffer.update(items)

    async def maybe_flush(self, store: RedisStore) -> int | None:
        """If due, add the buffer to Redis and return the window's distinct count; else None."""
        now = self.clock()
        if now < self._next_flush:
            return None
        self._next_flush = now + self.flush_every_s
        hour = int(now // 3600)
        buffered, self._buffer = self._buffer, set()
        try:
            if buffered:
                await store.count_served(sorted(buffered), hour, (self.window_hours + 1) * 3600)
            return await store.served_distinct(range(hour - self.window_hours + 1, hour + 1))
        except (RedisError, OSError) as exc:
            log.debug("coverage not counted: %s", exc)
            return None
