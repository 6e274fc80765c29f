"""Trending items per locale, per language and overall: what users without a list of their own get.

Decays positive interactions in event time and replaces the changed lists under `schemas.keys.trending`
on a timer. Only one worker of the namespace does it: the owner of events partition 0
(`streams.singleton`). It counts what its model learns, its own users' events and its replica's
(`Trending.feed`): every event of the namespace, parsed once, each counted once (a redelivery is a
duplicate to the model) and only with the user's consent. A worker that gains the job first reads the
hour before what its model learned (`LOOKBACK_MS`, Kafka timestamps) with a reader of its own, in a
thread, and counts the events learned meanwhile after it; one that loses it stops counting. Never
touches the model.
"""

from __future__ import annotations

__all__ = ["LOOKBACK_MS", "Trending", "TrendingCounts"]

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import confluent_kafka

from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.serving.recommend import locale_scopes
from engine.store.redis_store import RedisStore
from models.popularity import DecayedPopularity
from models.signals import signal_of
from schemas.errors import InvalidEventError
from schemas.events import Event, decode_object, parse_event
from streams.singleton import Singleton

log = logging.getLogger(__name__)

#: How far back a worker that gains the job counts (Kafka timestamps), so its first lists are not empty.
LOOKBACK_MS = 3_600_000
#: Most locales and languages tracked; events of further ones count only globally.
MAX_SCOPES = 1_000
#: Records taken from the look-back reader per call, and how long a call waits for the first of them.
_BATCH, _WAIT_S = 5_000, 0.5
#: (item_id, weight, ts, locale) of one positive event.
Positive = tuple[str, float, int, str | None]


def positive(event: Event) -> Positive | None:
    """What trending counts of an event: None unless it is a positive interaction.

    >>> e = Event(event_id="e1", user_id="u1", item_id="i9", type="click", ts=10**12)
    >>> positive(e), positive(e.model_copy(update={"type": "dismiss"}))
    (('i9', 2.0, 1000000000000, None), None)
    """
    signal = signal_of(event)
    if signal.label != 1 or signal.weight <= 0:
        return None
    return event.item_id, signal.weight, event.ts, event.context.locale


