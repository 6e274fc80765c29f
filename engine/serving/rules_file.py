"""The rules file (YAML or JSON): read and validated, then re-read whenever it changes on disk.

A new version that cannot be used is logged and ignored, and the last good one keeps serving; only
the first load fails hard, so an API never starts with rules it cannot read. Knows nothing of Redis.
"""

from __future__ import annotations

__all__ = ["RulesSource", "read_rules"]

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pydantic
import yaml

from engine.serving.rules import RuleSet
from schemas.errors import DataFormatError
from schemas.events import problems_of

log = logging.getLogger(__name__)

#: The rules when no file is configured: default filters and the settings' diversity strength.
DEFAULT_RULES = RuleSet(version=1)


def _document(path: Path, text: bytes) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise DataFormatError(str(path), None, f"not valid JSON: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise DataFormatError(str(path), line, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None


def read_rules(path: Path) -> RuleSet:
    """Read and validate a rules file; `DataFormatError` names the file and every bad field.

    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "rules.yaml"
    >>> _ = bad.write_text("version: 1\\nsurfaces: {home: {boost: [{tags: [x], multiply: -2}]}}\\n")
    >>> read_rules(bad)
    Traceback (most recent call last):
    ...
    schemas.errors.DataFormatError: .../rules.yaml: surfaces.home.boost.0.multiply: Input should be greater...
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(str(path), None, f"cannot read the rules file: {exc.strerror}") from None
    document = _document(path, text)
    try:
        return RuleSet.model_validate(document)
    except pydantic.ValidationError as exc:
        problems = [
            f"{p.field or '(document)'}: {p.message}" for p in problems_of(exc.errors(include_url=False))
        ]
        raise DataFormatError(str(path), None, "; ".join(problems)) from None


def _stat_and_read(path: Path, known_mtime_ns: int | None) -> tuple[int, RuleSet | None]:
    try:
        mtime_ns = path.stat().st_mtime_ns
    except OSError as exc:
        raise DataFormatError(str(path), None, f"cannot read the rules file: {exc.strerror}") from None
    return mtime_ns, (read_rules(path) if mtime_ns != known_mtime_ns else None)


class RulesSource:
    """The current rules of ``path`` (`DEFAULT_RULES` without one), checked at most every ``check_every_s``.

    ``on_reload(outcome)`` hears ``loaded`` or ``rejected`` for each new version seen (metrics).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        check_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_reload: Callable[[str], None] = lambda _outcome: None,
    ) -> None:
        self.path = path
        self.check_every_s = check_every_s
        self.clock = clock
        self.on_reload = on_reload
        self.rules = DEFAULT_RULES
        self._mtime_ns: int | None = None
        self._next_check = -float("inf")
        self._failure: str | None = None

    def load(self) -> RuleSet:
        """The first load, at startup: raises `DataFormatError` if the file is missing or invalid."""
        if self.path is not None:
            self._mtime_ns, rules = _stat_and_read(self.path, None)
            assert rules is not None
            self.rules = rules
            self._next_check = self.clock() + self.check_every_s
            log.info("rules loaded from %s", self.path)
        return self.rules

    async def current(self) -> RuleSet:
        """The rules to apply now; re-reads the file first if it is due and changed."""
        if self.path is None or self.clock() < self._next_check:
            return self.rules
        self._next_check = self.clock() + self.check_every_s
        try:
            mtime_ns, rules = await asyncio.to_thread(_stat_and_read, self.path, self._mtime_ns)
        except DataFormatError as exc:
            if not self._reported(exc):
                log.warning("rules not reloaded, keeping the last good version: %s", exc)
                self.on_reload("rejected")
            return self.rules
        self._mtime_ns, self._failure = mtime_ns, None
        if rules is not None:
            self.rules = rules
            log.info("rules reloaded from %s", self.path)
            self.on_reload("loaded")
        return self.rules

    def _reported(self, exc: Exception) -> bool:
        """Whether this failure was already logged (one warning per bad version, not one per second)."""
        key = f"{type(exc).__name__}:{exc}"
        if key == self._failure:
            return True
        self._failure = key
        return False
