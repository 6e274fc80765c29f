"""How the pipeline handles user records and what it learns without ranking, mixed into `Pipeline`.

User records (`schemas.users`): onboarding choices, "less like this", a reset, consent and erasure,
each applied to the user's profile and the model, with the fences an erasure, reset or withdrawal
leaves. Model-only paths: `relearn` (records the profile table counts but a restored model lacks) and
`learn_others` (records of partitions another worker owns, streams/replica.py). Never raises on input
and never writes Redis itself: the batch's fences and lists wait for `Pipeline.flush`.
"""

from __future__ import annotations

__all__ = ["UserRecords"]

from collections.abc import Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.ops.metrics import Metrics
from models.profile import UserProfile
from models.recommender import HybridRecommender
from schemas.errors import InvalidEventError
from schemas.events import Event, EventType, decode_object, parse_event
from schemas.users import (
    ConsentRecord,
    ErasureRecord,
    PreferencesRecord,
    UserRecord,
    admits,
    is_user_record,
    parse_user_record,
)
from streams.sender import Sender

if TYPE_CHECKING:
    from streams.quality import Quality

#: user_id -> `UserProfile.to_dict()`; a changelog-backed Faust table in the worker.
Profiles = MutableMapping[str, Any]


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


class UserRecords:
    """The user-record and model-only half of `Pipeline` (which sets every attribute declared here)."""

    model: HybridRecommender
    metrics: Metrics
    send: Sender
    events_topic: str
    top_n: int
    quality: Quality | None
    consent_required: bool
    learned: Callable[[str, str], None]
    trend: Callable[[Event], None]
    forgotten: Callable[[str, str | None], None]
    _staged: dict[str, Any]
    _fences: dict[str, int]
    _erased: list[tuple[str, str]]
    _others_consent: dict[str, bool]

    def _stage(self, event: Event | PreferencesRecord, profile: UserProfile, position: int) -> None:
        raise NotImplementedError  # `Pipeline._stage`

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
                self.model.learn_others([event])
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
            self.trend(record)
        else:
            profile = self._apply_user_record(record, profile, learn=True)
            if isinstance(record, PreferencesRecord) and (
                record.liked_categories or record.liked_items or record.hidden_items
            ):
                self.model.recommend(profile, self.top_n, None, record.ts)
        self.learned(record.user_id, record.event_id)
        return "learned"

    def learn_others(self, raw: bytes, key: bytes | None, known: Callable[[str, str], bool]) -> str:
        """`learn_others_many` of one record: its outcome."""
        return self.learn_others_many([(raw, key)], known)[0]

    def learn_others_many(
        self, records: Sequence[tuple[bytes, bytes | None]], known: Callable[[str, str], bool]
    ) -> list[str]:
        """Learn ``(value, key)`` records of partitions other workers own into the model only, in order
        (streams/replica.py); each one's outcome, as `relearn`'s.

        Learned as their owner's model learns them (same skips as `relearn`: re-keyed, invalid, known),
        but never ranked: the blend learns only from this worker's own rankings. No profile, no Redis,
        no drift monitor. Consent is judged by the consent records this worker has read of the user
        (the profile is the owner's); a withdrawal or an erasure forgets the user here too. Runs of
        events are learned in bulk (`HybridRecommender.learn_others`), each run before the next user
        record, so the model sees everything in the records' order.
        """
        outcomes: list[str] = []
        run: list[Event] = []
        for raw, key in records:
            record = _learnable(raw, key, known)
            if isinstance(record, str):
                outcomes.append(record)
                continue
            user = record.user_id
            if not isinstance(record, ConsentRecord | ErasureRecord) and not admits(
                self._others_consent.get(user), self.consent_required
            ):
                outcomes.append("no_consent")
                continue
            if isinstance(record, Event):
                run.append(record)
                self.trend(record)
            else:
                self.model.learn_others(run)
                run = []
                self._learn_user_record(record)
            self.learned(user, record.event_id)  # a repeat later in ``records`` is a duplicate
            outcomes.append("learned")
        self.model.learn_others(run)
        return outcomes

    def _learn_user_record(self, record: UserRecord) -> None:
        user = record.user_id
        if isinstance(record, ConsentRecord):
            self._others_consent[user] = record.granted
            if not record.granted:
                self._forget(user, None, learn=True)
            return
        if isinstance(record, ErasureRecord) and self._others_consent.get(user) is True:
            del self._others_consent[user]  # an erasure forgets a grant and keeps a withdrawal
        self._apply_user_record(record, UserProfile(user), learn=True, own=False)
