"""What the agents do with each record: validate, deduplicate, learn, rank, publish.

Kept apart from the Faust wiring so it can be driven directly in tests. Never raises on input: a
record that cannot be handled is sent to the dead-letter topic with its reason and original bytes.
Never learns nor keeps the events of a user without consent (`schemas.users.admits`): they are counted
(``no_consent``) and dropped; a withdrawal forgets the user like an erasure, keeping only the withdrawal.

Records come in batches (``stream.take_events``): each event is learned and ranked for at once, in
order, but the lists are written to Redis at `Pipeline.flush`, after the batch: each user's latest list
once (explained then), all users' in one round trip. Lists carry their user's last record's offset,
erasures and resets leave a tombstone at theirs; Redis refuses older lists (`engine.store.scripts`).
"""

from __future__ import annotations

__all__ = ["POPULAR", "WORKER", "Pipeline", "Profiles", "reasons_of"]

import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.exceptions

from engine.ops.metrics import Metrics
from engine.store import erasures
from engine.store.redis_store import RedisStore, UserList
from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.registry import PopularRecommender
from schemas.errors import InvalidEventError
from schemas.events import Context, Event, EventType, decode_object, parse_event, parse_item
from schemas.reasons import Reason
from schemas.users import (
    ConsentRecord,
    ErasureRecord,
    PreferencesRecord,
    UserRecord,
    admits,
    is_user_record,
    parse_user_record,
)
from streams import deadletter
from streams.sender import Sender

if TYPE_CHECKING:
    from streams.quality import Quality

log = logging.getLogger(__name__)
#: This worker process's name: its heartbeat's key and the signature of the erasures it completed (its
#: checkpoint folder is `Settings.worker_name`, stable across restarts when PERSONALIZE_WORKER_ID is set).
WORKER = f"{socket.gethostname()}-{os.getpid()}"


def _ms() -> int:
    return time.time_ns() // 1_000_000


#: user_id -> `UserProfile.to_dict()`; a changelog-backed Faust table in the worker.
Profiles = MutableMapping[str, Any]


#: What the popular tier's items are there for (it has no `explain` of its own).
POPULAR = Reason("popular", None, ("popularity",))


def reasons_of(
    model: object, profile: UserProfile, items: list[tuple[str, float]], context: Context | None, ts: int
) -> list[Reason | None] | None:
    """Why each of ``items`` (the model's latest ranking for the user) is there, or None if the model
    cannot say. Must run right after that `recommend`: the model explains from that ranking's features."""
    if isinstance(model, HybridRecommender):
        found = model.explain(profile, [item for item, _ in items], context, ts)
        return [Reason(e.reason, e.anchor, e.signals) for e in found]
    if isinstance(model, PopularRecommender):
        return [POPULAR] * len(items)
    return None


def _learnable(raw: bytes, key: bytes | None, known: Callable[[str, str], bool]) -> Event | UserRecord | str:
    """The record a model-only pass learns, or why it does not (``invalid``, ``rekeyed``, ``duplicate``):
    what the owner's first pass dead-lettered, moved to the user's partition or found a duplicate."""
    try:
        decoded = decode_object(raw)
        record: Event | UserRecord = (
            parse_user_record(decoded) if is_user_record(decoded) else parse_event(decoded)
        )
    except InvalidEventError:
        return "invalid"  # dead-lettered the first time
    if key is None or key.decode("utf-8", "replace") != record.user_id:
        return "rekeyed"
    if known(record.user_id, record.event_id):
        return "duplicate"
    return record


@dataclass(slots=True)
class _Staged:
    """A user's latest list of the batch, waiting for `Pipeline.flush`."""

    profile: UserProfile
    items: list[tuple[str, float]]
    context: Context | None
    ts: int
    #: Offset of the user's record this list reflects, on their events partition (the write's fence).
    position: int = 0
    #: Timestamps of the user's events of this batch (the freshness of each).
    event_ts: list[int] = field(default_factory=list)


