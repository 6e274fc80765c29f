"""The worker's side of consent (`streams.pipeline`, in-memory fakes): events of users without consent are
counted and dropped, never learned or stored; a withdrawal forgets the user and deletes their list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client import CollectorRegistry

from engine.ops.metrics import Metrics
from engine.store.redis_store import Published, RedisStore, UserList
from models.profile import UserProfile
from models.recommender import HybridRecommender
from schemas.events import Event, ItemRecord, encode
from schemas.users import ConsentRecord, ErasureRecord, PreferencesRecord, encode_user_record
from streams.pipeline import Pipeline

TS = 1_700_000_000_000


@dataclass
class _Store:
    lists: list[str] = field(default_factory=list)
    fences: dict[str, int] = field(default_factory=dict)

    async def publish_lists(self, lists: Sequence[UserList]) -> Published:
        self.lists += [one.user_id for one in lists]
        return Published(TS)

    async def fence_users(self, fences: dict[str, int], ttl_s: int) -> None:
        self.fences.update(fences)


class _Worker:
    def __init__(self, consent_required: bool = False) -> None:
        self.model = HybridRecommender(seed=1)
        for n in range(1, 7):
            self.model.learn_item(ItemRecord(item_id=f"i{n}", categories=("a" if n % 2 else "b",)))
        self.store = _Store()
        self.metrics = Metrics.create(CollectorRegistry(), "t", "m")
        self.learned: list[tuple[str, str]] = []

        async def send(topic: str, key: bytes | None, value: bytes) -> None:
            raise AssertionError(f"nothing should be sent, got {topic}: {value!r}")

        self.pipeline = Pipeline(
            model=self.model,
            store=cast(RedisStore, self.store),
            metrics=self.metrics,
            send=send,
            events_topic="e",
            dead_letter_topic="d",
            top_n=5,
            consent_required=consent_required,
        )
        self.pipeline.learned = lambda user, event: self.learned.append((user, event))
        self.profiles: dict[str, Any] = {}
        self.offset = 0

    async def event(self, event_id: str, user: str = "u1", item: str = "i1") -> str:
        raw = encode(Event(event_id=event_id, user_id=user, item_id=item, type="click", ts=TS))
        return await self.stage(raw, user)

    async def consent(self, granted: bool, user: str = "u1", event_id: str | None = None) -> str:
        record = ConsentRecord(event_id=event_id or f"c-{granted}", user_id=user, ts=TS, granted=granted)
        return await self.stage(encode_user_record(record), user)

    async def stage(self, raw: bytes, user: str) -> str:
        self.offset += 1
        return await self.pipeline.stage_event(raw, user.encode(), self.profiles, position=self.offset)

    def count(self, outcome: str) -> float:
        return self.metrics.registry.get_sample_value("personalize_events_total", {"outcome": outcome}) or 0.0


async def test_opt_out_a_withdrawal_forgets_the_user_and_their_later_events_are_dropped() -> None:
    w = _Worker()
    assert [await w.event(f"e{n}", item=f"i{n}") for n in (1, 2)] == ["learned", "learned"]
    await w.pipeline.flush()
    assert await w.event("e3", item="i3") == "learned"  # staged in the same batch as the withdrawal
    assert await w.consent(False) == "withdrawn"
    assert await w.event("e4", item="i4") == "no_consent"
    await w.pipeline.flush()
    assert w.profiles["u1"] == UserProfile("u1", seen_ids={"c-False": None}, consent=False).to_dict()
    assert w.store.fences == {"u1": 4}  # the withdrawal's offset: Redis refuses any older list
    assert w.store.lists == ["u1"]  # the first batch's list only: e3's list was never written
    assert ("u1", "e4") not in w.learned and w.count("no_consent") == 1.0
    # The model kept nothing of u1: a user with u1's name ranks like a stranger.
    assert w.model.recommend(UserProfile("u1"), 5) == w.model.recommend(UserProfile("stranger"), 5)


async def test_opt_in_nothing_of_a_user_is_kept_before_a_grant() -> None:
    w = _Worker(consent_required=True)
    assert await w.event("e1") == "no_consent"
    prefs = PreferencesRecord(event_id="p1", user_id="u1", ts=TS, liked_items=["i2"])
    assert await w.stage(encode_user_record(prefs), "u1") == "no_consent"
    await w.pipeline.flush()
    assert w.profiles == {} and w.store.lists == [] and w.learned == []
    assert await w.consent(True) == "consented"
    assert await w.event("e2") == "learned"
    await w.pipeline.flush()
    assert UserProfile.from_dict(w.profiles["u1"]).consent is True
    assert w.store.lists == ["u1"] and w.count("no_consent") == 2.0


async def test_a_reset_keeps_the_grant() -> None:
    w = _Worker(consent_required=True)
    await w.consent(True)
    reset = PreferencesRecord(event_id="p1", user_id="u1", ts=TS, reset=True)
    assert await w.stage(encode_user_record(reset), "u1") == "learned"
    assert await w.event("e1") == "learned"


async def test_an_erasure_keeps_the_withdrawal_and_a_regrant_admits_again() -> None:
    w = _Worker()
    await w.consent(False)
    erase = ErasureRecord(event_id="x1", user_id="u1", ts=TS)
    assert await w.stage(encode_user_record(erase), "u1") == "erased"
    assert await w.event("e1") == "no_consent"
    assert await w.consent(True, event_id="c-again") == "consented"
    assert await w.event("e2") == "learned"


async def test_a_failed_fence_of_a_withdrawn_user_is_counted_not_raised() -> None:
    w = _Worker()

    async def down(_fences: dict[str, int], _ttl_s: int) -> None:
        raise OSError("redis down")

    w.store.fence_users = down  # type: ignore[method-assign,assignment]
    await w.event("e1")
    await w.consent(False)
    await w.pipeline.flush()
    assert w.metrics.registry.get_sample_value("personalize_publish_errors_total") == 1.0


def test_a_replay_after_a_restore_learns_no_event_of_a_user_without_consent() -> None:
    w = _Worker(consent_required=True)
    w.profiles["u2"] = UserProfile("u2", consent=True).to_dict()
    raws = [
        (encode(Event(event_id="e1", user_id="u1", item_id="i1", type="click", ts=TS)), "u1"),
        (encode(Event(event_id="e2", user_id="u2", item_id="i2", type="click", ts=TS)), "u2"),
    ]
    outcomes = [
        w.pipeline.relearn(raw, user.encode(), w.profiles, lambda _u, _e: False) for raw, user in raws
    ]
    assert outcomes == ["no_consent", "learned"] and w.learned == [("u2", "e2")]


def test_another_workers_users_are_learned_by_the_consent_records_this_worker_read() -> None:
    """The replica has no profile of other workers' users: it judges their consent by the records."""

    def other(record: bytes, user: str = "u1") -> str:
        return w.pipeline.learn_others(record, user.encode(), lambda _u, _e: False)

    def click(event_id: str, user: str = "u1") -> bytes:
        return encode(Event(event_id=event_id, user_id=user, item_id="i1", type="click", ts=TS))

    def consent(granted: bool, event_id: str) -> bytes:
        return encode_user_record(ConsentRecord(event_id=event_id, user_id="u1", ts=TS, granted=granted))

    w = _Worker(consent_required=True)
    assert other(click("e1")) == "no_consent"  # opt-in: no grant read yet
    assert other(consent(True, "c1")) == "learned"
    assert other(click("e2")) == "learned" and w.model.sequence.history("u1").size == 1
    forgotten: list[tuple[str, str | None]] = []
    w.pipeline.forgotten = lambda user, event: forgotten.append((user, event))
    assert other(consent(False, "c2")) == "learned"  # a withdrawal forgets the user here too
    assert w.model.sequence.history("u1").size == 0 and forgotten == [("u1", None)]
    assert other(click("e3")) == "no_consent"
    erase = encode_user_record(ErasureRecord(event_id="x1", user_id="u1", ts=TS))
    assert other(erase) == "learned" and forgotten[-1] == ("u1", "x1")
    assert other(click("e4")) == "no_consent"  # an erasure keeps a withdrawal

    w = _Worker(consent_required=False)  # opt-out: learned until a withdrawal
    assert other(click("e1", "u2"), "u2") == "learned"


