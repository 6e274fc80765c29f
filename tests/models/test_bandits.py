"""Contract checks over every registered bandit policy (River's check-every-estimator style)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models import bandits
from models.bandit_env import LinearBanditEnv

NAMES = sorted(bandits.POLICIES)
LEARNERS = [name for name in NAMES if name != "uniform"]
CONTEXT = [0.3, -1.2, 0.5]
ACTIONS = [[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.2]]


def _trained(name: str, seed: int = 0, rounds: int = 50) -> bandits.Policy:
    policy = bandits.make(name, seed=seed)
    for r in LinearBanditEnv(n_items=20, n_candidates=4, context_dim=3, action_dim=2, seed=9).rounds(rounds):
        decision = policy.decide(r.context, r.actions)
        policy.learn_one(r.context, r.actions, decision.action, r.reward(decision.action))
    return policy


@pytest.mark.parametrize("name", NAMES)
def test_decision_is_a_valid_distribution_with_a_positive_propensity(name: str) -> None:
    policy = _trained(name)
    for _ in range(20):
        d = policy.decide(CONTEXT, ACTIONS)
        assert len(d.probabilities) == len(ACTIONS)
        assert min(d.probabilities) > 0
        assert sum(d.probabilities) == pytest.approx(1.0, abs=1e-9)
        assert d.propensity == d.probabilities[d.action] > 0
        assert d.ranking[0] == d.action and sorted(d.ranking) == list(range(len(ACTIONS)))
        assert len(d.decision_id) == 32 and int(d.decision_id, 16) >= 0


@pytest.mark.parametrize("name", NAMES)
def test_decision_ids_are_unique(name: str) -> None:
    policy = bandits.make(name, seed=1)
    assert len({policy.decide(CONTEXT, ACTIONS).decision_id for _ in range(100)}) == 100


@pytest.mark.parametrize("name", NAMES)
def test_inputs_are_not_mutated(name: str) -> None:
    policy = bandits.make(name, seed=0)
    context, actions = np.array(CONTEXT), np.array(ACTIONS)
    before = context.copy(), actions.copy()
    d = policy.decide(context, actions)
    policy.learn_one(context, actions, d.action, 1.0, weight=2.0)
    policy.decide(context, actions)
    assert np.array_equal(context, before[0]) and np.array_equal(actions, before[1])


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_decides_identically(name: str) -> None:
    policy = _trained(name)
    copy = pickle.loads(pickle.dumps(policy))
    assert [policy.decide(CONTEXT, ACTIONS) for _ in range(10)] == [
        copy.decide(CONTEXT, ACTIONS) for _ in range(10)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_decisions_other_seed_other_ids(name: str) -> None:
    a, b, c = _trained(name, seed=5), _trained(name, seed=5), _trained(name, seed=6)
    first = [a.decide(CONTEXT, ACTIONS) for _ in range(10)]
    assert first == [b.decide(CONTEXT, ACTIONS) for _ in range(10)]
    assert [d.decision_id for d in first] != [c.decide(CONTEXT, ACTIONS).decision_id for _ in range(10)]


@pytest.mark.parametrize("name", NAMES)
def test_clone_keeps_parameters_and_drops_state(name: str) -> None:
    trained = _trained(name, seed=3)
    fresh, clone = bandits.make(name, seed=3), trained.clone()
    assert repr(clone) == repr(trained) == repr(fresh)
    assert [clone.decide(CONTEXT, ACTIONS) for _ in range(5)] == [
        fresh.decide(CONTEXT, ACTIONS) for _ in range(5)
    ]


@pytest.mark.parametrize("name", LEARNERS)
def test_learning_beats_uniform_in_an_easy_environment(name: str) -> None:
    env = LinearBanditEnv(n_items=30, n_candidates=5, context_dim=3, action_dim=3, strength=3.0, seed=2)
    policy = bandits.make(name, seed=0)
    late_regret, late_uniform = [], []
    for t, r in enumerate(env.rounds(1500)):
        d = policy.decide(r.context, r.actions)
        policy.learn_one(r.context, r.actions, d.action, r.reward(d.action))
        if t >= 1000:
            late_regret.append(r.regret(d.action))
            late_uniform.append(float(r.expected.max() - r.expected.mean()))
    assert np.mean(late_regret) < 0.25 * np.mean(late_uniform)


def test_weighted_updates_count_more() -> None:
    once, twice = bandits.OnlineRidge(), bandits.OnlineRidge()
    phi = np.array([1.0, 0.0])
    once.learn_one(phi, 1.0, weight=1.0)
    twice.learn_one(phi, 1.0, weight=3.0)
    assert once.predict(phi[None, :])[0] == pytest.approx(0.5)
    assert twice.predict(phi[None, :])[0] == pytest.approx(0.75)


def test_misuse_is_reported() -> None:
    policy = bandits.make("linucb", seed=0)
    with pytest.raises(ValueError, match="unknown policy"):
        bandits.make("nope")
    with pytest.raises(ValueError, match="not among"):
        policy.learn_one(CONTEXT, ACTIONS, 7, 1.0)
    policy.learn_one(CONTEXT, ACTIONS, 0, 1.0)
    with pytest.raises(ValueError, match="dimension changed"):
        policy.decide([1.0], ACTIONS)
    with pytest.raises(ValueError, match="non-empty"):
        policy.decide(CONTEXT, np.zeros((0, 2)))
