"""Redis ACL users of tenants: one user per namespace, allowed its own keys only (`schemas.keys`'s
namespace pattern), made, listed and removed with an administrator's connection.

Must not decide which tenant a request reaches (that is `engine.api.tenants`) nor keep any password:
Redis stores only a password's SHA-256, and the caller gets the password once, in the tenant's URL.
"""

from __future__ import annotations

__all__ = [
    "DENIED_COMMANDS",
    "USER_PREFIX",
    "acl_rules",
    "add_tenant",
    "remove_tenant",
    "save_acl",
    "tenant_url",
    "tenant_user",
    "tenant_users",
]

import secrets
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import redis.asyncio as aioredis

from schemas import keys

#: What every tenant's ACL user is called: ``p13n-<namespace>``.
USER_PREFIX = "p13n-"

#: Commands refused to a tenant's user on top of Redis's @admin and @dangerous categories (FLUSHDB, KEYS,
#: INFO, CLIENT LIST, MONITOR, CONFIG...): Redis does not filter these by the user's key patterns, so
#: SCAN and RANDOMKEY would name other tenants' keys (user ids among them) and DBSIZE count them.
DENIED_COMMANDS = ("scan", "randomkey", "dbsize")


def tenant_user(namespace: str) -> str:
    """The ACL user of ``namespace``.

    >>> tenant_user("shop")
    'p13n-shop'
    """
    return f"{USER_PREFIX}{namespace}"


def acl_rules(namespace: str, password: str) -> list[str]:
    """The ``ACL SETUSER`` rules of the tenant's user: reset (so that a second `add` replaces the password
    and nothing else stays), its keys only, no Pub/Sub channel, every command but the denied ones.

    >>> acl_rules("shop", "pw")[:5]
    ['reset', 'on', '>pw', '~p13n:v1:shop:*', 'resetchannels']
    >>> acl_rules("shop", "pw")[5:]
    ['+@all', '-@admin', '-@dangerous', '-scan', '-randomkey', '-dbsize']
    """
    return [
        "reset",
        "on",
        f">{password}",
        f"~{keys.namespace_pattern(namespace)}",
        "resetchannels",
        "+@all",
        "-@admin",
        "-@dangerous",
        *(f"-{command}" for command in DENIED_COMMANDS),
    ]


def tenant_url(base_url: str, namespace: str, password: str) -> str:
    """``base_url`` (the Redis the API reaches) logged in as the tenant's user.

    >>> tenant_url("redis://127.0.0.1:16379/0", "shop", "pw")
    'redis://p13n-shop:pw@127.0.0.1:16379/0'
    >>> tenant_url("rediss://admin:secret@redis.internal:6380/2", "shop", "p/w")
    'rediss://p13n-shop:p%2Fw@redis.internal:6380/2'
    """
    parts = urlsplit(base_url)
    host = parts.netloc.rpartition("@")[2]
    login = f"{quote(tenant_user(namespace), safe='')}:{quote(password, safe='')}@"
    return urlunsplit(parts._replace(netloc=login + host))


async def add_tenant(client: aioredis.Redis, namespace: str, password: str | None = None) -> str:
    """Create (or reset, with a new password) the tenant's ACL user; its password (random unless given)."""
    password = password or secrets.token_urlsafe(32)
    # The rules as Redis documents them, rather than `acl_setuser`'s keyword arguments.
    rules = acl_rules(namespace, password)
    await client.execute_command("ACL", "SETUSER", tenant_user(namespace), *rules)  # type: ignore[no-untyped-call]
    return password


async def remove_tenant(client: aioredis.Redis, namespace: str) -> bool:
    """Delete the tenant's ACL user (its data stays); whether there was one."""
    return bool(await client.acl_deluser(tenant_user(namespace)))


async def tenant_users(client: aioredis.Redis) -> dict[str, list[str]]:
    """The tenants' ACL users, by namespace, with their key patterns."""
    found: dict[str, list[str]] = {}
    for user in await client.acl_users():
        name = user.decode() if isinstance(user, bytes) else str(user)
        if name.startswith(USER_PREFIX):
            described: dict[str, Any] = await client.acl_getuser(name) or {}
            found[name.removeprefix(USER_PREFIX)] = [str(k) for k in described.get("keys", [])]
    return found


async def save_acl(client: aioredis.Redis) -> bool:
    """``ACL SAVE`` when the server keeps its users in an aclfile (the local stack's does), so that a
    restart keeps them; False when it has none (the users last until the server stops)."""
    configured = await client.config_get("aclfile")
    if not configured.get("aclfile"):
        return False
    await client.acl_save()
    return True
