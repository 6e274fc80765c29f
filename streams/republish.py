"""Lists Redis did not get are written again as soon as it answers, not at the user's next event.

A user whose list write failed (Redis down, hung past ``PERSONALIZE_REDIS_TIMEOUT_S``) is kept in the
profile table, under one NUL key per events partition sent on that partition's changelog: the set
outlives a worker crash and follows its partition to the next owner. Redis holds a marker per events
partition (`schemas.keys.lists_held`); a partition without one (Redis came back without its data) has
every user the table holds queued. Each second, once Redis answers, a chunk of the queue is ranked
afresh from the model (`Pipeline.restage`) and written, under the checkpointer's lock like a batch.
Never republishes a user the table no longer holds (erased) or whose consent does not admit them.
On its first round the republisher also deletes lists left in the two-key form of earlier releases
(``RedisStore.drop_legacy_lists``), whose markers then go too, so an upgraded Redis gets every list anew.
"""

from __future__ import annotations

__all__ = ["CHUNK", "Republisher", "partition_of", "pending_key"]

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping

import redis.exceptions
from aiokafka.partitioner import murmur2

from engine.ops.metrics import Metrics
from engine.store.redis_store import RedisStore
from models.profile import UserProfile
from schemas.users import admits
from streams.changelog import BatchWrites
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)

#: Users republished per tick (one Redis round trip; ranking them is the tick's CPU work).
CHUNK = 500
#: Position of a user queued because Redis lost their list: below every real one, so a list written
#: since (from a newer event) is never replaced (Redis refuses it as stale).
_UNKNOWN = -1


def pending_key(partition: int) -> str:
    """Profile-table key of an events partition's users waiting for their list (user -> position).

    Starts with NUL, which the event contract forbids in user ids (like `streams.gaps.offset_key`).

    >>> pending_key(3)
    '\\x00republish:3'
    """
    return f"\x00republish:{partition}"


def partition_of(user_id: str, partitions: int) -> int:
    """The events partition of a user: murmur2 of the key, as every producer of the engine places it.

    >>> partition_of("u1", 12), partition_of("u2", 12)
    (4, 6)
    """
    return (int(murmur2(user_id.encode())) & 0x7FFFFFFF) % partitions


