"""What the deploy tests share: paths, the Dockerfile's instructions, the CLI's commands and a strict
settings check of an environment (as a container would start with it). Offline: no Kafka, no Redis."""

from __future__ import annotations

__all__ = [
    "DEPLOY",
    "REPO",
    "check_settings",
    "cli_commands",
    "dockerfile",
    "dockerfile_env",
    "environment",
    "kafka_version",
    "tool",
]

import os
import re
import shlex
import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import typer

from engine.ops.settings import Settings, load

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
_PREFIX = "PERSONALIZE_"


def tool(name: str) -> str:
    """A command-line tool from this venv (a dev dependency installs it there), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    assert found, f"{name} is missing: `make install` installs the dev dependencies"
    return found


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def dockerfile_env() -> dict[str, str]:
    """The runtime stage's ENV (``KEY=value`` pairs), with ``${ARG}`` replaced by the ARG's default."""
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    for keyword, rest in dockerfile():
        if keyword == "FROM":
            env, args = {}, {k: v for k, v in args.items() if k == "PYTHON_IMAGE"}
        elif keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = _expand(value, args)
    return env


def _expand(value: str, args: Mapping[str, str]) -> str:
    """``${NAME}`` replaced by the build argument's default (empty when it has none)."""
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), value)


def cli_commands() -> set[str]:
    """Top-level commands of the ``personalize`` console script (`streams.cli`)."""
    from streams.cli import app

    group = typer.main.get_command(app)
    return set(getattr(group, "commands", {}))


def kafka_version() -> str:
    """The Kafka version deploy/kafka/pom.xml pins (the local stack's broker)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    found = ET.parse(DEPLOY / "kafka" / "pom.xml").find("m:properties/m:kafka.version", ns)
    assert found is not None and found.text
    return found.text


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """Only ``env``'s ``PERSONALIZE_*`` variables set (none of the outer ones), settings re-read."""
    saved = {k: v for k, v in os.environ.items() if k.upper().startswith(_PREFIX)}
    for name in saved:
        del os.environ[name]
    os.environ.update({k: v for k, v in env.items() if k.upper().startswith(_PREFIX)})
    load.cache_clear()
    try:
        yield
    finally:
        for name in [k for k in os.environ if k.upper().startswith(_PREFIX)]:
            del os.environ[name]
        os.environ.update(saved)
        load.cache_clear()


def check_settings(env: Mapping[str, str]) -> Settings:
    """The settings a process started with ``env`` reads (raises as it would: unknown keys, bad values)."""
    with environment(env):
        return load()
