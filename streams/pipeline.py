"""What the agents do with each record: validate, deduplicate, learn, rank, publish.

Kept apart from the Faust wiring so it can be driven directly in tests. Never raises on input: a
record that cannot be handled is sent to the dead-letter topic with its reason and original bytes.
Never learns nor keeps the events of a user without consent (`schemas.users.admits`): they are counted
(``no_consent``) and dropped; a withdrawal forgets the user like an erasure, keeping only the withdrawal.

Records come in batches (``stream.take_events``): each event is learned and ranked for at once, in
order, but the lists are written to Redis at `Pipeline.flush`, after the batch: each user's latest list
once (explained then), all users' in one round trip. Lists carry their user's last record's offset,
erasures and resets leave a tombstone at theirs; Redis refuses older lists (`engine.store.scripts`).
User records and the model-only paths (replay, other workers' records) are in `streams.user_records`.
"""

from __future__ import annotations

__all__ = ["WORKER", "Pipeline", "Profiles"]

import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.exceptions

from engine.ops.histograms import observe_all
from engine.ops.metrics import Metrics
from engine.store import erasures
from engine.store.redis_store import RedisStore, UserList
from models.profile import UserProfile
from models.recommender import HybridRecommender
from schemas.errors import InvalidEventError
from schemas.events import Event, decode_object, parse_event, parse_item
from schemas.users import (
    PreferencesRecord,
    admits,
    is_user_record,
    parse_user_record,
)
from streams import deadletter
from streams.explaining import Reasons, reasons_of_all
from streams.sender import Sender
from streams.user_records import Profiles, UserRecords

if TYPE_CHECKING:
    from prometheus_client import Counter

    from streams.quality import Quality

log = logging.getLogger(__name__)
#: This worker process's name: its heartbeat's key and the signature of the erasures it completed (its
#: checkpoint folder is `Settings.worker_name`, stable across restarts when PERSONALIZE_WORKER_ID is set).
WORKER = f"{socket.gethostname()}-{os.getpid()}"


def _ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class _Staged:
    """A user's latest list of the batch, waiting for `Pipeline.flush`."""

    profile: UserProfile
    items: list[tuple[str, float]]
    #: Offset of the user's record this list reflects, on their events partition (the write's fence).
    position: int = 0
    #: Timestamps of the user's events of this batch (the freshness of each).
    event_ts: list[int] = field(default_factory=list)
    #: The model's `HybridRecommender.withdrawals` when it ranked the list (None: another tier).
    withdrawals: int | None = None


