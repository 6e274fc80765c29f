"""The policy learner and the API's policy cache with a River policy: signed snapshots, refusals."""

from __future__ import annotations

import base64

from prometheus_client import CollectorRegistry

from engine.ops.metrics import Metrics
from engine.serving.experiment_stats import ExperimentStats
from engine.store.policy_store import PolicyCache, PolicyStore
from models.bandit_features import action_matrix, hash_features
from models.bandit_snapshot import header_of
from schemas import keys
from schemas.decisions import Action, DecisionRecord, PolicySpec
from schemas.keys import PolicyField
from streams.learner import Learner
from tests.engine.fake_redis import FakeRedis

KEY = b"k" * 32
SPEC = PolicySpec(id="default", name="river-ucb", context_dims=4, action_dims=8)
ACTIONS = [Action(id=f"a{i}", features={"price": float(i)}) for i in range(4)]


def _decision(n: int, chosen: str) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"d{n}",
        ts=1_700_000_000_000,
        context={"hour": 7},
        actions=ACTIONS,
        chosen=chosen,
        probabilities=[0.25] * 4,
        ranking=[chosen, *(a.id for a in ACTIONS if a.id != chosen)],
        policy=SPEC,
        policy_version=0,
    )


def _setup(key: bytes | None = KEY) -> tuple[FakeRedis, PolicyStore, Learner, Metrics]:
    redis = FakeRedis()
    metrics = Metrics.create(CollectorRegistry(), "t", "m")
    store = PolicyStore(redis, "u", key)  # type: ignore[arg-type]
    stats = ExperimentStats(redis, "u")  # type: ignore[arg-type]
    return redis, store, Learner(store, stats, metrics, publish_every=10, publish_s=60), metrics


async def _learn(learner: Learner, rounds: int) -> None:
    for n in range(rounds):
        chosen = f"a{n % 4}"
        await learner.learn(
            {"decision": _decision(n, chosen).model_dump(mode="json"), "reward": float(chosen == "a2")}
        )


async def test_the_learner_publishes_signed_river_snapshots_the_cache_decides_with() -> None:
    redis, store, learner, metrics = _setup()
    await _learn(learner, 40)
    assert await store.version("default") == 4
    raw = await redis.hget(keys.policy("u", "default"), PolicyField.SNAPSHOT)
    assert raw is not None
    header, _ = header_of(base64.b64decode(raw))
    assert header["state"] == "river-pickle" and "hmac_sha256" in header
    cached = await PolicyCache(store, metrics).get(SPEC, 4)
    assert cached.used_version == 4 and cached.refused is None
    x, matrix = hash_features({"hour": 7}, 4), action_matrix([(a.id, a.features) for a in ACTIONS], 8)
    probabilities = cached.policy.decide(x, matrix).probabilities
    assert max(range(4), key=lambda i: probabilities[i]) == 2 and probabilities[2] > 0.9


async def test_a_tampered_snapshot_is_refused_by_the_cache_and_replaced_by_the_learner() -> None:
    redis, store, learner, metrics = _setup()
    await _learn(learner, 10)
    # Someone with Redis access but not the key writes their own (unsigned) River state.
    _, forger, forging, _ = _setup(key=None)
    await _learn(forging, 10)
    forged = await forger.client.hget(keys.policy("u", "default"), PolicyField.SNAPSHOT)
    await redis.hset(keys.policy("u", "default"), mapping={PolicyField.SNAPSHOT: forged})
    cached = await PolicyCache(store, metrics).get(SPEC, 1)
    assert cached.refused == "unsigned" and cached.used_version == 0
    fresh_learner = Learner(store, ExperimentStats(redis, "u"), metrics, publish_every=10, publish_s=60)  # type: ignore[arg-type]
    await _learn(fresh_learner, 10)
    get = metrics.registry.get_sample_value
    assert get("personalize_bandit_snapshot_refused_total", {"reason": "unsigned"}) == 2.0
    assert await store.version("default") == 2  # published over the refused version
    assert (await store.load("default")) is not None  # and readable again: signed
