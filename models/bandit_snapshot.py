"""Policy snapshots: a bandit policy's learned state as compact bytes, and the policy rebuilt from them.

Pure: the worker writes the bytes to Redis and the API reads them. A snapshot is a magic line, a JSON
header line (the policy's name, parameters, feature sizes, the state's form and the body's SHA-256) and
the body. Ours keep their ridge state as raw float64 (``state`` ``ridge-f64``; headers without ``state``
are the same form, written before River's existed), so a restored policy gives the same probabilities,
bit for bit. River's policies (``state`` ``river-pickle``, ``state_version`` 1, River's version) keep the
pickled `RiverPolicy`: `loads` restores that form only when the caller says the header's signature was
verified (`engine.store.policy_seal` checks it with ``PERSONALIZE_POLICY_KEY``), never from bare bytes.
"""

from __future__ import annotations

__all__ = [
    "RIDGE",
    "AnyPolicy",
    "RIVER",
    "RIVER_STATE_VERSION",
    "Snapshot",
    "SnapshotPolicy",
    "dumps",
    "fresh",
    "header_of",
    "loads",
    "with_header",
]

import hashlib
import importlib.metadata
import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import orjson

from models.bandits import AnyPolicy, EpsilonGreedy, LinearTS, LinUCB, LogisticTS, UniformRandom, make
from schemas.errors import PolicySnapshotError

if TYPE_CHECKING:
    from models.river_bandits import RiverPolicy

_MAGIC = b"p13n-policy-v1\n"
#: The body's forms (header field ``state``).
RIDGE = "ridge-f64"
RIVER = "river-pickle"
#: Bumped when what a River snapshot pickles changes shape; other versions are refused, not unpickled.
RIVER_STATE_VERSION = 1
_OURS = (LinUCB, LinearTS, LogisticTS, EpsilonGreedy, UniformRandom)

SnapshotPolicy: TypeAlias = "AnyPolicy | RiverPolicy"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A restored policy with what the header said about it."""

    policy: SnapshotPolicy
    name: str
    context_dims: int
    action_dims: int
    rewards: int


def fresh(name: str, seed: int | None = None, **params: Any) -> SnapshotPolicy:
    """An untrained policy by name, ours or River's (River is imported only for River's names).

    >>> fresh("linucb", seed=0)
    LinUCB(alpha=0.5, ridge=1.0, epsilon=0.02, seed=0)
    """
    if name.startswith("river-"):
        from models.river_bandits import make_any

        return make_any(name, seed=seed, **params)
    return make(name, seed=seed, **params)


def dumps(policy: SnapshotPolicy, name: str, *, context_dims: int, action_dims: int, rewards: int) -> bytes:
    """The policy's state as bytes: magic line, JSON header line, then the body.

    >>> blob = dumps(LinUCB(seed=0), "linucb", context_dims=2, action_dims=2, rewards=0)
    >>> blob.startswith(b"p13n-policy-v1"), loads(blob).policy
    (True, LinUCB(alpha=0.5, ridge=1.0, epsilon=0.02, seed=None))
    """
    params = {k: v for k, v in policy._params().items() if k not in ("seed", "name")}
    header: dict[str, Any] = {
        "name": name,
        "params": params,
        "context_dims": context_dims,
        "action_dims": action_dims,
        "rewards": rewards,
    }
    if isinstance(policy, _OURS):
        state = None if isinstance(policy, UniformRandom) else policy.model.get_state()
        header |= {"state": RIDGE, "dim": 0 if state is None else int(state[1].shape[0])}
        body = b"" if state is None else state[0].astype("<f8").tobytes() + state[1].astype("<f8").tobytes()
    else:
        body = pickle.dumps(policy, protocol=pickle.HIGHEST_PROTOCOL)
        header |= {"state": RIVER, "state_version": RIVER_STATE_VERSION, "river": _river_version()}
    header["payload_sha256"] = hashlib.sha256(body).hexdigest()
    return _MAGIC + orjson.dumps(header) + b"\n" + body


def header_of(blob: bytes) -> tuple[dict[str, Any], bytes]:
    """A snapshot's header and body, unchecked; ``ValueError`` for bytes that are not a snapshot."""
    if not blob.startswith(_MAGIC):
        raise ValueError("not a policy snapshot (bad magic)")
    header_line, _, body = blob[len(_MAGIC) :].partition(b"\n")
    header = orjson.loads(header_line)
    if not isinstance(header, dict):
        raise ValueError("not a policy snapshot (header is not an object)")
    return header, body


def with_header(blob: bytes, header: dict[str, Any]) -> bytes:
    """``blob`` with its header line replaced by ``header`` (to add a signature)."""
    _, body = header_of(blob)
    return _MAGIC + orjson.dumps(header) + b"\n" + body


def loads(blob: bytes, seed: int | None = None, *, verified: bool = False) -> Snapshot:
    """Rebuild the policy of `dumps`; ``seed`` seeds its sampling (decision ids, exploration draws).

    ``verified``: the header's signature was checked by the caller. River's pickled state is restored
    only then (`PolicySnapshotError` ``unsigned`` otherwise), after its body matched the header's
    SHA-256 and its versions matched this process's. Raises ``ValueError`` for bytes that are not a
    snapshot.
    """
    header, body = header_of(blob)
    digest = header.get("payload_sha256")
    if digest is not None and digest != hashlib.sha256(body).hexdigest():
        raise PolicySnapshotError("corrupt", "the body does not match the header's SHA-256")
    if verified and digest is None:
        raise PolicySnapshotError("unsigned", "the signed header does not bind the body (no SHA-256)")
    state = header.get("state", RIDGE)
    if state == RIVER:
        policy: SnapshotPolicy = _river(header, body, seed, verified)
    elif state == RIDGE:
        policy = _ridge(header, body, seed)
    else:
        raise PolicySnapshotError("version", f"unknown state form {state!r}")
    return Snapshot(policy, header["name"], header["context_dims"], header["action_dims"], header["rewards"])


def _river_version() -> str:
    return importlib.metadata.version("river")


def _ridge(header: dict[str, Any], body: bytes, seed: int | None) -> AnyPolicy:
    policy = make(header["name"], seed=seed, **header["params"])
    dim = int(header["dim"])
    if len(body) != 8 * (dim * dim + dim):
        raise ValueError(f"snapshot body has {len(body)} bytes; expected {8 * (dim * dim + dim)}")
    if dim and not isinstance(policy, UniformRandom):
        values = np.frombuffer(body, dtype="<f8").astype(np.float64)
        policy.model.set_state(values[: dim * dim].reshape(dim, dim), values[dim * dim :])
    return policy


def _river(header: dict[str, Any], body: bytes, seed: int | None, verified: bool) -> RiverPolicy:
    if not verified:
        raise PolicySnapshotError(
            "unsigned", f"{header.get('name')!r} holds pickled River state: restored only when signed"
        )
    from models.river_bandits import RiverPolicy

    if header.get("state_version") != RIVER_STATE_VERSION or header.get("river") != _river_version():
        raise PolicySnapshotError(
            "version",
            f"River state v{header.get('state_version')} of River {header.get('river')}; this process "
            f"reads v{RIVER_STATE_VERSION} of River {_river_version()}",
        )
    policy = pickle.loads(body)  # noqa: S301 - signed by the key holder and bound to the header's SHA-256
    if not isinstance(policy, RiverPolicy) or policy.name != header["name"]:
        raise PolicySnapshotError("corrupt", f"the body is not the River policy {header['name']!r}")
    policy.reseed(seed)
    return policy
