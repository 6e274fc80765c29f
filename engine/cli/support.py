"""What every ``personalize`` command module shares: the stderr console and the settings, or exit 2.

No commands here; `engine.cli.main` assembles them from `engine.cli.evaluation`,
`engine.cli.serving` and its own.
"""

from __future__ import annotations

__all__ = ["err", "settings_or_exit", "table_console"]

import sys

import typer
from rich.console import Console

from engine.ops.settings import Settings, load
from schemas.errors import PersonalizeError

#: Progress, logs and errors: stderr, so that ``--json`` output on stdout stays machine-readable.
err = Console(stderr=True)


def table_console() -> Console:
    """The console for a command's tables on stdout; piped into a file, a table keeps a width of 150
    columns (rich would fold it to 80, cutting names and numbers)."""
    return Console(width=None if sys.stdout.isatty() else 150)


def settings_or_exit() -> Settings:
    """The settings from the environment; a bad one is printed and the command exits with status 2."""
    try:
        return load()
    except PersonalizeError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
