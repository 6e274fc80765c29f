"""Getting records into Kafka: the async producer and topic setup, the synthetic clickstream and
history backfills (MovieLens, JSON Lines), all through the live topics.

May import `engine.ops`, `models` and `schemas`.
"""

__all__: list[str] = []
