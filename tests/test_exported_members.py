"""Every name a module lists in ``__all__`` exists (in the style of httpx's test_exported_members)."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "schemas",
    "schemas.errors",
    "schemas.events",
    "schemas.keys",
    "models.affinity",
    "models.cooccurrence",
    "models.popularity",
    "models.profile",
    "models.recommender",
    "models.signals",
    "models.synth",
    "engine.backfill",
    "engine.cli",
    "engine.kafka_io",
    "engine.metrics",
    "engine.produce",
    "engine.redis_store",
    "engine.settings",
    "engine.stack",
    "streams.app",
    "streams.codecs",
    "streams.deadletter",
    "streams.pipeline",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list) and exported, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    missing = [member for member in exported if not hasattr(module, member)]
    assert missing == [], f"{name}.__all__ names missing attributes"


def test_schemas_package_reexports_its_modules_members() -> None:
    schemas = importlib.import_module("schemas")
    events = importlib.import_module("schemas.events")
    errors = importlib.import_module("schemas.errors")
    for module in (events, errors):
        for member in module.__all__:
            assert member in schemas.__all__, member
            assert getattr(schemas, member) is getattr(module, member)
