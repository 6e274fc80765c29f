"""Writes and reads users' recommendations in Redis, following the key contract in `schemas.keys`.

A user's list, its metadata and its reasons are one string (`schemas.stored_list`), replaced whole by
a script (`engine.store.scripts.REPLACE_LISTS`, up to 50 lists a call), so a reader never sees a
half-written list nor reasons of another list; the worker writes the lists of a whole batch of events in
one round trip. Writes are fenced: a list carries the position (events-partition offset) of the last
record it reflects, and Redis refuses one older than the stored list or than the user's tombstone
(erasure, reset). Async only.
"""

from __future__ import annotations

__all__ = ["Published", "Recommendations", "RedisStore", "UserList"]

import itertools
import operator
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from engine.store import consent
from engine.store import scripts as redis_scripts
from engine.store.consent import ConsentState
from engine.store.item_meta import ItemMeta, from_hash, to_hash
from engine.store.preferences import Preferences
from schemas import keys, stored_list
from schemas.events import ItemRecord
from schemas.reasons import Reason, Stored, Tokens, encode_tokens, reason_json
from schemas.reasons import decode as decode_reasons
from schemas.reasons import encode as encode_reasons


@dataclass(frozen=True, slots=True)
class Recommendations:
    """What a reader gets for one user (the JSON of `personalize recs --json`)."""

    user_id: str
    items: list[tuple[str, float]]
    updated_ms: int | None
    model_version: str | None
    events_seen: int | None
    last_event_ts: int | None
    #: Why each item is listed, by item id (stored with the list; items without one are missing).
    reasons: dict[str, Reason] = field(default_factory=dict)
    #: The list's fencing position (`schemas.stored_list.StoredList.position`); None without a list.
    position: int | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "items": [
                {"item_id": item, "score": score, **reason_json(self.reasons.get(item))}
                for item, score in self.items
            ],
            "updated_ms": self.updated_ms,
            "model_version": self.model_version,
            "events_seen": self.events_seen,
            "last_event_ts": self.last_event_ts,
            "position": self.position,
        }


@dataclass(frozen=True, slots=True)
class UserList:
    """One user's list as the worker writes it: items best first, one reason (or None) per item."""

    user_id: str
    items: Sequence[tuple[str, float]]
    model_version: str
    last_event_ts: int
    events_seen: int
    #: One per item, or already in the stored form (`schemas.reasons.Tokens` or `Stored`, the worker's).
    reasons: Sequence[Reason | None] | Tokens | Stored | None = None
    #: Offset, on the user's events partition, of the last record the list reflects (the fence).
    position: int = 0


@dataclass(frozen=True, slots=True)
class Published:
    """What a `RedisStore.publish_lists` call did: the ``updated_ms`` written and the refused users."""

    updated_ms: int
    #: user_id -> why the list was not written: ``erased`` (below the user's tombstone) or ``stale``
    #: (below the stored list's position).
    refused: dict[str, str] = field(default_factory=dict)


_REFUSALS = {redis_scripts.REFUSED_ERASED: "erased", redis_scripts.REFUSED_STALE: "stale"}


def _recommendations(user_id: str, value: str | bytes | None, n: int) -> Recommendations:
    """What a reader gets from a user's stored list (its first ``n`` items); empty, with None metadata,
    when there is none."""
    found = stored_list.decode(value.decode() if isinstance(value, bytes) else value, n)
    if found is None:
        return Recommendations(user_id, [], None, None, None, None)
    return Recommendations(
        user_id=user_id,
        items=found.items,
        updated_ms=found.updated_ms,
        model_version=found.model_version,
        events_seen=found.events_seen,
        last_event_ts=found.last_event_ts,
        reasons=decode_reasons(found.reasons or None, [item for item, _ in found.items]),
        position=found.position,
    )


_SCORE = operator.itemgetter(1)


def _best_first(
    items: Sequence[tuple[str, float]], why: Sequence[Reason | None] | Tokens | Stored | None
) -> tuple[Sequence[tuple[str, float]], str]:
    """``items`` by score descending, equal scores in the order given (the model's lists are already
    so: then they are returned as they are), and their reasons' stored form in that order."""
    scores = list(map(_SCORE, items))
    if all(map(operator.ge, scores, itertools.islice(scores, 1, None))):  # in C: runs for every list
        order = None
    else:
        order = sorted(range(len(items)), key=lambda n: -items[n][1])
        items = [items[n] for n in order]
    if not items or not why:
        return items, ""
    if isinstance(why, Stored):
        if order is None:
            return items, why.text
        why = why.tokens()
    if isinstance(why, Tokens):
        tokens = why.tokens if order is None else [why.tokens[n] for n in order]
        return items, encode_tokens(tokens, why.anchors)
    return items, encode_reasons(why if order is None else [why[n] for n in order])


