"""Seeded synthetic logged bandit feedback in the Open Bandit Pipeline's CSV layout, with known truths.

Makes the rows of a log (``timestamp, item_id, position, click, propensity_score, user_feature_*,
user-item_affinity_*``) and of an item context table; it keeps the true click probabilities and the
logging policy so tests can check estimators. Pure: returns rows; `engine.evaluation.ope` writes files.
"""

from __future__ import annotations

__all__ = ["SyntheticLog", "synthetic_log"]

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

_START = datetime(2019, 11, 24, tzinfo=UTC)
_N_SEGMENTS, _N_DEVICES, _N_AGES, _N_CATEGORIES = 3, 2, 4, 3


def _hashed(kind: str, value: int) -> str:
    """A categorical value anonymised the way OBP's are: a 32-hex-digit digest."""
    return hashlib.md5(f"{kind}-{value}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticLog:
    """The generated tables, plus what a real log never tells: the truth behind each round.

    ``click_probability[t, i]`` is the chance that round ``t`` clicks item ``i`` (at the round's logged
    position); ``logging_probability[t, i]`` is the logging policy's probability of showing item ``i``.
    """

    log_header: list[str]
    log_rows: list[list[str]]
    item_header: list[str]
    item_rows: list[list[str]]
    click_probability: Floats
    logging_probability: Floats
    actions: Ints
    clicks: Floats


def synthetic_log(n_rounds: int = 400, n_items: int = 6, seed: int = 0) -> SyntheticLog:
    """Rounds of a context-free logging policy (half uniform, half by a fixed item popularity).

    Users belong to one of three hidden segments (``user_feature_0``, hashed); each segment prefers one
    item category (``item_feature_1``, hashed). The click logit is ``-2 + 1.8 * prefers + 0.3 * affinity
    - 0.3 * price - 0.2 * (position - 1)``; ``user_feature_1`` (device) and ``user_feature_2`` (age) and
    ``item_feature_2`` (brand) are noise. Positions are uniform over 1-3; timestamps increase.

    >>> log = synthetic_log(n_rounds=5, n_items=3, seed=1)
    >>> log.log_header[:6], len(log.log_rows)
    (['', 'timestamp', 'item_id', 'position', 'click', 'propensity_score'], 5)
    >>> log.item_header
    ['', 'item_id', 'item_feature_0', 'item_feature_1', 'item_feature_2']
    >>> log.log_rows[0][1]
    '2019-11-24 00:00:...+00:00'
    >>> bool(np.allclose(log.logging_probability.sum(axis=1), 1.0))
    True
    """
    rng = np.random.default_rng([seed, 7])
    category = rng.integers(0, _N_CATEGORIES, n_items)
    category[: min(n_items, _N_CATEGORIES)] = np.arange(min(n_items, _N_CATEGORIES))
    price = rng.standard_normal(n_items)
    brand = rng.integers(0, 4, n_items)
    popularity = rng.dirichlet(np.ones(n_items))
    logging = 0.5 / n_items + 0.5 * popularity

    segment = rng.integers(0, _N_SEGMENTS, n_rounds)
    device = rng.integers(0, _N_DEVICES, n_rounds)
    age = rng.integers(0, _N_AGES, n_rounds)
    prefers = (category[None, :] == segment[:, None]).astype(np.float64)
    affinity = rng.poisson(0.2 + 1.5 * prefers).astype(np.float64)
    position = rng.integers(1, 4, n_rounds)
    logit = -2.0 + 1.8 * prefers + 0.3 * affinity - 0.3 * price[None, :] - 0.2 * (position[:, None] - 1)
    click_probability = 1.0 / (1.0 + np.exp(-logit))
    actions = np.array([rng.choice(n_items, p=logging) for _ in range(n_rounds)], dtype=np.int64)
    clicks = (rng.random(n_rounds) < click_probability[np.arange(n_rounds), actions]).astype(np.float64)
    seconds = np.cumsum(rng.exponential(30.0, n_rounds))

    log_header = ["", "timestamp", "item_id", "position", "click", "propensity_score"]
    log_header += [f"user_feature_{j}" for j in range(3)]
    log_header += [f"user-item_affinity_{i}" for i in range(n_items)]
    log_rows = []
    for t in range(n_rounds):
        ts = (_START + timedelta(seconds=float(seconds[t]))).isoformat(sep=" ", timespec="microseconds")
        row = [
            str(t),
            ts,
            str(actions[t]),
            str(position[t]),
            str(int(clicks[t])),
            f"{logging[actions[t]]:.8g}",
        ]
        row += [
            _hashed("segment", int(segment[t])),
            _hashed("device", int(device[t])),
            _hashed("age", int(age[t])),
        ]
        row += [f"{a:.1f}" for a in affinity[t]]
        log_rows.append(row)
    item_header = ["", "item_id", "item_feature_0", "item_feature_1", "item_feature_2"]
    item_rows = [
        [
            str(i),
            str(i),
            f"{price[i]:.6f}",
            _hashed("category", int(category[i])),
            _hashed("brand", int(brand[i])),
        ]
        for i in range(n_items)
    ]
    return SyntheticLog(
        log_header=log_header,
        log_rows=log_rows,
        item_header=item_header,
        item_rows=item_rows,
        click_probability=click_probability,
        logging_probability=np.tile(logging, (n_rounds, 1)),
        actions=actions,
        clicks=clicks,
    )
