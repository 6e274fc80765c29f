"""The hybrid recommender with a River second stage (models/river_recommender.py): the River estimator only
re-orders the built-in lists (same items, same decreasing scores), it learns from every consumed item
that was on the user's last list, it changes orders once it has learned, it survives a pickle, and the
worker's factory and checkpoint restore tell its versions apart."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from engine.ops.checkpoints import CheckpointStore
from engine.ops.settings import Settings
from models.profile import UserProfile
from models.recommender import MODEL_VERSION, HybridRecommender
from models.river_recommender import RiverRecommender, new_model, version_for
from models.synth import Clickstream
from schemas.errors import ConfigError
from streams.checkpointer import configured_version, model_from

SPEC: dict[str, Any] = {"river.linear_model.LogisticRegression": {}}
OTHER: list[dict[str, Any]] = [
    {"river.preprocessing.StandardScaler": {}},
    {"river.linear_model.LogisticRegression": {}},
]


def _run(
    models: list[HybridRecommender], events: int = 1500, seed: int = 3
) -> list[list[list[tuple[str, float]]]]:
    """Feed one stream to each model (ranking for the user before each event); the lists each made."""
    world = Clickstream(60, 120, n_categories=6, seed=seed)
    for model in models:
        for item in world.items():
            model.learn_item(item)
    profiles: dict[str, UserProfile] = {}
    lists: list[list[list[tuple[str, float]]]] = [[] for _ in models]
    for event in world.events(events):
        profile = profiles.setdefault(event.user_id, UserProfile(event.user_id))
        for model, made in zip(models, lists, strict=True):
            made.append(model.recommend(profile, 10))
            model.learn_one(event, profile)
        profile.observe(event, models[0].signal(event))
    return lists


def test_the_river_stage_only_reorders_the_built_in_lists_and_does_reorder_them() -> None:
    river = RiverRecommender(SPEC, top=20, seed=0)
    built_in, reranked = _run([HybridRecommender(seed=0), river])
    moved = 0
    for ours, theirs in zip(built_in, reranked, strict=True):
        assert sorted(name for name, _ in ours) == sorted(name for name, _ in theirs)
        assert [score for _, score in ours] == [score for _, score in theirs]  # the slots keep their scores
        moved += [name for name, _ in ours] != [name for name, _ in theirs]
    assert river.reranker.updates > 500  # most consumed items were on the user's last list
    assert moved > len(built_in) // 4, f"only {moved} of {len(built_in)} lists re-ordered"


def test_it_pickles_with_its_river_model_and_ranks_the_same_after() -> None:
    river = RiverRecommender(OTHER, top=20, seed=0)
    _run([river], events=400)
    copy = pickle.loads(pickle.dumps(river))
    profile = UserProfile("u1")
    assert copy.version == river.version and copy.reranker.updates == river.reranker.updates
    assert copy.recommend(profile, 10) == river.recommend(profile, 10)


def test_versions_name_the_spec_and_checkpoints_of_another_spec_are_not_restored(tmp_path: Path) -> None:
    assert version_for(None) == MODEL_VERSION == new_model(None).version
    assert version_for(SPEC) != version_for(OTHER)
    assert version_for(SPEC).startswith(f"{MODEL_VERSION}+river-")
    settings = Settings(namespace="t", river_reranker="river.linear_model.LogisticRegression: {}")
    assert configured_version(settings) == version_for(SPEC)
    store = CheckpointStore(tmp_path / "c", "t")
    trained = RiverRecommender(SPEC)
    _run([trained], events=200)
    store.write({"model": trained}, model_version=trained.version, offsets={})
    restored = store.newest(trained.version)
    assert restored is not None
    assert model_from(restored, settings) is not trained  # unpickled: a copy of it
    again = model_from(restored, settings)
    assert isinstance(again, RiverRecommender) and again.reranker.updates == trained.reranker.updates
    # The same file under settings without the reranker: a fresh built-in model, not the River one.
    plain = model_from(restored, Settings(namespace="t"))
    assert type(plain) is HybridRecommender and plain.version == MODEL_VERSION


@pytest.mark.parametrize(
    "spec",
    [
        "[unclosed",
        "os.system: {}",
        "river.linear_model.NoSuchModel: {}",
        "river.linear_model.LogisticRegression: 3",
    ],
)
def test_a_bad_spec_is_a_config_error_naming_the_setting(spec: str) -> None:
    with pytest.raises(ConfigError, match="PERSONALIZE_RIVER_RERANKER"):
        model_from(None, Settings(namespace="t", river_reranker=spec))
