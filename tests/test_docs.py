"""The docs cannot rot: the mkdocs site builds with ``--strict`` (links, anchors, every page in nav), the
README stays a short front door whose relative links resolve, and the reference pages name every
setting, metric family and command the code has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from prometheus_client import CollectorRegistry
from typer.core import TyperGroup

from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from streams.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README_MAX_LINES = 250

#: ``[text](target)`` and ``![alt](target)``; the target ends at whitespace or the closing parenthesis.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(markdown: str) -> list[str]:
    """The link targets of ``markdown`` that point into the repository (no scheme, not a bare anchor),
    without their anchor or query.

    >>> relative_links("[a](docs/x.md#y) [b](https://e.org) ![c](img.png) [d](#top) [e](mailto:x@y)")
    ['docs/x.md', 'img.png']
    """
    targets = []
    for target in _LINK.findall(markdown):
        if target.startswith("#") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
            continue
        targets.append(re.split(r"[#?]", target, maxsplit=1)[0])
    return targets


def _missing(base: Path, markdown: str) -> list[str]:
    return [t for t in relative_links(markdown) if not (base / t).exists()]


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # material's banner about MkDocs 2, not a warning
    done = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_the_readme_is_a_short_front_door() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the manual belongs in docs/"


def test_every_relative_link_in_the_readme_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    links = relative_links(readme)
    assert "docs/index.md" in links and "docs/getting-started.md" in links
    assert _missing(ROOT, readme) == []


def test_the_link_check_finds_a_broken_link() -> None:
    assert _missing(ROOT, "[ok](README.md) [gone](docs/no-such-page.md#x)") == ["docs/no-such-page.md"]


def test_every_setting_is_in_the_configuration_reference() -> None:
    reference = (DOCS / "configuration.md").read_text()
    rows = set(re.findall(r"^\| `(PERSONALIZE_[A-Z0-9_]+)` \|", reference, flags=re.MULTILINE))
    settings = {f"PERSONALIZE_{name.upper()}" for name in Settings.model_fields}
    assert settings - rows == set(), "settings missing from docs/configuration.md"
    assert rows - settings == set(), "docs/configuration.md lists settings the engine does not have"


def test_every_metric_family_is_documented() -> None:
    worker, api = CollectorRegistry(), CollectorRegistry()
    Metrics.create(worker, "docs", "m")
    Metrics.create(api, "docs")
    pages = "".join((DOCS / page).read_text() for page in ("monitoring.md", "api.md", "serving.md"))
    families = {m.name for registry in (worker, api) for m in registry.collect()}
    assert len(families) > 20
    assert sorted(f for f in families if f not in pages) == []


def _commands(group: TyperGroup, prefix: str = "") -> list[str]:
    """Every command of the console script, subcommands as ``group sub`` (typer's own click types)."""
    names = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, TyperGroup):
            names += _commands(command, f"{prefix}{name} ")
        else:
            names.append(f"{prefix}{name}")
    return names


@pytest.mark.parametrize("command", _commands(typer.main.get_group(app)))
def test_every_command_is_in_the_cli_reference(command: str) -> None:
    row = re.compile(rf"^\| `{re.escape(command)}[ `]", flags=re.MULTILINE)
    assert row.search((DOCS / "cli.md").read_text()), f"`personalize {command}` is missing from docs/cli.md"
