"""Joins rewards to logged decisions by decision_id within the reward wait window; pure, no Faust.

State lives in a mapping keyed by decision_id (a changelog-backed Faust table in the worker), so a
replacement worker resumes the open windows. A decision whose window closes without a reward is learned
with the default reward, as Azure Personalizer does; only the first reward of a decision counts.

Windows close on ticks read from the topics themselves, at the time each tick was sent: a decision's
when a tick of the rewards partition is read, a lone reward's when a tick of the decisions partition is.
A tick is read after every record written before it, so however far one topic's partition is read
behind the other's, a record sent in time is read before the tick that would close its window.

A tick finds the windows it closes in an index by partition and deadline, not by scanning the table: an
entry's every change is indexed, and the whole index is rebuilt from the table whenever a rebalance
restored it (`RewardJoin.reindex`), and every ``rebuild_ms`` anyway.
"""

from __future__ import annotations

__all__ = ["Example", "JoinOutcome", "Pending", "RewardJoin"]

import heapq
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from schemas.decisions import DecisionRecord, RewardRecord

#: decision_id -> entry: ``{"p": partition, "deadline": ms, "decision": {...} | None,
#: "reward": float | None, "reward_ts": ms | None, "done": bool}``.
Pending = MutableMapping[str, dict[str, Any]]


def _on_decisions_tick(entry: dict[str, Any]) -> bool:
    """Whether a decisions tick closes the entry (a reward waiting for its decision) or a rewards tick
    (a decision, joined or not)."""
    return entry.get("decision") is None and not entry.get("done")


class JoinOutcome(StrEnum):
    """What one record, or one closed window, did."""

    JOINED = "joined"  # a reward met its decision in time: learn it
    WAITING = "waiting"  # a decision (or an early reward) is waiting for its other half
    DUPLICATE = "duplicate"  # a second reward, or a decision seen before
    LATE = "late"  # a reward sent after the window: ignored, the decision gets the default
    EXPIRED = "expired"  # a window closed without a reward: learn the default reward
    ORPHAN = "orphan"  # a reward whose decision never arrived


@dataclass(frozen=True, slots=True)
class Example:
    """What the policy learns: the logged decision and the reward its chosen action earned."""

    decision: DecisionRecord
    reward: float
    outcome: JoinOutcome

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision.model_dump(mode="json", exclude_none=True),
            "reward": self.reward,
            "outcome": self.outcome.value,
        }


