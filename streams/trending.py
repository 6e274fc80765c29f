"""Trending items per locale, per language and overall: what users without a list of their own get.

A timer drains every partition of the events topic with its own consumer (outside the worker's group, so
the per-event path is untouched), decays positive interactions in event time, and replaces the changed
lists under `schemas.keys.trending`. Only one worker of the namespace does it: the owner of events
partition 0 (`streams.singleton`); a worker that loses it stops counting, one that gains it starts
counting (from `LOOKBACK_MS` back). Never touches the model.
"""

from __future__ import annotations

__all__ = ["LOOKBACK_MS", "Trending", "TrendingCounts"]

import asyncio
import logging
import time
import uuid
from typing import Any

import confluent_kafka

from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.serving.recommend import locale_scopes
from engine.store.redis_store import RedisStore
from models.popularity import DecayedPopularity
from models.signals import signal_of
from schemas.errors import InvalidEventError
from schemas.events import decode_object, parse_event
from streams.singleton import Singleton

log = logging.getLogger(__name__)

#: How far back a starting worker counts (Kafka timestamps), so its first lists are not empty.
LOOKBACK_MS = 3_600_000
#: Most locales and languages tracked; events of further ones count only globally.
MAX_SCOPES = 1_000
#: Records taken from the consumer per call.
_BATCH = 5_000


class TrendingCounts:
    """Decayed positive interactions by scope: None (global), the locale as sent, and its language.

    >>> from schemas.events import Event, encode
    >>> counts = TrendingCounts(half_life_ms=3_600_000)
    >>> e = Event(event_id="e1", user_id="u1", item_id="i9", type="click", ts=10**12,
    ...           context={"locale": "pt-BR"})
    >>> counts.observe(encode(e), b"u1")
    >>> sorted(scope or "-" for scope, _ in counts.changed(5)), counts.changed(5)
    (['-', 'pt', 'pt-BR'], [])
    """

    def __init__(self, half_life_ms: float) -> None:
        self.half_life_ms = half_life_ms
        self._scopes: dict[str | None, DecayedPopularity] = {}
        self._changed: set[str | None] = set()

    def observe(self, raw: bytes | None, key: bytes | None) -> None:
        """Count one events-topic record if it is a valid positive event under its user's key (a record
        under another key is re-sent by the worker and counted then; user records never count)."""
        try:
            event = parse_event(decode_object(raw or b""))
        except InvalidEventError:
            return
        signal = signal_of(event)
        if signal.label != 1 or signal.weight <= 0 or key != event.user_id.encode():
            return
        locale = event.context.locale if event.context is not None else None
        for scope in (None, *locale_scopes(locale)):
            counts = self._scopes.get(scope)
            if counts is None:
                if len(self._scopes) >= MAX_SCOPES:
                    continue
                counts = self._scopes[scope] = DecayedPopularity(self.half_life_ms, refresh_every=1)
            counts.learn_one(event.item_id, signal.weight, event.ts)
            self._changed.add(scope)

    def changed(self, n: int) -> list[tuple[str | None, list[tuple[str, float]]]]:
        """The top-n of each scope counted into since the last call (relative scores, best first)."""
        changed, self._changed = self._changed, set()
        return [(scope, self._scopes[scope].top(n)) for scope in changed]


class Trending:
    """The worker's timer: while this worker holds the singleton, count what arrived since the last tick
    and publish the lists that changed."""

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        singleton: Singleton,
        metrics: Metrics,
        half_life_ms: float = 6 * 3_600_000,
    ) -> None:
        self.settings = settings
        self.store = store
        self.singleton = singleton
        self.metrics = metrics
        self.half_life_ms = half_life_ms
        self.depth = settings.top_n * settings.serve_candidates_factor
        self.counts = TrendingCounts(half_life_ms)
        self._consumer: confluent_kafka.Consumer | None = None

    async def __call__(self) -> None:
        try:
            if not self.singleton.held():
                if self._consumer is not None:
                    log.info("events partition 0 moved to another worker: trending is theirs now")
                    await asyncio.to_thread(self.close)
                    self.counts = TrendingCounts(self.half_life_ms)
                return
            await asyncio.to_thread(self._drain)
            for scope, items in self.counts.changed(self.depth):
                await self.store.publish_trending(items, scope)
                self.metrics.trending_publishes.inc()
        except Exception:  # noqa: BLE001 - a failed round must not stop the timer; the next one retries
            log.exception("trending not published")

    def _drain(self) -> None:
        consumer = self._consumer or self._start()
        while True:
            records = consumer.consume(num_messages=_BATCH, timeout=0)
            for record in records:
                if record.error() is None:
                    self.counts.observe(record.value(), record.key())
            if len(records) < _BATCH:
                return

    def _start(self) -> confluent_kafka.Consumer:
        topic = self.settings.events_topic
        consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": self.settings.bootstrap,
                "group.id": f"p13n-trending-{uuid.uuid4().hex}",  # never joins: assign() only
                "enable.auto.commit": False,
            }
        )
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        since = time.time_ns() // 1_000_000 - LOOKBACK_MS
        wanted = [confluent_kafka.TopicPartition(topic, p, since) for p in partitions]
        starts = consumer.offsets_for_times(wanted, timeout=10)
        for tp in starts:
            if tp.offset < 0:  # nothing that recent: only what comes next
                tp.offset = confluent_kafka.OFFSET_END
        consumer.assign(starts)
        self._consumer = consumer
        return consumer

    def close(self, *_args: Any, **_kwargs: Any) -> None:
        """On shutdown (a Faust signal handler's arguments are ignored)."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
