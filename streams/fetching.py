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
(docs/benchmarks.md has the measured trade-off).

And the hand-off of each fetched message to the agents: Faust runs its per-message callback (decode,
queue for the agent) as a task raced against the flow's suspension and the consumer's stop and crash,
four tasks and an `asyncio.wait` per message, though the callback almost never waits. Here it runs at
once when it does not wait, and as Faust runs it when it does (`deliver`). One worker draining a
backlog (`personalize bench --workers`, runs of the same hour): 2,441-2,744 events/s at 373-425 us of
CPU per event with Faust's hand-off, 2,831-3,179 at 313-362 without it (docs/benchmarks.md). Nothing
here reads or writes records. And `App` leaves Faust's Monitor sensor, whose statistics nothing here
reads, off that path.

In a drain the agent is slower than the fetcher, so its queue is full and Faust's callback puts every
record with a task of its own, which `deliver` races as above. `room` waits, before a record goes to a
full queue, until the queue is down to half, and the records then go in without a task: a bare agent
with these patches went from 40 to 28 us of CPU per record (24,900 -> 35,300-35,900 records/s), one
worker from 244-272 to 234-248 (docs/benchmarks.md, session 22). The worker's topics carry bytes, made
into events without Faust's serializer registry (`RawSchema`), and `App` reads the settings the
per-message path needs once: 28 -> 22-24 us per record.
"""

from __future__ import annotations

__all__ = ["ROOM_POLL_S", "YIELD_EVERY", "App", "RawSchema", "deliver", "drain", "install", "room"]

import asyncio
from collections.abc import Awaitable, Coroutine, Generator, Iterable
from typing import Any, cast

import aiokafka
import faust
from faust.transport import consumer as base
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, AppT, EventT, Message, ProducerT, ServiceT

#: Messages handed on between two turns given to the event loop (Faust's figure).
YIELD_EVERY = 100
#: How often a delivery waiting for room in a full agent queue looks again (`room`), in seconds.
ROOM_POLL_S = 0.002


class _Resumed(Awaitable[None]):
    """A coroutine that already ran to its first suspension, awaitable again from where it stopped (the
    future it waits for is handed to the loop first)."""

    def __init__(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._coro, self._waiting = coro, waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coro, pending = self._coro, self._waiting
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - cancellation and the rest go to the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                pending = coro.send(sent)
            except StopIteration:
                return


async def deliver(consumer: base.Consumer, callback: Awaitable[Any]) -> None:
    """Run Faust's per-message callback: at once when it completes without waiting (the usual case:
    its agents' queues have room and the producer's buffer is not full), else as Faust does, until it
    completes or the consumer's flow is suspended (a rebalance), whichever comes first."""
    if not isinstance(callback, Coroutine):
        await consumer.wait_first(callback, consumer.suspend_flow.wait())
        return
    try:
        waiting = callback.send(None)
    except StopIteration:
        return
    await consumer.wait_first(_Resumed(callback, waiting), consumer.suspend_flow.wait())


async def room(consumer: base.Consumer, topic: str) -> None:
    """Wait while an agent's queue of ``topic``'s records is full, until it is down to half (or the
    consumer stops): the records in hand then go in at once, each without a task.

    A full queue makes Faust's per-message callback put the record with a task and an `asyncio.wait`,
    and `deliver` race that against the flow's suspension: four tasks per message, for every message
    of a drain, where the agent is slower than the fetcher and its queue stays full. Polled (every
    `ROOM_POLL_S`), not awaited on the queue: a rebalance clears it without waking anyone.
    """
    for channel in consumer.app.topics._topic_name_index.get(topic, ()):  # type: ignore[attr-defined]  # noqa: SLF001
        queue = channel.queue
        if queue.full():
            half = queue.maxsize // 2
            while queue.qsize() > half and not consumer.should_stop:
                await asyncio.sleep(ROOM_POLL_S)


