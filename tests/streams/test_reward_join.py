"""The reward join (`streams.reward_join`) and the learner (`streams.learner`), without Kafka or Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry

from engine.ops.metrics import Metrics
from engine.serving.experiment_stats import ExperimentStats
from engine.serving.experiments import Experiment, Variant
from engine.store.policy_store import PolicyStore
from models.bandit_features import action_matrix, hash_features
from schemas.decisions import Action, DecisionRecord, PolicySpec, RewardRecord
from streams.learner import Learner
from streams.reward_join import JoinOutcome, RewardJoin
from tests.engine.fake_redis import FakeRedis

T0 = 1_700_000_000_000
WAIT = 60_000
SPEC = PolicySpec(id="default", name="linucb", context_dims=4, action_dims=8)


def decision(decision_id: str, ts: int = T0, **extra: Any) -> DecisionRecord:
    return DecisionRecord(
        decision_id=decision_id,
        ts=ts,
        context={"hour": 7},
        actions=[Action(id="a"), Action(id="b", features={"price": 2})],
        chosen="b",
        probabilities=[0.25, 0.75],
        ranking=["b", "a"],
        policy=SPEC,
        policy_version=0,
        **extra,
    )


def reward(decision_id: str, value: float = 1.0, ts: int = T0 + 1_000) -> RewardRecord:
    return RewardRecord(decision_id=decision_id, reward=value, ts=ts)


def join() -> RewardJoin:
    return RewardJoin({}, wait_ms=WAIT, default_reward=0.0)


def test_a_reward_after_its_decision_is_joined_once() -> None:
    j = join()
    assert j.on_decision(decision("d1"), 0, T0) == (JoinOutcome.WAITING, None)
    outcome, example = j.on_reward(reward("d1", 1.0), 0, T0 + 1_000)
    assert outcome is JoinOutcome.JOINED and example is not None
    assert (example.decision.decision_id, example.reward, example.decision.propensity) == ("d1", 1.0, 0.75)
    assert j.on_reward(reward("d1", 0.0), 0, T0 + 2_000) == (JoinOutcome.DUPLICATE, None)
    assert j.on_decision(decision("d1"), 0, T0 + 2_000) == (JoinOutcome.DUPLICATE, None)
    assert j.expire(0, T0 + WAIT + 1) == []  # the tombstone goes quietly
    assert j.pending == {}


def test_a_reward_read_before_its_decision_waits_for_it() -> None:
    j = join()
    assert j.on_reward(reward("d2", 0.5), 1, T0 + 100) == (JoinOutcome.WAITING, None)
    outcome, example = j.on_decision(decision("d2"), 1, T0 + 200)
    assert outcome is JoinOutcome.JOINED and example is not None and example.reward == 0.5


def test_a_window_without_reward_closes_with_the_default_reward() -> None:
    j = RewardJoin({}, wait_ms=WAIT, default_reward=-0.5)
    j.on_decision(decision("d3"), 2, T0)
    assert j.expire(2, T0 + WAIT - 1) == []
    assert j.expire(1, T0 + WAIT) == []  # another partition's windows are not this tick's business
    [(outcome, example)] = j.expire(2, T0 + WAIT)
    assert outcome is JoinOutcome.EXPIRED and example is not None
    assert (example.reward, example.to_json()["outcome"]) == (-0.5, "expired")
    assert j.pending == {}


def test_a_reward_sent_after_the_window_is_late_and_the_decision_gets_the_default() -> None:
    j = join()
    j.on_decision(decision("d4"), 0, T0)
    assert j.on_reward(reward("d4", ts=T0 + WAIT + 1), 0, T0 + WAIT) == (JoinOutcome.LATE, None)
    [(outcome, example)] = j.expire(0, T0 + WAIT + 5)
    assert outcome is JoinOutcome.EXPIRED and example is not None and example.reward == 0.0


def test_a_backlog_of_old_decisions_still_waits_for_rewards_sent_in_time() -> None:
    j = join()
    now = T0 + 10 * WAIT  # the worker reads the decision long after it was made
    j.on_decision(decision("d5"), 0, now)
    assert j.expire(0, now + 1) == []
    outcome, _ = j.on_reward(reward("d5", ts=T0 + 500), 0, now + 2)
    assert outcome is JoinOutcome.JOINED


def test_a_reward_whose_decision_never_comes_expires_as_an_orphan_on_a_decisions_tick() -> None:
    j = join()
    j.on_reward(reward("ghost", ts=T0), 3, T0)
    assert j.expire(3, T0 + WAIT * 5) == []  # a rewards tick says nothing of the decisions read
    assert j.expire(3, T0 + WAIT - 1, decisions=True) == []
    assert j.expire(3, T0 + WAIT, decisions=True) == [(JoinOutcome.ORPHAN, None)]


def test_rewards_read_far_behind_their_decisions_still_join_the_windows_close_by_tick_time() -> None:
    # The rewards partition is read 5 waits behind the decisions one: its ticks, sent when the rewards
    # were, come after them; a decisions tick closes no decision's window.
    j = join()
    j.on_decision(decision("d6", ts=T0), 0, T0)
    assert j.expire(0, T0 + WAIT * 5, decisions=True) == []
    outcome, example = j.on_reward(reward("d6", ts=T0 + 500), 0, T0 + WAIT * 5)
    assert outcome is JoinOutcome.JOINED and example is not None and example.reward == 1.0
    assert j.expire(0, T0 + WAIT + 1) == [] and j.pending == {}


def test_decisions_read_far_behind_their_rewards_still_join() -> None:
    j = join()
    j.on_reward(reward("d7", ts=T0 + 500), 0, T0 + 600)
    assert j.expire(0, T0 + WAIT * 5) == []  # rewards ticks: the decision may still be behind
    outcome, example = j.on_decision(decision("d7", ts=T0), 0, T0 + WAIT * 5)
    assert outcome is JoinOutcome.JOINED and example is not None and example.reward == 1.0


class _Counted(dict[str, dict[str, Any]]):
    """A table that counts the scans of its entries."""

    scans = 0

    def items(self) -> Any:
        self.scans += 1
        return super().items()


def test_ticks_find_the_due_windows_without_scanning_the_table() -> None:
    table = _Counted()
    j = RewardJoin(table, wait_ms=WAIT, default_reward=0.0)
    for n in range(50):
        j.on_decision(decision(f"s{n}", ts=T0 + n), n % 4, T0 + n)
    j.on_reward(reward("s4", ts=T0 + 10), 0, T0 + 10)  # joined: its tombstone replaces the entry
    j.on_reward(reward("lone", ts=T0), 1, T0)
    assert j.expire(0, T0) == [] and table.scans == 1  # the first tick builds the index
    closed = j.expire(0, T0 + WAIT + 20)
    assert [e.decision.decision_id for _, e in closed if e] == [f"s{n}" for n in (0, 8, 12, 16, 20)]
    assert [e.decision.decision_id for _, e in j.expire(0, T0 + WAIT + 49) if e] == [
        f"s{n}" for n in range(24, 50, 4)
    ]
    assert j.expire(1, T0 + WAIT, decisions=True) == [(JoinOutcome.ORPHAN, None)]
    assert table.scans == 1 and not any(entry["p"] == 0 for entry in table.values())


def test_windows_restored_behind_the_joins_back_close_once_it_reindexes() -> None:
    restored: dict[str, dict[str, Any]] = {}
    j = RewardJoin(restored, wait_ms=WAIT, default_reward=0.0)
    assert j.expire(2, T0) == []
    # A rebalance restores another worker's open window into the table; Faust then calls reindex.
    other = RewardJoin(restored, wait_ms=WAIT, default_reward=0.0)
    other.on_decision(decision("moved", ts=T0), 2, T0)
    assert j.expire(2, T0 + WAIT) == []  # not indexed yet
    asyncio.run(j.reindex())
    [(outcome, example)] = j.expire(2, T0 + WAIT)
    assert outcome is JoinOutcome.EXPIRED and example is not None and restored == {}


def test_the_index_is_rebuilt_from_the_table_every_rebuild_period_anyway() -> None:
    table: dict[str, dict[str, Any]] = {}
    j = RewardJoin(table, wait_ms=WAIT, default_reward=0.0, rebuild_ms=0)
    assert j.expire(2, T0) == []
    RewardJoin(table, wait_ms=WAIT, default_reward=0.0).on_decision(decision("late", ts=T0), 2, T0)
    assert [outcome for outcome, _ in j.expire(2, T0 + WAIT)] == [JoinOutcome.EXPIRED]


async def test_the_learner_raises_the_rewarded_actions_probability_and_publishes() -> None:
    redis = FakeRedis()
    store = PolicyStore(redis, "unit")  # type: ignore[arg-type]
    stats = ExperimentStats(redis, "unit")  # type: ignore[arg-type]
    learner = Learner(
        store, stats, Metrics.create(CollectorRegistry(), "t", "m"), publish_every=10, publish_s=60
    )
    actions = [Action(id=f"a{i}") for i in range(4)]
    x = hash_features({"hour": 7}, 4)
    matrix = action_matrix([(a.id, a.features) for a in actions], 8)
    for n in range(40):
        chosen = f"a{n % 4}"
        ranking = [chosen, *(a.id for a in actions if a.id != chosen)]
        record = decision(f"d{n}", experiment="home", variant="b").model_copy(
            update={"actions": actions, "chosen": chosen, "probabilities": [0.25] * 4, "ranking": ranking}
        )
        await learner.learn({"decision": record.model_dump(mode="json"), "reward": float(chosen == "a2")})
    assert await store.version("default") == 4  # published every 10 rewards
    loaded = await store.load("default")
    assert loaded is not None
    probabilities = loaded[1].policy.decide(x, matrix).probabilities
    assert max(range(4), key=lambda i: probabilities[i]) == 2 and probabilities[2] > 0.9
    experiment = Experiment(name="home", variants=(Variant(name="b", weight=1),))
    report = await stats.report_one(experiment)
    assert report["variants"][0]["rewards"] == 40 and report["variants"][0]["mean_reward"] == 0.25


async def test_the_learner_counts_choices_of_a_less_probable_action_as_exploration() -> None:
    metrics = Metrics.create(CollectorRegistry(), "t", "m")
    redis = FakeRedis()
    store = PolicyStore(redis, "u")  # type: ignore[arg-type]
    stats = ExperimentStats(redis, "u")  # type: ignore[arg-type]
    learner = Learner(store, stats, metrics, publish_every=99, publish_s=60)
    greedy = decision("d1")  # chose b at 0.75
    explored = decision("d2").model_copy(update={"chosen": "a", "ranking": ["a", "b"]})
    tied = decision("d3").model_copy(update={"probabilities": [0.5, 0.5]})
    for record in (greedy, explored, tied):
        await learner.learn({"decision": record.model_dump(mode="json"), "reward": 0.0})
    get = metrics.registry.get_sample_value
    assert get("personalize_bandit_explored_total", {"policy": SPEC.id}) == 1.0
    assert get("personalize_bandit_learned_total", {"policy": SPEC.id, "source": "rewarded"}) == 3.0


async def test_a_snapshot_another_worker_published_since_is_not_overwritten_and_is_reloaded() -> None:
    metrics = Metrics.create(CollectorRegistry(), "t", "m")
    redis = FakeRedis()
    store = PolicyStore(redis, "u")  # type: ignore[arg-type]
    stats = ExperimentStats(redis, "u")  # type: ignore[arg-type]
    old, new = (Learner(store, stats, metrics, publish_every=99, publish_s=60) for _ in range(2))
    example = {"decision": decision("d1").model_dump(mode="json"), "reward": 1.0}
    await old.learn(example)
    await old.flush(force=True)
    assert await store.version(SPEC.id) == 1
    # A rebalance: the new owner loads version 1, learns and publishes; the old one still publishes.
    await new.learn(example)
    await old.learn(example)
    await new.flush(force=True)
    await old.flush(force=True)
    assert await store.version(SPEC.id) == 2
    loaded = await store.load(SPEC.id)
    assert loaded is not None and loaded[1].rewards == 2  # the new owner's snapshot, not the old one's
    get = metrics.registry.get_sample_value
    assert get("personalize_bandit_snapshot_conflicts_total", {"policy": SPEC.id}) == 1.0
    assert SPEC.id not in old.policies  # reloaded from Redis on its next example
    await old.learn(example)
    assert old.policies[SPEC.id].version == 2 and old.policies[SPEC.id].rewards == 3
