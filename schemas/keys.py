"""Redis key contract, version 1: every key the engine writes is built here and nowhere else.

Readers in any language rebuild the same strings (see docs/redis-contract.md). Bump
`KEY_VERSION` when a key's layout or meaning changes, so old and new readers never mix.
"""

from __future__ import annotations

__all__ = [
    "GLOBAL_SCOPE",
    "KEY_PREFIX",
    "KEY_VERSION",
    "ItemField",
    "PolicyField",
    "PreferenceKind",
    "WorkerField",
    "consent",
    "drift",
    "erasure",
    "erasure_audit",
    "experiment",
    "experiment_users",
    "item",
    "legacy_list_patterns",
    "lists_held",
    "namespace_pattern",
    "policy",
    "preference_field",
    "preferences",
    "served",
    "tombstone",
    "trending",
    "user_list",
    "worker",
    "workers",
]

import hashlib
from enum import StrEnum

KEY_PREFIX = "p13n"
KEY_VERSION = "v1"

#: Scope of the trending list that ignores locale; a leading underscore never starts a locale tag.
GLOBAL_SCOPE = "_global"


class WorkerField(StrEnum):
    """Fields of a worker's heartbeat hash (see `worker`)."""

    PID = "pid"
    STARTED_MS = "started_ms"
    BEAT_MS = "beat_ms"
    MODEL_VERSION = "model_version"
    EVENTS = "events"
    ITEMS = "items"
    #: When the worker's model state was last checkpointed or restored (epoch ms); 0 before either.
    CHECKPOINT_MS = "checkpoint_ms"
    #: The events partitions the worker owns, comma-separated ascending ('' while it owns none).
    PARTITIONS = "partitions"
    #: ``host:port`` of the worker's Prometheus endpoint ('' when it serves none).
    METRICS = "metrics"


class PolicyField(StrEnum):
    """Fields of a bandit policy snapshot hash (written by the worker, read by the API)."""

    VERSION = "version"
    UPDATED_MS = "updated_ms"
    REWARDS = "rewards"
    SNAPSHOT = "snapshot"


class ItemField(StrEnum):
    """Fields of the per-item metadata hash; lists are JSON arrays of strings, ``available`` is 1 or 0."""

    CATEGORIES = "categories"
    TAGS = "tags"
    AVAILABLE = "available"
    REGIONS = "regions"
    LANGUAGES = "languages"


class PreferenceKind(StrEnum):
    """Kinds of entries in a user's preferences hash (the part of a field before the first ``:``)."""

    LIKED_CATEGORY = "liked_category"
    LIKED_ITEM = "liked_item"
    MUTED_CATEGORY = "muted_category"
    HIDDEN_ITEM = "hidden_item"


def _key(namespace: str, kind: str, ident: str) -> str:
    return f"{KEY_PREFIX}:{KEY_VERSION}:{namespace}:{kind}:{ident}"


def user_list(namespace: str, user_id: str) -> str:
    """String: the user's top-N with its metadata and reasons, in `schemas.stored_list`'s form.

    (It replaced the ``recs`` sorted set and ``meta`` hash of earlier releases: a reader of those finds
    no key, never a misread one.)

    >>> user_list("shop", "u7")
    'p13n:v1:shop:list:u7'
    """
    return _key(namespace, "list", user_id)


def legacy_list_patterns(namespace: str) -> tuple[str, str]:
    """SCAN patterns of the per-user ``recs`` sorted sets and ``meta`` hashes of releases before the
    one-string `user_list`: a worker deletes what matches once (``RedisStore.drop_legacy_lists``), so an
    upgraded Redis keeps no list that erasure would miss.

    >>> legacy_list_patterns("shop")
    ('p13n:v1:shop:recs:*', 'p13n:v1:shop:meta:*')
    """
    return _key(namespace, "recs", "*"), _key(namespace, "meta", "*")


def lists_held(namespace: str) -> str:
    """Hash with one field per events partition (the partition number) whose users' lists this Redis
    holds; the value is when a worker first found the field missing (epoch ms). A missing field means
    Redis came back without its data (or never had the partition's lists): the partition's worker
    republishes every user of it, then sets the field.

    >>> lists_held("shop")
    'p13n:v1:shop:lists:held'
    """
    return _key(namespace, "lists", "held")


def item(namespace: str, item_id: str) -> str:
    """Hash with `ItemField` fields: what serve-time rules know about one catalog item.

    >>> item("shop", "i42")
    'p13n:v1:shop:item:i42'
    """
    return _key(namespace, "item", item_id)


def preferences(namespace: str, user_id: str) -> str:
    """Hash of the user's explicit choices: field ``<PreferenceKind>:<id>``, value = epoch ms when set.

    >>> preferences("shop", "u7")
    'p13n:v1:shop:prefs:u7'
    >>> preference_field(PreferenceKind.MUTED_CATEGORY, "horror")
    'muted_category:horror'
    """
    return _key(namespace, "prefs", user_id)


