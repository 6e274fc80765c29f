"""The worker's consumer (streams/fetching.py) fetches with the settings' wait and size, and hands each
message on as Faust does, without Faust's tasks when its callback does not wait."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import faust
import pytest
from faust.transport.drivers import aiokafka as driver
from faust.types import Message
from mode import Service
from prometheus_client import CollectorRegistry

from engine.ops.settings import Settings
from streams import fetching
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


async def test_the_worker_app_keeps_faust_s_monitor_off_the_per_message_path(tmp_path: Path) -> None:
    app, pipeline = create_app(Settings(namespace="test-monitor", stack_dir=tmp_path), CollectorRegistry())
    assert isinstance(app, fetching.App)
    app.on_init_dependencies()  # what starting the app runs first: Faust adds its Monitor there
    assert app.monitor is not None and app.monitor not in set(app.sensors)
    await pipeline.store.close()


class _Consumer(Service):
    """What `streams.fetching` reads of Faust's consumer: its flow, offsets, commits and callback."""

    def __init__(
        self, callback: Callable[[Any], Awaitable[None]], *, commit_every: int | None = None
    ) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()
        self.callback = callback
        self._read_offset: defaultdict[str, int | None] = defaultdict(lambda: None)
        self._commit_every, self._n_acked = commit_every, 0
        self.gaps: list[tuple[str, int, int]] = []
        self.commits = 0
        #: topic -> its channels, as Faust's conductor indexes them (`fetching.room` reads their queues).
        self.channels: dict[str, list[Any]] = {}
        self.app = SimpleNamespace(
            topics=SimpleNamespace(acks_enabled_for=lambda topic: True, _topic_name_index=self.channels)
        )

    async def _add_gap(self, tp: str, start: int, stop: int) -> None:
        self.gaps.append((tp, start, stop))

    async def commit(self) -> None:
        self.commits += 1


async def test_a_callback_that_does_not_wait_runs_at_once_without_a_task() -> None:
    ran: list[int] = []

    async def callback(message: int) -> None:
        ran.append(message)

    consumer = _Consumer(callback)
    tasks = len(asyncio.all_tasks())
    coro = fetching.deliver(cast(Any, consumer), callback(7))
    with pytest.raises(StopIteration):
        coro.send(None)  # delivered in one step: nothing was scheduled
    assert ran == [7] and len(asyncio.all_tasks()) == tasks


async def test_a_callback_that_waits_is_finished_from_where_it_stopped() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def callback(message: int) -> None:
        steps.append("queued")
        steps.append(await gate)  # a full queue: Faust's callback waits for room
        await asyncio.sleep(0)
        steps.append("done")

    consumer = _Consumer(callback)
    delivery = asyncio.ensure_future(fetching.deliver(cast(Any, consumer), callback(1)))
    await asyncio.sleep(0.01)
    assert steps == ["queued"] and not delivery.done()
    gate.set_result("room")
    await asyncio.wait_for(delivery, 1)
    assert steps == ["queued", "room", "done"]


async def test_a_suspended_flow_abandons_a_waiting_callback_as_faust_does() -> None:
    outcome: list[str] = []

    async def callback(message: int) -> None:
        try:
            await asyncio.Event().wait()  # never room
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    consumer = _Consumer(callback)
    delivery = asyncio.ensure_future(fetching.deliver(cast(Any, consumer), callback(1)))
    await asyncio.sleep(0.01)
    consumer.suspend_flow.set()  # a rebalance
    await asyncio.wait_for(delivery, 1)
    await asyncio.sleep(0)
    assert outcome == ["cancelled"]


async def test_a_failing_callback_raises_from_deliver_either_way() -> None:
    async def at_once(message: int) -> None:
        raise ValueError("bad")

    async def later(message: int) -> None:
        await asyncio.sleep(0.01)
        raise ValueError("bad")

    for callback in (at_once, later):
        with pytest.raises(ValueError, match="bad"):
            await fetching.deliver(cast(Any, _Consumer(callback)), callback(1))