class Pipeline(UserRecords):
    """Per-record logic of the worker for one namespace."""

    def __init__(
        self,
        *,
        model: HybridRecommender,
        store: RedisStore,
        metrics: Metrics,
        send: Sender,
        events_topic: str,
        dead_letter_topic: str,
        top_n: int,
        quality: Quality | None = None,
        tombstone_ttl_s: int = 7 * 86_400,
        consent_required: bool = False,
        explain: bool = True,
    ) -> None:
        self.model = model
        self.store = store
        self.metrics = metrics
        self.send = send
        self.events_topic = events_topic
        self.dead_letter_topic = dead_letter_topic
        self.top_n = top_n
        #: Prequential HR@k and drift detection (streams/quality.py); None in tests that don't need it.
        self.quality = quality
        #: Called with (user_id, event_id) of every event the model learns (the checkpointer keeps them).
        self.learned: Callable[[str, str], None] = lambda _user_id, _event_id: None
        #: Called with every event the model learns, whichever path read it (trending counts them).
        self.trend: Callable[[Event], None] = lambda _event: None
        #: Whether the model learned an event (the checkpointer's ring of learned ids in the worker).
        self.known: Callable[[str, str], bool] = lambda _user_id, _event_id: True
        #: Called after each flush with the users whose list Redis took (or refused as fenced) and those
        #: whose write failed, with the list's position (`streams.republish` keeps the latter).
        self.published: Callable[[Collection[str], Mapping[str, int]], None] = lambda _done, _failed: None
        #: Called with (user_id, erasure event id, or None for a withdrawal) whenever this worker forgets a
        #: user, whichever path read the record (the checkpointer rewrites its files and confirms).
        self.forgotten: Callable[[str, str | None], None] = lambda _user_id, _event_id: None
        self.tombstone_ttl_s = tombstone_ttl_s
        self._staged: dict[str, _Staged] = {}
        #: Seconds each learned event of the batch took (``process_seconds``, observed at flush).
        self._took: list[float] = []
        #: The events_total child of outcome "learned", counted on every event: made by the first one.
        self._learned_events: Counter | None = None
        #: user_id -> offset of their latest erasure, reset or withdrawal of the batch (written first at
        #: flush).
        self._fences: dict[str, int] = {}
        #: (user, erasure event id) forgotten in this batch: marked done in Redis at its flush.
        self._erased: list[tuple[str, str]] = []
        #: Opt-in (only users who granted consent are learned) or opt-out (all but who withdrew).
        self.consent_required = consent_required
        #: Consent of other workers' users, as this worker's replica read it (`learn_others`); only users
        #: with a consent record are here.
        self._others_consent: dict[str, bool] = {}
        #: Explain each list and publish the reasons with it (`Settings.store_reasons`).
        self.explain = explain
        #: A raw record of the batch -> (its JSON object, its event or None), from `prepare`.
        self._ahead: dict[bytes, tuple[dict[str, Any], Event | None]] = {}

    async def dead_letter(
        self,
        raw: bytes | None,
        error: Exception,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
    ) -> None:
        kind = "invalid" if isinstance(error, InvalidEventError) else "internal"
        if kind == "internal":
            log.exception("record %s[%d]@%d failed; sent to dead letters", topic, partition, offset)
        else:
            log.info("invalid record %s[%d]@%d: %s", topic, partition, offset, error)
        value = deadletter.envelope(raw, error, topic=topic, partition=partition, offset=offset, key=key)
        await self.send(self.dead_letter_topic, key, value)
        self.metrics.dead_letter(kind, deadletter.reason(error))
        self.metrics.events.labels(outcome="dead_letter").inc()

    async def consume_item(
        self, raw: bytes | None, key: bytes | None, *, topic: str, partition: int, offset: int
    ) -> None:
        """Validate one catalog record and write its metadata to Redis for serve-time rules (categories,
        regions...); an invalid one goes to the dead-letter topic, not up.

        The items agent calls this on the group's share of the catalog, so each record is published
        once; every worker's model learns the whole catalog elsewhere (`apply_item`, streams/replica.py).
        A failed write is logged and counted like a failed list write; the next record of the item
        rewrites it.
        """
        try:
            record = parse_item(raw or b"")
        except Exception as error:  # noqa: BLE001 - input must never crash the worker
            await self.dead_letter(raw, error, topic=topic, partition=partition, offset=offset, key=key)
            return
        try:
            await self.store.publish_items([record])
        except (redis.exceptions.RedisError, OSError):
            log.exception("could not publish the metadata of a catalog record")
            self.metrics.publish_errors.inc()

    def apply_item(self, raw: bytes) -> None:
        """Validate and learn one catalog record (raises `InvalidEventError`)."""
        record = parse_item(raw)
        self.model.learn_item(record)
        if self.quality is not None:
            self.quality.learn_item(record)
        self.metrics.items.inc()

    def prepare(self, raws: Iterable[bytes | None]) -> None:
        """Decode and validate a batch's records in one pass ahead, for `stage_event` to take (each once,
        until `flush`; one that fails is left for it to fail on). In a pass of its own, with the code and
        the validator's data in the CPU's caches, parsing costs less than half as much (5.5 against 12.7
        us per event in-process). Keyed by the bytes: what it holds is what parsing them again gives."""
        self._ahead.clear()
        for raw in raws:
            if raw is None:
                continue
            try:
                decoded = decode_object(raw)
                event = None if is_user_record(decoded) else parse_event(decoded)
            except Exception:  # noqa: BLE001 - `stage_event` meets it again and dead-letters it
                continue
            self._ahead[raw] = (decoded, event)

    async def consume_event(
        self,
        raw: bytes | None,
        key: bytes | None,
        profiles: Profiles,
        *,
        topic: str,
        partition: int,
        offset: int,
        learn: bool = True,
    ) -> None:
        """Handle one events-topic record of a batch (call `flush` after the batch); whatever goes wrong
        goes to the dead-letter topic, not up. ``learn=False``: the model already holds this record (it is
        older than the restored checkpoint's offset), so only the profile, Redis and the counters are
        updated. ``offset`` is the fencing position of what the record changes in Redis."""
        try:
            await self.stage_event(raw or b"", key, profiles, learn=learn, position=offset)
        except Exception as error:  # noqa: BLE001 - input must never crash the worker
            await self.dead_letter(raw, error, topic=topic, partition=partition, offset=offset, key=key)

    async def handle_event(
        self, raw: bytes, key: bytes | None, profiles: Profiles, *, learn: bool = True, position: int = 0
    ) -> str:
        """Process one raw event as a batch of its own (`stage_event`, then `flush`); returns the outcome
        (learned, duplicate, rekeyed, erased). Raises `InvalidEventError` for a record that breaks the
        contract."""
        try:
            return await self.stage_event(raw, key, profiles, learn=learn, position=position)
        finally:
            await self.flush()

    async def stage_event(
        self, raw: bytes, key: bytes | None, profiles: Profiles, *, learn: bool = True, position: int = 0
    ) -> str:
        """Learn one raw event and rank for its user; the list waits for `flush`. Returns the outcome.
        ``position``: the record's offset on its partition, which fences the list it leads to. Raises
        `InvalidEventError` for a record that breaks the contract."""
        started = time.perf_counter()
        ahead = self._ahead.pop(raw, None)
        decoded, event = ahead if ahead is not None else (decode_object(raw), None)
        if event is None:  # not parsed ahead, or a user record
            if is_user_record(decoded):
                user = parse_user_record(decoded)
                return await self.handle_user_record(user, key, raw, profiles, learn=learn, position=position)
            event = parse_event(decoded)
        if key is None or key.decode("utf-8", "replace") != event.user_id:
            # Per-user state lives on the partition of the user_id key: move the event there.
            await self.send(self.events_topic, event.user_id.encode(), raw)
            self.metrics.events.labels(outcome="rekeyed").inc()
            return "rekeyed"
        stored = profiles.get(event.user_id)
        profile = UserProfile.from_dict(stored) if stored is not None else UserProfile(event.user_id)
        if not admits(profile.consent, self.consent_required):
            return self._no_consent()
        if profile.has_seen(event.event_id):
            if learn and not self.known(event.user_id, event.event_id):
                # The profile holds it but the model does not: a worker died after flushing the batch's
                # profiles and before its offset key, so the restore's catch-up ended before this record.
                outcome = self.relearn(raw, key, profiles, self.known)
                log.info(
                    "event %s of %s: in the profile, not in the model: %s",
                    event.event_id,
                    event.user_id,
                    outcome,
                )
            self.metrics.events.labels(outcome="duplicate").inc()
            return "duplicate"
        if learn:
            if self.quality is not None:
                await self.quality.before_learn(event, profile)
            self.model.learn_one(event, profile)
            self.learned(event.user_id, event.event_id)
            self.trend(event)
        profile.observe(event, self.model.signal(event))
        profiles[event.user_id] = profile.to_dict()
        self._stage(event, profile, position)
        if self._learned_events is None:
            self._learned_events = self.metrics.events.labels(outcome="learned")
        self._learned_events.inc()
        self._took.append(time.perf_counter() - started)
        return "learned"

    def restage(self, profile: UserProfile, position: int) -> None:
        """Rank for a user again, with no new event, and stage the list (its write had failed, or Redis
        lost it); it waits for `flush` with ``position``, the offset of the user's last record if known."""
        items = self.model.recommend(profile, self.top_n, None, profile.last_ts or None)
        if self.quality is not None:
            self.quality.remember(profile.user_id, items)
        self._staged[profile.user_id] = _Staged(profile, items, position, withdrawals=self._withdrawals())

    def _stage(self, event: Event | PreferencesRecord, profile: UserProfile, position: int) -> None:
        """Rank for the user now (the model learns its blend from this ranking) and stage the list."""
        context = event.context if isinstance(event, Event) else None
        items = self.model.recommend(profile, self.top_n, context, event.ts)
        if self.quality is not None:
            self.quality.remember(profile.user_id, items)
        earlier = self._staged.get(profile.user_id)
        event_ts = earlier.event_ts if earlier is not None else []
        staged = _Staged(profile, items, position, event_ts, self._withdrawals())
        staged.event_ts.append(event.ts)
        self._staged[profile.user_id] = staged

    def _withdrawals(self) -> int | None:
        return self.model.withdrawals if isinstance(self.model, HybridRecommender) else None

    async def flush(self) -> None:
        """Write the batch's tombstones, then the staged lists with their reasons, in one Redis round
        trip each. Never raises.

        Each list is explained here, from the features its ranking kept: nothing of the user has been
        ranked since (a later event of theirs would have replaced the staged list). A failed write is
        logged, counted and handed to `published` (the worker republishes those users once Redis
        answers), whatever the error (the batch's records are learned and acknowledged, so raising
        would only stop the worker). A list
        Redis refuses (older than the stored one or than the user's tombstone) is counted, not retried.
        """
        self._ahead.clear()  # records `prepare` read that the batch did not stage (duplicates, gaps)
        fences, self._fences, staged, self._staged = self._fences, {}, self._staged, {}
        took, self._took = self._took, []
        observe_all(self.metrics.process_seconds, took)
        try:
            if fences:
                await self.store.fence_users(fences, self.tombstone_ttl_s)
        except Exception:  # noqa: BLE001 - as below; the API left the tombstone of its own erasures
            log.exception("could not write the tombstones of %d user(s)", len(fences))
            self.metrics.publish_errors.inc(len(fences))
        erased, self._erased = self._erased, []
        try:
            if erased:
                await erasures.forgotten(
                    self.store.client, self.store.namespace, erased, worker=WORKER, now_ms=_ms()
                )
        except Exception:  # noqa: BLE001 - the status stays pending; the user is forgotten all the same
            log.exception("could not mark %d erasure(s) done", len(erased))
        if not staged:
            return
        model = self.model
        if isinstance(model, HybridRecommender):  # other tiers (popular) know no catalog
            for one in staged.values():
                # The ranking hid unavailable items: only one the catalog withdrew since can be there.
                if one.withdrawals != model.withdrawals:
                    one.items = [pair for pair in one.items if model.available(pair[0])]
        why: list[Reasons] = (
            reasons_of_all(model, [(one.profile, one.items) for one in staged.values()])
            if self.explain
            else [None] * len(staged)
        )
        lists = [
            UserList(
                user_id,
                one.items,
                model.version,
                one.profile.last_ts,
                one.profile.events_seen,
                reasons,
                one.position,
            )
            for (user_id, one), reasons in zip(staged.items(), why, strict=True)
        ]
        try:
            published = await self.store.publish_lists(lists)
        except Exception:  # noqa: BLE001 - Redis down or a bug in the store: neither may stop the worker
            log.exception("could not publish the recommendations of %d user(s)", len(lists))
            self.metrics.publish_errors.inc(len(lists))
            self.published((), {user_id: one.position for user_id, one in staged.items()})
            return
        self.published(staged.keys(), {})
        fresh: list[float] = []
        for user_id, one in staged.items():
            reason = published.refused.get(user_id)
            if reason is not None:
                self.metrics.fenced_writes.labels(reason=reason).inc()
                continue
            fresh += [max(0.0, (published.updated_ms - ts) / 1000.0) for ts in one.event_ts]
        observe_all(self.metrics.freshness, fresh)
