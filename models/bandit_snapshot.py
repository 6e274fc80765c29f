"""Policy snapshots: a bandit policy's learned state as compact bytes, and the policy rebuilt from them.

Pure: the worker writes the bytes to Redis and the API reads them. A snapshot holds the policy's name,
parameters and feature sizes (a JSON header) and its ridge state as raw float64, so a restored policy
gives the same probabilities as the original, bit for bit.
"""

from __future__ import annotations

__all__ = ["AnyPolicy", "Snapshot", "dumps", "loads"]

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from models.bandits import AnyPolicy, UniformRandom, make

_MAGIC = b"p13n-policy-v1\n"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A restored policy with what the header said about it."""

    policy: AnyPolicy
    name: str
    context_dims: int
    action_dims: int
    rewards: int


def dumps(policy: AnyPolicy, name: str, *, context_dims: int, action_dims: int, rewards: int) -> bytes:
    """The policy's state as bytes: magic line, JSON header line, then ``A^-1`` and ``b`` as float64.

    >>> from models.bandits import LinUCB
    >>> blob = dumps(LinUCB(seed=0), "linucb", context_dims=2, action_dims=2, rewards=0)
    >>> blob.startswith(b"p13n-policy-v1"), loads(blob).policy
    (True, LinUCB(alpha=0.5, ridge=1.0, epsilon=0.02, seed=None))
    """
    params = {k: v for k, v in policy._params().items() if k != "seed"}
    state = None if isinstance(policy, UniformRandom) else policy.model.get_state()
    header: dict[str, Any] = {
        "name": name,
        "params": params,
        "context_dims": context_dims,
        "action_dims": action_dims,
        "rewards": rewards,
        "dim": 0 if state is None else int(state[1].shape[0]),
    }
    body = b"" if state is None else state[0].astype("<f8").tobytes() + state[1].astype("<f8").tobytes()
    return _MAGIC + orjson.dumps(header) + b"\n" + body


def loads(blob: bytes, seed: int | None = None) -> Snapshot:
    """Rebuild the policy of `dumps`; ``seed`` seeds its sampling (decision ids, exploration draws).

    Raises ``ValueError`` for bytes that are not a snapshot.
    """
    if not blob.startswith(_MAGIC):
        raise ValueError("not a policy snapshot (bad magic)")
    header_line, _, body = blob[len(_MAGIC) :].partition(b"\n")
    header = orjson.loads(header_line)
    policy = make(header["name"], seed=seed, **header["params"])
    dim = int(header["dim"])
    if len(body) != 8 * (dim * dim + dim):
        raise ValueError(f"snapshot body has {len(body)} bytes; expected {8 * (dim * dim + dim)}")
    if dim and not isinstance(policy, UniformRandom):
        values = np.frombuffer(body, dtype="<f8").astype(np.float64)
        policy.model.set_state(values[: dim * dim].reshape(dim, dim), values[dim * dim :])
    return Snapshot(policy, header["name"], header["context_dims"], header["action_dims"], header["rewards"])
