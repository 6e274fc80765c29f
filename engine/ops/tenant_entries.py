"""The formats of two settings: API key entries and tenant Redis URL entries (`engine.ops.settings`).

Patterns and parsing only, no I/O: the settings object validates its fields with them.
"""

from __future__ import annotations

__all__ = ["KEY_ENTRY", "NAMESPACE", "key_tenants", "lower_digest", "tenant_urls"]

import re

_SCOPE = r"(?:events|read|admin)"
#: A namespace (and so a tenant's name).
NAMESPACE = r"[A-Za-z0-9_-]{1,64}"
#: An API key entry: ``[tenant:]name:scopes:sha256`` (scopes of events, read, admin joined by ``+``; the
#: tenant a namespace, default the API's own) or a bare sha256 (an unnamed key with every scope).
KEY_ENTRY = rf"^(?:(?:{NAMESPACE}:)?[A-Za-z0-9_.-]{{1,64}}:{_SCOPE}(?:\+{_SCOPE})*:)?[0-9a-f]{{64}}$"
_REDIS_URL = re.compile(r"^(?:rediss?|unix)://\S+$")


def key_tenants(entries: tuple[str, ...]) -> set[str]:
    """The tenants API key entries name (``tenant:name:scopes:sha256``)."""
    return {entry.split(":")[0] for entry in entries if entry.count(":") == 3}


def tenant_urls(text: str) -> dict[str, str]:
    """``namespace=url`` entries, comma-separated; the error names the entry's position, not its text
    (which holds a password).

    >>> tenant_urls("b=redis://u:p@h:1/0,")
    {'b': 'redis://u:p@h:1/0'}
    >>> tenant_urls("b=http://h")
    Traceback (most recent call last):
    ...
    ValueError: tenant Redis URL entry 1 is not namespace=redis://user:password@host:port/db
    """
    found = {}
    for index, entry in enumerate((e.strip() for e in text.split(",") if e.strip()), 1):
        tenant, _, url = entry.partition("=")
        if not re.fullmatch(NAMESPACE, tenant) or not _REDIS_URL.match(url) or tenant in found:
            raise ValueError(
                f"tenant Redis URL entry {index} is not namespace=redis://user:password@host:port/db"
                + (" (a tenant named twice)" if tenant in found else "")
            )
        found[tenant] = url
    return found


def lower_digest(entry: str) -> str:
    """The entry with its sha256 in lower case (the rest as given).

    >>> lower_digest("shop:ci:read:" + "AB" * 32) == "shop:ci:read:" + "ab" * 32
    True
    """
    head, sep, digest = entry.rpartition(":")
    return f"{head}{sep}{digest.lower()}"
