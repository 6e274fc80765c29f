"""The transport ceiling: a bare confluent-kafka consumer reading the events topic from the beginning.

It only counts records (no decoding, no model, no Redis), in its own consumer group, so it measures
what Kafka and the client library deliver to one Python process.
"""

from __future__ import annotations

__all__ = ["consume_rate"]

import time

import confluent_kafka


def consume_rate(bootstrap: str, topic: str, group: str, expected: int, timeout_s: float = 120.0) -> float:
    """Records per second after the first batch received, up to the ``expected``-th record.

    The first batch only starts the clock: its records were fetched before the clock ran. When one batch
    holds them all, the clock runs from the call that returned it.
    """
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = counted = 0
    first = last = first_call = 0.0
    deadline = time.monotonic() + timeout_s
    try:
        while seen < expected and time.monotonic() < deadline:
            called = time.perf_counter()
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            got = sum(1 for m in batch if m.error() is None)
            if got and not seen:
                first, first_call = time.perf_counter(), called
            elif got:
                counted += got
            seen += got
            last = time.perf_counter()
    finally:
        consumer.close()
    if seen < expected:
        raise TimeoutError(f"raw consumer read {seen} of {expected} records of {topic} in {timeout_s:.0f}s")
    if counted:
        return counted / max(last - first, 1e-9)
    return seen / max(last - first_call, 1e-9)
