"""Jobs done once per namespace, whatever the number of workers: by the owner of one fixed partition.

Kafka's group protocol gives each events partition to exactly one worker of the namespace, so "I own
events partition `SINGLETON_PARTITION`" elects one worker without any other coordination, and a rebalance
hands the job over with the partition. Global jobs (trending) ask `Singleton.held` before each round.
Never decides anything else.
"""

from __future__ import annotations

__all__ = ["SINGLETON_PARTITION", "Singleton"]

from collections.abc import Callable, Iterable
from typing import Protocol


class _TopicPartition(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


#: The events partition whose owner runs the namespace's global jobs.
SINGLETON_PARTITION = 0


class Singleton:
    """Whether this worker holds the namespace's global jobs now, read from its current assignment.

    >>> from collections import namedtuple
    >>> TP = namedtuple("TP", "topic partition")
    >>> owned = [TP("p13n.shop.events", 3)]
    >>> singleton = Singleton("p13n.shop.events", lambda: owned)
    >>> singleton.held()
    False
    >>> owned.append(TP("p13n.shop.events", 0))
    >>> singleton.held()
    True
    """

    def __init__(self, events_topic: str, assignment: Callable[[], Iterable[_TopicPartition]]) -> None:
        self.events_topic = events_topic
        self.assignment = assignment

    def held(self) -> bool:
        return any(
            tp.topic == self.events_topic and tp.partition == SINGLETON_PARTITION for tp in self.assignment()
        )
