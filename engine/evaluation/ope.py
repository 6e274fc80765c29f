"""Off-policy evaluation of bandit policies (ours and River's) on a log in Open Bandit Pipeline's layout.

Reads the log and its item table (checking every row), learns a policy off-policy on the first part in
time order, then estimates its value on the rest with IPS, SNIPS and DR (`models.ope`). A log row is one
item shown at one position; the policy fills the positions with its ranking, and a row counts through
the policy's probability of that item at that position (OBP's propensities are per position).
"""

from __future__ import annotations

__all__ = ["LoggedBandit", "evaluate", "load", "write_log", "write_synthetic"]

import csv
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from models import bandits
from models import ope as estimators
from models.bandit_log import SyntheticLog, synthetic_log
from models.online_regression import OnlineLogistic
from models.river_bandits import make_any
from schemas.errors import DataFormatError

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

_LOG_COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score")
_AFFINITY = "user-item_affinity_"
#: Categorical values kept per column (the most frequent); the rest share one "other" indicator.
_MAX_CATEGORIES = 32


@dataclass(frozen=True, slots=True, eq=False)
class LoggedBandit:
    """A log in time order, encoded as numbers: one row per item shown at one position.

    ``contexts[t]`` is the user features (one-hot or standardised); ``positions[t]`` the 0-based rank of
    the row's position among the log's positions; ``action_features(t)`` is every item's features plus
    the user's affinity to that item.
    """

    item_ids: list[str]
    actions: Ints
    rewards: Floats
    propensities: Floats
    contexts: Floats
    item_features: Floats
    affinity: Floats
    positions: Ints
    n_positions: int

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    def action_features(self, t: int) -> Floats:
        out: Floats = np.hstack([self.item_features, self.affinity[t][:, None]])
        return out


