"""Decisions and delivery: everything between the models and the people who use the engine.

One sub-package per role; each may import only the ones listed before it (checked by
``tests/test_layers.py``), and `engine` as a whole imports `models` and `schemas`, never `streams`:

- `engine.ops`: settings, the metrics container, the local stack, worker registry, checkpoint files.
- `engine.store`: Redis (lists, scripts, item metadata, preferences, policy snapshots).
- `engine.ingest`: Kafka producing (topics, the synthetic clickstream, history backfills).
- `engine.serving`: serve-time decisions (rules, diversity, experiments, the rank/reward ranker).
- `engine.evaluation`: offline replay, off-policy evaluation, the bandit bench.
- `engine.sdk`, `engine.api`, `engine.dashboard`, `engine.bench`: the ways in and out.
- `engine.cli`: the ``personalize`` commands (``worker`` is added by `streams.cli`).
"""

__all__: list[str] = []
