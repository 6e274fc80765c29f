"""Readers that turn history files into contract records, for backfill through the live code path.

MovieLens (ratings.csv, with movies.csv / tags.csv found beside it as the catalog) and JSON Lines
(one event object per line, sent as-is so the worker validates it exactly like live traffic).
"""

from __future__ import annotations

__all__ = ["Raw", "jsonl_records", "movielens_events", "movielens_items"]

import csv
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import orjson

from schemas.events import Event, EventType, ItemRecord

#: A record ready for Kafka: (key, value bytes).
Raw = tuple[bytes | None, bytes]

_NO_GENRES = "(no genres listed)"


def movielens_items(
    ratings: Path, movies_csv: Path | None = None, tags_csv: Path | None = None
) -> list[ItemRecord]:
    """Catalog records from movies.csv (genres as categories) and tags.csv, by default beside ``ratings``."""
    movies = movies_csv or ratings.with_name("movies.csv")
    tags_file = tags_csv or ratings.with_name("tags.csv")
    if not movies.exists():
        return []
    tags: dict[str, list[str]] = defaultdict(list)
    if tags_file.exists():
        with tags_file.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                tag = row["tag"].strip().lower()[:128]
                if tag and tag not in tags[row["movieId"]]:
                    tags[row["movieId"]].append(tag)
    records = []
    with movies.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            genres = [] if row["genres"] == _NO_GENRES else [g for g in row["genres"].split("|") if g]
            records.append(
                ItemRecord(
                    item_id=row["movieId"],
                    categories=tuple(genres),
                    tags=tuple(tags.get(row["movieId"], ())[:50]),
                    attributes={"title": row["title"][:512]},
                )
            )
    return records


def movielens_events(ratings: Path) -> list[Event]:
    """Rating events from a MovieLens ratings.csv, in timestamp order (ties keep file order)."""
    events = []
    with ratings.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            ts = int(row["timestamp"]) * 1000
            events.append(
                Event(
                    event_id=f"ml-{row['userId']}-{row['movieId']}-{row['timestamp']}",
                    user_id=row["userId"],
                    item_id=row["movieId"],
                    type=EventType.RATING,
                    value=float(row["rating"]),
                    ts=ts,
                )
            )
    events.sort(key=lambda e: e.ts)
    return events


def jsonl_records(path: Path) -> Iterator[Raw]:
    """Each non-empty line as-is, keyed by its user_id when one can be read (else unkeyed)."""
    with path.open("rb") as fh:
        for line in fh:
            value = line.strip()
            if not value:
                continue
            try:
                user = orjson.loads(value).get("user_id")
            except (orjson.JSONDecodeError, AttributeError):
                user = None
            yield (user.encode() if isinstance(user, str) else None, value)
