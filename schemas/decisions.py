"""Rank/reward contract v1: what apps send to rank actions, the decision log and the reward records.

Pure data and validation; no I/O. Decisions and rewards travel keyed by ``decision_id`` so that a
decision and its reward meet on the same partition; failures are `InvalidEventError`s with problems.
"""

from __future__ import annotations

__all__ = [
    "MAX_ACTIONS",
    "MAX_FEATURES",
    "Action",
    "DecisionRecord",
    "FeatureValue",
    "Features",
    "PolicySpec",
    "RankRequest",
    "RewardRecord",
    "RewardRequest",
    "encode",
    "parse_decision",
    "parse_reward",
]

import math
from typing import Annotated, Any, TypeVar

import orjson
import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from schemas.errors import InvalidEventError, Problem
from schemas.events import Id, Label, Version, problems_of

#: Most candidate actions in one rank request, and most features in one context or action.
MAX_ACTIONS = 100
MAX_FEATURES = 100
#: Numeric features and rewards beyond this magnitude would swamp a linear policy: scale them first.
_MAX_MAGNITUDE = 1e6


def _bounded(value: float) -> float:
    try:
        magnitude = abs(float(value))
    except OverflowError:
        magnitude = math.inf
    if not magnitude <= _MAX_MAGNITUDE:
        raise ValueError(f"must be a finite number within ±{_MAX_MAGNITUDE:g}; scale it first")
    return value


Number = Annotated[
    StrictInt | StrictFloat,
    AfterValidator(_bounded),
    Field(json_schema_extra={"minimum": -_MAX_MAGNITUDE, "maximum": _MAX_MAGNITUDE}),
]
#: A feature is a number (used as is) or a string (one-hot: ``name=value``).
FeatureValue = Number | Label
Features = Annotated[dict[Label, FeatureValue], Field(max_length=MAX_FEATURES)]
_Ms = Annotated[StrictInt, Field(ge=100_000_000_000, le=4_102_444_800_000)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Action(_Record):
    """One candidate: its id (learned as a feature too) and what describes it."""

    id: Id
    features: Features = {}


def _unique_ids(actions: list[Action]) -> list[Action]:
    seen: set[str] = set()
    for action in actions:
        if action.id in seen:
            raise ValueError(f"action id {action.id!r} appears more than once")
        seen.add(action.id)
    return actions


Actions = Annotated[list[Action], Field(min_length=1, max_length=MAX_ACTIONS), AfterValidator(_unique_ids)]


class RankRequest(_Record):
    """The body of ``POST /v1/rank``.

    >>> RankRequest(actions=[Action(id="a"), Action(id="b", features={"price": 3})]).exclude
    []
    """

    context: Features = {}
    actions: Actions
    user_id: Id | None = None
    surface: Label | None = None
    experiment: Label | None = Field(
        None, description="Pick this configured experiment (else the first one configured for `surface`)"
    )
    exclude: Annotated[list[Id], Field(max_length=MAX_ACTIONS)] = []


class RewardRequest(_Record):
    """The body of ``POST /v1/reward``: the outcome of one decision (e.g. 1 for a click)."""

    decision_id: Id
    reward: Number


class PolicySpec(_Record):
    """Which policy decided: its snapshot id, registered name, parameters and hashed feature sizes."""

    id: Label
    name: Label
    params: dict[Label, Number] = {}
    context_dims: Annotated[int, Field(ge=1, le=256)]
    action_dims: Annotated[int, Field(ge=1, le=256)]


class DecisionRecord(_Record):
    """One logged decision (topic ``p13n.<ns>.decisions``, keyed by ``decision_id``).

    ``actions`` are the ranked candidates (after ``exclude``); ``probabilities`` line up with them.
    """

    v: Version = 1
    decision_id: Id
    ts: _Ms
    context: Features
    actions: Actions
    chosen: Id
    probabilities: list[Annotated[float, Field(gt=0.0, le=1.0)]]
    ranking: list[Id]
    policy: PolicySpec
    policy_version: StrictInt
    user_id: Id | None = None
    surface: Label | None = None
    experiment: Label | None = None
    variant: Label | None = None

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> DecisionRecord:
        ids = [a.id for a in self.actions]
        if len(self.probabilities) != len(ids):
            raise ValueError(f"{len(self.probabilities)} probabilities for {len(ids)} actions")
        if self.chosen not in ids:
            raise ValueError(f"chosen action {self.chosen!r} is not among the actions")
        if sorted(self.ranking) != sorted(ids):
            raise ValueError("ranking must list every action exactly once")
        return self

    @property
    def chosen_index(self) -> int:
        return [a.id for a in self.actions].index(self.chosen)

    @property
    def propensity(self) -> float:
        """The probability with which the chosen action was drawn."""
        return self.probabilities[self.chosen_index]


class RewardRecord(_Record):
    """One reward (topic ``p13n.<ns>.rewards``, keyed by ``decision_id``); ``ts`` is when it was sent."""

    v: Version = 1
    decision_id: Id
    reward: Number
    ts: _Ms


_M = TypeVar("_M", bound=_Record)


def _parse(raw: bytes | str, model: type[_M]) -> _M:
    try:
        obj: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError([Problem("", f"not valid JSON: {exc}", "json")]) from None
    if not isinstance(obj, dict):
        raise InvalidEventError([Problem("", f"expected a JSON object, got {type(obj).__name__}", "object")])
    try:
        return model.model_validate(obj)
    except pydantic.ValidationError as exc:
        raise InvalidEventError(problems_of(exc.errors(include_url=False))) from None


def parse_decision(raw: bytes | str) -> DecisionRecord:
    """Validate one decision-log record (raises `InvalidEventError` listing every problem)."""
    return _parse(raw, DecisionRecord)


def parse_reward(raw: bytes | str) -> RewardRecord:
    """Validate one reward record.

    >>> parse_reward(b'{"decision_id": "d1", "reward": 1, "ts": 1700000000000}').reward
    1
    >>> parse_reward(b'{"decision_id": "d1", "reward": 1e300, "ts": 1700000000000}')
    Traceback (most recent call last):
    ...
    schemas.errors.InvalidEventError: invalid event: reward: must be a finite number within ±1e+06; ...
    """
    return _parse(raw, RewardRecord)


def encode(record: DecisionRecord | RewardRecord) -> bytes:
    """The canonical JSON bytes of a record (fields left at None are omitted)."""
    return orjson.dumps(record.model_dump(mode="json", exclude_none=True))
