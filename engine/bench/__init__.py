"""`personalize bench`: the engine's throughput, freshness, lookup, scaling and memory on the local stack;
`personalize bench --workers 1,2,4`: the same engine on several workers (`engine.bench.scaling`).

Each run works in a fresh namespace that it removes again; see docs/benchmarks.md for targets and results.
May import `engine.serving`, `engine.ingest`, `engine.store`, `engine.ops`, `models` and `schemas`; it
starts workers as processes, never by importing `streams`.
"""

from __future__ import annotations

__all__ = ["TARGETS", "BenchConfig", "ScalingConfig", "judge", "run", "run_scaling", "scaling_table", "table"]

from engine.bench.report import TARGETS, judge, table
from engine.bench.runner import BenchConfig, run
from engine.bench.scaling import ScalingConfig
from engine.bench.scaling import run as run_scaling
from engine.bench.scaling_report import table as scaling_table
