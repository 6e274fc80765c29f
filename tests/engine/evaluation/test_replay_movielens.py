"""The replay on the MovieLens part in ../shared/datasets (the dev part the targets are set on): the model
keeps HR@10 >= 0.170. Skipped when the dataset is not there; it is never copied into the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.evaluation.replay import load_movielens, replay

RATINGS = (
    Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "ml-latest-small" / "ratings.csv"
)

pytestmark = pytest.mark.skipif(not RATINGS.exists(), reason=f"MovieLens is not at {RATINGS}")


def test_the_model_keeps_its_hit_rate_on_movielens() -> None:
    events, items = load_movielens(RATINGS)
    report = replay(events, items, k=10, compare={})
    assert report.events_scored == 36_402
    assert report.model.overall.hr >= 0.170
