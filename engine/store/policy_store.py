"""Bandit policy snapshots in Redis: the worker publishes them, the API loads and caches them.

One hash per policy (`schemas.keys.policy`) with a version counter, so the API re-reads the (large)
snapshot only when the version moved. A snapshot is written by compare-and-set on that version (script
`engine.store.scripts.PUBLISH_POLICY`): a worker whose policy another worker has published since it
loaded it (after a rebalance) cannot put its older state over the newer one. Async only; never learns.
"""

from __future__ import annotations

__all__ = ["CachedPolicy", "PolicyCache", "PolicyStore"]

import base64
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from engine.ops.metrics import Metrics
from engine.store import scripts
from engine.store.policy_seal import open_snapshot, seal_snapshot
from models.bandit_snapshot import Snapshot, SnapshotPolicy, fresh
from schemas import keys
from schemas.decisions import PolicySpec
from schemas.errors import PolicySnapshotError
from schemas.keys import PolicyField

log = logging.getLogger(__name__)


class PolicyStore:
    """Reads and writes the snapshots of one namespace (a client with ``decode_responses=True``),
    signed and judged with ``key`` (``PERSONALIZE_POLICY_KEY``; `engine.store.policy_seal`)."""

    def __init__(self, client: aioredis.Redis, namespace: str, key: bytes | None = None) -> None:
        self.client = client
        self.namespace = namespace
        self.key = key

    async def publish(self, policy_id: str, blob: bytes, rewards: int, expected: int) -> int | None:
        """Store a snapshot learned on top of version ``expected`` (0: none published); returns its
        version (``expected + 1``), or None when the stored version is no longer ``expected``."""
        args: list[str | int] = [
            expected,
            base64.b64encode(seal_snapshot(blob, self.key)).decode("ascii"),
            rewards,
            time.time_ns() // 1_000_000,
        ]
        key = keys.policy(self.namespace, policy_id)
        version = int(await scripts.run(self.client, scripts.PUBLISH_POLICY, [key], args))
        return version or None

    async def version(self, policy_id: str) -> int:
        """The published version, 0 if none."""
        raw = await self.client.hget(keys.policy(self.namespace, policy_id), PolicyField.VERSION)
        return int(raw) if raw is not None else 0

    async def load(self, policy_id: str, seed: int | None = None) -> tuple[int, Snapshot] | None:
        """The latest snapshot and its version, or None if the policy was never published;
        `PolicySnapshotError` when its signature or version is refused (nothing unpickled)."""
        key = keys.policy(self.namespace, policy_id)
        version, snapshot = await self.client.hmget(key, [PolicyField.VERSION, PolicyField.SNAPSHOT])
        if version is None or snapshot is None:
            return None
        return int(version), open_snapshot(base64.b64decode(snapshot), self.key, seed=seed)


@dataclass(frozen=True, slots=True)
class CachedPolicy:
    """A policy ready to decide: its name, snapshot version (0: untrained) and hashed feature sizes.

    ``refused``: the stored snapshot at ``version`` was refused (the reason), so ``policy`` is untrained
    and decisions report version 0.
    """

    policy: SnapshotPolicy
    name: str
    version: int
    context_dims: int
    action_dims: int
    refused: str | None = None

    @property
    def used_version(self) -> int:
        """The version of the state that decides (0 for an untrained or refused one)."""
        return 0 if self.refused is not None else self.version


class PolicyCache:
    """The API's in-process copy of each policy, refreshed when Redis has a newer version.

    The cached policy only decides (its sampling state moves, its model does not), so sharing one per
    process between requests is safe; each gets a fresh OS-seeded generator, never the worker's seed.
    """

    def __init__(self, store: PolicyStore, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self._cached: dict[str, CachedPolicy] = {}

    async def get(self, spec: PolicySpec, version: int) -> CachedPolicy:
        """The policy of ``spec`` at ``version`` (as just read from Redis with `PolicyStore.version`)."""
        cached = self._cached.get(spec.id)
        if cached is not None and cached.version == version:
            return cached
        refused: str | None = None
        try:
            loaded = await self.store.load(spec.id) if version else None
        except PolicySnapshotError as exc:
            # Not an error per request: ranking on with an untrained policy lets its decisions be
            # learned, and the worker's next (signed) snapshot replaces the refused one.
            log.error("policy %s: %s; ranking with an untrained policy until the next snapshot", spec.id, exc)
            if self.metrics is not None:
                self.metrics.bandit_snapshot_refused.labels(reason=exc.reason).inc()
            loaded, refused = None, exc.reason
        if loaded is None:
            params: dict[str, Any] = dict(spec.params)
            untrained = fresh(spec.name, **params)
            cached = CachedPolicy(
                untrained, spec.name, version if refused else 0, spec.context_dims, spec.action_dims, refused
            )
        else:
            got, snapshot = loaded
            cached = CachedPolicy(
                snapshot.policy, snapshot.name, got, snapshot.context_dims, snapshot.action_dims
            )
        self._cached[spec.id] = cached
        return cached