def _read(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataFormatError(str(path), None, "the file is empty")
            rows = [(reader.line_num, row) for row in reader if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFormatError(str(path), None, f"cannot read: {exc}") from None
    for line, row in rows:
        if len(row) != len(header):
            raise DataFormatError(str(path), line, f"{len(row)} fields, the header has {len(header)}")
    return [h.strip() for h in header], rows


def _column(path: Path, header: list[str], name: str) -> int:
    if name not in header:
        raise DataFormatError(str(path), 1, f"missing column {name!r}")
    return header.index(name)


def _number(path: Path, line: int, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(str(path), line, f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataFormatError(str(path), line, f"{name} {text!r} is not finite")
    return value


def _timestamp(path: Path, line: int, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise DataFormatError(
            str(path), line, f"timestamp {text!r} is neither a number nor ISO 8601"
        ) from None


def _encode(values: Sequence[str], categorical: bool = False) -> Floats:
    """One feature column as numbers: standardised if every value is numeric, else one-hot."""
    numbers = None
    if not categorical:
        try:
            numbers = np.array([float(v) for v in values], dtype=np.float64)
        except ValueError:
            pass
    if numbers is not None and np.all(np.isfinite(numbers)):
        spread = float(numbers.std())
        out: Floats = ((numbers - numbers.mean()) / (spread if spread > 0 else 1.0))[:, None]
        return out
    kept = [v for v, _ in sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))[:_MAX_CATEGORIES]]
    index = {v: i for i, v in enumerate(kept)}
    width = len(kept) + (1 if len(index) < len(set(values)) else 0)
    onehot = np.zeros((len(values), width))
    for row, value in enumerate(values):
        onehot[row, index.get(value, width - 1)] = 1.0
    return onehot


def _features(rows: list[tuple[int, list[str]]], columns: list[int]) -> Floats:
    blocks = [_encode([row[c].strip() for _, row in rows]) for c in columns]
    return np.hstack(blocks) if blocks else np.zeros((len(rows), 0))


def _items(path: Path) -> tuple[list[str], Floats]:
    header, rows = _read(path)
    id_col = _column(path, header, "item_id")
    ids = [row[id_col].strip() for _, row in rows]
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    if not rows or duplicates:
        raise DataFormatError(str(path), None, f"needs one row per item; duplicated: {duplicates[:5]}")
    feature_cols = [i for i, h in enumerate(header) if h.startswith("item_feature_")]
    return ids, _features(rows, feature_cols)


def load(log_path: Path, items_path: Path) -> LoggedBandit:
    """Read and check an OBP-style log and item context table; rows come back in timestamp order.

    Raises `DataFormatError` (file and line) for a missing column, an unknown item, a non-numeric
    field, a propensity outside (0, 1] or a click other than 0/1.
    """
    item_ids, item_features = _items(items_path)
    item_index = {item: i for i, item in enumerate(item_ids)}
    header, rows = _read(log_path)
    cols = {name: _column(log_path, header, name) for name in _LOG_COLUMNS}
    if not rows:
        raise DataFormatError(str(log_path), None, "the log has no rows")
    parsed = []
    for line, row in rows:
        item = row[cols["item_id"]].strip()
        if item not in item_index:
            raise DataFormatError(str(log_path), line, f"item_id {item!r} is not in {items_path}")
        click = _number(log_path, line, "click", row[cols["click"]])
        if click not in (0.0, 1.0):
            raise DataFormatError(str(log_path), line, f"click {row[cols['click']]!r} is not 0 or 1")
        propensity = _number(log_path, line, "propensity_score", row[cols["propensity_score"]])
        if not 0.0 < propensity <= 1.0:
            raise DataFormatError(str(log_path), line, f"propensity_score {propensity} is outside (0, 1]")
        position = _number(log_path, line, "position", row[cols["position"]])
        ts = _timestamp(log_path, line, row[cols["timestamp"]].strip())
        parsed.append((ts, item_index[item], click, propensity, position))
    order = sorted(range(len(rows)), key=lambda i: parsed[i][0])
    rows = [rows[i] for i in order]
    user_cols = [i for i, h in enumerate(header) if h.startswith("user_feature_")]
    places = sorted({p[4] for p in parsed})
    if len(places) > len(item_ids):
        raise DataFormatError(str(log_path), None, f"{len(places)} positions but {len(item_ids)} items")
    rank = {p: k for k, p in enumerate(places)}
    affinity = np.zeros((len(rows), len(item_ids)))
    for c, name in enumerate(header):
        if name.startswith(_AFFINITY) and name[len(_AFFINITY) :] in item_index:
            raw = np.array([_number(log_path, line, name, row[c]) for line, row in rows])
            affinity[:, item_index[name[len(_AFFINITY) :]]] = np.sign(raw) * np.log1p(np.abs(raw))
    return LoggedBandit(
        item_ids=item_ids,
        actions=np.array([parsed[i][1] for i in order], dtype=np.int64),
        rewards=np.array([parsed[i][2] for i in order]),
        propensities=np.array([parsed[i][3] for i in order]),
        contexts=_features(rows, user_cols),
        item_features=item_features,
        affinity=affinity,
        positions=np.array([rank[parsed[i][4]] for i in order], dtype=np.int64),
        n_positions=len(places),
    )


def _reward_model(log: LoggedBandit, n_train: int, prior_rate: float) -> OnlineLogistic:
    """DR's reward model: a logistic regression on the policy's features plus the position, one-hot,
    fitted on the training rows only."""
    model = OnlineLogistic(ridge=1.0, prior_rate=prior_rate)
    for t in range(n_train):
        a = int(log.actions[t])
        phi = bandits.features(log.contexts[t], log.action_features(t)[a : a + 1])[0]
        place = np.zeros(log.n_positions)
        place[log.positions[t]] = 1.0
        model.learn_one(np.concatenate([place, phi]), float(log.rewards[t]))
    return model


def _predicted(model: OnlineLogistic, log: LoggedBandit, t: int) -> Floats:
    """``q[a, k]``: the reward model's click probability of item ``a`` at position ``k`` in row ``t``."""
    mean = model.mean
    assert mean is not None
    p = log.n_positions
    logits = bandits.features(log.contexts[t], log.action_features(t)) @ mean[p:]
    out: Floats = 1.0 / (1.0 + np.exp(-(logits[:, None] + mean[None, :p])))
    return out


def _estimate(e: estimators.Estimate, logged: float) -> dict[str, float]:
    out = e.to_json()
    if logged > 0:
        out |= {
            "lift": round(e.value / logged, 3),
            "lift_ci_low": round(e.ci_low / logged, 3),
            "lift_ci_high": round(e.ci_high / logged, 3),
        }
    return out


def evaluate(
    log: LoggedBandit,
    policy: str = "logts",
    train_fraction: float = 0.5,
    seed: int = 0,
    max_weight: float = 10.0,
    on_slate: Callable[[int, Floats], None] | None = None,
) -> dict[str, Any]:
    """Learn ``policy`` on the first ``train_fraction`` of the log, estimate its value on the rest.

    Training updates are weighted by ``1 / (n_items * propensity)`` (1 for a uniform logger), clipped at
    ``max_weight``, so the policy learns as if items had been shown uniformly. ``logts`` starts from the
    training part's click rate as its prior. On the evaluation part the policy ranks every item for each
    row's user; ``pi[t]`` is its probability of the logged item at the logged position. DR's reward model
    is a logistic regression on the same features plus the position, fitted on the training part only.
    ``lift`` is an estimate divided by the logging policy's observed value on the evaluation part.
    River's policies (``river-*``, `models.river_bandits`) learn unweighted (one estimate per arm) and
    rank by one drawn ranking per evaluated row, an unbiased stand-in for their marginals.
    ``on_slate(t, slate)`` sees the policy's ``slate[item, position]`` probabilities of each evaluated
    row ``t`` (tests use it to compute the true value on a synthetic log).
    """
    n = len(log)
    if n < 2:
        raise ValueError("need at least two logged rounds")
    n_train = min(max(int(round(n * train_fraction)), 1), n - 1)
    train_ctr = min(max(float(log.rewards[:n_train].mean()), 1e-4), 0.5)
    params: dict[str, Any] = {"prior_ctr": train_ctr} if policy == "logts" else {}
    target = make_any(policy, seed=seed, **params)
    n_items = len(log.item_ids)
    for t in range(n_train):
        weight = min(1.0 / (n_items * float(log.propensities[t])), max_weight)
        target.learn_one(
            log.contexts[t], log.action_features(t), int(log.actions[t]), float(log.rewards[t]), weight=weight
        )
    reward_model = _reward_model(log, n_train, train_ctr)
    rest = range(n_train, n)
    pi, q_logged, q_target = np.zeros(len(rest)), np.zeros(len(rest)), np.zeros(len(rest))
    for j, t in enumerate(rest):
        slate = target.slate(log.contexts[t], log.action_features(t), log.n_positions)
        if on_slate is not None:
            on_slate(t, slate)
        q = _predicted(reward_model, log, t)
        got = estimators.at_positions(slate[None], log.actions[t : t + 1], log.positions[t : t + 1], q[None])
        pi[j], q_logged[j], q_target[j] = got[0][0], got[1][0], got[2][0]
    r, mu = log.rewards[n_train:], log.propensities[n_train:]
    logged = estimators.mean_with_ci(r)
    return {
        "policy": policy,
        "rounds_train": n_train,
        "rounds_eval": n - n_train,
        "items": n_items,
        "positions": log.n_positions,
        "logging_policy_value": logged.to_json(),
        "estimates": {
            "ips": _estimate(estimators.ips(r, pi, mu), logged.value),
            "snips": _estimate(estimators.snips(r, pi, mu), logged.value),
            "dr": _estimate(estimators.dr(r, pi, mu, q_logged, q_target), logged.value),
        },
    }


def write_log(directory: Path, data: SyntheticLog) -> tuple[Path, Path]:
    """Write a generated log as ``log.csv`` and ``item_context.csv`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "log.csv", directory / "item_context.csv"
    for path, header, rows in (
        (paths[0], data.log_header, data.log_rows),
        (paths[1], data.item_header, data.item_rows),
    ):
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
    return paths


def write_synthetic(
    directory: Path, n_rounds: int = 400, n_items: int = 6, seed: int = 0
) -> tuple[Path, Path]:
    """Write `models.bandit_log.synthetic_log` as ``log.csv`` and ``item_context.csv`` in ``directory``."""
    return write_log(directory, synthetic_log(n_rounds=n_rounds, n_items=n_items, seed=seed))