class RewardJoin:
    """The join of one worker; ``now_ms`` is always passed in, so tests control time.

    >>> join = RewardJoin({}, wait_ms=60_000, default_reward=0.0)
    >>> join.expire(0, 1)
    []
    """

    def __init__(
        self, pending: Pending, *, wait_ms: int, default_reward: float, rebuild_ms: int = 300_000
    ) -> None:
        self.pending = pending
        self.wait_ms = wait_ms
        self.default_reward = default_reward
        #: (partition, closes on a decisions tick) -> heap of (deadline, decision_id). Items of entries
        #: changed or removed since are skipped when they come up (`_current`).
        self._due: dict[tuple[int, bool], list[tuple[int, str]]] = {}
        self.rebuild_ms = rebuild_ms
        self._built_ms: float | None = None

    async def reindex(self) -> None:
        """Forget the index: the next tick rebuilds it from the table (a rebalance restored entries
        this join did not write). Faust calls it after each recovery."""
        self._built_ms = None

    def _put(self, key: str, entry: dict[str, Any]) -> None:
        """Write the entry and index its deadline."""
        self.pending[key] = entry
        heap = self._due.setdefault((int(entry["p"]), _on_decisions_tick(entry)), [])
        heapq.heappush(heap, (int(entry["deadline"]), key))

    def _rebuild(self) -> None:
        self._due = {}
        for key, entry in self.pending.items():
            self._due.setdefault((int(entry["p"]), _on_decisions_tick(entry)), []).append(
                (int(entry["deadline"]), key)
            )
        for heap in self._due.values():
            heapq.heapify(heap)
        self._built_ms = time.monotonic() * 1000.0

    def _current(self, key: str, deadline: int, decisions: bool) -> dict[str, Any] | None:
        """The entry of an index item, if the item still describes it."""
        entry = self.pending.get(key)
        if entry is None or int(entry["deadline"]) != deadline or _on_decisions_tick(entry) != decisions:
            return None
        return entry

    def _in_time(self, decision: DecisionRecord, reward_ts: int) -> bool:
        return reward_ts - decision.ts <= self.wait_ms

    def _done(self, key: str, entry: dict[str, Any]) -> None:
        # Keep a small tombstone until the window closes, so duplicates are recognised and dropped.
        self._put(key, {"p": entry["p"], "deadline": entry["deadline"], "done": True})

    def on_decision(
        self, decision: DecisionRecord, partition: int, now_ms: int
    ) -> tuple[JoinOutcome, Example | None]:
        key = decision.decision_id
        entry = self.pending.get(key)
        if entry is not None and (entry.get("done") or entry.get("decision") is not None):
            return JoinOutcome.DUPLICATE, None
        # Windows close in processing time, at least wait_ms after the decision is read, so a worker
        # catching up on a backlog still reads the rewards that were sent in time.
        deadline = max(decision.ts, now_ms) + self.wait_ms
        if entry is not None and entry.get("reward") is not None:
            if self._in_time(decision, int(entry["reward_ts"])):
                self._done(key, {"p": partition, "deadline": deadline})
                return JoinOutcome.JOINED, Example(decision, float(entry["reward"]), JoinOutcome.JOINED)
            outcome = JoinOutcome.LATE
        else:
            outcome = JoinOutcome.WAITING
        self._put(key, {
            "p": partition,
            "deadline": deadline,
            "decision": decision.model_dump(mode="json", exclude_none=True),
            "reward": None,
            "reward_ts": None,
            "done": False,
        })  # fmt: skip
        return outcome, None

    def on_reward(
        self, reward: RewardRecord, partition: int, now_ms: int
    ) -> tuple[JoinOutcome, Example | None]:
        key = reward.decision_id
        entry = self.pending.get(key)
        if entry is None:
            # Its decision was in Kafka before the reward was sent: a decisions tick sent a wait after the
            # reward (room for the clocks of API and worker to differ) comes after the decision, if any.
            self._put(key, {
                "p": partition,
                "deadline": max(reward.ts, now_ms) + self.wait_ms,
                "decision": None,
                "reward": float(reward.reward),
                "reward_ts": reward.ts,
                "done": False,
            })  # fmt: skip
            return JoinOutcome.WAITING, None
        if entry.get("done") or entry.get("reward") is not None:
            return JoinOutcome.DUPLICATE, None
        decision = DecisionRecord.model_validate(entry["decision"])
        if not self._in_time(decision, reward.ts):
            return JoinOutcome.LATE, None
        self._done(key, entry)
        return JoinOutcome.JOINED, Example(decision, float(reward.reward), JoinOutcome.JOINED)

    def expire(
        self, partition: int, tick_ms: int, *, decisions: bool = False
    ) -> list[tuple[JoinOutcome, Example | None]]:
        """Close the windows of ``partition`` due by ``tick_ms``, the time a tick read from the rewards
        partition (decisions and rewards already joined) or, with ``decisions``, from the decisions
        partition (rewards still waiting for theirs) was sent."""
        if self._built_ms is None or time.monotonic() * 1000.0 - self._built_ms >= self.rebuild_ms:
            self._rebuild()
        heap = self._due.get((partition, decisions), [])
        closed: list[tuple[JoinOutcome, Example | None]] = []
        while heap and heap[0][0] <= tick_ms:
            deadline, key = heapq.heappop(heap)
            entry = self._current(key, deadline, decisions)
            if entry is None:
                continue
            del self.pending[key]
            if entry.get("done"):
                continue
            if entry.get("decision") is not None:
                decision = DecisionRecord.model_validate(entry["decision"])
                example = Example(decision, self.default_reward, JoinOutcome.EXPIRED)
                closed.append((JoinOutcome.EXPIRED, example))
            else:
                closed.append((JoinOutcome.ORPHAN, None))
        return closed
