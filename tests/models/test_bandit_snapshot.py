"""Policy snapshots (`models.bandit_snapshot`) and hashed features (`models.bandit_features`)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from models.bandit_features import action_matrix, hash_features
from models.bandit_snapshot import AnyPolicy, dumps, loads
from models.bandits import make

Floats = NDArray[np.float64]


def _trained(name: str, seed: int = 0) -> tuple[AnyPolicy, Floats, Floats]:
    rng = np.random.default_rng(seed)
    policy = make(name, seed=seed)
    actions = [(f"a{i}", {"price": float(i), "colour": "red" if i % 2 else "blue"}) for i in range(6)]
    matrix = action_matrix(actions, 8)
    for _ in range(300):
        context = hash_features({"hour": float(rng.integers(0, 24)), "device": "mobile"}, 4)
        decision = policy.decide(context, matrix)
        policy.learn_one(context, matrix, decision.action, float(decision.action == 3))
    return policy, hash_features({"hour": 7.0, "device": "mobile"}, 4), matrix


@pytest.mark.parametrize("name", ["linucb", "egreedy"])
def test_a_restored_policy_gives_identical_probabilities(name: str) -> None:
    policy, context, matrix = _trained(name)
    restored = loads(dumps(policy, name, context_dims=4, action_dims=8, rewards=300)).policy
    assert restored.decide(context, matrix).probabilities == policy.decide(context, matrix).probabilities


def test_thompson_sampling_restored_twice_with_one_seed_decides_identically() -> None:
    policy, context, matrix = _trained("lints")
    blob = dumps(policy, "lints", context_dims=4, action_dims=8, rewards=300)
    first, second = loads(blob, seed=3).policy, loads(blob, seed=3).policy
    assert first.decide(context, matrix).probabilities == second.decide(context, matrix).probabilities


@pytest.mark.parametrize("name", ["linucb", "lints", "egreedy", "uniform"])
def test_snapshot_bytes_survive_a_round_trip_unchanged(name: str) -> None:
    policy, _, _ = _trained(name)
    blob = dumps(policy, name, context_dims=4, action_dims=8, rewards=300)
    snapshot = loads(blob)
    assert (snapshot.name, snapshot.context_dims, snapshot.action_dims, snapshot.rewards) == (name, 4, 8, 300)
    assert dumps(snapshot.policy, name, context_dims=4, action_dims=8, rewards=300) == blob


def test_the_learned_preference_survives_the_snapshot() -> None:
    policy, context, matrix = _trained("linucb")
    restored = loads(dumps(policy, "linucb", context_dims=4, action_dims=8, rewards=1)).policy
    probabilities = restored.decide(context, matrix).probabilities
    assert max(range(6), key=lambda i: probabilities[i]) == 3


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"garbage",
        b"p13n-policy-v1\n" + b'{"name":"linucb","params":{},'
        b'"context_dims":1,"action_dims":1,"rewards":0,"dim":4}\n' + b"\0" * 8,
    ],
)
def test_bytes_that_are_not_a_snapshot_are_refused(blob: bytes) -> None:
    with pytest.raises(ValueError):
        loads(blob)


def test_hashing_is_stable_and_separates_string_values() -> None:
    assert (
        hash_features({"device": "mobile"}, 16).tolist() == hash_features({"device": "mobile"}, 16).tolist()
    )
    assert (
        hash_features({"device": "mobile"}, 1024).tolist() != hash_features({"device": "tv"}, 1024).tolist()
    )
    rows = action_matrix([("a", {}), ("b", {})], 1024)
    assert not np.array_equal(rows[0], rows[1])
