"""Decisions and delivery: Redis publishing, Kafka producing, the CLI and the local stack."""

from engine.redis_store import Recommendations, RedisStore
from engine.settings import Settings, load

__all__ = ["Recommendations", "RedisStore", "Settings", "load"]
