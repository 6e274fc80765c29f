"""The worker's Kafka consumer: Faust's aiokafka consumer with the fetch wait and size of the settings.

aiokafka leaves a partition out of the next fetch request while records it fetched before are still
waiting to be handed to the agents, and sends one request per broker at a time. Under steady traffic
the request that goes out can then hold only partitions with nothing new (the catalog's, say), and the
broker keeps it up to the fetch wait before it answers; Faust sets 1,500 ms, and every events partition
waited behind it: with one worker at 850 events/s, runs of seconds in which records reached the agent
0.75 s old on average (p50 freshness 0.75-1.6 s) while the worker idled half the time. A short wait
bounds that. The other half is the fetch size: answering each fetch as soon as one record is there
made the worker spend 0.38 of a core at 100 events/s, fetching a record or two at a time; asking for
``kafka_fetch_min_bytes`` (or the wait, whichever comes first) brought that to 0.21
(docs/benchmarks.md has the measured trade-off). Only the consumer is changed; nothing here reads or
writes records.
"""

from __future__ import annotations

__all__ = ["install"]

from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as driver


def install(app: faust.App, *, wait_ms: int, min_bytes: int) -> None:
    """Make ``app``'s worker consumer (created when the worker starts) fetch with ``wait_ms`` and
    ``min_bytes``; per app, not for the process (the transport instance's class shadows the driver's).

    >>> app = faust.App("fetching-doctest", broker="kafka://localhost:9092")
    >>> install(app, wait_ms=50, min_bytes=16_384)
    >>> app.transport.Consumer is driver.Consumer, issubclass(app.transport.Consumer, driver.Consumer)
    (False, True)
    """

    class ConsumerThread(driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
            consumer = super()._create_worker_consumer(transport)
            # Read by `AIOKafkaConsumer.start` when it builds its fetcher; Faust passes neither.
            consumer._fetch_max_wait_ms = wait_ms
            consumer._fetch_min_bytes = min_bytes
            return consumer

    class Consumer(driver.Consumer):
        def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    app.transport.Consumer = Consumer  # type: ignore[misc]
