"""Faust wiring of rank/reward learning: the join agent, the learner agent and their timers.

Decisions and rewards are both keyed by decision_id, so one agent reads the two topics and owns the
pending windows of its partitions in the ``decisions-pending`` table; joined examples go on, keyed by policy
id, to the learner agent. Records that cannot be parsed go to the dead-letter topic with the reason.
"""

from __future__ import annotations

__all__ = ["PENDING_TABLE", "TICK_S", "add_reward_agents"]

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.serving.experiment_stats import ExperimentStats
from engine.store.policy_store import PolicyStore
from engine.store.redis_store import RedisStore
from schemas.decisions import parse_decision, parse_reward
from schemas.errors import InvalidEventError
from streams import codecs, deadletter
from streams.gaps import CONTROL_HEADER, is_control
from streams.learner import Learner
from streams.reward_join import Example, JoinOutcome, RewardJoin

log = logging.getLogger(__name__)

#: The table of open reward windows, keyed by decision_id.
PENDING_TABLE = "decisions-pending"

#: Seconds between the ticks that close expired reward windows (a control record per owned partition of
#: the decisions and the rewards topics, its value the time it was sent in ms).
TICK_S = 1.0

Send = Callable[[str, bytes | None, bytes], Awaitable[Any]]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _sent_ms(tick: bytes | None) -> int:
    """When a tick was sent: its value (ticks of earlier releases had none, and any other control
    record counts as sent now).

    >>> _sent_ms(b"1700000000000"), _sent_ms(b"") > 1_700_000_000_000, _sent_ms(b"nudge") > 0
    (1700000000000, True, True)
    """
    try:
        return int(tick or b"")
    except ValueError:
        return _now_ms()


class _JoinAgent:
    def __init__(self, settings: Settings, join: RewardJoin, metrics: Metrics, send: Send) -> None:
        self.settings = settings
        self.join = join
        self.metrics = metrics
        self.send = send

    async def _emit(self, outcome: JoinOutcome, example: Example | None) -> None:
        self.metrics.bandit_joins.labels(outcome=outcome.value).inc()
        if example is not None:
            key = example.decision.policy.id.encode()
            await self.send(self.settings.bandit_examples_topic, key, orjson.dumps(example.to_json()))

    async def __call__(self, stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            if is_control(message.headers):
                sent_ms = _sent_ms(event.value)
                decisions = message.topic == self.settings.decisions_topic
                for outcome, example in self.join.expire(message.partition, sent_ms, decisions=decisions):
                    await self._emit(outcome, example)
                continue
            try:
                if message.topic == self.settings.decisions_topic:
                    result = self.join.on_decision(parse_decision(event.value), message.partition, _now_ms())
                else:
                    result = self.join.on_reward(parse_reward(event.value), message.partition, _now_ms())
            except Exception as error:  # noqa: BLE001 - input must never crash the worker
                await self.dead_letter(event.value, event.key, message, error)
                continue
            await self._emit(*result)

    async def dead_letter(self, raw: bytes | None, key: bytes | None, message: Any, error: Exception) -> None:
        kind = "invalid" if isinstance(error, InvalidEventError) else "internal"
        if kind == "internal":
            log.exception("record %s[%d]@%d failed", message.topic, message.partition, message.offset)
        value = deadletter.envelope(
            raw, error, topic=message.topic, partition=message.partition, offset=message.offset, key=key
        )
        await self.send(self.settings.dead_letter_topic, key, value)
        self.metrics.dead_letter(kind, deadletter.reason(error))
        self.metrics.bandit_joins.labels(outcome="dead_letter").inc()


def add_reward_agents(app: faust.App, settings: Settings, metrics: Metrics, store: RedisStore) -> Learner:
    """Add the join and learner agents, the pending-decisions table and the tick/publish timers."""
    pending = app.Table(
        PENDING_TABLE,
        partitions=settings.partitions,
        key_type=str,
        schema=faust.Schema(key_type=str, key_serializer=codecs.ORJSON, value_serializer=codecs.ORJSON),
    )
    join = RewardJoin(
        pending, wait_ms=int(settings.reward_wait_s * 1000), default_reward=settings.default_reward
    )
    # A rebalance restores windows this join did not write: its index of deadlines is rebuilt.
    pending.on_recover(join.reindex)

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        return await app.send(topic, key=key, value=value)

    join_agent = _JoinAgent(settings, join, metrics, send)
    both = app.topic(settings.decisions_topic, settings.rewards_topic, partitions=settings.partitions)
    app.agent(both, name="decision-rewards")(join_agent)

    learner = Learner(
        PolicyStore(store.client, settings.namespace, settings.policy_signing_key),
        ExperimentStats(store.client, settings.namespace),
        metrics,
        publish_every=settings.policy_publish_every,
        publish_s=settings.policy_publish_s,
    )

    async def learn(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            try:
                await learner.learn(orjson.loads(event.value or b""))
            except Exception as error:  # noqa: BLE001 - input must never crash the worker
                await join_agent.dead_letter(event.value, event.key, message, error)

    examples = app.topic(settings.bandit_examples_topic, partitions=settings.partitions)
    app.agent(examples, name="bandit-learner")(learn)

    async def tick() -> None:
        # Table changes need an agent's context, so the timer asks the agent to close windows: a tick on
        # each owned partition of both topics, read after every record before it (streams.reward_join).
        both = (settings.decisions_topic, settings.rewards_topic)
        owned = [(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in both]
        headers = [(CONTROL_HEADER, b"tick")]
        for topic, partition in owned:
            sent = str(_now_ms()).encode()
            await app.send(topic, key=None, value=sent, partition=partition, headers=headers)

    async def publish() -> None:
        await learner.flush()

    app.timer(interval=TICK_S)(tick)
    app.timer(interval=min(1.0, settings.policy_publish_s))(publish)
    return learner
