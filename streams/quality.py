"""Online quality and drift in the worker: prequential HR@k, drift detection, records and the response.

Before the model learns a positive event, the item is checked against the user's last published
top-k (kept in memory: a restarted worker scores a user again from their next list). Never raises
into the pipeline: failing to write a drift record is logged, not a dead letter.
"""

from __future__ import annotations

__all__ = ["Quality"]

import logging
from collections import deque
from collections.abc import Sequence

import orjson
import redis.exceptions

from engine.metrics import Metrics
from engine.redis_store import RedisStore
from engine.settings import Settings
from models.drift import DriftMonitor, DriftRecord
from models.drift_response import DriftResponder
from models.profile import UserProfile
from models.recommender import HybridRecommender
from schemas import keys
from schemas.events import Event, ItemRecord
from streams.pipeline import Sender

log = logging.getLogger(__name__)

#: Users whose last top-k is remembered; the least recently published are forgotten first.
MAX_USERS = 200_000
#: Drift records kept in the Redis stream (approximately: XADD MAXLEN ~).
STREAM_MAXLEN = 1000


class Quality:
    """Scores, detects and responds; `Pipeline` calls `learn_item`, `before_learn` and `remember`."""

    def __init__(
        self,
        *,
        model: HybridRecommender,
        store: RedisStore,
        metrics: Metrics,
        send: Sender,
        settings: Settings,
    ) -> None:
        self.model = model
        self.store = store
        self.metrics = metrics
        self.send = send
        self.topic = settings.drift_topic
        self.k = settings.drift_hr_k
        self.monitor = DriftMonitor(adwin_delta=settings.drift_adwin_delta, window=settings.drift_window)
        self.responder = DriftResponder(
            model,
            settings.drift_response,
            decay=settings.drift_decay,
            explore_slots=settings.drift_explore_slots,
            cooldown=settings.drift_cooldown_events,
        )
        self.events = 0
        self.records: list[DriftRecord] = []
        self._top: dict[str, frozenset[str]] = {}
        self._categories: dict[str, tuple[str, ...]] = {}
        self._recent: deque[int] = deque(maxlen=settings.drift_window)
        self._hits = metrics.prequential_hits.labels(model_version=model.version)
        self._scored = metrics.prequential_scored.labels(model_version=model.version)
        self._rate = metrics.prequential_hit_rate.labels(model_version=model.version)

    def learn_item(self, record: ItemRecord) -> None:
        self._categories[record.item_id] = record.categories

    def remember(self, user_id: str, items: Sequence[tuple[str, float]]) -> None:
        """The list just published for the user: the next positive is scored against its top k."""
        self._top.pop(user_id, None)
        self._top[user_id] = frozenset(item for item, _ in items[: self.k])
        if len(self._top) > MAX_USERS:
            del self._top[next(iter(self._top))]

    async def before_learn(self, event: Event, profile: UserProfile) -> None:
        """Score the event against the user's list, feed the detectors; ``profile`` is before the event."""
        self.events += 1
        self.metrics.event_types.labels(type=event.type.value).inc()
        if self.responder.tick(self.events):
            log.info("drift response %s ended after %d events", self.responder.response, self.events)
        if self.model.signal(event).label != 1:
            return
        found = self.monitor.category(self._categories.get(event.item_id, ()), event.ts)
        top = self._top.get(event.user_id)
        if top is not None and not profile.has_consumed(event.item_id):
            hit = event.item_id in top
            self._scored.inc()
            self._recent.append(int(hit))
            if hit:
                self._hits.inc()
            self._rate.set(sum(self._recent) / len(self._recent))
            found += self.monitor.hit(hit, event.ts)
        for record in found:
            await self._detected(record)

    async def _detected(self, record: DriftRecord) -> None:
        self.records.append(record)
        del self.records[:-100]
        self.metrics.drift_detections.labels(signal=record.signal, detector=record.detector).inc()
        body = orjson.dumps({**record.to_dict(), "events": self.events})
        log.warning("drift detected: %s", body.decode())
        if self.responder.respond(self.events):
            self.metrics.drift_responses.labels(response=self.responder.response).inc()
            log.warning("drift response %s applied at event %d", self.responder.response, self.events)
        try:
            await self.send(self.topic, record.signal.encode(), body)
        except Exception:  # noqa: BLE001 - a lost record must not turn the event into a dead letter
            log.warning("could not send a drift record to %s", self.topic, exc_info=True)
        try:
            await self.store.client.xadd(
                keys.drift(self.store.namespace),
                {"record": body},
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
        except (redis.exceptions.RedisError, OSError):
            log.warning("could not append a drift record to Redis", exc_info=True)
