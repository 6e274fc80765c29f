"""API keys: minting, hashing, and the FastAPI dependency that checks the ``X-API-Key`` header.

Only sha256 digests of keys are configured (``PERSONALIZE_API_KEY_HASHES``), so a leaked settings file
leaks no key. Writes always need a key; reads only when ``PERSONALIZE_API_READ_AUTH`` is true.
"""

from __future__ import annotations

__all__ = ["API_KEY_HEADER", "hash_key", "known_key", "new_key", "require_key"]

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from schemas.errors import RequestRejectedError

API_KEY_HEADER = "X-API-Key"

_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="An API key minted with `personalize api-key new`; the server keeps only its sha256.",
)


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


def known_key(key: str, hashes: tuple[str, ...]) -> bool:
    """Whether ``key`` is one of the configured keys (given by their ``hashes``).

    >>> known_key("p13n_example", (hash_key("p13n_other"), hash_key("p13n_example"))), known_key("", ())
    (True, False)
    """
    digest = hash_key(key)
    # Compare against every configured digest, without stopping early, in constant time each.
    return sum(hmac.compare_digest(digest, known) for known in hashes) > 0


async def require_key(request: Request, key: Annotated[str | None, Security(_scheme)]) -> None:
    """Refuse the request with 401 (no key) or 403 (a key that is not configured)."""
    if not key:
        raise RequestRejectedError(401, f"this endpoint needs an API key in the {API_KEY_HEADER} header")
    if not known_key(key, request.app.state.services.settings.api_key_hashes):
        raise RequestRejectedError(403, "the API key is not one of the configured keys")
