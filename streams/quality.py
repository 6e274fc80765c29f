"""Online quality and drift in the worker: prequential HR@k and log-loss, slate CTR, drift detection.

Before the model learns a positive event, the item is checked against the user's last published
top-k (kept in memory: a restarted worker scores a user again from their next list); the detectors
go into the model checkpoints (`state`). Never raises into the pipeline: failing to write a drift
record is logged, not a dead letter.
"""

from __future__ import annotations

__all__ = ["Quality"]

import logging
import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import orjson
import redis.exceptions
from prometheus_client import Counter

from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from engine.store.redis_store import RedisStore
from models.drift import CONCEPT_SIGNALS, DriftMonitor, DriftRecord, taste_miss
from models.drift_response import DriftResponder
from models.profile import UserProfile
from models.recommender import HybridRecommender
from schemas import keys
from schemas.events import Event, EventType, ItemRecord
from streams.sender import Sender

log = logging.getLogger(__name__)

#: Users whose last top-k is remembered; the least recently published are forgotten first.
MAX_USERS = 200_000
#: Drift records kept in the Redis stream (approximately: XADD MAXLEN ~).
STREAM_MAXLEN = 1000
#: Distinct (surface, experiment, variant) label sets of the slate counter; later ones count as `other`.
MAX_SLATES = 200
_SLATE_TYPES = frozenset({EventType.IMPRESSION, EventType.CLICK})
_NO_CATEGORY = ("",)


