"""Tests for catalog coverage (`engine.serving.coverage`): buffered, flushed at most once a second."""

from __future__ import annotations

from typing import cast

from engine.serving.coverage import Coverage
from engine.store.redis_store import RedisStore
from tests.engine.api.fakes import FakeStore


class Clock:
    now = 7200.5

    def __call__(self) -> float:
        return self.now


async def test_served_items_are_counted_once_per_flush_interval() -> None:
    store, clock = FakeStore(), Clock()
    coverage = Coverage(24, clock=clock)
    coverage.observe(["i1", "i2"])
    assert await coverage.maybe_flush(cast(RedisStore, store)) is None and store.served == set()
    coverage.observe(["i2", "i3"])
    clock.now += 1.0
    assert await coverage.maybe_flush(cast(RedisStore, store)) == 3
    coverage.observe(["i1"])
    assert await coverage.maybe_flush(cast(RedisStore, store)) is None
