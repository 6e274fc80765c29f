"""The category affinity is River's `LogisticRegression` with plain SGD, rewritten over numpy arrays
(models/affinity.py says so): fed the same stream with the same optimizer and features, River and the
rewrite give the same weights and the same probabilities, to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from river import linear_model, optim

from models.affinity import CONTEXT_SCALE, CategoryAffinity, _context
from schemas.events import Context

CATEGORIES = [f"c{n}" for n in range(6)]
CONTEXTS = [
    None,
    Context(device="mobile", locale="en-GB"),
    Context(device="desktop", locale="de-DE"),
    Context(device="mobile"),
]


def features(user: str, category: str, context: Context | None, ts: int | None) -> dict[str, float]:
    """The rewrite's features for one category, as River sees them: the user x category cross with
    value 1, every context part x category cross with value `CONTEXT_SCALE`."""
    x = {f"u={user}|c={category}": 1.0}
    x.update({f"{part}|c={category}": CONTEXT_SCALE for part in _context(context, ts)})
    return x


def river_p(model: linear_model.LogisticRegression, x: dict[str, float]) -> float:
    return float(model.predict_proba_one(x)[True])  # type: ignore[no-untyped-call]


def river_twin(affinity: CategoryAffinity) -> linear_model.LogisticRegression:
    return linear_model.LogisticRegression(
        optimizer=optim.SGD(affinity.learning_rate), intercept_lr=affinity.intercept_lr, l2=0.0
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_stream_same_weights_and_probabilities(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ours = CategoryAffinity()
    river = river_twin(ours)
    users = [f"u{n}" for n in range(8)]
    for step in range(600):
        user = users[rng.integers(len(users))]
        context = CONTEXTS[rng.integers(len(CONTEXTS))]
        ts = None if rng.random() < 0.2 else 1_700_000_000_000 + int(rng.integers(0, 10**9))
        picked = [
            CATEGORIES[i] for i in rng.choice(len(CATEGORIES), size=int(rng.integers(1, 4)), replace=False)
        ]
        label = int(rng.random() < 0.4)
        weight = float(rng.choice([1.0, 0.5, 2.0]))
        ours.learn_one(user, picked, label, context, ts, weight)
        for category in picked:  # the rewrite steps once per category, in order
            river.learn_one(features(user, category, context, ts), bool(label), w=weight)
        if step % 50 == 49:
            probe_user, probe_context = users[step % len(users)], CONTEXTS[step % len(CONTEXTS)]
            probe_ts = 1_700_000_000_000 + step * 3_600_000
            got = ours.predict_many(probe_user, CATEGORIES, probe_context, probe_ts)
            for category in CATEGORIES:
                if ours.categories.get(category) < 0:
                    continue
                want = river_p(river, features(probe_user, category, probe_context, probe_ts))
                assert got[category] == pytest.approx(want, abs=1e-9)

    assert ours.intercept == pytest.approx(river.intercept, abs=1e-9)
    river_weights = {name: w for name, w in river.weights.items() if w != 0.0}
    ours_weights = ours.weights
    assert set(ours_weights) == set(river_weights)
    for name, w in ours_weights.items():
        assert w == pytest.approx(river_weights[name], abs=1e-9), name


def test_a_different_learning_rate_is_caught() -> None:
    """The comparison can fail: River with another step size disagrees after a few updates."""
    ours = CategoryAffinity()
    river = linear_model.LogisticRegression(
        optimizer=optim.SGD(ours.learning_rate * 1.01), intercept_lr=ours.intercept_lr, l2=0.0
    )
    for n in range(20):
        ours.learn_one("u", ["c1"], n % 2, None, None)
        river.learn_one(features("u", "c1", None, None), bool(n % 2))
    want = river_p(river, features("u", "c1", None, None))
    assert abs(ours.predict_many("u", ["c1"], None, None)["c1"] - want) > 1e-9
