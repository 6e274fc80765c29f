"""The owner's path's phase timers (streams/phases.py) time sync and async calls and put every call
back as it was."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.phases import OWNER_PHASES, Timers


class _Calls:
    def work(self, n: int) -> int:
        return sum(range(n))

    async def wait(self, n: int) -> int:
        await asyncio.sleep(0)
        return sum(range(n))


async def test_sync_and_async_calls_are_timed_while_entered() -> None:
    timers = Timers({"work": (_Calls, "work"), "wait": (_Calls, "wait")})
    with timers:
        assert _Calls().work(20_000) == sum(range(20_000))
        assert await _Calls().wait(20_000) == sum(range(20_000))
    assert timers.calls == {"work": 1, "wait": 1}
    assert timers.seconds["work"] > 0 and timers.seconds["wait"] > 0
    _Calls().work(10)  # after the exit: not counted
    assert timers.calls["work"] == 1
    phases = timers.us_per_event(2, total_us=1e9)
    assert set(phases) == {"work", "wait", "rest"} and phases["rest"] > 0


def test_the_owner_s_calls_are_put_back_as_they_were() -> None:
    def current() -> list[Any]:
        return [
            owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
            for owner, name in OWNER_PHASES.values()
        ]

    before = current()
    with Timers(OWNER_PHASES):
        during = current()
    assert all(a is not b for a, b in zip(before, during, strict=True))
    assert all(a is b for a, b in zip(before, current(), strict=True))
