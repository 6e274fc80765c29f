"""Checkpoint signatures: an HMAC-SHA256, keyed by ``PERSONALIZE_CHECKPOINT_KEY``, over a file's header.

The header holds the payload's SHA-256, which is checked against the payload before it is unpickled, so
signing the header binds the whole file: whoever cannot sign cannot make the worker unpickle their bytes.
One function signs, one judges; no file I/O here, no key in any message.
"""

from __future__ import annotations

__all__ = ["FIELD", "Seal", "sign", "verdict"]

import hashlib
import hmac
from enum import StrEnum
from typing import Any

import orjson

#: The header field that holds the signature (hex); signed is the header without it.
FIELD = "hmac_sha256"


class Seal(StrEnum):
    """What a header's signature says, given the reader's key (or none)."""

    VALID = "valid"
    UNSIGNED = "unsigned"
    #: Signed, but not with the reader's key (or the header changed since).
    INVALID = "invalid"
    #: Signed; the reader has no key to check it with.
    UNCHECKED = "unchecked"


def _mac(header: dict[str, Any], key: bytes) -> str:
    body = {k: v for k, v in header.items() if k != FIELD}
    return hmac.new(key, orjson.dumps(body, option=orjson.OPT_SORT_KEYS), hashlib.sha256).hexdigest()


def sign(header: dict[str, Any], key: bytes) -> str:
    """The signature to store in ``header[FIELD]``.

    >>> h = {"format": 2, "payload_sha256": "ab"}
    >>> h[FIELD] = sign(h, b"k" * 32)
    >>> verdict(h, b"k" * 32), verdict(h, b"x" * 32), verdict(h, None)
    (<Seal.VALID: 'valid'>, <Seal.INVALID: 'invalid'>, <Seal.UNCHECKED: 'unchecked'>)
    >>> h["payload_sha256"] = "cd"; verdict(h, b"k" * 32)
    <Seal.INVALID: 'invalid'>
    """
    return _mac(header, key)


def verdict(header: dict[str, Any], key: bytes | None) -> Seal:
    """Whether ``header`` carries a signature made with ``key`` (compared in constant time)."""
    found = header.get(FIELD)
    if not isinstance(found, str):
        return Seal.UNSIGNED
    if key is None:
        return Seal.UNCHECKED
    return Seal.VALID if hmac.compare_digest(found, _mac(header, key)) else Seal.INVALID
