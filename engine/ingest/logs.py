"""Event logs as JSON Lines files: read one as contract records, write the synthetic clickstream as one.

A log holds events (contract v1) and, optionally, catalog records (objects without a ``type``) and users'
``preferences`` / ``erasure`` records, one JSON object a line, in the order they happened. Reading never
stops at a bad line: it yields a `DataFormatError` naming the line instead, and the reader decides.
The synthetic world's true tastes (which no log carries) go to a file beside the log.
"""

from __future__ import annotations

__all__ = [
    "Record",
    "parse_record",
    "read_log",
    "read_tastes",
    "synthetic_log",
    "tastes_path",
    "write_log",
    "write_tastes",
]

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from models.synth import Clickstream
from schemas.errors import DataFormatError, InvalidEventError, Problem
from schemas.events import Event, ItemRecord, decode_object, encode, parse_event, parse_item
from schemas.users import (
    ConsentRecord,
    ErasureRecord,
    PreferencesRecord,
    encode_user_record,
    parse_user_record,
)

Record = Event | ItemRecord | PreferencesRecord | ErasureRecord

_USER_TYPES = frozenset({"preferences", "erasure"})


def parse_record(raw: bytes | str | dict[str, Any]) -> Record:
    """One line of a log: a catalog record (no ``type``), a user record, or an event.

    >>> parse_record(b'{"item_id": "i1", "categories": ["jazz"]}').categories
    ('jazz',)
    >>> parse_record(b'{"event_id":"e","user_id":"u","item_id":"i1","type":"view","ts":1700000000000}').type
    <EventType.VIEW: 'view'>
    """
    obj = decode_object(raw)
    if "type" not in obj:
        return parse_item(obj)
    if obj["type"] in _USER_TYPES:
        record = parse_user_record(obj)
        if isinstance(record, ConsentRecord):  # not among _USER_TYPES: cannot happen, but typed so
            raise InvalidEventError([Problem("type", "consent records are not replayed", "value")])
        return record
    return parse_event(obj)


def read_log(path: Path) -> Iterator[Record | DataFormatError]:
    """Each non-empty line of ``path`` as a record, or the error that line has, in file order."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield parse_record(line)
            except InvalidEventError as exc:
                yield DataFormatError(str(path), number, str(exc))


def _encode(record: Record) -> bytes:
    if isinstance(record, PreferencesRecord | ErasureRecord):
        return encode_user_record(record)
    return encode(record)


def write_log(path: Path, records: Iterable[Record]) -> int:
    """Write ``records`` one a line (their canonical JSON); returns how many."""
    count = 0
    with path.open("wb") as fh:
        for record in records:
            fh.write(_encode(record) + b"\n")
            count += 1
    return count


def synthetic_log(world: Clickstream, n_events: int, *, onboarding: float = 0.0) -> Iterator[Record]:
    """The world's catalog, then its first ``n_events`` events; an ``onboarding`` share of users (seeded
    by the world) sends a preferences record liking their two favourite categories before their first event.

    >>> world = Clickstream(4, 20, n_categories=3, seed=1)
    >>> records = list(synthetic_log(world, 6, onboarding=1.0))
    >>> [type(r).__name__ for r in records[19:23]]
    ['ItemRecord', 'PreferencesRecord', 'Event', 'PreferencesRecord']
    """
    if not 0.0 <= onboarding <= 1.0:
        raise ValueError(f"onboarding must be within 0..1, got {onboarding}")
    yield from world.items()
    rng = np.random.default_rng([world.seed, 0x0B0A])
    onboarded = {f"u{u + 1}" for u in np.flatnonzero(rng.random(world.n_users) < onboarding).tolist()}
    started: set[str] = set()
    for event in world.events(n_events):
        user = event.user_id
        if user not in started:
            started.add(user)
            if user in onboarded:
                liked = tuple(c for c, _ in sorted(world.taste(user).items(), key=lambda kv: -kv[1])[:2])
                yield PreferencesRecord(
                    event_id=f"{event.event_id}-onboarding", user_id=user, ts=event.ts, liked_categories=liked
                )
        yield event


def tastes_path(log: Path) -> Path:
    """Where the true tastes of a synthetic log live: beside it.

    >>> tastes_path(Path("runs/world.jsonl")).as_posix()
    'runs/world.tastes.json'
    """
    return log.with_name(log.stem + ".tastes.json")


def write_tastes(path: Path, world: Clickstream) -> None:
    """Every user's true category preference now (after drift, once the stream passed it)."""
    tastes = {f"u{u + 1}": world.taste(f"u{u + 1}") for u in range(world.n_users)}
    path.write_bytes(orjson.dumps(tastes))


def read_tastes(path: Path) -> dict[str, dict[str, float]]:
    """Users' true tastes as `write_tastes` wrote them."""
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict):
        raise DataFormatError(str(path), None, "expected a JSON object of user -> {category: share}")
    return {str(user): {str(c): float(p) for c, p in taste.items()} for user, taste in data.items()}
