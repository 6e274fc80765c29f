"""Repeated log lines of a client library, let through once per interval with a count of the rest.

While the Kafka broker is away, aiokafka's clients retry their metadata without a pause and log two
errors per attempt: some 8,000 lines a second in a worker, which buries everything else in its log.
`Throttle` keeps the first line of each kind (logger and message template), drops the same kind for
``every_s`` seconds, and then lets the next one through with how many it dropped. It does not change
levels, touch other messages, or slow the retries themselves.

>>> import logging
>>> clock = iter([0.0, 1.0, 2.0, 11.0]).__next__
>>> throttle = Throttle(every_s=10.0, clock=clock)
>>> def line(n: int) -> logging.LogRecord:
...     return logging.LogRecord("aiokafka", logging.ERROR, "", 0, "Unable to reach %s", (n,), None)
>>> [throttle.filter(line(n)) for n in range(4)]
[True, False, False, True]
>>> line_4 = line(4)
>>> throttle = Throttle(every_s=10.0, clock=iter([0.0, 1.0, 11.0]).__next__)
>>> throttle.filter(line(1)), throttle.filter(line(2)), throttle.filter(line_4)
(True, False, True)
>>> line_4.getMessage()
'Unable to reach 4 (1 more like it in the last 11 s)'
"""

from __future__ import annotations

__all__ = ["LIBRARY_LOGGERS", "Throttle", "install"]

import logging
import time
from collections.abc import Callable

#: The loggers whose retry loops repeat one line per attempt while a dependency is away.
LIBRARY_LOGGERS = ("aiokafka", "aiokafka.consumer.fetcher", "aiokafka.consumer.group_coordinator")


class Throttle(logging.Filter):
    """A logging filter: one record per (logger, template) per ``every_s`` seconds."""

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        #: (logger, template) -> (when one was last let through, how many were dropped since)
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, str(record.msg))
        now = self.clock()
        last = self._seen.get(kind)
        if last is not None and now - last[0] < self.every_s:
            self._seen[kind] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} more like it in the last {now - last[0]:.0f} s)"
        self._seen[kind] = (now, 0)
        return True


def install(every_s: float = 10.0) -> Throttle:
    """Throttle the repeated lines of `LIBRARY_LOGGERS` (one shared filter)."""
    throttle = Throttle(every_s)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(throttle)
    return throttle