class TrendingCounts:
    """Decayed positive interactions by scope: None (global), the locale as sent, and its language.

    >>> from schemas.events import encode
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
        found = positive(event)
        if found is not None and key == event.user_id.encode():
            self.count(found)

    def count(self, found: Positive) -> None:
        """Count one positive interaction in the global scope, its locale's and its language's."""
        item, weight, ts, locale = found
        for scope in (None, *locale_scopes(locale)):
            counts = self._scopes.get(scope)
            if counts is None:
                if len(self._scopes) >= MAX_SCOPES:
                    continue
                counts = self._scopes[scope] = DecayedPopularity(self.half_life_ms, refresh_every=1)
            counts.learn_one(item, weight, ts)
            self._changed.add(scope)

    def changed(self, n: int) -> list[tuple[str | None, list[tuple[str, float]]]]:
        """The top-n of each scope counted into since the last call (relative scores, best first)."""
        changed, self._changed = self._changed, set()
        return [(scope, self._scopes[scope].top(n)) for scope in changed]


class Trending:
    """The worker's timer and the model's feed: while this worker holds the singleton, count what the
    model learns (after the look-back) and publish the lists that changed.

    ``positions()``: per events partition, the next offset the model lacks (a partition it has learned
    nothing of is missing); the look-back reads up to it, the feed counts from it on.
    """

    def __init__(
        self,
        settings: Settings,
        store: RedisStore,
        singleton: Singleton,
        metrics: Metrics,
        positions: Callable[[], dict[int, int]],
        half_life_ms: float = 6 * 3_600_000,
    ) -> None:
        self.settings = settings
        self.store = store
        self.singleton = singleton
        self.metrics = metrics
        self.positions = positions
        self.half_life_ms = half_life_ms
        self.depth = settings.top_n * settings.serve_candidates_factor
        self.counts = TrendingCounts(half_life_ms)
        #: Counting now (this worker holds the job).
        self.active = False
        #: While the look-back runs (in a thread, on `counts`): what the model learned meanwhile.
        self._pending: list[Positive] | None = None
        self._consumer: confluent_kafka.Consumer | None = None
        #: Look-back partitions not read up to their end yet -> that end (exclusive).
        self._ends: dict[int, int] = {}
        #: Records the look-back read.
        self._read = 0
        #: The model's positions when counting started, until the look-back reader is assigned up to them.
        self._unstarted: dict[int, int] | None = None

    def feed(self, event: Event) -> None:
        """An event the model just learned (the pipeline's or the replica's); cheap when not active."""
        if not self.active:
            return
        found = positive(event)
        if found is None:
            return
        if self._pending is not None:
            self._pending.append(found)
        else:
            self.counts.count(found)

    def activate(self) -> None:
        """Start counting if this worker holds the job and is not counting yet: the feed counts what the
        model learns from now on, the look-back (next rounds) reads the hour before the model's current
        positions. Called when the group assigns partitions, so that the look-back does not read again
        what the model learns until the next round, and by every round."""
        if self.active or not self.singleton.held():
            return
        # Where the model is now and the feed's start, in one step: nothing learned between.
        self._unstarted, self._pending, self.active, self._read = dict(self.positions()), [], True, 0

    async def __call__(self) -> None:
        try:
            if not self.singleton.held():
                if self.active:
                    log.info("events partition 0 moved to another worker: trending is theirs now")
                    await asyncio.to_thread(self.close)
                    self.active, self._pending, self._unstarted = False, None, None
                    self.counts = TrendingCounts(self.half_life_ms)
                return
            self.activate()
            if self._unstarted is not None:
                ends, self._unstarted = self._unstarted, None
                await asyncio.to_thread(self._start, ends)
            if self._pending is not None:
                await asyncio.to_thread(self._look_back)
                if self._consumer is not None:
                    return  # more to read first: the lists would lack the hour before
                pending, self._pending = self._pending, None
                for found in pending:
                    self.counts.count(found)
                log.info(
                    "trending: %d record(s) of the hour before the model read, then %d event(s) it learned",
                    self._read, len(pending),
                )  # fmt: skip
            for scope, items in self.counts.changed(self.depth):
                await self.store.publish_trending(items, scope)
                self.metrics.trending_publishes.inc()
        except Exception:  # noqa: BLE001 - a failed round must not stop the timer; the next one retries
            log.exception("trending not published")

    def _start(self, ends: dict[int, int]) -> None:
        """Assign the look-back reader from an hour back up to ``ends`` (what the model had learned)."""
        topic = self.settings.events_topic
        consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": self.settings.bootstrap,
                "group.id": f"p13n-trending-{uuid.uuid4().hex}",  # never joins: assign() only
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        since = time.time_ns() // 1_000_000 - LOOKBACK_MS
        starts = consumer.offsets_for_times(
            [confluent_kafka.TopicPartition(topic, p, since) for p in partitions], timeout=10
        )
        wanted = [tp for tp in starts if 0 <= tp.offset < ends.get(tp.partition, 0)]
        self._ends = {tp.partition: ends[tp.partition] for tp in wanted}
        if wanted:
            consumer.assign(wanted)
            self._consumer = consumer
        else:
            consumer.close()

    def _look_back(self) -> None:
        """Count look-back records (in a thread: nothing else touches `counts` until it is done) until
        every partition is read up to its end, or nothing comes (the next round goes on)."""
        consumer = self._consumer
        if consumer is None:
            return
        while self._ends:
            records = consumer.consume(num_messages=_BATCH, timeout=_WAIT_S)
            if not records:
                break
            for record in records:
                partition, offset, error = record.partition(), record.offset(), record.error()
                end = self._ends.get(partition) if partition is not None else None
                if partition is None or end is None:
                    continue
                if error is not None:
                    if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                        del self._ends[partition]  # the log ends before the model's position
                    continue
                if offset is not None and offset < end:
                    self.counts.observe(record.value(), record.key())
                    self._read += 1
                if offset is None or offset + 1 >= end:
                    del self._ends[partition]
        if not self._ends:
            self.close()

    def close(self, *_args: Any, **_kwargs: Any) -> None:
        """Close the look-back reader (on shutdown too: a Faust signal handler's arguments are ignored)."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        self._ends = {}
