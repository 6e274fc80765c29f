"""The engine's Redis side: users' lists and metadata, Lua scripts, item metadata and its cache,
preferences, bandit policy snapshots. Every key comes from `schemas.keys`.

May import `engine.ops`, `models` and `schemas`.
"""

__all__: list[str] = []