class Pipeline:
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
        goes to the dead-letter topic, not up.

        ``learn=False``: the model already holds this record (it is older than the restored checkpoint's
        offset), so only the profile, Redis and the counters are updated. ``offset`` is the fencing
        position of what the record changes in Redis.
        """
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
        `InvalidEventError` for a record that breaks the contract.
        """
        started = time.perf_counter()
        decoded = decode_object(raw)
        if is_user_record(decoded):
            record = parse_user_record(decoded)
            return await self.handle_user_record(record, key, raw, profiles, learn=learn, position=position)
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
        profile.observe(event, self.model.signal(event))
        profiles[event.user_id] = profile.to_dict()
        self._stage(event, profile, position)
        self.metrics.events.labels(outcome="learned").inc()
        self.metrics.process_seconds.observe(time.perf_counter() - started)
        return "learned"

    async def handle_user_record(
        self,
        record: UserRecord,
        key: bytes | None,
        raw: bytes,
        profiles: Profiles,
        *,
        learn: bool = True,
        position: int = 0,
    ) -> str:
        """Apply onboarding choices, "less like this", a reset, a consent or an erasure to the user's state;
        an erasure, reset or withdrawal also fences the user's list at ``position`` (the record's offset)."""
        user = record.user_id
        if key is None or key.decode("utf-8", "replace") != user:
            await self.send(self.events_topic, user.encode(), raw)
            self.metrics.events.labels(outcome="rekeyed").inc()
            return "rekeyed"
        stored = profiles.get(user)
        profile = UserProfile.from_dict(stored) if stored is not None else UserProfile(user)
        if profile.has_seen(record.event_id):
            self.metrics.events.labels(outcome="duplicate").inc()
            return "duplicate"
        if isinstance(record, ConsentRecord):
            return self._consent(record, profile, profiles, learn=learn, position=position)
        if isinstance(record, PreferencesRecord) and not admits(profile.consent, self.consent_required):
            return self._no_consent()
        withdrawn = profile.consent is False
        profile = self._apply_user_record(record, profile, learn=learn)
        if learn:
            self.learned(record.user_id, record.event_id)
        if isinstance(record, ErasureRecord) or record.reset:
            self._staged.pop(user, None)  # a list ranked before the erasure or reset must not be written
            self._fences[user] = max(position, self._fences.get(user, position))
        if isinstance(record, ErasureRecord):
            profiles.pop(user, None)
            if withdrawn:  # a withdrawal outlives the erasure: later events stay dropped
                profiles[user] = UserProfile(user, consent=False).to_dict()
            self.metrics.events.labels(outcome="erased").inc()
            self._erased.append((user, record.event_id))
            return "erased"
        profile.seen_ids[record.event_id] = None
        profile.last_ts = max(profile.last_ts, record.ts)
        profiles[user] = profile.to_dict()
        if record.liked_categories or record.liked_items or record.hidden_items:
            # A bare reset publishes nothing: the API has deleted the list, readers get trending.
            self._stage(record, profile, position)
        self.metrics.events.labels(outcome="learned").inc()
        return "learned"

    def _no_consent(self) -> str:
        self.metrics.events.labels(outcome="no_consent").inc()
        return "no_consent"

    def _consent(
        self, record: ConsentRecord, profile: UserProfile, profiles: Profiles, *, learn: bool, position: int
    ) -> str:
        """Keep the user's consent; a withdrawal forgets everything else of the user (model, profile, the
        batch's list) and fences their list at ``position`` like an erasure."""
        user = record.user_id
        if record.granted:
            profile.consent = True
        else:
            self._forget(user, None, learn=learn)
            self._staged.pop(user, None)
            self._fences[user] = max(position, self._fences.get(user, position))
            profile = UserProfile(user, consent=False)
        profile.seen_ids[record.event_id] = None
        profiles[user] = profile.to_dict()
        if learn:
            self.learned(user, record.event_id)
        self.metrics.events.labels(outcome="learned").inc()
        return "consented" if record.granted else "withdrawn"

    def _apply_user_record(
        self,
        record: PreferencesRecord | ErasureRecord,
        profile: UserProfile,
        *,
        learn: bool,
        own: bool = True,
    ) -> UserProfile:
        """The model's and the profile's side of a user record; returns the profile to keep. ``own``
        False: the user is another worker's (the implied events do not teach the blend)."""
        user = record.user_id
        if isinstance(record, ErasureRecord):
            self._forget(user, record.event_id, learn=learn)
        elif record.reset and learn:
            self.model.forget_user(user)
        if isinstance(record, ErasureRecord) or record.reset:
            # A reset keeps the user's consent; an erasure forgets it (`handle_user_record` keeps a
            # withdrawal).
            consent = None if isinstance(record, ErasureRecord) else profile.consent
            profile = UserProfile(user, seen_ids=profile.seen_ids, consent=consent)
        if isinstance(record, ErasureRecord):
            return profile
        if learn:
            self.model.like_categories(user, record.liked_categories, record.ts)
        implied = [(item, EventType.CLICK) for item in record.liked_items]
        implied += [(item, EventType.DISMISS) for item in record.hidden_items]
        for n, (item, kind) in enumerate(implied):
            event = Event(
                event_id=f"{record.event_id}:{n}", user_id=user, item_id=item, type=kind, ts=record.ts
            )
            if learn and own:
                self.model.learn_one(event, profile)
            elif learn:
                self.model.learn_others(event)
            profile.observe(event, self.model.signal(event))
        return profile

    def _forget(self, user: str, event_id: str | None, *, learn: bool) -> None:
        """Forget the user in this worker's state (an erasure with its event id, or a withdrawal): the model
        (unless ``learn`` is false: it holds the record already), the quality monitor, then `forgotten`."""
        if learn:
            self.model.forget_user(user)
        if self.quality is not None:
            self.quality.forget(user)
        self.forgotten(user, event_id)

    def relearn(
        self, raw: bytes, key: bytes | None, profiles: Profiles, known: Callable[[str, str], bool]
    ) -> str:
        """Model-only replay of an events record the profile table already counts (after a restore).

        The model learns it as the worker did the first time: not if it was re-keyed, invalid, or an
        event for which ``known(user_id, event_id)`` is true (learned before). Profiles, Redis and the
        drift monitors are left alone. Returns the outcome (``learned``, ``duplicate``, ``rekeyed``,
        ``invalid``, ``no_consent``).
        """
        record = _learnable(raw, key, known)
        if isinstance(record, str):
            return record
        stored = profiles.get(record.user_id)  # read only: a scratch copy is what gets observed
        profile = UserProfile.from_dict(stored) if stored is not None else UserProfile(record.user_id)
        if isinstance(record, ConsentRecord):
            if not record.granted:
                self._forget(record.user_id, None, learn=True)
            self.learned(record.user_id, record.event_id)
            return "learned"
        # The consent the profile holds now, after the whole gap (a grant inside it admits the user's
        # earlier records of the gap too: docs/privacy.md, limits).
        if not isinstance(record, ErasureRecord) and not admits(profile.consent, self.consent_required):
            return "no_consent"
        # The first pass ranked for the user after each learned record, and the model learns its blend
        # from the user's next item against that ranking: rank again (the list itself is not needed).
        # The profile is the stored one, after the whole gap; ranking reads only its length then.
        if isinstance(record, Event):
            self.model.learn_one(record, profile)
            self.model.recommend(profile, self.top_n, record.context, record.ts)
        else:
            profile = self._apply_user_record(record, profile, learn=True)
            if isinstance(record, PreferencesRecord) and (
                record.liked_categories or record.liked_items or record.hidden_items
            ):
                self.model.recommend(profile, self.top_n, None, record.ts)
        self.learned(record.user_id, record.event_id)
        return "learned"

    def learn_others(self, raw: bytes, key: bytes | None, known: Callable[[str, str], bool]) -> str:
        """Learn a record of a partition another worker owns into the model only (streams/replica.py).

        Learned as its owner's model learns it (same skips as `relearn`: re-keyed, invalid, known), but
        never ranked: the blend learns only from this worker's own rankings. No profile, no Redis, no
        drift monitor. Consent is judged by the consent records this worker has read of the user (the
        profile is the owner's); a withdrawal or an erasure forgets the user here too. Returns the
        outcome, as `relearn`.
        """
        record = _learnable(raw, key, known)
        if isinstance(record, str):
            return record
        user = record.user_id
        if isinstance(record, ConsentRecord):
            self._others_consent[user] = record.granted
            if not record.granted:
                self._forget(user, None, learn=True)
        elif isinstance(record, ErasureRecord):
            if self._others_consent.get(user) is True:
                del self._others_consent[user]  # an erasure forgets a grant and keeps a withdrawal
            self._apply_user_record(record, UserProfile(user), learn=True, own=False)
        elif not admits(self._others_consent.get(user), self.consent_required):
            return "no_consent"
        elif isinstance(record, Event):
            self.model.learn_others(record)
        else:
            self._apply_user_record(record, UserProfile(user), learn=True, own=False)
        self.learned(user, record.event_id)
        return "learned"

    def restage(self, profile: UserProfile, position: int) -> None:
        """Rank for a user again, with no new event, and stage the list (its write had failed, or Redis
        lost it); it waits for `flush` with ``position``, the offset of the user's last record if known."""
        items = self.model.recommend(profile, self.top_n, None, profile.last_ts or None)
        if self.quality is not None:
            self.quality.remember(profile.user_id, items)
        self._staged[profile.user_id] = _Staged(profile, items, None, profile.last_ts, position)

    def _stage(self, event: Event | PreferencesRecord, profile: UserProfile, position: int) -> None:
        """Rank for the user now (the model learns its blend from this ranking) and stage the list."""
        context = event.context if isinstance(event, Event) else None
        items = self.model.recommend(profile, self.top_n, context, event.ts)
        if self.quality is not None:
            self.quality.remember(profile.user_id, items)
        earlier = self._staged.get(profile.user_id)
        event_ts = earlier.event_ts if earlier is not None else []
        staged = _Staged(profile, items, context, event.ts, position, event_ts)
        staged.event_ts.append(event.ts)
        self._staged[profile.user_id] = staged

    def _reasons(self, one: _Staged) -> list[Reason | None] | None:
        """The staged list's reasons; None (the list goes out without) if explaining it fails."""
        try:
            return reasons_of(self.model, one.profile, one.items, one.context, one.ts)
        except Exception:  # noqa: BLE001 - a bug in explaining must not cost the user their list
            log.exception("could not explain the list of %s; published without reasons", one.profile.user_id)
            return None

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
        fences, self._fences, staged, self._staged = self._fences, {}, self._staged, {}
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
        available = getattr(self.model, "available", None)  # other tiers (popular) know no catalog
        if available is not None:
            for one in staged.values():
                # Whatever the model ranked from: no item the catalog marks unavailable reaches Redis.
                one.items = [pair for pair in one.items if available(pair[0])]
        lists = [
            UserList(
                user_id,
                one.items,
                self.model.version,
                one.profile.last_ts,
                one.profile.events_seen,
                self._reasons(one) if self.explain else None,
                one.position,
            )
            for user_id, one in staged.items()
        ]
        try:
            published = await self.store.publish_lists(lists)
        except Exception:  # noqa: BLE001 - Redis down or a bug in the store: neither may stop the worker
            log.exception("could not publish the recommendations of %d user(s)", len(lists))
            self.metrics.publish_errors.inc(len(lists))
            self.published((), {user_id: one.position for user_id, one in staged.items()})
            return
        self.published(staged.keys(), {})
        for user_id, one in staged.items():
            reason = published.refused.get(user_id)
            if reason is not None:
                self.metrics.fenced_writes.labels(reason=reason).inc()
                continue
            for ts in one.event_ts:
                self.metrics.freshness.observe(max(0.0, (published.updated_ms - ts) / 1000.0))
