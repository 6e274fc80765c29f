"""A/B experiments: their definitions (a JSON or YAML document) and sticky assignment of users to variants.

Assignment hashes ``experiment name + user_id`` with sha256, so every process, on every host, puts a user
in the same variant without sharing state. Counting and the sample-ratio check live in `engine.serving.srm`.
"""

from __future__ import annotations

__all__ = ["Experiment", "Experiments", "Variant", "assign", "load_experiments", "policy_spec"]

import hashlib
from pathlib import Path
from typing import Annotated, Any

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, Field

from engine.ops.settings import Settings
from models.bandit_snapshot import fresh
from schemas.decisions import PolicySpec
from schemas.errors import ConfigError

#: Experiment and variant names end up inside Redis keys and metric labels: keep them plain.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Variant(_Config):
    """One arm of an experiment: its share of users and the bandit policy (with parameters) it ranks with."""

    name: Name
    weight: float = Field(gt=0.0)
    policy: str = "linucb"
    params: dict[str, float] = {}


class Experiment(_Config):
    """Named variants; applies to the listed surfaces (all surfaces when none are listed)."""

    name: Name
    variants: Annotated[tuple[Variant, ...], Field(min_length=1)]
    surfaces: tuple[str, ...] = ()

    @pydantic.model_validator(mode="after")
    def _check(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names repeat in {names}")
        for variant in self.variants:
            if variant.policy == "river-exp3":
                raise ValueError("river-exp3 cannot rank: its update needs its own pull's probability")
            params: dict[str, Any] = dict(variant.params)
            fresh(variant.policy, **params)  # raises ValueError/TypeError for a bad policy
        return self

    def expected_ratios(self) -> dict[str, float]:
        """Each variant's configured share of users.

        >>> Experiment(name="e", variants=[Variant(name="a", weight=3), Variant(name="b", weight=1)]
        ...            ).expected_ratios()
        {'a': 0.75, 'b': 0.25}
        """
        total = sum(v.weight for v in self.variants)
        return {v.name: v.weight / total for v in self.variants}

    def covers(self, surface: str | None) -> bool:
        return not self.surfaces or surface in self.surfaces


class Experiments(_Config):
    """The whole document: ``{"experiments": [...]}``."""

    experiments: tuple[Experiment, ...] = ()

    @pydantic.model_validator(mode="after")
    def _unique(self) -> Experiments:
        names = [e.name for e in self.experiments]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment names repeat in {names}")
        return self

    def get(self, name: str) -> Experiment | None:
        return next((e for e in self.experiments if e.name == name), None)

    def for_surface(self, surface: str | None) -> Experiment | None:
        """The first experiment that covers ``surface``, if any."""
        return next((e for e in self.experiments if e.covers(surface)), None)


def assign(experiment: Experiment, user_id: str) -> Variant:
    """The user's variant: sticky (same answer everywhere, always) and split by the weights.

    >>> exp = Experiment(name="e", variants=[Variant(name="a", weight=1), Variant(name="b", weight=1)])
    >>> assign(exp, "u7").name == assign(exp, "u7").name
    True
    """
    digest = hashlib.sha256(f"{experiment.name}\x00{user_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(v.weight for v in experiment.variants)
    for variant in experiment.variants:
        point -= variant.weight
        if point < 0:
            return variant
    return experiment.variants[-1]


def policy_spec(settings: Settings, experiment: Experiment | None, variant: Variant | None) -> PolicySpec:
    """The policy that ranks for a variant (its own snapshot), or the namespace's default policy."""
    dims = {"context_dims": settings.bandit_context_dims, "action_dims": settings.bandit_action_dims}
    if experiment is None or variant is None:
        return PolicySpec(id="default", name=settings.bandit_policy, **dims)
    return PolicySpec(
        id=f"{experiment.name}.{variant.name}", name=variant.policy, params=dict(variant.params), **dims
    )


def _decode(text: str, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        import yaml
    except ImportError:
        raise ConfigError(f"{where} is not JSON, and PyYAML is not installed to read YAML") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is neither JSON nor YAML: {exc}") from None


def load_experiments(settings: Settings) -> Experiments:
    """The experiments of ``experiments_file`` or ``experiments`` (inline), or none; `ConfigError` if bad.

    >>> doc = '{"experiments": [{"name": "e", "variants": [{"name": "a", "weight": 1}]}]}'
    >>> load_experiments(Settings(experiments=doc)).experiments[0].variants[0].policy
    'linucb'
    """
    if settings.experiments_file is not None and settings.experiments is not None:
        raise ConfigError("set PERSONALIZE_EXPERIMENTS_FILE or PERSONALIZE_EXPERIMENTS, not both")
    if settings.experiments_file is not None:
        where = str(settings.experiments_file)
        try:
            text = Path(settings.experiments_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read experiments file {where}: {exc}") from None
    elif settings.experiments is not None:
        where, text = "PERSONALIZE_EXPERIMENTS", settings.experiments
    else:
        return Experiments()
    try:
        experiments = Experiments.model_validate(_decode(text, where))
    except (pydantic.ValidationError, ValueError, TypeError) as exc:
        raise ConfigError(f"invalid experiments in {where}: {exc}") from None
    river = sorted(
        {v.policy for e in experiments.experiments for v in e.variants if v.policy.startswith("river-")}
    )
    if river and settings.policy_key is None:
        raise ConfigError(
            f"{where}: variants ranked by {', '.join(river)} need PERSONALIZE_POLICY_KEY (32+ characters): "
            "River policy snapshots hold pickled state, read only when signed"
        )
    return experiments
