"""Bandit benchmark: our policies, Vowpal Wabbit's ``cb_explore_adf`` and uniform random, one environment.

Every policy plays the same seeded rounds of `models.bandit_env.LinearBanditEnv`; the report is the
cumulative regret against the known best policy. VW is optional: when missing it is reported as skipped.
"""

from __future__ import annotations

__all__ = ["OURS", "VW_CONFIGS", "run"]

import time
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from models import river_bandits
from models.bandit_env import LinearBanditEnv

#: Our policies in the benchmark, with their default parameters, and the baseline.
OURS = ("linucb", "lints", "logts", "egreedy", "uniform")
#: VW's contextual bandit with action-dependent features: SquareCB (the exploration the VW wiki
#: recommends for cb_explore_adf) and plain epsilon-greedy; ``-q ua`` crosses context and action
#: features, as our policies do.
VW_CONFIGS = {
    "vw-squarecb": "--cb_explore_adf --squarecb -q ua",
    "vw-epsilon": "--cb_explore_adf --epsilon 0.05 -q ua",
}


class _Player(Protocol):
    def choose(self, context: NDArray[np.float64], actions: NDArray[np.float64]) -> tuple[int, float]: ...

    def learn(
        self, context: NDArray[np.float64], actions: NDArray[np.float64], chosen: int, reward: float, p: float
    ) -> None: ...


class _Ours:
    def __init__(self, name: str, seed: int) -> None:
        self.policy = river_bandits.make_any(name, seed=seed)

    def choose(self, context: NDArray[np.float64], actions: NDArray[np.float64]) -> tuple[int, float]:
        decision = self.policy.decide(context, actions)
        return decision.action, decision.propensity

    def learn(
        self, context: NDArray[np.float64], actions: NDArray[np.float64], chosen: int, reward: float, p: float
    ) -> None:
        self.policy.learn_one(context, actions, chosen, reward)


class _VowpalWabbit:
    """VW through its Python bindings and text format: a ``shared`` line, then one line per action."""

    def __init__(self, args: str, seed: int) -> None:
        import vowpalwabbit

        self.workspace = vowpalwabbit.Workspace(f"{args} --random_seed {seed} --quiet")
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def _lines(
        context: NDArray[np.float64], actions: NDArray[np.float64], label: tuple[int, str] | None = None
    ) -> list[str]:
        shared = "shared |u " + " ".join(f"x{i}:{v:.6g}" for i, v in enumerate(context))
        lines = [shared]
        for index, row in enumerate(actions):
            prefix = f"{label[1]} " if label is not None and label[0] == index else ""
            lines.append(prefix + "|a " + " ".join(f"a{i}:{v:.6g}" for i, v in enumerate(row)))
        return lines

    def choose(self, context: NDArray[np.float64], actions: NDArray[np.float64]) -> tuple[int, float]:
        pmf = np.asarray(self.workspace.predict(self._lines(context, actions)), dtype=np.float64)
        pmf /= pmf.sum()
        chosen = int(self.rng.choice(pmf.shape[0], p=pmf))
        return chosen, float(pmf[chosen])

    def learn(
        self, context: NDArray[np.float64], actions: NDArray[np.float64], chosen: int, reward: float, p: float
    ) -> None:
        # VW minimises a cost; SquareCB assumes costs in [0, 1], so cost = 1 - reward.
        self.workspace.learn(self._lines(context, actions, (chosen, f"0:{1.0 - reward:g}:{p:.6g}")))

    def close(self) -> None:
        self.workspace.finish()


def _vw_missing() -> str | None:
    try:
        import vowpalwabbit  # noqa: F401
    except ImportError as exc:
        return f"vowpalwabbit is not installed ({exc}); pip install vowpalwabbit"
    return None


def _play(player: _Player, env: LinearBanditEnv, rounds: int, advance: Any) -> dict[str, float]:
    regret = reward_sum = 0.0
    start = time.perf_counter()
    for r in env.rounds(rounds):
        chosen, p = player.choose(r.context, r.actions)
        reward = r.reward(chosen)
        player.learn(r.context, r.actions, chosen, reward, p)
        regret += r.regret(chosen)
        reward_sum += reward
        advance()
    return {
        "regret": round(regret, 3),
        "mean_reward": round(reward_sum / rounds, 5),
        "seconds": round(time.perf_counter() - start, 3),
    }


def run(
    rounds: int = 5000, seed: int = 0, *, bias: float = -1.0, console: Console | None = None
) -> dict[str, Any]:
    """Play every policy for ``rounds`` rounds of the environment seeded with ``seed``; ``bias`` is the
    environment's base logit (-1: click rates of 35-75%; -5: 3% for a random choice, 15% at best).

    Returns ``{"rounds", "seed", "environment", "policies": {name: {"regret", "mean_reward", "seconds"}},
    "skipped": {name: reason}, "best_possible_mean_reward"}``. A progress bar goes to ``console``.

    >>> report = run(rounds=50, seed=1)
    >>> report["policies"]["uniform"]["regret"] > 0, sorted(report["policies"])[:4]
    (True, ['egreedy', 'lints', 'linucb', 'logts'])
    """
    env = LinearBanditEnv(seed=seed, bias=bias)
    expected_best = sum(float(r.expected.max()) for r in env.rounds(rounds))
    missing = _vw_missing()
    names = [*OURS, *river_bandits.RIVER_POLICIES] + ([] if missing else list(VW_CONFIGS))
    report: dict[str, Any] = {
        "rounds": rounds,
        "seed": seed,
        "environment": {
            "n_items": env.n_items,
            "n_candidates": env.n_candidates,
            "context_dim": env.context_dim,
            "action_dim": env.action_dim,
            "bias": bias,
        },
        "policies": {},
        "skipped": {name: missing for name in VW_CONFIGS} if missing else {},
        "best_possible_mean_reward": round(expected_best / rounds, 5),
    }
    columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=console is None) as progress:
        for name in names:
            task = progress.add_task(name, total=rounds)
            player: _Ours | _VowpalWabbit = (
                _VowpalWabbit(VW_CONFIGS[name], seed) if name in VW_CONFIGS else _Ours(name, seed)
            )
            report["policies"][name] = _play(player, env, rounds, lambda t=task: progress.advance(t))
            if isinstance(player, _VowpalWabbit):
                player.close()
    return report
