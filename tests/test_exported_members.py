"""Every name a module lists in ``__all__`` exists (in the style of httpx's test_exported_members)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

PACKAGES = ("schemas", "models", "streams", "engine")


def _modules() -> list[str]:
    """Every module of the four packages, sub-packages included (found, not listed, so a new module
    cannot be missed)."""
    found = []
    for package in PACKAGES:
        found.append(package)
        path = importlib.import_module(package).__path__
        walked = pkgutil.walk_packages(path, f"{package}.")
        found += [m.name for m in walked if not m.name.endswith("__main__")]
    return found


MODULES = _modules()


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list), f"{name} has no __all__"
    # A package may export nothing (its docstring maps the room); a module always exports something.
    assert exported or hasattr(module, "__path__"), f"{name}.__all__ is empty"
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