def test_a_run_of_records_is_learned_in_its_order() -> None:
    """`learn_others_many` learns events in bulk, but each consent record between them in its place:
    what came before a withdrawal is learned, then forgotten; what follows it is refused."""

    def click(event_id: str, item: str = "i1") -> tuple[bytes, bytes]:
        return encode(Event(event_id=event_id, user_id="u1", item_id=item, type="click", ts=TS)), b"u1"

    def consent(granted: bool, event_id: str) -> tuple[bytes, bytes]:
        record = ConsentRecord(event_id=event_id, user_id="u1", ts=TS, granted=granted)
        return encode_user_record(record), b"u1"

    w = _Worker(consent_required=True)
    run = [click("e0"), consent(True, "c1"), click("e1"), click("e2", "i2"), click("e1")]
    seen: set[str] = set()
    w.pipeline.learned = lambda _user, event: seen.add(event)
    known = lambda _u, event: event in seen  # noqa: E731 - the checkpointer's ring, in short
    outcomes = w.pipeline.learn_others_many(run, known)
    assert outcomes == ["no_consent", "learned", "learned", "learned", "duplicate"]
    assert w.model.sequence.history("u1").size == 2
    outcomes = w.pipeline.learn_others_many([click("e3"), consent(False, "c2"), click("e4")], known)
    assert outcomes == ["learned", "learned", "no_consent"]
    assert w.model.sequence.history("u1").size == 0
