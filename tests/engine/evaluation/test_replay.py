"""Tests for the prequential replay evaluator (`engine.evaluation.replay`) and `personalize replay`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.evaluation.replay import ReplayReport, Scoreboard, replay
from models.synth import Clickstream
from schemas.events import Event, EventType, ItemRecord


def _rating(n: int, user: str, item: str, value: float) -> Event:
    return Event(
        event_id=f"r{n}", user_id=user, item_id=item, type=EventType.RATING, value=value, ts=10**12 + n * 1000
    )


HISTORY = [
    ("u1", "a", 5),
    ("u1", "b", 5),
    ("u2", "c", 2),  # a negative: learned, never scored
    ("u2", "a", 5),  # u2's first positive: not scored
    ("u2", "b", 4),  # scored: u1 went a -> b, so b should be found
    ("u3", "a", 3),
]


def test_only_positives_after_a_first_positive_are_scored() -> None:
    events = [_rating(n, *row) for n, row in enumerate(HISTORY)]
    report = replay(events, {}, k=1)
    assert report.events == len(HISTORY)
    assert report.events_scored == 2  # u1's b and u2's b
    assert report.hr == pytest.approx(0.5)  # u1's b cannot be known yet; u2's b is
    assert set(report.baselines) == {"popularity", "decayed_popularity"}


def test_from_ts_limits_what_is_scored_not_what_is_learned() -> None:
    events = [_rating(n, *row) for n, row in enumerate(HISTORY)]
    report = replay(events, {}, k=1, from_ts=events[3].ts)
    assert report.events_scored == 1
    assert report.hr == 1.0


def test_rated_items_are_never_counted_as_recommended() -> None:
    events = [_rating(0, "u1", "a", 5), _rating(1, "u1", "b", 5), _rating(2, "u1", "a", 5)]
    report = replay(events, {}, k=10)
    assert report.events_scored == 2
    assert report.hr == 0.0  # a was already rated when it came again


def test_the_model_beats_popularity_on_synthetic_tastes() -> None:
    stream = Clickstream(120, 200, n_categories=8, seed=4)
    items = {record.item_id: record for record in stream.items()}
    report = replay(stream.events(6000), items, k=10)
    assert report.events_scored > 1000
    assert report.hr > report.baselines["popularity"][0]
    assert 0 < report.coverage <= 1


def test_scoreboard_counts_hits_and_gains() -> None:
    board = Scoreboard()
    board.score(["x", "y", "z"], "x")
    board.score(["x", "y", "z"], "q")
    assert board.hr == 0.5 and board.ndcg == pytest.approx(0.5)


def test_report_json_has_the_documented_fields() -> None:
    report = ReplayReport(10, 5, 2, 0.5, 0.25, 0.1, 1.0, "m", {"popularity": (0.1, 0.05)})
    data = report.to_json()
    assert {"k", "events_scored", "hr", "ndcg", "coverage", "events_per_s", "baselines"} <= set(data)
    assert data["baselines"] == {"popularity": {"hr": 0.1, "ndcg": 0.05}}


def _movielens(tmp_path: Path) -> Path:
    ratings = tmp_path / "ratings.csv"
    rows = [
        f"{u},{m},{r},{1_000_000_000 + n}"
        for n, (u, m, r) in enumerate(
            [(1, 10, 5.0), (1, 20, 4.0), (2, 10, 4.5), (2, 20, 5.0), (3, 30, 1.0), (3, 10, 4.0), (3, 20, 4.0)]
        )
    ]
    ratings.write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n")
    (tmp_path / "movies.csv").write_text(
        "movieId,title,genres\n10,A (1999),Drama\n20,B (2001),Drama|Comedy\n30,C (1980),Horror\n"
    )
    return ratings


def test_cli_prints_one_json_object(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", str(_movielens(tmp_path)), "--format", "movielens", "--json"])
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    assert data["k"] == 10 and data["events_scored"] == 3
    assert data["hr"] == pytest.approx(2 / 3, abs=1e-3)
    assert set(data["baselines"]) == {"popularity", "decayed_popularity"}


def test_cli_rejects_an_unknown_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", str(_movielens(tmp_path)), "--format", "netflix"])
    assert result.exit_code == 2


def test_items_from_the_catalog_are_learned(tmp_path: Path) -> None:
    items = {"a": ItemRecord(item_id="a", categories=("x",))}
    report = replay([_rating(0, "u1", "a", 5)], items)
    assert report.events == 1 and report.events_scored == 0