class RedisStore:
    """One namespace's Redis: per-user lists (one string each: items, metadata, reasons), preferences,
    item metadata, trending, fences and heartbeats, all under `schemas.keys`."""

    def __init__(self, client: aioredis.Redis, namespace: str, *, user_ttl_s: int = 0) -> None:
        self.client = client
        self.namespace = namespace
        #: Seconds a user's list, metadata and preferences live after their last write (0: forever).
        self.user_ttl_s = user_ttl_s

    @classmethod
    def from_url(
        cls, url: str, namespace: str, *, user_ttl_s: int = 0, timeout_s: float | None = None
    ) -> RedisStore:
        """A store on a new client; with ``timeout_s``, every connect and reply is bounded by it, a call
        that timed out is not retried (a hung server would double the wait) and one whose connection
        broke is retried once, on a new connection (a restarted server). Without it, redis-py's defaults
        (no timeout at all before redis-py 8)."""
        if timeout_s is None:
            return cls(aioredis.Redis.from_url(url, decode_responses=True), namespace, user_ttl_s=user_ttl_s)
        backoff = ExponentialBackoff(cap=timeout_s / 2, base=0.05)
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(backoff, 1, (redis.exceptions.ConnectionError,)),
        )
        return cls(client, namespace, user_ttl_s=user_ttl_s)

    @property
    def address(self) -> str:
        """host:port of the server, for messages (never the URL, which may carry a password)."""
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    async def close(self) -> None:
        await self.client.aclose()

    async def publish(
        self,
        user_id: str,
        items: Sequence[tuple[str, float]],
        *,
        model_version: str,
        last_event_ts: int,
        events_seen: int,
        reasons: Sequence[Reason | None] | Tokens | None = None,
        position: int = 0,
    ) -> Published:
        """Replace one user's recommendations (see `publish_lists`)."""
        one = UserList(user_id, items, model_version, last_event_ts, events_seen, reasons, position)
        return await self.publish_lists([one])

    async def publish_lists(self, lists: Sequence[UserList]) -> Published:
        """Replace the recommendations (and reasons) of every user in ``lists``, each atomically (script
        `engine.store.scripts.REPLACE_LISTS`), all in one round trip, except where the fence refuses."""
        updated_ms = time.time_ns() // 1_000_000
        calls = []
        for start in range(0, len(lists), redis_scripts.LISTS_PER_CALL):
            keys_: list[str] = []
            args: list[str | int] = [self.user_ttl_s]
            for one in lists[start : start + redis_scripts.LISTS_PER_CALL]:
                items, reasons = _best_first(one.items, one.reasons)
                value = stored_list.encode(
                    items,
                    position=one.position,
                    updated_ms=updated_ms,
                    last_event_ts=one.last_event_ts,
                    events_seen=one.events_seen,
                    model_version=one.model_version,
                    reasons=reasons,
                )
                keys_ += self._user_keys(one.user_id)
                args += (value, one.position)
            calls.append((keys_, args))
        # Each call replaces lists whole (or refuses them), so calls that ran before a NOSCRIPT run again.
        replies = await redis_scripts.run_many(self.client, redis_scripts.REPLACE_LISTS, calls)
        answers = [int(answer) for reply in replies for answer in reply]
        refused = {
            one.user_id: _REFUSALS[answer]
            for one, answer in zip(lists, answers, strict=True)
            if answer in _REFUSALS
        }
        return Published(updated_ms, refused)

    def _user_keys(self, user_id: str) -> tuple[str, str]:
        """The keys `REPLACE_LISTS` (per user) and `FENCE_USER` take: list, tombstone."""
        ns = self.namespace
        return keys.user_list(ns, user_id), keys.tombstone(ns, user_id)

    async def fence_users(self, fences: Mapping[str, int], ttl_s: int) -> None:
        """For each user, raise their tombstone to the position (of an erasure, reset or consent
        withdrawal record) and delete a list older than it, all in one round trip (script
        `engine.store.scripts.FENCE_USER`)."""
        calls = [(self._user_keys(user), [position, ttl_s]) for user, position in fences.items()]
        if calls:
            await redis_scripts.run_many(self.client, redis_scripts.FENCE_USER, calls)

    async def publish_trending(self, items: Sequence[tuple[str, float]], locale: str | None = None) -> None:
        """Replace the trending list of ``locale`` (or the global one) in one MULTI/EXEC."""
        key = keys.trending(self.namespace, locale)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if items:
                pipe.zadd(key, dict(items))
            await pipe.execute()

    async def read_trending(self, n: int, locale: str | None = None) -> list[tuple[str, float]]:
        """The top-n trending items of ``locale`` (or globally), best first; empty if none published."""
        key = keys.trending(self.namespace, locale)
        ranked: list[Any] = await self.client.zrevrange(key, 0, n - 1, withscores=True)
        return [(str(item), float(score)) for item, score in ranked]

    async def heartbeat(self, worker_id: str, fields: dict[str, int | str], ttl_s: int) -> None:
        """Announce a live worker and its counters; the key disappears ``ttl_s`` after the last beat."""
        key = keys.worker(self.namespace, worker_id)
        async with self.client.pipeline(transaction=True) as pipe:
            mapping: dict[Any, Any] = dict(fields)  # redis-py types keys invariantly
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, ttl_s)
            pipe.zadd(keys.workers(self.namespace), {worker_id: time.time() * 1000})
            await pipe.execute()

    async def lists_held(self, partitions: Sequence[int]) -> set[int]:
        """Which of these events partitions' lists Redis holds (`schemas.keys.lists_held`)."""
        if not partitions:
            return set()
        found = await self.client.hmget(keys.lists_held(self.namespace), [str(p) for p in partitions])
        return {p for p, value in zip(partitions, found, strict=True) if value is not None}

    async def drop_legacy_lists(self, chunk: int = 500) -> int:
        """Delete the namespace's lists in the two-key form of earlier releases (`keys.legacy_list_patterns`)
        and, if there were any, the lists-held markers, so every partition's users are republished in the
        one-string form; returns how many keys went. Idempotent: a second call finds nothing."""
        dropped = 0
        for pattern in keys.legacy_list_patterns(self.namespace):
            found: list[Any] = []
            async for key in self.client.scan_iter(match=pattern, count=chunk):
                found.append(key)
                if len(found) >= chunk:
                    dropped += int(await self.client.unlink(*found))
                    found = []
            if found:
                dropped += int(await self.client.unlink(*found))
        if dropped:
            await self.client.delete(keys.lists_held(self.namespace))
        return dropped

    async def hold_lists(self, partitions: Sequence[int]) -> None:
        """Record that Redis holds (or is being given again) the lists of these events partitions."""
        if partitions:
            now = str(int(time.time() * 1000))
            await self.client.hset(keys.lists_held(self.namespace), mapping={str(p): now for p in partitions})

    async def forget_worker(self, worker_id: str) -> None:
        """Remove a worker's heartbeat at once (on a clean shutdown)."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(keys.worker(self.namespace, worker_id))
            pipe.zrem(keys.workers(self.namespace), worker_id)
            await pipe.execute()

    async def workers(self) -> list[dict[str, str]]:
        """Heartbeats of the namespace's live workers."""
        return list((await self.workers_by_id()).values())

    async def workers_by_id(self) -> dict[str, dict[str, str]]:
        """Heartbeats of the namespace's live workers by worker id (``<host>-<pid>``): the ids from the
        workers' index (`schemas.keys.workers`, no SCAN), each with its heartbeat hash if it has not
        expired; ids whose heartbeat is gone are dropped from the index."""
        index = keys.workers(self.namespace)
        ids = [str(worker_id) for worker_id in await self.client.zrange(index, 0, -1)]
        if not ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(keys.worker(self.namespace, worker_id))
            beats: list[dict[Any, Any]] = await pipe.execute()
        gone = [worker_id for worker_id, beat in zip(ids, beats, strict=True) if not beat]
        if gone:
            await self.client.zrem(index, *gone)
        return {
            worker_id: {str(k): str(v) for k, v in beat.items()}
            for worker_id, beat in zip(ids, beats, strict=True)
            if beat
        }

    async def workers_on(self, host: str) -> dict[str, dict[str, str]]:
        """Heartbeats of the namespace's live workers on ``host``, by worker id (``<host>-<pid>``)."""
        live = await self.workers_by_id()
        # Not another host whose name starts with this one's and a dash: the rest is the pid.
        mine = f"{host}-"
        return {w: beat for w, beat in live.items() if w.startswith(mine) and w[len(mine) :].isdigit()}

    async def read(self, user_id: str, n: int = 50) -> Recommendations:
        """The user's current top-n, best first, with their reasons (empty with None metadata for an
        unknown user): one GET."""
        return _recommendations(user_id, await self.client.get(keys.user_list(self.namespace, user_id)), n)

    async def read_with_preferences(self, user_id: str, n: int) -> tuple[Recommendations, Preferences]:
        """The user's top-n and their explicit preferences, in one round trip (one script call)."""
        ns = self.namespace
        user_keys = (keys.user_list(ns, user_id), keys.preferences(ns, user_id))
        value, prefs = await redis_scripts.run(self.client, redis_scripts.READ_USER, user_keys)
        return _recommendations(user_id, value, n), Preferences.from_hash(dict.fromkeys(prefs, ""))

    async def publish_items(self, records: Sequence[ItemRecord]) -> None:
        """Replace the metadata hashes of catalog items (what serve-time rules filter and boost on)."""
        async with self.client.pipeline(transaction=True) as pipe:
            for record in records:
                key = keys.item(self.namespace, record.item_id)
                pipe.delete(key)
                fields: dict[Any, Any] = dict(to_hash(record))  # redis-py types keys invariantly
                pipe.hset(key, mapping=fields)
            await pipe.execute()

    async def read_items(self, item_ids: Sequence[str]) -> dict[str, ItemMeta]:
        """Metadata of the given items (`item_meta.UNKNOWN` for items without a hash): one script call per
        `redis_scripts.ITEMS_PER_CALL` items, so up to that many in one round trip."""
        found: dict[str, ItemMeta] = {}
        for start in range(0, len(item_ids), redis_scripts.ITEMS_PER_CALL):
            chunk = item_ids[start : start + redis_scripts.ITEMS_PER_CALL]
            item_keys = [keys.item(self.namespace, item_id) for item_id in chunk]
            answers = await redis_scripts.run(self.client, redis_scripts.READ_ITEMS, item_keys)
            found.update((item_id, from_hash(values)) for item_id, values in zip(chunk, answers, strict=True))
        return found

    async def read_preferences(self, user_id: str) -> Preferences:
        fields: dict[Any, Any] = await self.client.hgetall(keys.preferences(self.namespace, user_id))
        return Preferences.from_hash(fields)  # decode_responses: str keys

    async def update_preferences(
        self, user_id: str, to_set: dict[str, str], to_delete: Sequence[str], *, reset: bool = False
    ) -> Preferences:
        """Apply preference changes in one MULTI/EXEC and return the result; ``reset`` first drops the
        user's list and earlier preferences."""
        prefs_key = keys.preferences(self.namespace, user_id)
        async with self.client.pipeline(transaction=True) as pipe:
            if reset:
                pipe.delete(keys.user_list(self.namespace, user_id), prefs_key)
            if to_delete:
                pipe.hdel(prefs_key, *to_delete)
            if to_set:
                mapping: dict[Any, Any] = dict(to_set)
                pipe.hset(prefs_key, mapping=mapping)
                if self.user_ttl_s:
                    pipe.expire(prefs_key, self.user_ttl_s)
            pipe.hgetall(prefs_key)
            answers = await pipe.execute()
        return Preferences.from_hash(answers[-1])

    async def forget_user(self, user_id: str, fence: tuple[int, int] | None = None) -> int:
        """Delete every key of the user (list, preferences) at once; returns how many existed.

        ``fence`` (position of the erasure record, tombstone TTL in seconds) also leaves a tombstone that
        refuses lists older than the erasure (a list already reflecting later records stays). A consent
        grant goes too (the user must grant again), a withdrawal stays (`consent.forget_grant`).
        """
        ns = self.namespace
        await consent.forget_grant(self.client, ns, user_id)
        if fence is None:
            return int(await self.client.delete(keys.user_list(ns, user_id), keys.preferences(ns, user_id)))
        user_keys = (*self._user_keys(user_id), keys.preferences(ns, user_id))
        return int(await redis_scripts.run(self.client, redis_scripts.FENCE_USER, user_keys, fence))

    async def consent_states(self, user_ids: Sequence[str]) -> list[ConsentState]:
        """The consent of each user, in order (`engine.store.consent`)."""
        return await consent.read_states(self.client, self.namespace, user_ids)

    async def record_consent(self, user_id: str, granted: bool, ts: int) -> int:
        """Store a consent; a withdrawal deletes the user's other keys at once (returns how many existed)."""
        return await consent.record(self.client, self.namespace, user_id, granted, ts)

    async def count_served(self, item_ids: Sequence[str], hour: int, ttl_s: int) -> None:
        """Add served items to the hour's HyperLogLog (kept ``ttl_s``), for catalog coverage: one script
        call per `redis_scripts.SERVED_PER_CALL` ids."""
        served = [keys.served(self.namespace, hour)]
        for start in range(0, len(item_ids), redis_scripts.SERVED_PER_CALL):
            chunk = "\n".join(item_ids[start : start + redis_scripts.SERVED_PER_CALL])
            await redis_scripts.run(self.client, redis_scripts.COUNT_SERVED, served, [chunk, str(ttl_s)])

    async def served_distinct(self, hours: Sequence[int]) -> int:
        """Distinct items served over the given hours (HyperLogLog estimate, about 1% error)."""
        return int(await self.client.pfcount(*[keys.served(self.namespace, h) for h in hours]))
