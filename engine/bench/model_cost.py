"""Per-event cost of the production model in-process (no Kafka, no Redis) as the catalog grows.

Learns a synthetic catalog of the given size, warms the model with events, then times ``learn_one`` +
``observe`` + ``recommend`` per event: what the worker pays in the model for one event.
"""

from __future__ import annotations

__all__ = ["per_event_us"]

import time
from collections.abc import Callable

from models.profile import UserProfile
from models.recommender import HybridRecommender
from models.synth import Clickstream


def per_event_us(
    n_items: int,
    *,
    users: int = 2_000,
    warm_events: int = 2_000,
    measured_events: int = 300,
    top_n: int = 20,
    seed: int = 0,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> float:
    """Mean microseconds per event over ``measured_events`` after ``warm_events`` untimed ones.

    ``progress(done, total)`` is called while the catalog is learned (the slow part at 1M items).

    >>> per_event_us(50, users=5, warm_events=20, measured_events=10) > 0
    True
    """
    world = Clickstream(users, n_items, seed=seed)
    model = HybridRecommender(seed=seed)
    records = world.items()
    step = max(1, len(records) // 100)
    for index, record in enumerate(records):
        model.learn_item(record)
        if index % step == 0:
            progress(index, len(records))
    progress(len(records), len(records))
    del records
    profiles: dict[str, UserProfile] = {}
    elapsed = 0.0
    for index, event in enumerate(world.events(warm_events + measured_events)):
        timed = index >= warm_events
        started = time.perf_counter()
        profile = profiles.get(event.user_id) or profiles.setdefault(
            event.user_id, UserProfile(event.user_id)
        )
        model.learn_one(event, profile)
        profile.observe(event, model.signal(event))
        model.recommend(profile, top_n, event.context, event.ts)
        if timed:
            elapsed += time.perf_counter() - started
    return elapsed / measured_events * 1e6
