"""The synthetic bandit environment: reproducible, and its best policy really is the best."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.bandit_env import LinearBanditEnv, Round


def test_same_seed_same_rounds_other_seed_other_rounds() -> None:
    a, b, c = LinearBanditEnv(seed=4), LinearBanditEnv(seed=4), LinearBanditEnv(seed=5)
    first = [(r.item_ids.tolist(), r.context.tolist(), r.uniforms.tolist()) for r in a.rounds(20)]
    assert first == [(r.item_ids.tolist(), r.context.tolist(), r.uniforms.tolist()) for r in b.rounds(20)]
    assert first != [(r.item_ids.tolist(), r.context.tolist(), r.uniforms.tolist()) for r in c.rounds(20)]


def test_rewards_follow_the_stated_click_probabilities() -> None:
    rounds = list(LinearBanditEnv(seed=1).rounds(4000))
    realised = np.array([r.reward(3) for r in rounds])
    expected = np.array([r.expected[3] for r in rounds])
    se = np.sqrt(np.mean(expected * (1 - expected)) / len(rounds))
    assert abs(realised.mean() - expected.mean()) < 4 * se


def test_the_best_policy_beats_every_other_fixed_rule() -> None:
    rounds = list(LinearBanditEnv(seed=2).rounds(3000))
    rng = np.random.default_rng(0)
    rules: dict[str, Callable[[Round], int]] = {
        "best": lambda r: r.best,
        "first": lambda r: 0,
        "random": lambda r: int(rng.integers(r.expected.shape[0])),
        "second_best": lambda r: int(np.argsort(r.expected)[-2]),
        "worst": lambda r: int(np.argmin(r.expected)),
    }
    realised = {name: np.mean([r.reward(rule(r)) for r in rounds]) for name, rule in rules.items()}
    assert max(realised, key=lambda name: realised[name]) == "best"
    assert all(r.regret(r.best) == 0.0 and min(r.regret(a) for a in range(10)) >= 0 for r in rounds)
    assert realised["best"] - realised["random"] > 0.3
