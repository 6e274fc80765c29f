"""API keys: minting, hashing, names and scopes, the per-key rate limit, and the FastAPI dependency.

Only sha256 digests of keys are configured (``PERSONALIZE_API_KEY_HASHES``), so a leaked settings file
leaks no key. Each entry is ``name:scopes:digest`` (scopes joined by ``+``), ``tenant:name:scopes:digest``
(a key of another namespace served by the same API: docs/tenants.md) or a bare digest (an unnamed key
with every scope, as before scopes existed). Writes always need a key with their scope; reads only
when ``PERSONALIZE_API_READ_AUTH`` is true. A key is never logged, only its name.
"""

from __future__ import annotations

__all__ = [
    "API_KEY_HEADER",
    "ApiKey",
    "Keyring",
    "Scope",
    "hash_key",
    "key_entry",
    "new_key",
    "parse_entry",
    "require",
]

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from engine.api.ratelimit import TokenBuckets
from schemas.errors import RequestRejectedError

API_KEY_HEADER = "X-API-Key"

_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key minted with `personalize api-key new`; the server keeps only its sha256.",
)


class Scope(StrEnum):
    """What a key may do. ``admin`` includes the other two."""

    #: Send events, rank and reward, set a user's preferences and consent.
    EVENTS = "events"
    #: Read recommendations, preferences, experiments and the API document (when reads need a key).
    READ = "read"
    #: Erase users and read /metrics (when reads need a key); and everything the others may.
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key: its name (what logs and metrics say), its scopes, its sha256 and its tenant
    (the namespace whose data it reaches; None: the API's own)."""

    name: str
    scopes: frozenset[Scope]
    digest: str
    tenant: str | None = None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes

    @property
    def label(self) -> str:
        """Its rate limit's name: ``tenant/name`` (two tenants may both name a key ``app``)."""
        return f"{self.tenant}/{self.name}" if self.tenant else self.name


def new_key() -> str:
    """A fresh random API key (256 bits, URL-safe), recognisable by its prefix.

    >>> key = new_key()
    >>> key.startswith("p13n_"), len(key) > 40, key != new_key()
    (True, True, True)
    """
    return "p13n_" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The sha256 hex digest of a key, which is what the settings hold.

    >>> hash_key("p13n_example")
    '621b9ba6fe0a554163a7654965c12c13451476a7385da1c2e7010669ff99dace'
    """
    return hashlib.sha256(key.encode()).hexdigest()


def key_entry(name: str, scopes: Iterable[Scope], key: str, tenant: str | None = None) -> str:
    """The settings entry for ``key``: ``name:scopes:digest``, or ``tenant:name:scopes:digest``.

    >>> key_entry("ingest", [Scope.EVENTS, Scope.READ], "p13n_example")[:30]
    'ingest:events+read:621b9ba6fe0'
    >>> key_entry("app", [Scope.READ], "p13n_example", tenant="shop")[:20]
    'shop:app:read:621b9b'
    """
    ordered = [scope.value for scope in Scope if scope in set(scopes)]
    return f"{tenant + ':' if tenant else ''}{name}:{'+'.join(ordered)}:{hash_key(key)}"


def parse_entry(entry: str) -> ApiKey:
    """One ``PERSONALIZE_API_KEY_HASHES`` entry (already checked by the settings' pattern).

    >>> parse_entry("shop-app:events+read:" + "ab" * 32).scopes == {Scope.EVENTS, Scope.READ}
    True
    >>> key = parse_entry("cd" * 32)
    >>> key.name, sorted(s.value for s in key.scopes), key.tenant
    ('key-cdcdcdcd', ['admin', 'events', 'read'], None)
    >>> parse_entry("shop:app:read:" + "ab" * 32).tenant
    'shop'
    """
    if ":" not in entry:
        return ApiKey(f"key-{entry[:8]}", frozenset(Scope), entry)
    *tenant, name, scopes, digest = entry.split(":")
    return ApiKey(name, frozenset(Scope(s) for s in scopes.split("+")), digest, tenant[0] if tenant else None)


class Keyring:
    """The configured keys of one API process and their rate limits.

    `check` finds the key (comparing digests in constant time), then its scope, then takes one of its
    tokens: a missing key is 401, an unknown one or one without the scope 403, one over its rate 429.

    >>> ring = Keyring(["app:events:" + hash_key("p13n_a")], rate=1.0, burst=1, clock=lambda: 0.0)
    >>> ring.check("p13n_a", Scope.EVENTS).name
    'app'
    >>> ring.check("p13n_a", Scope.EVENTS)
    Traceback (most recent call last):
    ...
    schemas.errors.RequestRejectedError: request rejected (429): key app is over its rate of 1 requests/s
    >>> ring.check("p13n_a", Scope.ADMIN)
    Traceback (most recent call last):
    ...
    schemas.errors.RequestRejectedError: request rejected (403): key app lacks the admin scope (has events)
    """

    def __init__(
        self,
        entries: Iterable[str],
        *,
        rate: float = 0.0,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        on_reject: Callable[[str, str], None] = lambda _reason, _name: None,
    ) -> None:
        self.keys = [parse_entry(entry) for entry in entries]
        self.rate = rate
        self._buckets = TokenBuckets(rate, burst, clock) if rate > 0 else None
        #: Told (reason, key name) of every refusal: ``unauthenticated``, ``forbidden``, ``rate_limited``.
        self.on_reject = on_reject

    def find(self, key: str) -> ApiKey | None:
        """The configured key ``key`` is, if any (every digest compared, each in constant time)."""
        digest = hash_key(key)
        found = None
        for known in self.keys:
            if hmac.compare_digest(digest, known.digest):
                found = known
        return found

    def admit(self, key: str | None, scope: Scope) -> ApiKey | None:
        """The key's entry if it may do ``scope`` now (taking a token), else None, counting nothing: the
        lean read path asks this, and leaves each refusal to the route's `check`."""
        found = self.find(key) if key else None
        if found is None or not found.allows(scope) or self._wait(found) > 0:
            return None
        return found

    def _wait(self, found: ApiKey) -> float:
        return self._buckets.take(found.label) if self._buckets is not None else 0.0

    def check(self, key: str | None, scope: Scope) -> ApiKey:
        """The key's entry if it may do ``scope`` now; else `RequestRejectedError` (401, 403 or 429)."""
        if not key:
            self.on_reject("unauthenticated", "none")
            raise RequestRejectedError(401, f"this endpoint needs an API key in the {API_KEY_HEADER} header")
        found = self.find(key)
        if found is None:
            self.on_reject("forbidden", "unknown")
            raise RequestRejectedError(403, "the API key is not one of the configured keys")
        if not found.allows(scope):
            self.on_reject("forbidden", found.name)
            scopes = "+".join(sorted(found.scopes))
            raise RequestRejectedError(403, f"key {found.name} lacks the {scope.value} scope (has {scopes})")
        wait = self._wait(found)
        if wait > 0:
            self.on_reject("rate_limited", found.name)
            raise RequestRejectedError(
                429, f"key {found.name} is over its rate of {self.rate:g} requests/s", retry_after_s=wait
            )
        return found


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """A FastAPI dependency: the request's key if it may do ``scope`` (see `Keyring.check`)."""

    async def check(request: Request, key: Annotated[str | None, Security(_scheme)]) -> ApiKey:
        keyring: Keyring = request.app.state.services.keys
        return keyring.check(key, scope)

    check.__name__ = f"require_{scope.value}"
    return check