async def test_messages_are_handed_on_with_faust_s_offsets_gaps_and_commits() -> None:
    got: list[int] = []

    async def callback(message: Any) -> None:
        got.append(message.offset)

    consumer = _Consumer(callback, commit_every=2)
    for offset in (0, 1, 4, 3, 5):  # 2-3 never came (a gap); 3 comes late: read past already
        await fetching._hand_on(
            cast(Any, consumer), cast(Any, "tp"), cast(Any, SimpleNamespace(offset=offset, topic="t"))
        )
        consumer._n_acked += 1  # the agent acknowledged it
    assert got == [0, 1, 4, 5]
    assert consumer.gaps == [("tp", 2, 4)]
    assert consumer._read_offset["tp"] == 5
    assert consumer.commits == 2  # when 2 were acknowledged since the last commit


def _full_queue(consumer: _Consumer, size: int) -> asyncio.Queue[int]:
    queue: asyncio.Queue[int] = asyncio.Queue(maxsize=size)
    for n in range(size):
        queue.put_nowait(n)
    consumer.channels["t"] = [SimpleNamespace(queue=queue)]
    return queue


async def test_a_message_for_a_queue_with_room_goes_on_at_once() -> None:
    consumer = _Consumer(lambda _message: asyncio.sleep(0))
    queue = _full_queue(consumer, 4)
    queue.get_nowait()
    with pytest.raises(StopIteration):
        fetching.room(cast(Any, consumer), "t").send(None)  # not full: no wait at all


async def test_a_message_for_a_full_queue_waits_until_it_is_half_empty() -> None:
    consumer = _Consumer(lambda _message: asyncio.sleep(0))
    queue = _full_queue(consumer, 4)
    waiting = asyncio.ensure_future(fetching.room(cast(Any, consumer), "t"))
    await asyncio.sleep(3 * fetching.ROOM_POLL_S)
    queue.get_nowait()  # 3 of 4: not yet
    await asyncio.sleep(3 * fetching.ROOM_POLL_S)
    assert not waiting.done()
    queue.get_nowait()  # 2 of 4: half
    await asyncio.wait_for(waiting, 1.0)


async def test_a_queue_cleared_by_a_rebalance_ends_the_wait() -> None:
    consumer = _Consumer(lambda _message: asyncio.sleep(0))
    queue = _full_queue(consumer, 4)
    waiting = asyncio.ensure_future(fetching.room(cast(Any, consumer), "t"))
    await asyncio.sleep(3 * fetching.ROOM_POLL_S)
    while not queue.empty():  # Faust's flow control clears the queue on resume, waking no putter
        queue.get_nowait()
    await asyncio.wait_for(waiting, 1.0)


async def test_raw_events_are_what_faust_s_raw_codec_makes_of_the_record(tmp_path: Path) -> None:
    app, pipeline = create_app(Settings(namespace="test-raw", stack_dir=tmp_path), CollectorRegistry())
    stock = faust.Schema(key_serializer="raw", value_serializer="raw").compile(app)
    raw = fetching.RawSchema().compile(app)
    for key, value in [(b"u1", b'{"a": 1}'), (None, b"x"), (b"k", None), (None, None)]:
        message = Message("t", 0, 7, 1.0, 0, [("h", b"1")], key, value, None)
        ours, faust_s = await raw(message), await stock(message)
        assert type(ours) is type(faust_s) and isinstance(ours, faust.Event)
        assert (ours.key, ours.value, ours.headers, ours.message) == (
            faust_s.key, faust_s.value, faust_s.headers, faust_s.message,
        )  # fmt: skip
    await pipeline.store.close()


async def test_the_producer_buffer_is_waited_for_only_when_full(tmp_path: Path) -> None:
    app, pipeline = create_app(Settings(namespace="test-ebb", stack_dir=tmp_path), CollectorRegistry())
    buffer = app.producer.buffer
    assert buffer.wait_until_ebb.__qualname__.startswith("_lean_ebb")  # the setting read once
    flushed: list[int] = []

    async def flush_atmost(n: int) -> None:
        flushed.append(n)

    buffer.flush_atmost = flush_atmost  # type: ignore[method-assign,assignment]
    with pytest.raises(StopIteration):
        buffer.wait_until_ebb().send(None)  # an empty buffer: no wait at all
    for n in range(buffer.max_messages + 1):
        buffer.pending.put_nowait(n)
    await buffer.wait_until_ebb()  # over its size: Faust's own wait, which flushes
    assert flushed == [buffer.max_messages]
    await pipeline.store.close()
