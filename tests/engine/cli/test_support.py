"""The consoles every command shares."""

from __future__ import annotations

import io

import pytest

from engine.cli.support import table_console


def test_a_table_piped_into_a_file_keeps_150_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout", io.StringIO())  # not a terminal
    assert table_console().width == 150
