"""Dead-letter records: why a record was rejected, where it came from, and its original bytes.

Pure: builds the JSON envelope; the agent sends it. Anyone can replay the original from
``original_b64`` once the cause is fixed.
"""

from __future__ import annotations

__all__ = ["envelope", "reason"]

import base64
import time

import orjson

from schemas.errors import InvalidEventError


def reason(error: Exception) -> str:
    """The dead letter's label in ``personalize_dead_letters_total{reason}``: the first problem's code
    and field (list indexes as ``*``), the code alone for ``json`` and ``object``, or ``internal``.

    >>> from schemas.errors import InvalidEventError, Problem
    >>> reason(InvalidEventError([Problem("user_id", "Field required", "missing"), Problem("ts", "?")]))
    'missing:user_id'
    >>> reason(InvalidEventError([Problem("categories.3", "too long")])), reason(KeyError("x"))
    ('value:categories.*', 'internal')
    >>> reason(InvalidEventError([Problem("", "not valid JSON: ...", "json")]))
    'json'
    """
    if not isinstance(error, InvalidEventError):
        return "internal"
    if not error.problems:
        return "value"
    first = error.problems[0]
    field = ".".join("*" if part.isdigit() else part for part in first.field.split(".") if part)
    return f"{first.code}:{field}" if field and first.code not in ("json", "object") else first.code


def envelope(
    raw: bytes | None,
    error: Exception,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
) -> bytes:
    """The dead-letter value for ``raw`` that failed with ``error``.

    >>> from schemas.errors import InvalidEventError, Problem
    >>> out = envelope(b"{}", InvalidEventError([Problem("ts", "missing")]), topic="t", partition=0,
    ...                offset=5, key=b"u1")
    >>> d = orjson.loads(out); d["kind"], d["reason"], d["original"], d["source"]["offset"]
    ('invalid', 'ts: missing', '{}', 5)
    """
    data = raw or b""
    if isinstance(error, InvalidEventError):
        kind, reason = "invalid", error.reason
        problems = [{"field": p.field, "message": p.message} for p in error.problems]
    else:
        kind, reason, problems = "internal", f"{type(error).__name__}: {error}", []
    try:
        original: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        original = None
    return orjson.dumps(
        {
            "kind": kind,
            "reason": reason,
            "problems": problems,
            "source": {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "key": key.decode("utf-8", "replace") if key is not None else None,
            },
            "original": original,
            "original_b64": base64.b64encode(data).decode("ascii"),
            "failed_at_ms": time.time_ns() // 1_000_000,
        }
    )