def consent(namespace: str, user_id: str) -> str:
    """String of the user's consent: ``1:<epoch ms>`` (granted then) or ``0:<epoch ms>`` (withdrawn);
    absent when never stated. Never expires, and a withdrawal survives the user's erasure, so it is named
    by the SHA-256 of the user id (first 32 hex digits) like `tombstone`: no erased id in a key name.

    >>> consent("shop", "u7")
    'p13n:v1:shop:consent:e8180000fa67e824043aa522c6743de5'
    """
    return _key(namespace, "consent", hashlib.sha256(user_id.encode()).hexdigest()[:32])


def preference_field(kind: PreferenceKind, ident: str) -> str:
    """The field of one entry in the preferences hash (the id may itself contain ``:``)."""
    return f"{kind.value}:{ident}"


def served(namespace: str, hour: int) -> str:
    """HyperLogLog of the distinct items served in one hour (epoch hours); expires after the window.

    >>> served("shop", 472222)
    'p13n:v1:shop:served:472222'
    """
    return _key(namespace, "served", str(hour))


def trending(namespace: str, locale: str | None = None) -> str:
    """Sorted set of trending items, member = item_id, score = higher is trending more.

    One list per locale (as sent in events' ``context.locale``) plus one for everyone, which is what
    users without personal recommendations get.

    >>> trending("shop", "en-GB")
    'p13n:v1:shop:trending:en-GB'
    >>> trending("shop")
    'p13n:v1:shop:trending:_global'
    """
    return _key(namespace, "trending", locale if locale is not None else GLOBAL_SCOPE)


def tombstone(namespace: str, user_id: str) -> str:
    """String holding the fencing position of a user's erasure (or reset): no list of an older position is
    written while it lives (it expires after ``PERSONALIZE_TOMBSTONE_TTL_S``). Named by the SHA-256 of
    the user id (first 32 hex digits), so an erased user's id is not kept in a key name.

    >>> tombstone("shop", "u7")
    'p13n:v1:shop:tombstone:e8180000fa67e824043aa522c6743de5'
    """
    return _key(namespace, "tombstone", hashlib.sha256(user_id.encode()).hexdigest()[:32])


def erasure(namespace: str, user_id: str) -> str:
    """Hash of the user's latest erasure: ``event_id``, ``requested_ms``, ``by`` (the API key's name),
    ``deleted_keys``, and ``done_ms`` once a worker has forgotten the user; named by the SHA-256 of the
    user id like `tombstone`, and expiring with it.

    >>> erasure("shop", "u7")
    'p13n:v1:shop:erasure:e8180000fa67e824043aa522c6743de5'
    """
    return _key(namespace, "erasure", hashlib.sha256(user_id.encode()).hexdigest()[:32])


def erasure_audit(namespace: str) -> str:
    """Stream, append-only: one entry per erasure request (``step`` requested, by whom) and one per worker
    that completed it (``step`` done), each naming the user by the SHA-256 of their id.

    >>> erasure_audit("shop")
    'p13n:v1:shop:audit:erasures'
    """
    return _key(namespace, "audit", "erasures")


def worker(namespace: str, worker_id: str) -> str:
    """Heartbeat hash of a live worker (expires when the worker stops beating).

    >>> worker("shop", "host-42")
    'p13n:v1:shop:worker:host-42'
    """
    return _key(namespace, "worker", worker_id)


def workers(namespace: str) -> str:
    """Sorted set of the namespace's worker ids (score: last beat, epoch ms): how readers find the
    heartbeats without SCAN, which a tenant's Redis user may not run (SCAN ignores key permissions).

    >>> workers("shop")
    'p13n:v1:shop:workers:live'
    """
    return _key(namespace, "workers", "live")


def policy(namespace: str, policy_id: str) -> str:
    """Hash with `PolicyField` fields: the latest snapshot of one bandit policy (base64 in ``snapshot``).

    >>> policy("shop", "default")
    'p13n:v1:shop:policy:default'
    """
    return _key(namespace, "policy", policy_id)


def drift(namespace: str) -> str:
    """Stream of drift records (signal, detector, at, ts, before/after JSON), newest last; capped.

    >>> drift("shop")
    'p13n:v1:shop:drift:events'
    """
    return _key(namespace, "drift", "events")


def experiment(namespace: str, name: str) -> str:
    """Hash of an experiment's counters: ``<variant>.decisions``, ``.rewards``, ``.reward_sum``.

    >>> experiment("shop", "home-ranker")
    'p13n:v1:shop:experiment:home-ranker'
    """
    return _key(namespace, "experiment", name)


def experiment_users(namespace: str, name: str, variant: str) -> str:
    """Set of the user ids assigned to one variant (its size is what the sample-ratio check counts).

    >>> experiment_users("shop", "home-ranker", "control")
    'p13n:v1:shop:experiment-users:home-ranker:control'
    """
    return _key(namespace, "experiment-users", f"{name}:{variant}")


def namespace_pattern(namespace: str) -> str:
    """SCAN pattern matching every key of the namespace (benchmarks and tests remove theirs with it).

    >>> namespace_pattern("bench1")
    'p13n:v1:bench1:*'
    """
    return f"{KEY_PREFIX}:{KEY_VERSION}:{namespace}:*"
