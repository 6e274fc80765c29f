"""River's bandit policies behind our Policy contract (models/river_bandits.py): honest propensities,
seeded, cloneable, and learning in the benchmark's world."""

from __future__ import annotations

import numpy as np
import pytest

from models.bandit_env import LinearBanditEnv
from models.bandits import Policy, UniformRandom
from models.river_bandits import RIVER_POLICIES, RiverPolicy


def regret(policy: Policy, rounds: int = 2000) -> float:
    total = 0.0
    for r in LinearBanditEnv(seed=0).rounds(rounds):
        decision = policy.decide(r.context, r.actions)
        policy.learn_one(r.context, r.actions, decision.action, r.reward(decision.action))
        total += r.regret(decision.action)
    return total


@pytest.mark.parametrize("name", sorted(RIVER_POLICIES))
def test_contract(name: str) -> None:
    policy = RiverPolicy(name, epsilon=0.1, seed=3)
    env_round = next(LinearBanditEnv(seed=1).rounds(1))
    decision = policy.decide(env_round.context, env_round.actions)
    assert sum(decision.probabilities) == pytest.approx(1.0)
    assert min(decision.probabilities) >= 0.1 / len(env_round.actions) - 1e-12
    assert decision.ranking[0] == decision.action and sorted(decision.ranking) == list(range(10))
    # Seeded: the same seed decides the same way; a clone starts untrained with the same parameters.
    again = RiverPolicy(name, epsilon=0.1, seed=3).decide(env_round.context, env_round.actions)
    assert again.action == decision.action and again.probabilities == decision.probabilities
    assert repr(policy.clone()) == repr(policy)
    with pytest.raises(ValueError, match="not among"):
        policy.learn_one(env_round.context, env_round.actions, 10, 1.0)


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(ValueError, match="river-linucb"):
        RiverPolicy("river-nope")


@pytest.mark.parametrize("name", ["river-linucb", "river-egreedy"])
def test_learns_better_than_uniform_play(name: str) -> None:
    uniform = regret(UniformRandom(seed=0))
    assert regret(RiverPolicy(name, seed=0)) < 0.9 * uniform


def test_without_epsilon_the_played_arm_is_rivers_pull() -> None:
    policy = RiverPolicy("river-egreedy", epsilon=0.0, seed=0)
    river = policy._river
    pulls: list[str] = []
    pull = river.pull

    def spy(arms: list[str]) -> str:
        pulls.append(pull(arms))
        return pulls[-1]

    river.pull = spy
    actions = np.eye(3)
    for _ in range(300):  # arm 1 always pays
        d = policy.decide([0.0], actions)
        assert d.probabilities[d.action] == 1.0 and pulls[-1] == ",".join(
            "1" if i == d.action else "0" for i in range(3)
        )
        policy.learn_one([0.0], actions, d.action, float(d.action == 1))
    assert pulls[-50:].count("0,1,0") >= 40  # found the paying arm; River's own epsilon (0.1) still explores
