"""The prequential replay (`engine.evaluation.replay`), `personalize replay` and `simulate --out`."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import orjson
import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.evaluation.replay import NEW_ITEM_MS, baselines, replay
from engine.evaluation.scoreboard import Board, Scoreboard
from engine.ingest import logs
from models.synth import Clickstream
from schemas.errors import DataFormatError
from schemas.events import Event, EventType, ItemRecord
from schemas.users import PreferencesRecord

BASELINES = {"popularity", "decayed_popularity", "cooccurrence", "top_categories"}


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
    assert report.model.overall.hr == pytest.approx(0.5)  # u1's b cannot be known yet; u2's b is
    assert set(cast(dict[str, object], report.to_json()["baselines"])) == BASELINES


def test_from_ts_limits_what_is_scored_not_what_is_learned() -> None:
    events = [_rating(n, *row) for n, row in enumerate(HISTORY)]
    report = replay(events, {}, k=1, from_ts=events[3].ts)
    assert report.events_scored == 1
    assert report.model.overall.hr == 1.0


def test_an_item_the_user_already_consumed_is_not_scored_again() -> None:
    events = [_rating(0, "u1", "a", 5), _rating(1, "u1", "b", 5), _rating(2, "u1", "a", 5)]
    report = replay(events, {}, k=10)
    assert report.events_scored == 1  # b only: a again cannot be recommended to u1 by any ranker


def test_every_ranker_is_scored_on_the_same_events_with_slices() -> None:
    events = [_rating(n, *row) for n, row in enumerate(HISTORY)]
    report = replay(events, {}, k=1)
    for board in report.boards.values():
        assert board.overall.scored == 2
        assert board.slices["new_users"].scored == 2  # both were among their users' first 5 events
        assert board.slices["new_items"].scored == 2  # both items were hours old
        assert board.slices["onboarded_new_users"].scored == 0


def test_slices_follow_the_users_events_and_the_items_age() -> None:
    day = NEW_ITEM_MS
    events = [
        Event(event_id=f"e{n}", user_id="u", item_id=f"i{n}", type="click", ts=10**12 + n * day)
        for n in range(8)
    ]
    events.append(Event(event_id="late", user_id="v", item_id="i0", type="click", ts=10**12 + 9 * day))
    events.append(Event(event_id="late2", user_id="v", item_id="i9", type="click", ts=10**12 + 9 * day + 1))
    report = replay(events, {}, k=3, compare={})
    board = report.model
    assert board.overall.scored == 8  # u's events 2..8, and v's second
    assert board.slices["new_users"].scored == 5  # u's 2nd-5th and v's 2nd
    assert board.slices["new_items"].scored == 8  # each target's first event: scored at age 0
    assert report.to_json()["baselines"] == {}


def test_onboarding_likes_let_the_first_positive_be_scored_and_name_the_slice() -> None:
    records: list[object] = [
        ItemRecord(item_id=f"i{n}", categories=("jazz" if n % 2 else "rock",)) for n in range(6)
    ]
    for n in range(4):
        records.append(Event(event_id=f"o{n}", user_id="other", item_id=f"i{n}", type="click", ts=10**12 + n))
    records.append(PreferencesRecord(event_id="p", user_id="new", ts=10**12 + 10, liked_categories=("jazz",)))
    records.append(Event(event_id="n0", user_id="new", item_id="i5", type="click", ts=10**12 + 11))
    report = replay(records, k=3)  # type: ignore[arg-type]
    assert report.events_scored == 4  # other's 2nd-4th and new's first
    assert report.model.slices["onboarded_new_users"].scored == 1
    assert report.boards["top_categories"].slices["onboarded_new_users"].hits == 1  # it used the likes too


def test_unreadable_lines_are_counted_not_fatal() -> None:
    events = [_rating(n, *row) for n, row in enumerate(HISTORY)]
    report = replay([DataFormatError("x.jsonl", 3, "bad"), *events], {}, k=1)
    assert report.invalid == 1 and report.first_invalid == "x.jsonl:3: bad"
    assert report.events == len(HISTORY)


def test_the_model_beats_every_baseline_on_a_synthetic_world() -> None:
    world = Clickstream(300, 250, n_categories=10, seed=4)
    records = list(logs.synthetic_log(world, 9000))
    tastes = {f"u{u + 1}": world.taste(f"u{u + 1}") for u in range(world.n_users)}
    report = replay(records, k=10, tastes=tastes)
    assert report.events_scored > 3000
    ours = report.model
    assert ours.top2_share is not None and ours.share_users > 50
    for name in BASELINES:
        theirs = report.boards[name]
        assert ours.overall.hr > theirs.overall.hr, name
        assert ours.top2_share > (theirs.top2_share or 0.0), name
    assert 0 < len(ours.shown) / report.known_items <= 1


def test_scoreboard_counts_hits_and_gains() -> None:
    board = Scoreboard()
    board.score(["x", "y", "z"], "x")
    board.score(["x", "y", "z"], "q")
    assert board.hr == 0.5 and board.ndcg == pytest.approx(0.5)


def test_board_json_has_the_documented_fields() -> None:
    board = Board()
    board.score(["a", "b"], "b", ["new_users"])
    board.top2_share, board.share_users = 0.5, 3
    data = board.to_json(known_items=4)
    assert data["hr"] == 1.0 and data["coverage"] == 0.5 and data["top2_share"] == 0.5
    assert data["slices"]["new_users"] == {"scored": 1, "hr": 1.0, "ndcg": 0.6309}  # type: ignore[index]


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
    assert set(data["baselines"]) == BASELINES
    assert {"coverage", "slices", "model_us_per_event", "events_per_s"} <= set(data)


def test_cli_rejects_an_unknown_format(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", str(_movielens(tmp_path)), "--format", "netflix"])
    assert result.exit_code == 2


def test_simulate_out_then_replay_the_file(tmp_path: Path) -> None:
    log = tmp_path / "world.jsonl"
    runner = CliRunner()
    written = runner.invoke(
        app, ["simulate", "--out", str(log), "--users", "40", "--items", "60", "--events", "800",
              "--seed", "3", "--onboarding", "0.5", "--drift-at", "400"],
    )  # fmt: skip
    assert written.exit_code == 0, written.output
    records = [r for r in logs.read_log(log)]
    assert sum(isinstance(r, ItemRecord) for r in records) == 60
    assert sum(isinstance(r, Event) for r in records) == 800
    assert any(isinstance(r, PreferencesRecord) for r in records)
    assert logs.tastes_path(log).exists()
    result = runner.invoke(app, ["replay", str(log), "--json"])  # jsonl by its suffix, tastes beside it
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    assert data["events"] == 800 and data["invalid"] == 0 and data["share_users"] > 0
    assert data["slices"]["onboarded_new_users"]["scored"] > 0
    assert all("top2_share" in board for board in data["baselines"].values())


def test_replay_takes_a_separate_catalog_and_reports_bad_lines(tmp_path: Path) -> None:
    catalog, log = tmp_path / "catalog.jsonl", tmp_path / "events.jsonl"
    logs.write_log(catalog, [ItemRecord(item_id=i, categories=("c",)) for i in ("a", "b", "c")])
    events = [_rating(n, *row) for n, row in enumerate(HISTORY)]
    log.write_bytes(b"\n".join(orjson.dumps(e.model_dump(mode="json")) for e in events) + b"\n{oops\n")
    result = CliRunner().invoke(app, ["replay", str(log), "--catalog", str(catalog), "--json"])
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    assert data["invalid"] == 1 and data["events"] == len(HISTORY) and data["events_scored"] == 2
    assert "top2_share" not in data  # no tastes: a log from real users
    assert "could not be read" in result.stderr


def test_every_baseline_is_a_registered_kind_of_ranker() -> None:
    assert set(baselines()) == BASELINES
