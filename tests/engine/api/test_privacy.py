"""Consent and pseudonymous ids at the API's edge (Redis and Kafka faked): what reaches Kafka and Redis."""

from __future__ import annotations

from typing import Any, cast

import orjson

from schemas.pseudonyms import Pseudonyms
from schemas.users import parse_user_record
from tests.engine.api.fakes import KEY, FakeProducer, FakeStore, make_app, running
from tests.engine.fake_redis import FakeRedis

AUTH = {"X-API-Key": KEY}
SECRET = "a-pseudonym-key-of-at-least-32-characters"
PS = Pseudonyms(SECRET.encode())
TS = 1_700_000_000_000


def _event(event_id: str, user: str) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user, "item_id": "i1", "type": "click", "ts": TS}


def _metric(text: str, outcome: str) -> float:
    line = f'personalize_api_events_total{{outcome="{outcome}"}} '
    return float(next(row for row in text.splitlines() if row.startswith(line)).split()[-1])


async def test_with_a_pseudonym_key_no_raw_user_id_reaches_kafka_or_redis() -> None:
    alice = PS.of("alice@example.com")
    store = FakeStore(client=cast(Any, FakeRedis()), recs={alice: [("i9", 0.9)], PS.of("zoë"): [("i7", 1.0)]})
    producer = FakeProducer()
    async with running(make_app(store, producer, pseudonym_key=SECRET)) as api:
        sent = await api.post("/v1/events", json=_event("e1", "alice@example.com"), headers=AUTH)
        prefs = await api.put(
            "/v1/users/alice@example.com/preferences", json={"muted_categories": ["horror"]}, headers=AUTH
        )
        rank = {"actions": [{"id": "a"}], "user_id": "alice@example.com"}
        ranked = await api.post("/v1/rank", json=rank, headers=AUTH)
        read = await api.get("/v1/recommendations/alice@example.com")  # the lean path
        via_route = await api.get("/v1/recommendations/zo%C3%AB")  # not ASCII: the FastAPI route answers
        erased = await api.delete("/v1/users/alice@example.com", headers=AUTH)
    assert [r.status_code for r in (sent, prefs, ranked, read, erased)] == [202, 200, 200, 200, 202]
    assert via_route.json()["user_id"] == "zoë" and via_route.json()["items"][0]["item_id"] == "i7"
    assert read.json()["user_id"] == "alice@example.com" and read.json()["items"][0]["item_id"] == "i9"
    assert prefs.json()["user_id"] == "alice@example.com"
    assert [(topic.split(".")[-1], key) for topic, _v, key in producer.sent] == [
        ("events", alice.encode()),  # the event
        ("events", alice.encode()),  # the preferences record
        ("decisions", orjson.loads(producer.sent[2][1])["decision_id"].encode()),
        ("events", alice.encode()),  # the erasure record
    ]
    assert all(b"alice" not in value for _t, value, _k in producer.sent)
    assert orjson.loads(producer.sent[2][1])["user_id"] == alice
    assert "alice@example.com" not in store.prefs and alice not in store.prefs  # erased after


