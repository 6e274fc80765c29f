"""`personalize bench`: the engine's throughput, freshness, lookup, scaling and memory on the local stack.

Each run works in a fresh namespace that it removes again; see docs/benchmarks.md for targets and results.
May import `engine.serving`, `engine.ingest`, `engine.store`, `engine.ops`, `models` and `schemas`; it
starts workers as processes, never by importing `streams`.
"""

from __future__ import annotations

__all__ = ["TARGETS", "BenchConfig", "judge", "run", "table"]

from engine.bench.report import TARGETS, judge, table
from engine.bench.runner import BenchConfig, run
