"""Experiments (`engine.serving.experiments`): configuration, sticky balanced assignment,
event stamping; and SRM."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from engine.ops.settings import Settings
from engine.serving.experiments import Experiment, Experiments, Variant, assign, load_experiments, policy_spec
from engine.serving.ranker import stamp_events
from engine.serving.srm import chi2_sf, srm_check
from schemas.errors import ConfigError
from schemas.events import Event

TWO = Experiment(name="home", variants=(Variant(name="a", weight=1), Variant(name="b", weight=1)))
SKEWED = Experiment(name="search", variants=(Variant(name="x", weight=9), Variant(name="y", weight=1)))
USERS = [f"user-{n}" for n in range(10_000)]


def test_assignment_is_sticky_and_independent_of_the_process() -> None:
    first = [assign(TWO, u).name for u in USERS[:500]]
    rebuilt = Experiment.model_validate(TWO.model_dump())
    assert first == [assign(rebuilt, u).name for u in USERS[:500]]
    # sha256 of "home\0user-0", not Python's salted hash: the same answer in every process, forever.
    assert [assign(TWO, f"user-{n}").name for n in range(8)] == first[:8]


SHARES = [(TWO, {"a": 0.5, "b": 0.5}), (SKEWED, {"x": 0.9, "y": 0.1})]


@pytest.mark.parametrize(("experiment", "shares"), SHARES)
def test_assignment_over_10k_users_matches_the_weights(
    experiment: Experiment, shares: dict[str, float]
) -> None:
    counts = Counter(assign(experiment, u).name for u in USERS)
    for name, share in shares.items():
        assert abs(counts[name] / len(USERS) - share) < 0.015, counts
    assert not srm_check(counts, experiment.expected_ratios()).mismatch


def test_experiments_assign_independently() -> None:
    other = Experiment(name="other", variants=TWO.variants)
    same = sum(assign(TWO, u).name == assign(other, u).name for u in USERS)
    assert 4_700 < same < 5_300


def test_srm_flags_a_skewed_split_and_passes_a_fair_one() -> None:
    fair = srm_check({"a": 5_030, "b": 4_970}, {"a": 0.5, "b": 0.5})
    assert not fair.mismatch and fair.p_value > 0.5
    skewed = srm_check({"a": 5_300, "b": 4_700}, {"a": 0.5, "b": 0.5})
    assert skewed.mismatch and skewed.p_value < 1e-6
    three = srm_check({"a": 900, "b": 1_000, "c": 1_100}, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert three.mismatch and three.to_json()["counts"] == {"a": 900, "b": 1_000, "c": 1_100}
    assert srm_check({}, {"a": 0.5, "b": 0.5}).p_value == 1.0


@pytest.mark.parametrize(
    ("x", "dof", "expected"),
    [
        (0.5, 1, 0.47950012218695337),
        (3.0, 2, 0.22313016014842982),
        (7.8, 3, 0.050331097859853326),
        (2.2, 4, 0.6990292757659671),
        (11.07, 5, 0.050009618622405425),
        (30.0, 7, 9.495972508134177e-05),
    ],
)
def test_chi_square_tail_matches_reference_values(x: float, dof: int, expected: float) -> None:
    assert chi2_sf(x, dof) == pytest.approx(expected, rel=1e-12)


def test_experiments_load_from_json_yaml_or_inline(tmp_path: Path) -> None:
    doc = '{"experiments": [{"name": "home", "surfaces": ["home"], "variants": [{"name": "a", "weight": 1},'
    doc += ' {"name": "b", "weight": 1, "policy": "egreedy", "params": {"epsilon": 0.2}}]}]}'
    path = tmp_path / "exp.yaml"
    path.write_text(
        "experiments:\n  - name: home\n    surfaces: [home]\n    variants:\n      - {name: a, weight: 1}\n"
        "      - {name: b, weight: 1, policy: egreedy, params: {epsilon: 0.2}}\n"
    )
    inline = load_experiments(Settings(experiments=doc))
    assert inline == load_experiments(Settings(experiments_file=path))
    assert inline.for_surface("home") is not None and inline.for_surface("search") is None
    spec = policy_spec(Settings(), inline.experiments[0], inline.experiments[0].variants[1])
    assert (spec.id, spec.name, spec.params) == ("home.b", "egreedy", {"epsilon": 0.2})
    assert policy_spec(Settings(), None, None).id == "default"
    assert load_experiments(Settings()) == Experiments()


@pytest.mark.parametrize(
    "doc",
    [
        "{not: [valid",
        '{"experiments": [{"name": "e", "variants": []}]}',
        '{"experiments": [{"name": "e", "variants": [{"name": "a", "weight": 0}]}]}',
        '{"experiments": [{"name": "e", "variants": [{"name": "a", "weight": 1, "policy": "magic"}]}]}',
        '{"experiments": [{"name": "e", "variants": [{"name": "a", "weight": 1, "params": {"nope": 1}}]}]}',
        '{"experiments": [{"name": "has space", "variants": [{"name": "a", "weight": 1}]}]}',
        '{"experiments": [{"name": "e", "variants": [{"name": "a", "weight": 1},'
        ' {"name": "a", "weight": 2}]}]}',
    ],
)
def test_bad_experiment_documents_are_config_errors(doc: str) -> None:
    with pytest.raises(ConfigError):
        load_experiments(Settings(experiments=doc))


def test_both_sources_at_once_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        load_experiments(Settings(experiments="{}", experiments_file=tmp_path / "x.json"))


def test_events_are_stamped_with_the_users_variant_unless_already_set() -> None:
    exps = Experiments(experiments=(TWO,))
    plain = Event(event_id="e1", user_id="user-1", item_id="i", type="view", ts=1_700_000_000_000)
    stamped = stamp_events([plain], exps)[0]
    assert (stamped.context.experiment, stamped.context.variant) == ("home", assign(TWO, "user-1").name)
    preset = plain.model_copy(update={"context": plain.context.model_copy(update={"experiment": "mine"})})
    assert stamp_events([preset], exps)[0].context.experiment == "mine"
    assert stamp_events([plain], Experiments())[0] == plain


def test_river_variants_need_the_policy_key_and_exp3_cannot_rank() -> None:
    doc = '{"experiments": [{"name": "e", "variants": [{"name": "a", "weight": 1, "policy": "river-ts"}]}]}'
    with pytest.raises(ConfigError, match="PERSONALIZE_POLICY_KEY"):
        load_experiments(Settings(experiments=doc))
    loaded = load_experiments(Settings(experiments=doc, policy_key="k" * 32))
    assert loaded.experiments[0].variants[0].policy == "river-ts"
    with pytest.raises(ConfigError, match="river-exp3 cannot rank"):
        load_experiments(Settings(experiments=doc.replace("river-ts", "river-exp3"), policy_key="k" * 32))
