"""Serve-time decisions: a user's list from Redis with rules, diversity and fallbacks; experiments and
their statistics; the rank/reward ranker; catalog coverage. Reads models' output, never learns.

May import `engine.store`, `engine.ops`, `models` and `schemas`.
"""

__all__: list[str] = []