class App(faust.App):
    """Faust's app, lighter on the per-message path.

    Without its Monitor sensor: the Monitor keeps statistics of every message and event for Faust's web
    views, which the worker does not serve (``web_enabled=False``; its metrics are its own,
    `engine.ops.metrics`): four calls per event, ~3 us. It stays the app's ``monitor`` (the consumer
    reports commits and end offsets to it), only no longer as a sensor. And each message's event is made
    with the event class read from the settings once (Faust reads it per message, and a settings read
    costs about a microsecond), as is the producer buffer's size check (`_lean_ebb`).
    """

    _event_class: Any = None

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        dependencies = super().on_init_dependencies()
        self.sensors.remove(self.monitor)
        return dependencies

    def create_event(self, key: Any, value: Any, headers: Any, message: Message) -> EventT[Any]:
        event_class = self._event_class
        if event_class is None:
            event_class = self._event_class = self.conf.Event
        return cast(EventT[Any], event_class(self, key, value, headers, message))

    def _new_producer(self) -> ProducerT:
        producer = super()._new_producer()
        _lean_ebb(producer.buffer)
        return producer


def _lean_ebb(buffer: Any) -> None:
    """Faust's conductor awaits the producer buffer's ``wait_until_ebb`` before each message, and its
    size check reads a setting every time: the same check with the setting read once (the buffer is
    then Faust's ``pending`` queue). A full buffer still waits as Faust's does."""
    if buffer.app.conf.producer_threaded:
        return
    pending, until_ebb = buffer.pending, buffer.wait_until_ebb

    async def wait_until_ebb() -> None:
        if pending.qsize() > buffer.max_messages:
            await until_ebb()

    buffer.wait_until_ebb = wait_until_ebb


class RawSchema(faust.Schema[Any, Any]):
    """A topic's keys and values as the bytes Kafka holds (what Faust's ``raw`` codec gives), made into
    events without Faust's serializer registry (two codec look-ups and a model check per message)."""

    def compile(self, app: AppT, **_kwargs: Any) -> Any:
        create_event = app.create_event

        async def decode(message: Message, *, propagate: bool = False) -> EventT[Any]:
            return create_event(message.key, message.value, message.headers, message)

        return decode


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

        async def _drain_messages(self, fetcher: ServiceT) -> None:
            await drain(self, fetcher)

    app.transport.Consumer = Consumer  # type: ignore[misc]


async def drain(consumer: base.Consumer, fetcher: ServiceT) -> None:
    """Faust's fetch loop (`faust.transport.consumer.Consumer._drain_messages` of faust-streaming 0.15),
    handing each message on through `deliver`: Faust races every message's callback against the flow's
    suspension and the consumer's stop and crash, four tasks and an `asyncio.wait` per message."""
    stopping = consumer._stopped.is_set  # noqa: SLF001 - the loop Faust runs reads the same flags
    fetcher_stopping = fetcher._stopped.is_set  # type: ignore[attr-defined]  # noqa: SLF001
    since_yield = 0
    try:
        while not (stopping() or fetcher_stopping()):
            consumer.diag.set_flag(base.CONSUMER_FETCHING)
            records = consumer.getmany(timeout=1.0)
            await consumer.sleep(0)
            if consumer.should_stop:
                continue
            async for tp, message in records:
                since_yield += 1
                if since_yield > YIELD_EVERY:
                    await asyncio.sleep(0)
                    since_yield = 0
                await _hand_on(consumer, tp, message)
            consumer.diag.unset_flag(base.CONSUMER_FETCHING)
    except consumer.consumer_stopped_errors:
        if not consumer.transport.app.should_stop:
            raise
        consumer.log.info("Broker stopped consumer, shutting down...")
    except asyncio.CancelledError:
        if not consumer.transport.app.should_stop:
            raise
        consumer.log.info("Consumer shutting down for user cancel.")
    except Exception as exc:
        consumer.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        consumer.diag.unset_flag(base.CONSUMER_FETCHING)


async def _hand_on(consumer: base.Consumer, tp: TP, message: Message) -> None:
    """One fetched message, as Faust's loop takes it: skipped if read before, a gap in its partition's
    offsets noted, the offsets committed when due, then delivered and its offset marked read."""
    offset, last = message.offset, consumer._read_offset[tp]  # noqa: SLF001
    if last is not None and offset < last:
        return
    if last and offset - last > 1 and consumer.app.topics.acks_enabled_for(message.topic):
        await consumer._add_gap(tp, last + 1, offset)  # noqa: SLF001
    every = consumer._commit_every  # noqa: SLF001
    if every is not None and consumer._n_acked >= every:  # noqa: SLF001
        consumer._n_acked = 0  # noqa: SLF001
        await consumer.commit()
    await room(consumer, message.topic)
    await deliver(consumer, consumer.callback(message))
    consumer._read_offset[tp] = offset  # noqa: SLF001
