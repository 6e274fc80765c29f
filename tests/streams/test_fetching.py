"""The worker's consumer fetches with the short broker-side wait (streams/fetching.py)."""

from __future__ import annotations

from typing import cast

import faust
from faust.transport.drivers import aiokafka as driver

from streams import fetching


async def test_worker_consumer_waits_briefly_for_records() -> None:
    app = faust.App("test-fetching", broker="kafka://127.0.0.1:9")
    plain = app.transport.Consumer
    fetching.install(app)
    # Built by the transport's consumer class; never started, so it connects to nothing.
    consumer = cast(driver.Consumer, app.consumer)
    kafka = consumer._thread._create_worker_consumer(cast(driver.Transport, app.transport))
    assert kafka._fetch_max_wait_ms == fetching.FETCH_WAIT_MS == 100
    assert issubclass(app.transport.Consumer, plain)  # Faust's own consumer otherwise
    await kafka.stop()  # never started: closes nothing but the unused client
    consumer._thread.thread_loop.close()  # the consumer thread's own loop, never run
