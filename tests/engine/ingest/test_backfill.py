"""Tests for the history readers in `engine.ingest.backfill`, on small files written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.ingest.backfill import jsonl_records, movielens_events, movielens_items
from schemas.events import EventType, parse_event

RATINGS = """userId,movieId,rating,timestamp
1,10,4.0,964982703
1,20,3.5,964981247
2,10,5.0,964982224
2,30,0.5,964981247
"""

MOVIES = """movieId,title,genres
10,Toy Story (1995),Adventure|Animation|Children
20,"American President, The (1995)",Comedy|Drama|Romance
30,Some Documentary (2019),(no genres listed)
"""

TAGS = """userId,movieId,tag,timestamp
1,10,Pixar,1139045764
2,10,  pixar ,1139045765
2,10,fun,1139045766
1,30,   ,1139045767
"""


@pytest.fixture
def ratings(tmp_path: Path) -> Path:
    (tmp_path / "movies.csv").write_text(MOVIES, encoding="utf-8")
    (tmp_path / "tags.csv").write_text(TAGS, encoding="utf-8")
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS, encoding="utf-8")
    return path


def test_movielens_events_are_sorted_by_timestamp_with_ties_in_file_order(ratings: Path) -> None:
    events = movielens_events(ratings)
    assert [(e.user_id, e.item_id) for e in events] == [("1", "20"), ("2", "30"), ("2", "10"), ("1", "10")]
    assert [e.ts for e in events] == sorted(e.ts for e in events)


def test_movielens_events_are_ratings_in_milliseconds(ratings: Path) -> None:
    first = movielens_events(ratings)[0]
    assert first.type is EventType.RATING
    assert first.value == 3.5
    assert first.ts == 964_981_247_000
    assert first.event_id == "ml-1-20-964981247"
    assert {e.value for e in movielens_events(ratings)} == {4.0, 3.5, 5.0, 0.5}


def test_movielens_event_ids_are_unique_and_stable(ratings: Path) -> None:
    ids = [e.event_id for e in movielens_events(ratings)]
    assert len(set(ids)) == len(ids)
    assert ids == [e.event_id for e in movielens_events(ratings)]


def test_movielens_items_map_genres_to_categories(ratings: Path) -> None:
    items = {item.item_id: item for item in movielens_items(ratings)}
    assert list(items) == ["10", "20", "30"]
    assert items["10"].categories == ("Adventure", "Animation", "Children")
    assert items["20"].categories == ("Comedy", "Drama", "Romance")
    assert items["30"].categories == ()
    assert items["20"].attributes == {"title": "American President, The (1995)"}
    assert all(item.available for item in items.values())


def test_movielens_tags_are_normalised_deduplicated_and_attached(ratings: Path) -> None:
    items = {item.item_id: item for item in movielens_items(ratings)}
    assert items["10"].tags == ("pixar", "fun")
    assert items["20"].tags == ()
    assert items["30"].tags == ()  # a blank tag is dropped


def test_movielens_items_without_tags_file(ratings: Path) -> None:
    (ratings.parent / "tags.csv").unlink()
    items = movielens_items(ratings)
    assert len(items) == 3 and all(item.tags == () for item in items)


def test_movielens_items_without_movies_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS, encoding="utf-8")
    assert movielens_items(path) == []
    assert len(movielens_events(path)) == 4


def test_jsonl_records_keys_by_user_id_and_keeps_lines_as_is(tmp_path: Path) -> None:
    good = b'{"event_id":"e1","user_id":"u1","item_id":"i1","type":"view","ts":1700000000000}'
    wrong_type = b'{"user_id": 42, "item_id": "i1"}'
    lines = [good, b"", b"   ", b"not json at all", b"[1, 2, 3]", b'"just a string"', wrong_type, b"\xff\xfe"]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    records = list(jsonl_records(path))
    assert records == [
        (b"u1", good),
        (None, b"not json at all"),
        (None, b"[1, 2, 3]"),
        (None, b'"just a string"'),
        (None, wrong_type),
        (None, b"\xff\xfe"),
    ]
    assert parse_event(records[0][1]).user_id == "u1"


def test_jsonl_records_strips_whitespace_and_crlf(tmp_path: Path) -> None:
    record = {"user_id": "ü1", "x": 1}
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"  " + orjson.dumps(record) + b"\r\n")
    assert list(jsonl_records(path)) == [("ü1".encode(), orjson.dumps(record))]
