"""Signed policy snapshots: the worker signs each snapshot's header with ``PERSONALIZE_POLICY_KEY``
(HMAC-SHA256, `engine.ops.sealing`; the header binds the body by its SHA-256), and every reader judges
the signature before any state is restored.

With a key, every snapshot is signed and only validly signed ones are read (ours and River's). Without
one, ours (plain floats) are read unsigned and River's (pickled) are refused: settings refuse River
policies without a key, so that case is a snapshot written elsewhere. Pure: no I/O, no key in a message.
"""

from __future__ import annotations

__all__ = ["open_snapshot", "seal_snapshot"]

from engine.ops.sealing import FIELD, Seal, sign, verdict
from models.bandit_snapshot import Snapshot, header_of, loads, with_header
from schemas.errors import PolicySnapshotError


def seal_snapshot(blob: bytes, key: bytes | None) -> bytes:
    """``blob`` (from `models.bandit_snapshot.dumps`) signed with ``key``; unchanged without one.

    >>> from models.bandits import LinUCB
    >>> from models.bandit_snapshot import dumps
    >>> blob = dumps(LinUCB(), "linucb", context_dims=2, action_dims=2, rewards=0)
    >>> open_snapshot(seal_snapshot(blob, b"k" * 32), b"k" * 32).name
    'linucb'
    >>> open_snapshot(blob, b"k" * 32)
    Traceback (most recent call last):
    ...
    schemas.errors.PolicySnapshotError: policy snapshot refused (unsigned): ...
    """
    if key is None:
        return blob
    header, _ = header_of(blob)
    header.pop(FIELD, None)
    header[FIELD] = sign(header, key)
    return with_header(blob, header)


def open_snapshot(blob: bytes, key: bytes | None, seed: int | None = None) -> Snapshot:
    """The policy of a snapshot whose signature ``key`` accepts; `PolicySnapshotError` otherwise
    (checked before anything is unpickled). ``ValueError`` for bytes that are not a snapshot."""
    header, _ = header_of(blob)
    seal = verdict(header, key)
    if seal is Seal.INVALID:
        raise PolicySnapshotError("signature", "signed with another key, or changed since it was signed")
    if key is not None and seal is not Seal.VALID:
        raise PolicySnapshotError("unsigned", "not signed, and PERSONALIZE_POLICY_KEY is set")
    return loads(blob, seed=seed, verified=seal is Seal.VALID)
