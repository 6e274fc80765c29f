"""The River re-ranking stage (models/river_ranker.py): specs build River estimators (and nothing
else), every suggested kind learns which candidate features predict the taken item, and the stage
pickles by River's own means."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from models.ranking_kernels import FEATURES
from models.river_ranker import RiverReranker, build

SPECS = {
    "logistic": {"river.linear_model.LogisticRegression": {}},
    "scaled pipeline": [
        {"river.preprocessing.StandardScaler": {}},
        {"river.linear_model.LogisticRegression": {"optimizer": {"river.optim.SGD": {"lr": 0.05}}}},
    ],
    "adaptive random forest": {"river.forest.ARFClassifier": {"n_models": 3, "seed": 1}},
    "factorization machine": {"river.facto.FMClassifier": {"n_factors": 4, "seed": 1}},
}


def world(seed: int, n: int = 400) -> list[tuple[np.ndarray, int]]:
    """Rankings of 8 candidates whose built-in order ignores that users take the most popular one."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        table = rng.random((8, len(FEATURES)))
        out.append((table, int(np.argmax(table[:, FEATURES.index("popularity")]))))
    return out


@pytest.mark.parametrize("name", sorted(SPECS))
def test_each_kind_learns_what_users_take(name: str) -> None:
    ranker = RiverReranker(SPECS[name], top=8)
    for table, taken in world(0):
        ranker.learn_one(table, taken)
    hits = 0
    tests = world(1, 200)
    for table, taken in tests:
        order, scores = ranker.rerank(table)
        assert list(scores) == sorted(scores, reverse=True)
        hits += int(order[0] == taken)
    # The built-in order (row 0 first) finds the taken item 1 time in 8.
    assert hits / len(tests) > 0.35, (name, hits)


def test_a_spec_names_river_classes_only() -> None:
    with pytest.raises(ValueError, match="only River classes"):
        build({"subprocess.Popen": {"args": ["true"]}})
    with pytest.raises(ValueError, match="only River classes"):
        build({"builtins.eval": {}})
    with pytest.raises(ValueError, match="no such class"):
        build({"river.linear_model.NoSuchModel": {}})
    with pytest.raises(ValueError, match="one mapping"):
        build({"river.linear_model.LogisticRegression": {}, "river.preprocessing.StandardScaler": {}})


def test_specs_in_yaml_and_versions() -> None:
    text = "- river.preprocessing.StandardScaler: {}\n- river.linear_model.LogisticRegression: {}\n"
    assert type(build(text)).__name__ == "Pipeline"
    same = RiverReranker(SPECS["scaled pipeline"]).version
    assert RiverReranker(SPECS["scaled pipeline"]).version == same != RiverReranker(SPECS["logistic"]).version
    assert same.startswith("river-")


def test_pickles_with_its_learning() -> None:
    ranker = RiverReranker(SPECS["scaled pipeline"], top=8)
    for table, taken in world(2, 100):
        ranker.learn_one(table, taken)
    copy = pickle.loads(pickle.dumps(ranker))
    table = world(3, 1)[0][0]
    assert ranker.rerank(table)[1].tolist() == copy.rerank(table)[1].tolist()
    assert copy.updates == ranker.updates == 100


def test_nothing_to_learn_from_an_item_not_shown() -> None:
    ranker = RiverReranker(SPECS["logistic"])
    assert not ranker.learn_one(np.zeros((3, len(FEATURES))), 5)
    assert not ranker.learn_one(np.zeros((1, len(FEATURES))), 0)
