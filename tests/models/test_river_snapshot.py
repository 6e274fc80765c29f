"""River policies' snapshots: pickled, signed (`engine.store.policy_seal`), restored only when signed."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from engine.ops.sealing import FIELD, sign
from engine.store.policy_seal import open_snapshot, seal_snapshot
from models.bandit_features import action_matrix, hash_features
from models.bandit_snapshot import dumps, header_of, loads, with_header
from models.bandits import make
from models.river_bandits import RANK_POLICIES, RiverPolicy
from schemas.errors import PolicySnapshotError

KEY = b"k" * 32
ACTIONS = action_matrix([(f"a{i}", {"price": float(i)}) for i in range(5)], 8)


def _trained(name: str) -> RiverPolicy:
    rng = np.random.default_rng(0)
    policy = RiverPolicy(name, seed=0)
    for _ in range(200):
        context = hash_features({"hour": float(rng.integers(0, 24))}, 4)
        decision = policy.decide(context, ACTIONS)
        policy.learn_one(context, ACTIONS, decision.action, float(decision.action == 3))
    return policy


def _blob(policy: RiverPolicy, key: bytes | None = KEY) -> bytes:
    raw = dumps(policy, policy.name, context_dims=4, action_dims=8, rewards=200)
    return seal_snapshot(raw, key)


@pytest.mark.parametrize("name", RANK_POLICIES)
def test_a_signed_snapshot_restores_the_same_probabilities(name: str) -> None:
    policy = _trained(name)
    snapshot = open_snapshot(_blob(policy), KEY, seed=11)
    assert (snapshot.name, snapshot.context_dims, snapshot.action_dims, snapshot.rewards) == (name, 4, 8, 200)
    policy.reseed(11)
    context = hash_features({"hour": 7.0}, 4)
    for _ in range(20):
        got, want = snapshot.policy.decide(context, ACTIONS), policy.decide(context, ACTIONS)
        assert got.probabilities == want.probabilities and got.action == want.action


def test_the_learned_preference_survives_the_snapshot() -> None:
    restored = open_snapshot(_blob(_trained("river-linucb")), KEY).policy
    probabilities = restored.decide(hash_features({"hour": 7.0}, 4), ACTIONS).probabilities
    assert max(range(5), key=lambda i: probabilities[i]) == 3


def test_header_versions_the_river_state() -> None:
    header, _ = header_of(_blob(_trained("river-ts")))
    assert header["state"] == "river-pickle" and header["state_version"] == 1
    assert header["river"] and len(header["payload_sha256"]) == 64 and FIELD in header


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("unpickled a refused snapshot")

    monkeypatch.setattr(pickle, "loads", refuse)


def test_unsigned_river_state_is_refused_before_unpickling(no_unpickling: None) -> None:
    blob = _blob(_trained("river-ucb"), key=None)
    attempts: list[Callable[[], object]] = [
        lambda: open_snapshot(blob, None),
        lambda: open_snapshot(blob, KEY),
        lambda: loads(blob),
    ]
    for attempt in attempts:
        with pytest.raises(PolicySnapshotError) as refused:
            attempt()
        assert refused.value.reason == "unsigned"


def test_another_key_or_a_changed_header_is_refused(no_unpickling: None) -> None:
    blob = _blob(_trained("river-ucb"))
    with pytest.raises(PolicySnapshotError) as refused:
        open_snapshot(blob, b"x" * 32)
    assert refused.value.reason == "signature"
    header, _ = header_of(blob)
    with pytest.raises(PolicySnapshotError) as refused:
        open_snapshot(with_header(blob, header | {"rewards": 5}), KEY)
    assert refused.value.reason == "signature"
    # A signature kept, but the body swapped for other bytes: the header's SHA-256 no longer matches.
    body = header_of(blob)[1]
    with pytest.raises(PolicySnapshotError) as refused:
        open_snapshot(blob[: -len(body)] + pickle.dumps(print), KEY)
    assert refused.value.reason == "corrupt"


def test_another_state_version_or_river_version_is_refused(no_unpickling: None) -> None:
    blob = _blob(_trained("river-ts"))
    for change in ({"state_version": 2}, {"river": "0.0.1"}):
        header, _ = header_of(blob)
        header = {k: v for k, v in header.items() if k != FIELD} | change
        header[FIELD] = sign(header, KEY)
        with pytest.raises(PolicySnapshotError) as refused:
            open_snapshot(with_header(blob, header), KEY)
        assert refused.value.reason == "version"


def test_our_snapshots_are_signed_with_a_key_and_read_unsigned_without_one() -> None:
    raw = dumps(make("linucb", seed=0), "linucb", context_dims=4, action_dims=8, rewards=0)
    assert open_snapshot(raw, None).name == "linucb"
    assert open_snapshot(seal_snapshot(raw, KEY), KEY).name == "linucb"
    with pytest.raises(PolicySnapshotError) as refused:
        open_snapshot(raw, KEY)
    assert refused.value.reason == "unsigned"
