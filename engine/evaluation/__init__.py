"""Offline evaluation: prequential replay of history files, off-policy evaluation of bandit logs, and the
bandit benchmark against Vowpal Wabbit. In-process, no Kafka or Redis.

May import `engine.ingest` (file readers), `engine.ops`, `models` and `schemas`.
"""

__all__: list[str] = []
