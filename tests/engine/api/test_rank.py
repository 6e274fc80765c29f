"""``/v1/rank``, ``/v1/reward`` and ``/v1/experiments`` through the ASGI app, with Redis and Kafka faked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import orjson
import pytest
import pytest_asyncio

from engine.sdk.client import AsyncClient
from engine.store.policy_store import PolicyStore
from models.bandit_features import action_matrix, hash_features
from models.bandit_snapshot import dumps
from models.bandits import LinUCB
from schemas.decisions import parse_decision
from schemas.errors import InvalidEventError
from tests.engine.api.fakes import KEY, FakeProducer, FakeStore, make_app, running
from tests.engine.fake_redis import FakeRedis

AUTH = {"X-API-Key": KEY}
ACTIONS: list[dict[str, Any]] = [
    {"id": "a"},
    {"id": "b", "features": {"price": 2.5, "colour": "red"}},
    {"id": "c"},
]
BODY: dict[str, Any] = {"context": {"device": "mobile", "hour": 7}, "actions": ACTIONS}
EXPERIMENTS = orjson.dumps(
    {
        "experiments": [
            {
                "name": "home",
                "surfaces": ["home"],
                "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "policy": "egreedy"}],
            }
        ]
    }
).decode()


@pytest.fixture
def redis() -> FakeRedis:
    return FakeRedis()


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest_asyncio.fixture
async def api(redis: FakeRedis, producer: FakeProducer) -> AsyncIterator[Any]:
    store = FakeStore(client=cast(Any, redis))
    async with running(make_app(store, producer, experiments=EXPERIMENTS)) as client:
        yield client


async def test_rank_answers_every_probability_and_logs_the_decision_keyed_by_its_id(
    api: Any, producer: FakeProducer
) -> None:
    response = await api.post("/v1/rank", json=BODY, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ranking"][0]["id"] == body["chosen"]
    assert sorted(r["id"] for r in body["ranking"]) == ["a", "b", "c"]
    assert sum(r["probability"] for r in body["ranking"]) == pytest.approx(1.0)
    assert (body["policy"], body["policy_version"], body["experiment"]) == ("default", 0, None)
    [(topic, value, key)] = producer.sent
    assert (topic, key) == ("p13n.unit.decisions", body["decision_id"].encode())
    logged = parse_decision(value)
    assert logged.chosen == body["chosen"] and logged.context == BODY["context"]
    assert logged.propensity == next(r["probability"] for r in body["ranking"] if r["id"] == body["chosen"])


async def test_exclude_removes_candidates_and_excluding_all_is_422(api: Any) -> None:
    body = (await api.post("/v1/rank", json={**BODY, "exclude": ["a", "c"]}, headers=AUTH)).json()
    assert [r["id"] for r in body["ranking"]] == ["b"] and body["ranking"][0]["probability"] == 1.0
    everything = await api.post("/v1/rank", json={**BODY, "exclude": ["a", "b", "c"]}, headers=AUTH)
    assert everything.status_code == 422
    assert everything.json()["problems"][0]["field"] == "exclude"


@pytest.mark.parametrize(
    "body",
    [
        {"actions": []},
        {"actions": [{"id": "a"}, {"id": "a"}]},
        {"actions": [{"id": "a", "features": {"x": 1e300}}]},
        {"actions": [{"id": "a"}], "context": {"x": [1]}},
        {"actions": [{"id": "a"}], "experiment": "nope", "user_id": "u1"},
        {"actions": [{"id": "a"}], "experiment": "home"},
        {"actions": [{"id": " "}]},
    ],
)
async def test_bad_rank_bodies_are_422(api: Any, producer: FakeProducer, body: dict[str, Any]) -> None:
    response = await api.post("/v1/rank", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert producer.sent == []


async def test_rank_and_reward_need_a_key(api: Any) -> None:
    assert (await api.post("/v1/rank", json=BODY)).status_code == 401
    assert (await api.post("/v1/reward", json={"decision_id": "d", "reward": 1})).status_code == 401


async def test_a_published_snapshot_is_used_by_the_next_rank(api: Any, redis: FakeRedis) -> None:
    policy = LinUCB(seed=0)
    x = hash_features(BODY["context"], 16)
    matrix = action_matrix([(a["id"], a.get("features", {})) for a in ACTIONS], 16)
    for n in range(60):
        policy.learn_one(x, matrix, n % 3, float(n % 3 == 2))
    blob = dumps(policy, "linucb", context_dims=16, action_dims=16, rewards=60)
    assert await PolicyStore(cast(Any, redis), "unit").publish("default", blob, 60, expected=0) == 1
    body = (await api.post("/v1/rank", json=BODY, headers=AUTH)).json()
    assert body["policy_version"] == 1
    assert max(body["ranking"], key=lambda r: r["probability"])["id"] == "c"
    assert next(r["probability"] for r in body["ranking"] if r["id"] == "c") > 0.9


async def test_a_reward_is_produced_keyed_by_its_decision(api: Any, producer: FakeProducer) -> None:
    response = await api.post("/v1/reward", json={"decision_id": "d-1", "reward": 0.5}, headers=AUTH)
    assert response.status_code == 202
    assert response.json() == {"decision_id": "d-1", "accepted": True}
    [(topic, value, key)] = producer.sent
    assert (topic, key) == ("p13n.unit.rewards", b"d-1") and orjson.loads(value)["reward"] == 0.5


async def test_kafka_down_is_503(api: Any, producer: FakeProducer) -> None:
    producer.fail = True
    assert (await api.post("/v1/rank", json=BODY, headers=AUTH)).status_code == 503
    assert (
        await api.post("/v1/reward", json={"decision_id": "d", "reward": 1}, headers=AUTH)
    ).status_code == 503


async def test_experiment_variants_are_sticky_logged_counted_and_checked(
    api: Any, producer: FakeProducer
) -> None:
    variants = {}
    for n in range(40):
        body = {**BODY, "user_id": f"u{n}", "surface": "home"}
        first = (await api.post("/v1/rank", json=body, headers=AUTH)).json()
        again = (await api.post("/v1/rank", json=body, headers=AUTH)).json()
        assert first["variant"] == again["variant"] and first["experiment"] == "home"
        assert first["policy"] == f"home.{first['variant']}"
        variants[f"u{n}"] = first["variant"]
    logged = [parse_decision(v) for t, v, _ in producer.sent if t == "p13n.unit.decisions"]
    assert all(d.variant == variants[d.user_id or ""] for d in logged)
    [report] = (await api.get("/v1/experiments")).json()
    counts = {v["variant"]: (v["users"], v["decisions"]) for v in report["variants"]}
    n_a = sum(v == "a" for v in variants.values())
    assert counts == {"a": (n_a, 2 * n_a), "b": (40 - n_a, 2 * (40 - n_a))}
    assert report["srm"]["expected_ratios"] == {"a": 0.5, "b": 0.5} and not report["srm"]["mismatch"]
    other_surface = (await api.post("/v1/rank", json={**BODY, "user_id": "u1"}, headers=AUTH)).json()
    assert other_surface["experiment"] is None


async def test_events_get_the_users_variant_stamped(api: Any, producer: FakeProducer) -> None:
    event = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "click", "ts": 1_700_000_000_000}
    await api.post("/v1/events", json={**event, "context": {"surface": "home"}}, headers=AUTH)
    await api.post("/v1/events", json={**event, "event_id": "e2"}, headers=AUTH)
    home, other = (orjson.loads(v)["context"] for _, v, _ in producer.sent)
    assert home["experiment"] == "home" and home["variant"] in {"a", "b"}
    assert "experiment" not in other


async def test_the_sdk_ranks_rewards_and_reports(redis: FakeRedis, producer: FakeProducer) -> None:
    app = make_app(FakeStore(client=cast(Any, redis)), producer, experiments=EXPERIMENTS)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://api", api_key=KEY, transport=transport) as client:
            ranked = await client.rank(BODY["context"], ACTIONS, user_id="u1", surface="home", exclude=["a"])
            assert ranked.ranking[0] == ranked.chosen and set(ranked.probabilities) == {"b", "c"}
            assert ranked.experiment == "home" and ranked.policy == f"home.{ranked.variant}"
            await client.reward(ranked.decision_id, 1.0)
            [report] = await client.experiments()
            assert sum(v["decisions"] for v in report["variants"]) == 1
            with pytest.raises(InvalidEventError) as caught:
                await client.rank({}, [{"id": "a"}, {"id": "a"}])
            assert caught.value.problems[0].field == "actions"
    assert [t for t, _, _ in producer.sent] == ["p13n.unit.decisions", "p13n.unit.rewards"]