def log_softmax(items: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Each item's log-probability of being the one taken, a softmax of the list's scores.

    The ranker learns its scores pairwise (``P(a before b) = sigmoid(s_a - s_b)``, models/blend.py);
    the softmax is the first choice of the Plackett-Luce model with those pairwise odds.

    >>> {k: round(v, 3) for k, v in log_softmax([("a", 2.0), ("b", 1.0), ("c", 1.0)]).items()}
    {'a': -0.551, 'b': -1.551, 'c': -1.551}
    """
    if not items:
        return {}
    top = max(score for _, score in items)
    log_z = top + math.log(sum(math.exp(score - top) for _, score in items))
    return {item: score - log_z for item, score in items}


def _log_p(items: Sequence[tuple[str, float]], item: str) -> float | None:
    """`log_softmax` of ``items`` at ``item`` (None when not listed), worked out for that item alone.

    >>> listed = [("a", 2.0), ("b", 1.0), ("c", 1.0)]
    >>> _log_p(listed, "b") == log_softmax(listed)["b"], _log_p(listed, "d")
    (True, None)
    """
    own = dict(items).get(item)  # as in the mapping: a later duplicate's score wins
    if own is None:
        return None
    top = max(score for _, score in items)
    return own - (top + math.log(sum(math.exp(score - top) for _, score in items)))


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
        self.monitor = DriftMonitor(adwin_delta=settings.drift_adwin_delta)
        self.responder = DriftResponder(
            model,
            settings.drift_response,
            decay=settings.drift_decay,
            explore_slots=settings.drift_explore_slots,
            cooldown=settings.drift_cooldown_events,
        )
        self.events = 0
        #: (ts, event_id) of the newest event consumed so far: a record names it beside the event that
        #: tipped the detector, which can come from a partition consumed behind the others.
        self._newest = (-1, "")
        self.records: list[DriftRecord] = []
        #: user -> the last published top-k with its scores (turned into log-probabilities when scored:
        #: most lists are replaced before the user's next positive).
        #: Oldest first (OrderedDict: evicting a plain dict's first key slows as its front empties).
        self._top: OrderedDict[str, Sequence[tuple[str, float]]] = OrderedDict()
        self._slates: set[tuple[str, str, str]] = set()
        self._categories: dict[str, tuple[str, ...]] = {}
        self._recent: deque[int] = deque(maxlen=settings.drift_window)
        self._recent_hits = 0  # sum(self._recent), kept as hits enter and leave the window
        #: Labelled children met so far (a first `labels` call is what creates the series, so they are
        #: not made ahead), looked up by their label values rather than by `labels` on every event.
        self._event_types: dict[EventType, Counter] = {}
        self._slate_events: dict[tuple[str, str, str, str], Counter] = {}
        self._hits = metrics.prequential_hits.labels(model_version=model.version)
        self._scored = metrics.prequential_scored.labels(model_version=model.version)
        self._rate = metrics.prequential_hit_rate.labels(model_version=model.version)
        self._log_loss = metrics.ranker_log_loss.labels(model_version=model.version)

    def learn_item(self, record: ItemRecord) -> None:
        self._categories[record.item_id] = record.categories

    def state(self) -> dict[str, Any]:
        """What a model checkpoint keeps so that a restored worker detects on from where it was.

        The detectors, the event count, the recent hits, the response's cooldown and the catalog's
        categories (catalog records before the checkpoint are not read again). Not the users' last
        top-k: a restored worker scores a user again from their next list.
        """
        return {
            "monitor": self.monitor,
            "events": self.events,
            "recent": list(self._recent),
            "response": (self.responder.last, self.responder.saved_slots),
            "categories": self._categories,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from `state` (of a checkpoint); detectors of another ADWIN delta are left fresh."""
        monitor = state["monitor"]
        if isinstance(monitor, DriftMonitor) and monitor.adwin_delta == self.monitor.adwin_delta:
            self.monitor = monitor
        else:
            log.warning("drift detectors start afresh: the checkpoint's were built with other settings")
        self.events = int(state["events"])
        self._recent.extend(state["recent"])
        self._recent_hits = sum(self._recent)
        self.responder.last, self.responder.saved_slots = state["response"]
        self._categories.update(state["categories"])

    def remember(self, user_id: str, items: Sequence[tuple[str, float]]) -> None:
        """The list just published for the user: the next positive is scored against its top k."""
        self._top[user_id] = items[: self.k]
        self._top.move_to_end(user_id)
        if len(self._top) > MAX_USERS:
            self._top.popitem(last=False)

    def forget(self, user_id: str) -> None:
        """Drop the user's last top-k (an erasure or withdrawal); the detectors hold no user."""
        self._top.pop(user_id, None)

    async def before_learn(self, event: Event, profile: UserProfile) -> None:
        """Score the event against the user's list, feed the detectors; ``profile`` is before the event."""
        self.events += 1
        if event.ts >= self._newest[0]:
            self._newest = (event.ts, event.event_id)
        counter = self._event_types.get(event.type)
        if counter is None:
            counter = self._event_types[event.type] = self.metrics.event_types.labels(type=event.type.value)
        counter.inc()
        if self.responder.tick(self.events):
            log.info("drift response %s ended after %d events", self.responder.response, self.events)
        if event.type in _SLATE_TYPES:
            self._count_slate(event)
        if self.model.signal(event).label != 1:
            return
        known = self._categories
        categories = known.get(event.item_id, ())
        found = self.monitor.category(categories, event.ts)
        if categories:
            # An item of no known category (or none at all) counts as the category "".
            history = [(known.get(item) or _NO_CATEGORY)[0] for item in profile.recent]
            miss = taste_miss(categories[0], history)
            if miss is not None:
                found += self.monitor.taste(miss, event.ts)
        top = self._top.get(event.user_id)
        if top is not None and not profile.has_consumed(event.item_id):
            log_p = _log_p(top, event.item_id)
            self._scored.inc()
            if len(self._recent) == self._recent.maxlen:
                self._recent_hits -= self._recent[0]
            self._recent.append(int(log_p is not None))
            if log_p is not None:
                self._recent_hits += 1
                self._hits.inc()
                self._log_loss.observe(-log_p)
            self._rate.set(self._recent_hits / len(self._recent))
            found += self.monitor.hit(log_p is not None, event.ts)
        for record in found:
            await self._detected(record, event.event_id)

    def _count_slate(self, event: Event) -> None:
        """An impression or click of a served slate: one carrying a decision, a surface or a variant."""
        context = event.context
        if event.decision_id is None and context.surface is None and context.variant is None:
            return
        labels = (context.surface or "none", context.experiment or "none", context.variant or "none")
        if labels not in self._slates:
            if len(self._slates) >= MAX_SLATES:
                labels = ("other", "other", "other")
            self._slates.add(labels)
        surface, experiment, variant = labels
        key = (event.type.value, surface, experiment, variant)
        counter = self._slate_events.get(key)
        if counter is None:
            counter = self._slate_events[key] = self.metrics.slate_events.labels(
                type=key[0], surface=surface, experiment=experiment, variant=variant
            )
        counter.inc()

    async def _detected(self, record: DriftRecord, event_id: str) -> None:
        self.records.append(record)
        del self.records[:-100]
        self.metrics.drift_detections.labels(signal=record.signal, detector=record.detector).inc()
        fields = {
            "events": self.events,
            "event_id": event_id,
            "newest_event_id": self._newest[1],
            "newest_ts": self._newest[0],
        }
        body = orjson.dumps({**record.to_dict(), **fields})
        log.warning("drift detected: %s", body.decode())
        # Input drift alone (category_mix) is reported but not answered: a daily cycle moves it too.
        if record.signal in CONCEPT_SIGNALS and self.responder.respond(self.events):
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
