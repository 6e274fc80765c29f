"""Pseudonymous user ids: what the edge (HTTP API, `personalize simulate|produce`, SDK and CLI reads) sends
on instead of an app's user id, so raw ids never reach Kafka, Redis or checkpoints.

Contract v1, for readers in any language: ``p_`` + the first 32 hex digits of HMAC-SHA256(key, the id's
UTF-8 bytes). Same key, same pseudonym: every edge process and reader must share the key; whoever lacks it
cannot tell who a pseudonym is, nor compute one. Pure; holds the key only in memory, never prints it.
"""

from __future__ import annotations

__all__ = ["PSEUDONYM_PREFIX", "Pseudonyms"]

import hashlib
import hmac

PSEUDONYM_PREFIX = "p_"
_HEX_DIGITS = 32  # 128 bits: no two of 10^12 users collide but with a chance of about 1 in 10^15


class Pseudonyms:
    """Maps user ids to pseudonyms with one key; without a key every id maps to itself.

    >>> ps = Pseudonyms(b"0123456789abcdef0123456789abcdef")
    >>> ps.of("u7")
    'p_8b25fadbb67fdc447520731d5b1edebe'
    >>> ps.of("u7") == ps.of("u7") != ps.of("u8")
    True
    >>> Pseudonyms(None).of("u7"), Pseudonyms(None).enabled
    ('u7', False)
    >>> repr(ps)
    'Pseudonyms(enabled)'
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes | None) -> None:
        self._key = key

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def of(self, user_id: str) -> str:
        """The pseudonym of ``user_id`` (``user_id`` itself when pseudonymization is off)."""
        if self._key is None:
            return user_id
        digest = hmac.new(self._key, user_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:_HEX_DIGITS]

    def __repr__(self) -> str:
        return f"Pseudonyms({'enabled' if self.enabled else 'off'})"
