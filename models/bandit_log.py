"""Seeded synthetic logged bandit feedback in the Open Bandit Pipeline's CSV layout, with known truths.

Makes the rows of a log (``timestamp, item_id, position, click, propensity_score, user_feature_*,
user-item_affinity_*``) and of an item context table; it keeps the true click probabilities and the
logging policy so tests can check estimators. `synthetic_log` is a small single-slot log with a high
click rate; `sparse_log` is shaped like real traffic (a random slate of several positions per
impression, clicks under 1%). Pure: returns rows; `engine.evaluation.ope` writes files.
"""

from __future__ import annotations

__all__ = ["SyntheticLog", "sparse_log", "synthetic_log"]

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
    position); ``logging_probability[t, i]`` is the logging policy's probability of showing item ``i``
    at that position; ``positions[t]`` is the logged position, 0-based.
    """

    log_header: list[str]
    log_rows: list[list[str]]
    item_header: list[str]
    item_rows: list[list[str]]
    click_probability: Floats
    logging_probability: Floats
    actions: Ints
    clicks: Floats
    positions: Ints

    def true_value(self, rows: slice, slate: Floats) -> float:
        """The expected click rate per row of a policy whose ``slate[t, i, k]`` is its probability of
        showing item ``i`` at position ``k`` in row ``t`` (rows ``rows`` of the log, each at its own
        logged position): what an unbiased estimator estimates on those rows."""
        p = self.click_probability[rows]
        at_k = slate[np.arange(p.shape[0]), :, self.positions[rows]]
        return float(np.mean(np.sum(at_k * p, axis=1)))


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
    item_header, item_rows = _item_table(price, category, brand)
    return SyntheticLog(
        log_header=log_header,
        log_rows=log_rows,
        item_header=item_header,
        item_rows=item_rows,
        click_probability=click_probability,
        logging_probability=np.tile(logging, (n_rounds, 1)),
        actions=actions,
        clicks=clicks,
        positions=(position - 1).astype(np.int64),
    )


def _item_table(
    price: Floats, category: NDArray[np.int64], brand: NDArray[np.int64]
) -> tuple[list[str], list[list[str]]]:
    """The item context file in obp's layout: an unnamed index, the id, then price, category and brand."""
    rows = [
        [
            str(i),
            str(i),
            f"{price[i]:.6f}",
            _hashed("category", int(category[i])),
            _hashed("brand", int(brand[i])),
        ]
        for i in range(len(price))
    ]
    return ["", "item_id", "item_feature_0", "item_feature_1", "item_feature_2"], rows


def _rows(columns: list[list[str]], timestamps: Floats) -> list[list[str]]:
    """Rows from columns of strings, led by the row number and its ISO timestamp."""
    stamps = [
        (_START + timedelta(seconds=float(s))).isoformat(sep=" ", timespec="microseconds") for s in timestamps
    ]
    index = [str(t) for t in range(timestamps.shape[0])]
    return [list(row) for row in zip(index, stamps, *columns, strict=True)]


