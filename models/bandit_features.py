"""Named features (``{"device": "mobile", "hour": 7}``) to fixed-size vectors by signed feature hashing.

Pure and deterministic across processes (blake2b, never Python's salted ``hash``), so the API that ranks
and the worker that learns build the same vector from the same logged features.
"""

from __future__ import annotations

__all__ = ["ID_FEATURE", "action_matrix", "hash_features"]

import functools
import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

#: Name under which an action's id enters its feature vector, so actions without features still differ.
ID_FEATURE = "\x00id"


@functools.lru_cache(maxsize=65_536)
def _slot(token: str, dims: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    number = int.from_bytes(digest, "little")
    return (number >> 1) % dims, 1.0 if number & 1 else -1.0


def hash_features(features: Mapping[str, float | int | str], dims: int) -> NDArray[np.float64]:
    """A ``dims``-vector: numbers add their value at ``hash(name)``, strings 1 at ``hash(name=value)``.

    The sign also comes from the hash, so colliding features tend to cancel rather than pile up.

    >>> v = hash_features({"device": "mobile", "hour": 7}, 8)
    >>> v.shape, sorted(abs(float(x)) for x in v if x)
    ((8,), [1.0, 7.0])
    >>> bool((hash_features({"device": "mobile", "hour": 7}, 8) == v).all())
    True
    """
    out = np.zeros(dims)
    for name, value in features.items():
        if isinstance(value, str):
            index, sign = _slot(f"{name}={value}", dims)
            out[index] += sign
        else:
            index, sign = _slot(name, dims)
            out[index] += sign * float(value)
    return out


def action_matrix(
    actions: Sequence[tuple[str, Mapping[str, float | int | str]]], dims: int
) -> NDArray[np.float64]:
    """One hashed row per ``(id, features)``, the id included as a one-hot feature.

    >>> action_matrix([("a", {}), ("b", {"price": 2.0})], 4).shape
    (2, 4)
    """
    rows = [hash_features({**features, ID_FEATURE: action_id}, dims) for action_id, features in actions]
    return np.vstack(rows)
