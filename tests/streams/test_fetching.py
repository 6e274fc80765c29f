"""The worker's consumer fetches with the settings' wait and size (streams/fetching.py)."""

from __future__ import annotations

from typing import cast

import faust
from faust.transport.drivers import aiokafka as driver

from streams import fetching


async def test_worker_consumer_fetches_with_the_settings_wait_and_size() -> None:
    app = faust.App("test-fetching", broker="kafka://127.0.0.1:9")
    plain = app.transport.Consumer
    fetching.install(app, wait_ms=50, min_bytes=16_384)
    # Built by the transport's consumer class; never started, so it connects to nothing.
    consumer = cast(driver.Consumer, app.consumer)
    kafka = consumer._thread._create_worker_consumer(cast(driver.Transport, app.transport))
    assert (kafka._fetch_max_wait_ms, kafka._fetch_min_bytes) == (50, 16_384)
    assert issubclass(app.transport.Consumer, plain)  # Faust's own consumer otherwise
    await kafka.stop()  # never started: closes nothing but the unused client
    consumer._thread.thread_loop.close()  # the consumer thread's own loop, never run
