"""The worker's consumer fetches with the settings' wait and size (streams/fetching.py)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from faust.transport.drivers import aiokafka as driver
from prometheus_client import CollectorRegistry

from engine.ops.settings import Settings
from streams.app import create_app


async def test_worker_consumer_fetches_with_the_settings_wait_and_size(tmp_path: Path) -> None:
    settings = Settings(
        namespace="test-fetching", stack_dir=tmp_path, kafka_fetch_wait_ms=77, kafka_fetch_min_bytes=1234
    )
    app, pipeline = create_app(settings, CollectorRegistry())
    assert app.transport.Consumer is not driver.Consumer  # Faust's own would wait 1,500 ms for 1 byte
    # Built by the transport's consumer class; never started, so it connects to nothing.
    consumer = cast(driver.Consumer, app.consumer)
    kafka = consumer._thread._create_worker_consumer(cast(driver.Transport, app.transport))
    assert (kafka._fetch_max_wait_ms, kafka._fetch_min_bytes) == (77, 1234)
    await kafka.stop()  # never started: closes nothing but the unused client
    consumer._thread.thread_loop.close()  # the consumer thread's own loop, never run
    await pipeline.store.close()
