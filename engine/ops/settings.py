"""The one settings object: typed, frozen, read from ``PERSONALIZE_*`` environment variables.

Topic names, the Faust app id and Redis keys all derive from ``namespace``, so one variable isolates
a tenant (or a test run) end to end. Defaults match what `personalize stack up` starts.
"""

from __future__ import annotations

__all__ = ["Settings", "load"]

import functools
import os
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.ops import tenant_entries as entries
from schemas.errors import ConfigError
from schemas.pseudonyms import Pseudonyms

_PREFIX = "PERSONALIZE_"


class Settings(BaseSettings):
    """Engine configuration; every field is ``PERSONALIZE_<FIELD>`` in the environment.

    >>> s = Settings(namespace="shop")
    >>> s.events_topic, s.app_id
    ('p13n.shop.events', 'p13n-shop')
    """

    # Errors never echo their input: a secret (a Redis URL's password, a key too short) would be printed.
    model_config = SettingsConfigDict(
        env_prefix=_PREFIX, frozen=True, extra="forbid", hide_input_in_errors=True
    )

    namespace: str = Field("default", pattern=rf"^{entries.NAMESPACE}$")
    kafka_bootstrap: str | None = None
    redis_url: str | None = None
    #: Partitions of the namespace's topics: the most workers that can share its events (docs/operations.md).
    partitions: int = Field(12, ge=1, le=1024)
    top_n: int = Field(50, ge=1, le=1000)
    #: A worker serves its metrics on the first free port of ``metrics_port`` ..
    #: ``metrics_port + metrics_port_span - 1`` (``metrics_port`` 0: no endpoint); every worker of this
    #: machine is listed with its port in the Prometheus file_sd targets (`engine.ops.scrape`).
    metrics_port: int = Field(9464, ge=0, le=65535)
    metrics_port_span: int = Field(64, ge=1, le=1024)
    metrics_host: str = "127.0.0.1"
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    stack_dir: Path = Path(".stack")
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    redis_port: int = 16379
    kafka_heap: str = "768m"
    #: The worker takes events in batches of up to ``batch_max`` records, waiting at most
    #: ``batch_within_s`` for a batch to fill: one Redis write and one changelog record per user per batch.
    batch_max: int = Field(500, ge=1, le=100_000)
    batch_within_s: float = Field(0.02, gt=0.0, le=10.0)
    #: The worker's fetches: the broker answers once ``kafka_fetch_min_bytes`` are there or after
    #: ``kafka_fetch_wait_ms`` (`streams.fetching`): latency at low traffic against CPU per event.
    kafka_fetch_wait_ms: int = Field(50, ge=1, le=1500)
    kafka_fetch_min_bytes: int = Field(4_096, ge=1, le=16_777_216)
    #: The worker's first-generation garbage-collection threshold once started (0: Python's 700), with
    #: start-up's objects frozen out of every collection (`engine.ops.gc_tuning.tune`).
    gc_threshold: int = Field(20_000, ge=0, le=10_000_000)
    #: The worker's Redis client: seconds a connect or a reply may take before the call fails (a hung
    #: Redis must not hold the batch, and the checkpoint lock with it); a failed list is republished
    #: once Redis answers again (docs/reliability.md).
    redis_timeout_s: float = Field(2.0, gt=0.0, le=300.0)
    #: How long the worker retries a failed direct read of Kafka (gap repair, catch-up replay) before it
    #: raises; the batch's work so far is flushed first and nothing is counted as read that was not.
    kafka_read_patience_s: float = Field(300.0, ge=0.0, le=86_400.0)
    #: How long the worker's table recovery may go without progress before the worker stops (exit 1)
    #: so that its partitions go to the others (`streams.recovery_watch`); 0: never.
    recovery_patience_s: float = Field(120.0, ge=0.0, le=86_400.0)
    #: How long the consumer group waits for a silent worker before its partitions go to the others
    #: (Kafka's session timeout; Faust's default 60 s). Lower means a crashed worker's users are picked
    #: up sooner, but a worker whose event loop stalls that long (a long catch-up) is dropped too.
    session_timeout_s: float = Field(60.0, ge=6.0, le=1800.0)
    #: Standby copies of each partition of the worker tables (the profiles) that other workers keep up to
    #: date from the changelog (Faust's ``table_standby_replicas``): a worker given a partition with a
    #: standby copy resumes it at once; without, it first reads the partition's changelog.
    table_standbys: int = Field(1, ge=0, le=8)
    #: The worker explains each list and stores the reasons with it (`schemas.reasons`); false leaves
    #: them out: ~60-90 B less per user in Redis and no explaining in the worker, and readers get lists
    #: without reasons (the API's reason fields are null).
    store_reasons: bool = True
    #: Bring your own River model (docs/river.md): a River classifier spec (YAML or JSON inline, or the
    #: path of a .yaml/.yml/.json file holding one) that re-ranks the first ``river_top`` items of each
    #: list, learning from every event. Unset: the built-in model alone. Part of the model version.
    river_reranker: str | None = None
    river_top: int = Field(50, ge=2, le=1000)
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    #: The accepted API keys (`personalize api-key new`), comma-separated in the environment: each
    #: ``name:scopes:sha256`` (e.g. ``shop-app:events+read:<sha256>``; scopes events, read, admin) or a
    #: bare sha256 hex digest (a key with every scope). None configured means every write is refused.
    #: ``tenant:name:scopes:sha256`` makes the key one of tenant (a namespace)'s: the API serves that
    #: tenant's data to it (docs/tenants.md), with the tenant's Redis URL from ``tenant_redis_urls``.
    api_key_hashes: Annotated[tuple[Annotated[str, Field(pattern=entries.KEY_ENTRY)], ...], NoDecode] = ()
    #: The API's Redis URL per tenant, with the tenant's own ACL user (`personalize tenant add`),
    #: comma-separated ``namespace=redis://user:password@host:port/db`` entries; never logged. Every
    #: tenant an API key names, other than ``namespace``, needs one; ``namespace`` without one uses
    #: ``redis_url``.
    tenant_redis_urls: SecretStr | None = Field(None, validate_default=True)
    #: Reads (recommendations, preferences, experiments, the API document; /metrics with an admin key)
    #: need a key with the read scope; /v1/health stays open.
    api_read_auth: bool = False
    #: Requests per second each key may make to one API process (0: no limit), with bursts of up to
    #: ``api_rate_burst``; over it the API answers 429 with Retry-After.
    api_rate_limit: float = Field(0.0, ge=0.0, le=1_000_000.0)
    api_rate_burst: int = Field(100, ge=1, le=1_000_000)
    api_max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1_048_576)
    api_max_batch: int = Field(500, ge=1, le=10_000)
    api_timeout_s: float = Field(5.0, gt=0.0, le=300.0)
    #: `personalize dashboard` (engine/dashboard): where the live page is served.
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = Field(8090, ge=0, le=65535)
    #: Serve-time rules and diversity (docs/serving.md): the rules file (YAML or JSON,
    #: re-read when it changes), the default diversity strength (0: order unchanged), candidates read
    #: per item served, and the window over which distinct served items (coverage) are counted.
    rules_file: Path | None = None
    diversity_strength: float = Field(0.3, ge=0.0, le=1.0)
    serve_candidates_factor: int = Field(3, ge=1, le=20)
    coverage_window_hours: int = Field(24, ge=1, le=720)
    #: Seconds between the worker's trending lists (`streams.trending`; only the owner of events
    #: partition 0 publishes them); 0: the worker publishes none.
    trending_interval_s: float = Field(5.0, ge=0.0, le=3600.0)
    #: How long an erasure's (or reset's) tombstone refuses lists from the user's earlier events; keep it
    #: above the events topic's retention, so no record older than a tombstone outlives it in Kafka.
    tombstone_ttl_s: int = Field(7 * 86_400, ge=1, le=365 * 86_400)
    #: Rank/reward (Personalizer-style): how long a decision waits for its reward before it is learned
    #: with ``default_reward``; which policy ranks when no experiment applies; the hashed feature sizes.
    reward_wait_s: float = Field(60.0, gt=0.0, le=86_400.0)
    default_reward: float = Field(0.0, ge=-1e6, le=1e6)
    #: Ours, or one of River's (docs/river.md): River's need ``policy_key``.
    bandit_policy: Literal[
        "linucb",
        "lints",
        "logts",
        "egreedy",
        "uniform",
        "river-linucb",
        "river-ts",
        "river-bayes-ucb",
        "river-ucb",
        "river-egreedy",
    ] = "linucb"
    bandit_context_dims: int = Field(16, ge=1, le=256)
    bandit_action_dims: int = Field(16, ge=1, le=256)
    #: The worker publishes a policy snapshot after this many rewards, or this long after it learned.
    policy_publish_every: int = Field(50, ge=1, le=1_000_000)
    policy_publish_s: float = Field(1.0, gt=0.0, le=3600.0)
    #: Signs every policy snapshot the worker publishes (HMAC-SHA256, `engine.store.policy_seal`); with it
    #: the API and the worker read only validly signed snapshots. Required by River's policies, whose
    #: snapshots hold pickled state (at least 32 characters, never logged).
    policy_key: SecretStr | None = Field(None, min_length=32)
    #: Experiments (see docs/rank-reward.md): a JSON or YAML file, or the same document inline.
    experiments_file: Path | None = None
    experiments: str | None = None
    #: Monitoring and drift (docs/drift.md): k of the prequential HR@k, the recent window of the
    #: hit-rate gauge and of the drift records' "after" statistics, ADWIN's confidence, and what the
    #: worker does on a detection (at most once per ``drift_cooldown_events`` events).
    drift_hr_k: int = Field(10, ge=1, le=1000)
    drift_window: int = Field(500, ge=10, le=100_000)
    drift_adwin_delta: float = Field(0.002, gt=0.0, lt=1.0)
    drift_response: Literal["none", "reset_affinity", "boost_exploration"] = "reset_affinity"
    drift_decay: float = Field(0.5, ge=0.0, le=1.0)
    drift_explore_slots: int = Field(3, ge=0, le=100)
    drift_cooldown_events: int = Field(2000, ge=1, le=10_000_000)
    #: Model checkpoints (docs/checkpoints.md): the worker writes one after this many learned records
    #: or this many seconds (0 turns a trigger off; both are checked every second) and on a clean
    #: shutdown, keeps the newest ``checkpoint_keep`` in ``<checkpoint_dir>/<namespace>`` (default
    #: ``checkpoint_dir``: ``<stack_dir>/checkpoints``) and on start restores the newest one of its
    #: model version.
    checkpoint_enabled: bool = True
    checkpoint_dir: Path | None = None
    checkpoint_every_events: int = Field(20_000, ge=0, le=100_000_000)
    checkpoint_every_s: float = Field(60.0, ge=0.0, le=86_400.0)
    checkpoint_keep: int = Field(3, ge=1, le=1000)
    #: Signs every checkpoint written (HMAC-SHA256, `engine.ops.sealing`) and refuses, before unpickling,
    #: any checkpoint without a valid signature (at least 32 characters, never logged). Without it files
    #: are unsigned and the folder must be writable only by the operator.
    checkpoint_key: SecretStr | None = Field(None, min_length=32)
    #: After an erasure the worker writes a checkpoint and deletes its older ones (they hold the user) at
    #: the next second's tick, but not sooner than this many seconds after its previous checkpoint.
    erasure_checkpoint_gap_s: float = Field(1.0, ge=0.0, le=3600.0)
    #: Privacy (docs/privacy.md). ``pseudonym_key``: with it, the edge (HTTP API, simulate, produce, the
    #: SDK's and CLI's reads) replaces every user id by its keyed hash (`schemas.pseudonyms`) before
    #: Kafka or Redis see it; at least 32 characters, never logged. ``consent_required``: only users
    #: who granted consent are learned (opt-in); else everyone but those who withdrew (opt-out).
    pseudonym_key: SecretStr | None = Field(None, min_length=32)
    consent_required: bool = False
    #: Seconds a user's list, metadata and preferences live in Redis after their last write (0: no
    #: expiry); and hours the namespace's topics about users keep records, set when the engine creates
    #: them (the catalog topic, which names no user, keeps its records).
    user_ttl_s: int = Field(0, ge=0, le=10 * 365 * 86_400)
    topic_retention_hours: float = Field(168.0, gt=0.0, le=100 * 365 * 24.0)
    #: This worker's identity among the namespace's workers: names its checkpoint folder (each worker
    #: prunes only its own). Default: ``<hostname>-<pid>``; give each worker a stable one (worker-0,
    #: worker-1...) so that a restarted worker goes on in its own folder.
    worker_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,128}$")

    @field_validator("api_key_hashes", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        parts = value.split(",") if isinstance(value, str) else value
        if isinstance(parts, list | tuple):
            # The digest is hex in either case; names keep theirs.
            return tuple(entries.lower_digest(str(p).strip()) for p in parts if str(p).strip())
        return value

    @model_validator(mode="after")
    def _river_policy_needs_key(self) -> Settings:
        if self.bandit_policy.startswith("river-") and self.policy_key is None:
            raise ConfigError(
                f"PERSONALIZE_BANDIT_POLICY={self.bandit_policy} needs PERSONALIZE_POLICY_KEY (32+ "
                "characters): River policy snapshots hold pickled state, read only when signed"
            )
        return self

    @property
    def policy_signing_key(self) -> bytes | None:
        """``policy_key``'s bytes, or None (snapshots unsigned; River's policies refused).

        >>> Settings(bandit_policy="river-ts")
        Traceback (most recent call last):
        ...
        schemas.errors.ConfigError: PERSONALIZE_BANDIT_POLICY=river-ts needs PERSONALIZE_POLICY_KEY ...
        >>> Settings(bandit_policy="river-ts", policy_key="k" * 32).policy_signing_key == b"k" * 32
        True
        """
        key = self.policy_key
        return key.get_secret_value().encode() if key is not None else None

    @field_validator("tenant_redis_urls")
    @classmethod
    def _every_tenant_has_redis(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        urls = entries.tenant_urls(value.get_secret_value()) if value is not None else {}
        named = entries.key_tenants(info.data.get("api_key_hashes", ()))
        missing = sorted(named - {info.data.get("namespace")} - set(urls))
        if missing:
            raise ValueError(
                f"API keys name tenant(s) {', '.join(missing)} without a Redis URL in "
                "PERSONALIZE_TENANT_REDIS_URLS (`personalize tenant add NAME` prints one)"
            )
        return value

    @property
    def tenants(self) -> frozenset[str]:
        """The namespaces this API serves: its own and every one an API key names.

        >>> sorted(Settings(namespace="a", api_key_hashes="b:app:read:" + "0" * 64,
        ...                 tenant_redis_urls="b=redis://p13n-b:pw@h:6379/0").tenants)
        ['a', 'b']
        """
        return frozenset({self.namespace, *entries.key_tenants(self.api_key_hashes)})

    @property
    def tenant_redis(self) -> dict[str, str]:
        """``tenant_redis_urls`` by namespace.

        >>> Settings(tenant_redis_urls="b=redis://u:p@h:1/0, c=redis://v:q@h:1/0").tenant_redis["c"]
        'redis://v:q@h:1/0'
        """
        urls = self.tenant_redis_urls
        return entries.tenant_urls(urls.get_secret_value()) if urls is not None else {}

    def redis_of(self, tenant: str) -> str:
        """The Redis URL the API uses for ``tenant``'s requests (its own user's, see `tenant_redis`)."""
        found = self.tenant_redis.get(tenant)
        if found is None and tenant != self.namespace:
            raise ConfigError(f"no Redis URL for tenant {tenant} in PERSONALIZE_TENANT_REDIS_URLS")
        return found or self.redis

    @property
    def pseudonyms(self) -> Pseudonyms:
        """The edge's user id pseudonyms (ids unchanged without ``pseudonym_key``).

        >>> Settings(pseudonym_key="k" * 32).pseudonyms.of("u7")[:2], Settings().pseudonyms.of("u7")
        ('p_', 'u7')
        >>> "k" * 32 in repr(Settings(pseudonym_key="k" * 32))
        False
        """
        key = self.pseudonym_key
        return Pseudonyms(key.get_secret_value().encode() if key is not None else None)

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers: ``kafka_bootstrap`` or the local stack's broker."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def redis(self) -> str:
        """Redis URL: ``redis_url`` or the local stack's server."""
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def river_spec(self) -> str | None:
        """The River reranker's spec document: ``river_reranker`` itself, or the file it names.

        >>> Settings(river_reranker="river.linear_model.LogisticRegression: {}").river_spec
        'river.linear_model.LogisticRegression: {}'
        """
        value = self.river_reranker
        if value is None or not value.strip().endswith((".yaml", ".yml", ".json")):
            return value
        try:
            return Path(value.strip()).read_text()
        except OSError as exc:
            raise ConfigError(f"PERSONALIZE_RIVER_RERANKER: cannot read {value!r}: {exc}") from None

    @property
    def checkpoint_folder(self) -> Path:
        """Where this namespace's model checkpoints live (one folder per namespace).

        >>> Settings(namespace="shop").checkpoint_folder
        PosixPath('.stack/checkpoints/shop')
        """
        return (self.checkpoint_dir or self.stack_dir / "checkpoints") / self.namespace

    @property
    def checkpoint_signing_key(self) -> bytes | None:
        """``checkpoint_key``'s bytes, or None (checkpoints unsigned).

        >>> Settings(checkpoint_key="k" * 32).checkpoint_signing_key == b"k" * 32
        True
        """
        key = self.checkpoint_key
        return key.get_secret_value().encode() if key is not None else None

    @property
    def worker_name(self) -> str:
        """``worker_id``, or ``<hostname>-<pid>`` of this process."""
        return self.worker_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def app_id(self) -> str:
        return f"p13n-{self.namespace}"

    @property
    def events_topic(self) -> str:
        return f"p13n.{self.namespace}.events"

    @property
    def items_topic(self) -> str:
        return f"p13n.{self.namespace}.items"

    @property
    def dead_letter_topic(self) -> str:
        return f"p13n.{self.namespace}.dead-letter"

    @property
    def decisions_topic(self) -> str:
        return f"p13n.{self.namespace}.decisions"

    @property
    def rewards_topic(self) -> str:
        return f"p13n.{self.namespace}.rewards"

    @property
    def bandit_examples_topic(self) -> str:
        return f"p13n.{self.namespace}.bandit-examples"

    @property
    def drift_topic(self) -> str:
        return f"p13n.{self.namespace}.drift"


@functools.cache
def load() -> Settings:
    """Settings from the environment, read once per process; unknown ``PERSONALIZE_*`` keys are errors."""
    known = {f"{_PREFIX}{name}".upper() for name in Settings.model_fields}
    unknown = sorted(k for k in os.environ if k.upper().startswith(_PREFIX) and k.upper() not in known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return Settings()