class Republisher:
    """Keeps the users whose list Redis lacks, and writes their lists again once Redis answers."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        profiles: BatchWrites,
        store: RedisStore,
        metrics: Metrics,
        lock: asyncio.Lock,
        partitions: int,
        owned: Callable[[], Iterable[int]],
        settled: Callable[[], bool] = lambda: True,
    ) -> None:
        self.pipeline = pipeline
        self.profiles = profiles
        self.store = store
        self.metrics = metrics
        self.lock = lock
        self.partitions = partitions
        #: The events partitions this worker owns now.
        self.owned = owned
        #: False while the worker rebalances or recovers its tables (the table is not whole yet).
        self.settled = settled
        #: Whether this worker has deleted the namespace's lists of the earlier two-key form.
        self._migrated = False

    def pending(self, partition: int) -> dict[str, int]:
        """The partition's queue, user -> position (the table's own dict: change it, then `put` it)."""
        found = self.profiles.get(pending_key(partition))
        return found if isinstance(found, dict) else {}

    def published(self, done: Collection[str], failed: Mapping[str, int]) -> None:
        """`Pipeline.published`: queue the users whose write failed, unqueue those written (or fenced).
        Runs inside a flush, under the lock; the changelog gets the change with the batch's writes."""
        changed: dict[int, dict[str, int]] = {}

        def queue(partition: int) -> dict[str, int]:
            if partition not in changed:
                changed[partition] = self.pending(partition)
            return changed[partition]

        for user, position in failed.items():
            users = queue(partition_of(user, self.partitions))
            users[user] = max(position, users.get(user, position))
        if done and any(pending_key(p) in self.profiles for p in range(self.partitions)):
            for user in done:
                partition = partition_of(user, self.partitions)
                if user in self.profiles.get(pending_key(partition), ()):
                    queue(partition).pop(user, None)
        for partition, users in changed.items():
            self.profiles.put(partition, pending_key(partition), users or None)

    async def tick(self) -> None:
        """The timer's body (never raises: a failed round must not stop the timer)."""
        try:
            await self()
        except Exception:  # noqa: BLE001 - the next tick retries
            log.exception("republishing failed")

    async def __call__(self) -> None:
        """When Redis answers: queue the partitions it lost, then write a chunk of the queue."""
        if not self.settled():
            return
        owned = sorted(self.owned())
        if not owned:
            return
        try:
            if not self._migrated:
                await self._drop_legacy_lists()
            held = await self.store.lists_held(owned)
        except (redis.exceptions.RedisError, OSError):
            return  # still away; the queue waits
        lost = [p for p in owned if p not in held]
        async with self.lock:
            if lost:
                self._queue_all(lost)
            written = await self._write_chunk(owned)
            self.profiles.flush()
        if lost:
            try:
                await self.store.hold_lists(lost)
            except (redis.exceptions.RedisError, OSError):
                return  # gone again: the next tick finds the markers missing and queues again (no harm)
        left = sum(len(self.pending(p)) for p in owned)
        self.metrics.republish_pending.set(left)
        if written:
            log.info("republished %d list(s); %d left", written, left)

    async def _drop_legacy_lists(self) -> None:
        """Once per worker: delete the lists of the earlier two-key form (raises while Redis is away)."""
        try:
            dropped = await self.store.drop_legacy_lists()
        except redis.exceptions.NoPermissionError:
            # A tenant's ACL user may not SCAN; tenants came after the two-key form, so none is there.
            log.info("Redis does not let this worker SCAN: no look for lists of the earlier two-key form")
            dropped = 0
        self._migrated = True
        if dropped:
            log.warning("deleted %d list key(s) of the earlier two-key form; republishing", dropped)

    def _queue_all(self, lost: list[int]) -> None:
        """Queue every user the table holds on the ``lost`` partitions (Redis has none of their lists)."""
        wanted = set(lost)
        found: dict[int, dict[str, int]] = {p: self.pending(p) for p in lost}
        for user in list(self.profiles):
            if user.startswith("\x00"):
                continue
            partition = partition_of(user, self.partitions)
            if partition in wanted:
                found[partition].setdefault(user, _UNKNOWN)
        for partition, users in found.items():
            self.profiles.put(partition, pending_key(partition), users or None)
        self.metrics.redis_resets.inc(len(lost))
        log.warning(
            "Redis holds no lists of partition(s) %s: %d user(s) queued for republishing",
            lost, sum(len(u) for u in found.values()),
        )  # fmt: skip

    async def _write_chunk(self, owned: list[int]) -> int:
        """Rank and write up to `CHUNK` queued users of ``owned``; returns how many lists Redis took."""
        staged: dict[str, int] = {}
        for partition in owned:
            users = self.pending(partition)
            gone = []
            for user, position in users.items():
                if len(staged) >= CHUNK:
                    break
                stored = self.profiles.get(user)
                profile = UserProfile.from_dict(stored) if stored is not None else None
                if profile is None or not admits(profile.consent, self.pipeline.consent_required):
                    gone.append(user)  # erased or without consent since: nothing to publish
                    continue
                self.pipeline.restage(profile, max(0, position))
                staged[user] = position
            if gone:
                for user in gone:
                    users.pop(user)
                self.profiles.put(partition, pending_key(partition), users or None)
            if len(staged) >= CHUNK:
                break
        if not staged:
            return 0
        await self.pipeline.flush()  # calls `published`: the written leave the queue, the failed stay
        left = {u for p in owned for u in self.pending(p)}
        written = [u for u in staged if u not in left]
        for user in written:
            cause = "reset" if staged[user] == _UNKNOWN else "failed"
            self.metrics.republished.labels(cause=cause).inc()
        return len(written)
