"""Tests for the rules file (`engine.serving.rules_file`): the shipped example, clear errors, hot reload."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from engine.serving.rules_file import DEFAULT_RULES, RulesSource, read_rules
from schemas.errors import DataFormatError

ROOT = Path(__file__).resolve().parents[3]
GOOD = "version: 1\nsurfaces:\n  home:\n    pin: [{item: i1, position: 1}]\n"
OTHER = "version: 1\nsurfaces:\n  home:\n    pin: [{item: i2, position: 2}]\n"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))  # filesystems with coarse mtimes: be explicit


def test_the_example_rules_file_is_valid() -> None:
    rules = read_rules(ROOT / "deploy" / "rules.example.yaml")
    home = rules.for_surface("home")
    assert home.pin[0].item == "i-editors-pick" and home.diversity.max_per_category == 3
    assert rules.for_surface("search").filter.region is False
    assert rules.for_surface("elsewhere") == rules.default


def test_json_files_are_read_too(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{"version": 1, "default": {"bury": [{"tags": ["old"]}]}}')
    assert read_rules(path).default.bury[0].tags == ("old",)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("r.yaml", "version: 1\nsurfaces: [\n", "r.yaml:3: not valid YAML"),
        ("r.json", "{", "r.json: not valid JSON"),
        ("r.yaml", "version: 2\n", "r.yaml: version: Input should be 1"),
        ("r.yaml", "- 1\n", "r.yaml: (document): Input should be a valid dictionary"),
        (
            "r.yaml",
            "version: 1\nsurfaces: {home: {pin: [{item: x, position: 0}], boost: [{multiply: 2}]}}\n",
            "r.yaml: surfaces.home.boost.0: give at least one of items, categories, tags; "
            "surfaces.home.pin.0.position: Input should be greater than or equal to 1",
        ),
    ],
)
def test_invalid_files_name_the_file_and_the_bad_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataFormatError) as caught:
        read_rules(path)
    assert str(caught.value).removeprefix(str(tmp_path) + "/").startswith(message), str(caught.value)


def test_a_missing_file_fails_the_first_load(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="cannot read the rules file"):
        RulesSource(tmp_path / "absent.yaml").load()
    assert RulesSource(None).load() is DEFAULT_RULES


async def test_hot_reload_picks_up_changes_and_keeps_the_last_good_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, clock = tmp_path / "rules.yaml", Clock()
    outcomes: list[str] = []
    write(path, GOOD, 1_000_000_000)
    source = RulesSource(path, clock=clock, on_reload=outcomes.append)
    assert source.load().for_surface("home").pin[0].item == "i1"

    write(path, OTHER, 2_000_000_000)
    assert (await source.current()).for_surface("home").pin[0].item == "i1"  # not checked yet
    clock.now += 1.0
    assert (await source.current()).for_surface("home").pin[0].item == "i2"

    write(path, "version: 1\nsurfaces: {home: {pin: [{item: i3}]}}\n", 3_000_000_000)
    clock.now += 1.0
    with caplog.at_level(logging.WARNING, logger="engine.serving.rules_file"):
        assert (await source.current()).for_surface("home").pin[0].item == "i2"
        clock.now += 1.0
        assert (await source.current()).for_surface("home").pin[0].item == "i2"
    assert [r.getMessage() for r in caplog.records] == [
        f"rules not reloaded, keeping the last good version: {path}: "
        "surfaces.home.pin.0.position: Field required"
    ]  # said once, not once a second

    path.unlink()
    clock.now += 1.0
    assert (await source.current()).for_surface("home").pin[0].item == "i2"
    write(path, GOOD, 4_000_000_000)
    clock.now += 1.0
    assert (await source.current()).for_surface("home").pin[0].item == "i1"
    assert outcomes == ["loaded", "rejected", "rejected", "loaded"]
