"""The Python SDK: send events, read recommendations (over HTTP or straight from Redis), rank/reward.

May import `engine.serving`, `engine.store`, `engine.ops` and `schemas`.
"""

__all__: list[str] = []
