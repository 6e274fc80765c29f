"""Bandit policy snapshots in Redis: the worker publishes them, the API loads and caches them.

One hash per policy (`schemas.keys.policy`) written in one MULTI/EXEC with a version counter, so the API
re-reads the (large) snapshot only when the version moved. Async only; never learns.
"""

from __future__ import annotations

__all__ = ["CachedPolicy", "PolicyCache", "PolicyStore"]

import base64
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from models.bandit_snapshot import AnyPolicy, Snapshot, loads
from models.bandits import make
from schemas import keys
from schemas.decisions import PolicySpec
from schemas.keys import PolicyField


class PolicyStore:
    """Reads and writes the snapshots of one namespace (a client with ``decode_responses=True``)."""

    def __init__(self, client: aioredis.Redis, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    async def publish(self, policy_id: str, blob: bytes, rewards: int) -> int:
        """Store a snapshot; returns its version (1 for the first one, then +1 per publish)."""
        key = keys.policy(self.namespace, policy_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, PolicyField.VERSION, 1)
            pipe.hset(
                key,
                mapping={
                    PolicyField.SNAPSHOT: base64.b64encode(blob).decode("ascii"),
                    PolicyField.REWARDS: rewards,
                    PolicyField.UPDATED_MS: time.time_ns() // 1_000_000,
                },
            )
            version, _ = await pipe.execute()
        return int(version)

    async def version(self, policy_id: str) -> int:
        """The published version, 0 if none."""
        raw = await self.client.hget(keys.policy(self.namespace, policy_id), PolicyField.VERSION)
        return int(raw) if raw is not None else 0

    async def load(self, policy_id: str, seed: int | None = None) -> tuple[int, Snapshot] | None:
        """The latest snapshot and its version, or None if the policy was never published."""
        key = keys.policy(self.namespace, policy_id)
        version, snapshot = await self.client.hmget(key, [PolicyField.VERSION, PolicyField.SNAPSHOT])
        if version is None or snapshot is None:
            return None
        return int(version), loads(base64.b64decode(snapshot), seed=seed)


@dataclass(frozen=True, slots=True)
class CachedPolicy:
    """A policy ready to decide: its name, snapshot version (0: untrained) and hashed feature sizes."""

    policy: AnyPolicy
    name: str
    version: int
    context_dims: int
    action_dims: int


class PolicyCache:
    """The API's in-process copy of each policy, refreshed when Redis has a newer version.

    The cached policy only decides (its sampling state moves, its model does not), so sharing one per
    process between requests is safe; each gets a fresh OS-seeded generator, never the worker's seed.
    """

    def __init__(self, store: PolicyStore) -> None:
        self.store = store
        self._cached: dict[str, CachedPolicy] = {}

    async def get(self, spec: PolicySpec, version: int) -> CachedPolicy:
        """The policy of ``spec`` at ``version`` (as just read from Redis with `PolicyStore.version`)."""
        cached = self._cached.get(spec.id)
        if cached is not None and cached.version == version:
            return cached
        loaded = await self.store.load(spec.id) if version else None
        if loaded is None:
            params: dict[str, Any] = dict(spec.params)
            fresh = make(spec.name, **params)
            cached = CachedPolicy(fresh, spec.name, 0, spec.context_dims, spec.action_dims)
        else:
            got, snapshot = loaded
            cached = CachedPolicy(
                snapshot.policy, snapshot.name, got, snapshot.context_dims, snapshot.action_dims
            )
        self._cached[spec.id] = cached
        return cached
