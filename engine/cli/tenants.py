"""``personalize tenant add|list|remove``: the tenants' Redis ACL users, made with PERSONALIZE_REDIS_URL's
(administrator's) connection.

Thin: the ACL rules are `engine.store.tenant_acl`'s; the API keys of a tenant come from
``personalize api-key new --tenant NAME`` (docs/tenants.md).
"""

from __future__ import annotations

__all__ = ["app"]

import asyncio
import re
from typing import Annotated

import redis.asyncio as aioredis
import typer

from engine.cli.support import err, settings_or_exit
from engine.store import tenant_acl

app = typer.Typer(
    no_args_is_help=True, help="Tenants: namespaces served by one API, each with its own Redis user."
)

Name = Annotated[str, typer.Argument(help="The tenant's namespace (letters, digits, _ -).")]


def _checked(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        err.print(f"[red]error:[/] {name!r} is not a namespace (letters, digits, _ -, at most 64)")
        raise typer.Exit(2)
    return name


@app.command("add")
def tenant_add(name: Name) -> None:
    """Create the tenant's Redis ACL user (its keys only; no SCAN, KEYS, FLUSHDB...) or give it a new
    password: the tenant's PERSONALIZE_TENANT_REDIS_URLS entry goes to stdout, the rest to stderr."""
    settings = settings_or_exit()
    namespace = _checked(name)

    async def add() -> tuple[str, bool]:
        client = aioredis.Redis.from_url(settings.redis, decode_responses=True)
        try:
            password = await tenant_acl.add_tenant(client, namespace)
            return password, await tenant_acl.save_acl(client)
        finally:
            await client.aclose()

    password, saved = asyncio.run(add())
    typer.echo(f"{namespace}={tenant_acl.tenant_url(settings.redis, namespace, password)}")
    err.print(
        f"Redis user {tenant_acl.tenant_user(namespace)} may reach only the keys of namespace {namespace}; "
        "add the entry above to PERSONALIZE_TENANT_REDIS_URLS (comma-separated) on the API servers, and "
        f"mint the tenant's keys with `personalize api-key new --tenant {namespace}`. The password is "
        "shown only now (Redis keeps its SHA-256). "
        + ("Saved to the server's aclfile." if saved else "[yellow]The server has no aclfile: the user "
           "lasts until Redis restarts (the local stack keeps it from its next start on).[/]"),
        soft_wrap=True,
    )  # fmt: skip


@app.command("list")
def tenant_list() -> None:
    """The tenants' Redis users and the keys each may reach."""
    settings = settings_or_exit()

    async def read() -> dict[str, list[str]]:
        client = aioredis.Redis.from_url(settings.redis, decode_responses=True)
        try:
            return await tenant_acl.tenant_users(client)
        finally:
            await client.aclose()

    for namespace, patterns in sorted(asyncio.run(read()).items()):
        typer.echo(f"{namespace}\t{tenant_acl.tenant_user(namespace)}\t{' '.join(patterns)}")


@app.command("remove")
def tenant_remove(name: Name) -> None:
    """Delete the tenant's Redis user (its data stays; remove its API keys from the settings too)."""
    settings = settings_or_exit()
    namespace = _checked(name)

    async def remove() -> bool:
        client = aioredis.Redis.from_url(settings.redis, decode_responses=True)
        try:
            removed = await tenant_acl.remove_tenant(client, namespace)
            await tenant_acl.save_acl(client)
            return removed
        finally:
            await client.aclose()

    if not asyncio.run(remove()):
        err.print(f"[yellow]no Redis user {tenant_acl.tenant_user(namespace)}[/]")
        raise typer.Exit(1)
    err.print(f"removed Redis user {tenant_acl.tenant_user(namespace)}")
