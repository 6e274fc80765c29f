"""The stateless HTTP API: events in (to Kafka), recommendations out (from Redis), health and metrics.

Each route lives in its own module; `create_api` puts them together. Never trains.
May import `engine.serving`, `engine.ingest`, `engine.store`, `engine.ops` and `schemas`.
"""

from engine.api.app import create_api, run
from engine.api.auth import API_KEY_HEADER, hash_key, new_key

__all__ = ["API_KEY_HEADER", "create_api", "hash_key", "new_key", "run"]
