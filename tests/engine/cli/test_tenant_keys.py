"""``personalize api-key new --tenant``: the entry it prints is one the settings take, for that tenant."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from engine.api.auth import hash_key, parse_entry
from engine.cli.main import app
from engine.ops.settings import Settings


def test_a_tenants_key_entry_names_the_tenant_and_the_settings_take_it() -> None:
    result = CliRunner().invoke(
        app, ["api-key", "new", "--tenant", "shop", "--scope", "read", "--name", "web"]
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    entry = re.search(r"^shop:web:read:[0-9a-f]{64}$", result.stderr, re.MULTILINE)
    assert entry is not None, result.stderr
    parsed = parse_entry(entry.group(0))
    assert (parsed.tenant, parsed.digest) == ("shop", hash_key(key))
    urls = "shop=redis://p13n-shop:pw@127.0.0.1:16379/0"
    assert Settings(api_key_hashes=(entry.group(0),), tenant_redis_urls=urls).tenants == {"default", "shop"}


def test_a_bad_tenant_name_is_refused() -> None:
    result = CliRunner().invoke(app, ["api-key", "new", "--tenant", "sh:op"])
    assert result.exit_code == 2 and "bad tenant" in result.stderr
