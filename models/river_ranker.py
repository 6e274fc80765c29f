"""Bring your own River model: any River classifier re-ranks the head of each ranking, learning online
from what each user took next.

The built-in kernels rank the candidates and keep each one's features (`ranking_kernels.FEATURES`);
this stage scores the first ``top`` of them with the estimator's ``predict_proba_one`` and re-orders
them by it. It learns exactly where the built-in blend learns: when the user's next consumed item was
among the remembered candidates, that row is a positive and the rows ranked above it are negatives.
The estimator comes from a spec (YAML or JSON): a River class by import path with its parameters,
nested specs for parameters that are estimators themselves, a list of specs for a pipeline. It pickles
by River's own means (the checkpoint holds it); `version` names the spec and River's version. Pure: no
I/O beyond importing River modules the spec names.
"""

from __future__ import annotations

__all__ = ["RiverReranker", "build", "version_of"]

import hashlib
import importlib
import importlib.metadata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import yaml

from models.ranking_kernels import FEATURES

Rows = npt.NDArray[np.floating[Any]]


def _build_one(path: str, params: Any) -> Any:
    module_name, _, name = path.rpartition(".")
    if not module_name.startswith("river"):
        raise ValueError(f"{path!r}: only River classes can be named (river.<module>.<Class>)")
    cls = getattr(importlib.import_module(module_name), name, None)
    if cls is None:
        raise ValueError(f"{path!r}: no such class in {module_name}")
    if not isinstance(params, Mapping):
        raise ValueError(f"{path!r}: parameters must be a mapping, got {params!r}")
    return cls(**{key: _value(value) for key, value in params.items()})


def _value(value: Any) -> Any:
    """A parameter: a nested spec (a one-key mapping naming a River class) is built, the rest kept."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, params),) = value.items()
        if isinstance(key, str) and key.startswith("river."):
            return _build_one(key, params)
    return value


def build(spec: Any) -> Any:
    """A River estimator from a spec: ``{"river.x.Class": {params}}``, or a list of them (a pipeline).

    >>> build({"river.linear_model.LogisticRegression": {"optimizer": {"river.optim.SGD": {"lr": 0.05}}}})
    LogisticRegression (
      optimizer=SGD (
        lr=Constant (
          learning_rate=0.05
        )
      )
      ...
    >>> type(build([{"river.preprocessing.StandardScaler": {}},
    ...             {"river.linear_model.LogisticRegression": {}}])).__name__
    'Pipeline'
    >>> build({"os.system": {}})
    Traceback (most recent call last):
    ...
    ValueError: 'os.system': only River classes can be named (river.<module>.<Class>)
    """
    if isinstance(spec, str):
        spec = yaml.safe_load(spec)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        steps = [build(step) for step in spec]
        if not steps:
            raise ValueError("an empty pipeline")
        pipeline = steps[0]
        for step in steps[1:]:
            pipeline = pipeline | step
        return pipeline
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ValueError(
            f"a spec is one mapping {{river.module.Class: {{params}}}} or a list of them: {spec!r}"
        )
    ((path, params),) = spec.items()
    return _build_one(str(path), params or {})


def version_of(spec: Any) -> str:
    """River's version and the hash of the spec's content (whatever its layout), e.g. for model versions.

    >>> version_of("river.linear_model.LogisticRegression: {}") == version_of(
    ...     {"river.linear_model.LogisticRegression": {}})
    True
    """
    canonical = orjson.dumps(
        yaml.safe_load(spec) if isinstance(spec, str) else spec, option=orjson.OPT_SORT_KEYS
    )
    return f"river-{importlib.metadata.version('river')}-{hashlib.sha256(canonical).hexdigest()[:8]}"


class RiverReranker:
    """The second stage: a River classifier scoring the head of each ranking.

    >>> ranker = RiverReranker({"river.linear_model.LogisticRegression": {}}, top=3)
    >>> table = np.array([[0.9, 0, 0, 0, 0.1, 0, 0], [0.1, 0, 0, 0, 0.9, 0, 0], [0.5, 0, 0, 0, 0.5, 0, 0]])
    >>> for _ in range(30):  # users keep taking the popular one, shown second
    ...     _ = ranker.learn_one(table, 1)
    >>> order, scores = ranker.rerank(table)
    >>> order.tolist()[0], bool(scores[0] > 0.5)
    (1, True)
    """

    def __init__(self, spec: Any, *, top: int = 50, pairs: int = 5) -> None:
        self.spec = spec
        self.top = top
        self.pairs = pairs
        self.estimator = build(spec)
        self.updates = 0
        self.version = version_of(spec)

    @staticmethod
    def _x(row: Rows) -> dict[str, float]:
        return dict(zip(FEATURES, row.tolist(), strict=False))

    def learn_one(self, shown: Rows, taken: int) -> bool:
        """Row ``taken`` of ``shown`` (candidate features, best first) was taken: it is a positive, the
        rows ranked above it (or the next one, when it was first) are negatives."""
        if not 0 <= taken < len(shown) or len(shown) < 2:
            return False
        others = range(max(taken - self.pairs, 0), taken) if taken else range(1, 2)
        for row in others:
            self.estimator.learn_one(self._x(shown[row]), False)
        self.estimator.learn_one(self._x(shown[taken]), True)
        self.updates += 1
        return True

    def rerank(self, table: Rows) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The new order of the first ``top`` rows (indices into ``table``) and their probabilities, best
        first; ties keep the built-in order."""
        head = table[: self.top]
        scores = np.array([self.estimator.predict_proba_one(self._x(row)).get(True, 0.0) for row in head])
        order = np.argsort(-scores, kind="stable")
        return order.astype(np.int64), scores[order]
