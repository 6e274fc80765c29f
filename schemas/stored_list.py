"""The stored form of a user's list: one Redis string (`keys.user_list`) holding the list, its metadata
and its reasons, and the codec both ways.

Contract only: no I/O. Four lines, parts separated by tabs (ids, labels and versions hold no control
characters, so neither a tab nor a line feed occurs inside a part)::

    <pos> TAB <updated_ms> TAB <last_event_ts> TAB <events_seen> TAB <model_version> LF
    <item> TAB <item> ... (best first) LF
    <score> TAB <score> ... (one per item, 3 significant digits) LF
    <reasons> (`schemas.reasons`' stored form, one token per item in the order above; '' for none)

One string instead of a sorted set and a hash: one key's bookkeeping instead of two (~90 B each), no
field names, and no Redis encoding threshold to tune; ~470 B per user at top-20 with the reasons
(docs/benchmarks.md). Decoding never raises: a value of another form reads as no list.
"""

from __future__ import annotations

__all__ = ["HEAD_BYTES", "StoredList", "decode", "encode", "numbers", "score_text"]

import operator
from collections.abc import Sequence
from dataclasses import dataclass

#: A prefix of a stored list this long always holds its four numbers (`numbers`): an offset of at most
#: 16 digits, two epoch-ms times of 13, a count, and their tabs.
HEAD_BYTES = 64


@dataclass(frozen=True, slots=True)
class StoredList:
    """One user's list as stored: the fence position, when it was written, what it reflects, the items
    best first with their scores, and the reasons in their stored form ('' for none)."""

    position: int
    updated_ms: int
    last_event_ts: int
    events_seen: int
    model_version: str
    items: list[tuple[str, float]]
    reasons: str = ""


_ITEM, _SCORE = operator.itemgetter(0), operator.itemgetter(1)
#: `score_text`, a C-level callable: mapped over a list's scores without a Python call per item.
_SCORE_TEXT = "{:.3g}".format


def score_text(score: float) -> str:
    """A score as stored: 3 significant digits (the order is the items' order, so scores only inform;
    two items closer than 0.5% may read equal).

    >>> score_text(4.11011), score_text(0.0123456), score_text(-2.0), score_text(123456.0)
    ('4.11', '0.0123', '-2', '1.23e+05')
    """
    return _SCORE_TEXT(score)


def encode(
    items: Sequence[tuple[str, float]],
    *,
    position: int,
    updated_ms: int,
    last_event_ts: int,
    events_seen: int,
    model_version: str,
    reasons: str = "",
) -> str:
    """The stored value of a list (``items`` best first; ``reasons`` in `schemas.reasons`' form).

    >>> encode([("i1", 0.5), ("i2", 0.25)], position=41, updated_ms=1700, last_event_ts=1600,
    ...        events_seen=3, model_version="m1")
    '41\\t1700\\t1600\\t3\\tm1\\ni1\\ti2\\n0.5\\t0.25\\n'
    """
    head = f"{position}\t{updated_ms}\t{last_event_ts}\t{events_seen}\t{model_version}"
    ids = "\t".join(map(_ITEM, items))
    scores = "\t".join(map(_SCORE_TEXT, map(_SCORE, items)))
    return f"{head}\n{ids}\n{scores}\n{reasons}"


def decode(value: str | None, n: int | None = None) -> StoredList | None:
    """The list stored as ``value`` (its first ``n`` items, all by default); None for no value or one
    of another form.

    >>> one = decode("41\\t1700\\t1600\\t3\\tm1\\ni1\\ti2\\n0.5\\t0.25\\n")
    >>> one.items, one.position, one.events_seen, one.reasons
    ([('i1', 0.5), ('i2', 0.25)], 41, 3, '')
    >>> decode("41\\t1700\\t1600\\t3\\tm1\\ni1\\ti2\\n0.5\\t0.25\\n", 1).items
    [('i1', 0.5)]
    >>> decode(None), decode("garbage"), decode("1\\t2\\t3\\t4\\tm\\ni1\\n\\n")
    (None, None, None)
    """
    if not value:
        return None
    lines = value.split("\n", 3)
    if len(lines) != 4:
        return None
    head, ids, scores, reasons = lines
    parts = head.split("\t")
    items = ids.split("\t") if ids else []
    values = scores.split("\t") if scores else []
    if len(parts) != 5 or len(items) != len(values):
        return None
    try:
        position, updated_ms, last_event_ts, events_seen = (int(part) for part in parts[:4])
        listed = [(item, float(score)) for item, score in zip(items[:n], values[:n], strict=True)]
    except ValueError:
        return None
    return StoredList(position, updated_ms, last_event_ts, events_seen, parts[4], listed, reasons)


def numbers(value: str | None) -> tuple[int, int, int, int] | None:
    """``(position, updated_ms, last_event_ts, events_seen)`` of a stored list, from the value or any
    prefix of it at least `HEAD_BYTES` long (GETRANGE key 0 63); None for no value or another form.

    >>> numbers("41\\t1700\\t1600\\t3\\tm1\\ni1"), numbers(""), numbers("x\\ty")
    ((41, 1700, 1600, 3), None, None)
    """
    parts = (value or "").split("\t", 4)
    if len(parts) != 5:
        return None
    try:
        position, updated_ms, last_event_ts, events_seen = (int(part) for part in parts[:4])
    except ValueError:
        return None
    return position, updated_ms, last_event_ts, events_seen