def sparse_log(
    n_impressions: int = 20_000,
    n_items: int = 34,
    n_positions: int = 3,
    base_ctr: float = 0.005,
    seed: int = 0,
) -> SyntheticLog:
    """A log shaped like the Open Bandit Dataset's random campaigns: each impression shows a uniformly
    random slate of ``n_positions`` distinct items, one row per shown item with propensity
    ``1 / n_items`` (the chance of that item at that position), and a click rate near ``base_ctr``.

    Users have four hashed features: a segment (3 values) with its own taste for each of 6 item
    categories, a device (2; mobile users mind the price more), an age band (5) and a region (8) that
    do nothing. The click logit is ``base + taste[segment, category] + item effect - 0.4 * device *
    price + 0.5 * log1p(affinity) + log(examination[position])``, examination ``0.8 ** position``;
    ``base`` is set so that the logged click rate is ``base_ctr``. The item effect (sd 0.3) is what
    no feature tells; tastes have sd 0.6. Affinity counts are mostly 0, more often positive for a
    liked category.

    >>> log = sparse_log(n_impressions=2000, n_items=10, seed=1)
    >>> len(log.log_rows), round(float(log.click_probability[np.arange(6000), log.actions].mean()), 4)
    (6000, 0.005)
    >>> sorted({row[3] for row in log.log_rows}), {row[5] for row in log.log_rows}
    (['1', '2', '3'], {'0.1'})
    """
    if not 1 <= n_positions <= n_items:
        raise ValueError(f"need 1 <= n_positions <= n_items, got {n_positions} and {n_items}")
    rng = np.random.default_rng([seed, 11])
    n_categories = 6
    category = rng.integers(0, n_categories, n_items)
    category[: min(n_items, n_categories)] = np.arange(min(n_items, n_categories))
    price = rng.standard_normal(n_items)
    brand = rng.integers(0, 4, n_items)
    item_effect = 0.3 * rng.standard_normal(n_items)
    taste = 0.6 * rng.standard_normal((_N_SEGMENTS, n_categories))

    segment = rng.integers(0, _N_SEGMENTS, n_impressions)
    device = rng.integers(0, 2, n_impressions)
    age = rng.integers(0, 5, n_impressions)
    region = rng.integers(0, 8, n_impressions)
    liked = taste[segment][:, category] > 0.3
    affinity = rng.poisson(0.03 + 0.25 * liked).astype(np.float64)
    slates = np.argsort(rng.random((n_impressions, n_items)), axis=1)[:, :n_positions]

    # one row per shown item; the rows of an impression share its user and its time
    imp = np.repeat(np.arange(n_impressions), n_positions)
    position = np.tile(np.arange(n_positions), n_impressions)
    actions = slates.reshape(-1).astype(np.int64)
    logit = (
        taste[segment[imp]][:, category]
        + item_effect[None, :]
        - 0.4 * device[imp][:, None] * price[None, :]
        + 0.5 * np.log1p(affinity[imp])
        + position[:, None] * np.log(0.8)
    )
    rows = np.arange(imp.shape[0])
    lo, hi = -20.0, 5.0
    for _ in range(60):  # the base logit that makes the logged click rate base_ctr
        base = (lo + hi) / 2
        logged = 1.0 / (1.0 + np.exp(-(base + logit[rows, actions])))
        lo, hi = (base, hi) if logged.mean() < base_ctr else (lo, base)
    click_probability = 1.0 / (1.0 + np.exp(-(base + logit)))
    clicks = (rng.random(imp.shape[0]) < click_probability[rows, actions]).astype(np.float64)
    seconds = np.cumsum(rng.exponential(20.0, n_impressions))[imp]

    log_header = ["", "timestamp", "item_id", "position", "click", "propensity_score"]
    log_header += [f"user_feature_{j}" for j in range(4)]
    log_header += [f"user-item_affinity_{i}" for i in range(n_items)]
    hashed = [
        np.array([_hashed(kind, int(v)) for v in values], dtype=object)[imp]
        for kind, values in (("segment", segment), ("device", device), ("age", age), ("region", region))
    ]
    counts = [f"{c:.1f}" for c in range(int(affinity.max()) + 1)]
    columns = [
        actions.astype(str).tolist(),
        (position + 1).astype(str).tolist(),
        clicks.astype(np.int64).astype(str).tolist(),
        [f"{1.0 / n_items:.8g}"] * imp.shape[0],
        *(h.tolist() for h in hashed),
        *([counts[c] for c in affinity[imp][:, i].astype(np.int64)] for i in range(n_items)),
    ]
    item_header, item_rows = _item_table(price, category, brand)
    return SyntheticLog(
        log_header=log_header,
        log_rows=_rows(columns, seconds),
        item_header=item_header,
        item_rows=item_rows,
        click_probability=click_probability,
        logging_probability=np.full((imp.shape[0], n_items), 1.0 / n_items),
        actions=actions,
        clicks=clicks,
        positions=position.astype(np.int64),
    )
