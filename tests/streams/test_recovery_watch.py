"""The recovery watch stops a worker only when Faust's recovery is stuck, once, and reads what Faust has."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from faust.tables.recovery import Recovery

from schemas.errors import RecoveryStalledError
from streams.recovery_watch import RecoveryWatch


class _Recovery:
    def __init__(self) -> None:
        self.in_recovery = True
        self.left: dict[str, int] = {"changelog[3]": 5, "changelog[4]": 0}

    def active_remaining(self) -> Mapping[str, int]:
        return self.left


def test_progress_or_the_end_of_recovery_resets_the_patience() -> None:
    recovery, now, crashed = _Recovery(), [0.0], []

    async def crash(error: BaseException) -> None:
        crashed.append(error)

    watch = RecoveryWatch(recovery, crash, patience_s=60.0, clock=lambda: now[0])

    def at(t: float) -> None:
        now[0] = t
        asyncio.run(watch())

    at(0.0)
    at(50.0)
    recovery.left["changelog[3]"] = 4  # one record read: patience starts again
    at(55.0)
    at(110.0)
    assert crashed == []
    recovery.in_recovery = False  # done: nothing is stuck
    at(200.0)
    recovery.in_recovery = True  # the next rebalance's recovery
    at(210.0)
    at(269.0)
    assert crashed == []
    at(270.0)
    at(400.0)
    assert len(crashed) == 1 and isinstance(crashed[0], RecoveryStalledError)
    assert "changelog[3] (4 records left)" in str(crashed[0]) and "changelog[4]" not in str(crashed[0])


def test_faust_recovery_has_what_the_watch_reads() -> None:
    assert callable(Recovery.active_remaining)
    assert "in_recovery" in Recovery.__annotations__ or hasattr(Recovery, "in_recovery")