async def test_a_withdrawal_deletes_the_users_keys_and_drops_their_events_at_the_edge() -> None:
    store = FakeStore(
        client=cast(Any, FakeRedis()), recs={"u1": [("i9", 0.9)]}, prefs={"u1": {"liked_item:i": "1"}}
    )
    producer = FakeProducer()
    async with running(make_app(store, producer)) as api:
        withdrawn = await api.put("/v1/users/u1/consent", json={"granted": False}, headers=AUTH)
        batch = await api.post("/v1/events", json=[_event("e1", "u1"), _event("e2", "u2")], headers=AUTH)
        prefs = await api.put("/v1/users/u1/preferences", json={"liked_items": ["i1"]}, headers=AUTH)
        ranked = await api.post("/v1/rank", json={"actions": [{"id": "a"}], "user_id": "u1"}, headers=AUTH)
        state = await api.get("/v1/users/u1/consent")
        metrics = (await api.get("/metrics")).text
    assert withdrawn.json() | {"event_id": None, "since_ms": None} == {
        "user_id": "u1",
        "granted": False,
        "admitted": False,
        "since_ms": None,
        "event_id": None,
        "deleted_keys": 2,
    }
    assert "u1" not in store.recs and "u1" not in store.prefs
    assert batch.status_code == 202
    assert batch.json() == {"accepted": 1, "event_ids": ["e2"], "dropped": ["e1"]}
    assert prefs.status_code == 409 and "not consented" in prefs.json()["message"]
    assert "u1" not in store.prefs
    consent_record, event, decision = (value for _t, value, _k in producer.sent)
    assert parse_user_record(consent_record).model_dump(include={"type", "user_id", "granted"}) == {
        "type": "consent",
        "user_id": "u1",
        "granted": False,
    }
    assert orjson.loads(event)["user_id"] == "u2"
    assert "user_id" not in orjson.loads(decision)  # ranked anonymously, nothing of u1 logged
    assert ranked.status_code == 200
    assert state.json()["granted"] is False and state.json()["admitted"] is False
    assert (_metric(metrics, "no_consent"), _metric(metrics, "accepted")) == (1.0, 1.0)


async def test_with_consent_required_only_users_who_granted_it_get_through() -> None:
    store = FakeStore(client=cast(Any, FakeRedis()))
    producer = FakeProducer()
    async with running(make_app(store, producer, consent_required=True)) as api:
        before = await api.post("/v1/events", json=_event("e1", "u1"), headers=AUTH)
        unknown = await api.get("/v1/users/u1/consent")
        granted = await api.put("/v1/users/u1/consent", json={"granted": True}, headers=AUTH)
        after = await api.post("/v1/events", json=_event("e2", "u1"), headers=AUTH)
        erased = await api.delete("/v1/users/u1", headers=AUTH)
        again = await api.post("/v1/events", json=_event("e3", "u1"), headers=AUTH)
    assert before.json()["dropped"] == ["e1"] and before.json()["accepted"] == 0
    assert unknown.json()["granted"] is None and unknown.json()["admitted"] is False
    assert granted.json()["admitted"] is True and after.json()["event_ids"] == ["e2"]
    assert erased.status_code == 202 and again.json()["dropped"] == ["e3"]  # an erasure forgets a grant
    kinds = [orjson.loads(v).get("type") for _t, v, _k in producer.sent]
    assert kinds == ["consent", "click", "erasure"]


async def test_an_erasure_keeps_a_withdrawal() -> None:
    store = FakeStore(client=cast(Any, FakeRedis()))
    async with running(make_app(store, FakeProducer())) as api:
        await api.put("/v1/users/u1/consent", json={"granted": False}, headers=AUTH)
        await api.delete("/v1/users/u1", headers=AUTH)
        after = await api.post("/v1/events", json=_event("e1", "u1"), headers=AUTH)
    assert after.json()["dropped"] == ["e1"]


async def test_without_redis_events_are_refused_not_sent_unchecked() -> None:
    store = FakeStore(client=cast(Any, FakeRedis()))
    store.client.up = False
    producer = FakeProducer()
    async with running(make_app(store, producer)) as api:
        response = await api.post("/v1/events", json=_event("e1", "u1"), headers=AUTH)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert producer.sent == []


async def test_consent_bodies_are_strict() -> None:
    async with running(make_app(FakeStore(client=cast(Any, FakeRedis())), FakeProducer())) as api:
        for body in ({}, {"granted": "yes"}, {"granted": 1}, {"granted": True, "extra": 1}):
            response = await api.put("/v1/users/u1/consent", json=body, headers=AUTH)
            assert response.status_code == 422, body
        assert (await api.put("/v1/users/u1/consent", json={"granted": True})).status_code == 401
