"""Stops a worker whose table recovery has stopped making progress, so its partitions move on.

After a rebalance Faust reads each assigned profiles-changelog partition up to its high-water mark before
the worker handles any event of it. Twice in multi-worker bench starts (docs/scale-out.md, "What does not
scale yet") one worker's recovery of partitions it kept through the rebalance never received a record,
and the events of those partitions waited for good while every other partition flowed. The watch reads
Faust's recovery state every few seconds, in a task of its own from the worker's first partition
assignment on (Faust starts the app's timers only after the first recovery, which may be the stuck
one): while changelog records remain to be read and the counts of what remains have not moved for
``patience_s``, it logs which partitions are stuck and crashes the worker (exit code 1). The group then
gives the partitions to the other workers, whose recovery of them starts afresh, and an orchestrator
restarts the worker (deploy/: compose's restart policy, Kubernetes); one started by `personalize stack
up` stays down, its partitions with the others. Never touches the recovery itself.
"""

from __future__ import annotations

__all__ = ["RecoveryWatch"]

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from schemas.errors import RecoveryStalledError

log = logging.getLogger(__name__)


class _Recovery(Protocol):
    """What the watch reads of Faust's `faust.tables.recovery.Recovery`."""

    in_recovery: bool

    def active_remaining(self) -> Mapping[Any, int]: ...


class RecoveryWatch:
    """The timer's body: ``crash`` the worker once the active recovery has been stuck ``patience_s``.

    >>> import asyncio
    >>> class Stuck:
    ...     in_recovery = True
    ...     def active_remaining(self): return {"profiles-changelog[9]": 2}
    >>> crashed, now = [], [0.0]
    >>> async def crash(error): crashed.append(str(error))
    >>> watch = RecoveryWatch(Stuck(), crash, patience_s=60.0, clock=lambda: now[0])
    >>> for now[0] in (0.0, 30.0, 59.0): asyncio.run(watch())
    >>> crashed
    []
    >>> now[0] = 60.0; asyncio.run(watch()); crashed
    ['table recovery made no progress for 60 s: profiles-changelog[9] (2 records left)']
    """

    def __init__(
        self,
        recovery: _Recovery,
        crash: Callable[[BaseException], Awaitable[None]],
        *,
        patience_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recovery = recovery
        self.crash = crash
        self.patience_s = patience_s
        self.clock = clock
        #: What remained at the last change, and since when.
        self._seen: tuple[tuple[str, int], ...] = ()
        self._since = 0.0
        self._crashed = False

    async def run(self, interval_s: float = 5.0) -> None:
        """Watch until cancelled (the worker's task); a failed reading is logged, never raised."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self()
            except Exception:  # noqa: BLE001 - the watch must not stop a worker for its own failure
                log.exception("could not read the table recovery's progress")

    async def __call__(self) -> None:
        left = self.recovery.active_remaining() if self.recovery.in_recovery else {}
        remaining = tuple(sorted((_name(tp), int(n)) for tp, n in left.items() if n > 0))
        now = self.clock()
        if remaining != self._seen:
            self._seen, self._since = remaining, now
            return
        if not remaining or self._crashed or now - self._since < self.patience_s:
            return
        stuck = ", ".join(f"{tp} ({n} records left)" for tp, n in remaining)
        error = RecoveryStalledError(
            f"table recovery made no progress for {now - self._since:.0f} s: {stuck}"
        )
        log.error("%s; stopping this worker so that the group gives its partitions to the others", error)
        self._crashed = True
        await self.crash(error)


def _name(tp: Any) -> str:
    """``topic[partition]`` of a Faust ``TP`` (anything else as it prints)."""
    topic, partition = getattr(tp, "topic", None), getattr(tp, "partition", None)
    return f"{topic}[{partition}]" if topic is not None and partition is not None else str(tp)
