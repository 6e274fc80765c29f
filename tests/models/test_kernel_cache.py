"""The numba cache directory follows the models' sources (models/kernel_cache.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from numba.core import config

from models import kernel_cache


def _sources(tmp_path: Path, body: str) -> Path:
    (tmp_path / "kernels.py").write_text(body)
    (tmp_path / "ranking.py").write_text("def rank(): ...\n")
    return tmp_path


def test_any_change_to_any_source_moves_the_directory(tmp_path: Path) -> None:
    sources = _sources(tmp_path, "def links(): return 1\n")
    before = kernel_cache.directory(sources)
    assert kernel_cache.directory(sources) == before  # the same sources, the same directory
    (sources / "kernels.py").write_text("def links(): return 2\n")  # a callee's file only
    assert kernel_cache.directory(sources) != before


def test_configure_points_numba_there_and_removes_other_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _sources(tmp_path, "def links(): return 1\n")
    stale = sources / "__pycache__" / "numba-0000000000000000"
    stale.mkdir(parents=True)
    (stale / "kernels.links-1.py311.nbi").write_bytes(b"old")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)  # type: ignore[attr-defined]  # restored after
    kernel_cache.configure(sources)
    current = str(kernel_cache.directory(sources))
    assert os.environ["NUMBA_CACHE_DIR"] == current
    assert config.CACHE_DIR == current  # type: ignore[attr-defined]  # numba was imported already
    assert not stale.exists()


def test_an_explicit_cache_directory_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sources = _sources(tmp_path, "def links(): return 1\n")
    other = sources / "__pycache__" / "numba-0000000000000000"
    other.mkdir(parents=True)
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/opt/numba-cache")
    kernel_cache.configure(sources)
    assert os.environ["NUMBA_CACHE_DIR"] == "/opt/numba-cache"
    assert other.exists()
