"""A per-name token bucket: the API's per-key rate limit, in one process's memory.

Each API process limits on its own, so N processes behind one port let a key through up to N times the
rate. Never blocks and never sleeps: `TokenBuckets.take` says how long to wait instead.
"""

from __future__ import annotations

__all__ = ["TokenBuckets"]

from collections.abc import Callable


class TokenBuckets:
    """``rate`` tokens a second per name, up to ``burst`` saved; a request takes one.

    >>> now = [0.0]
    >>> buckets = TokenBuckets(rate=2.0, burst=2, clock=lambda: now[0])
    >>> [buckets.take("a") for _ in range(3)], buckets.take("b")
    ([0.0, 0.0, 0.5], 0.0)
    >>> now[0] = 0.5
    >>> buckets.take("a"), buckets.take("a")
    (0.0, 0.5)
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        #: name -> (tokens left, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, name: str) -> float:
        """Take a token of ``name``: 0.0 if there was one, else the seconds until there is (none taken)."""
        now = self.clock()
        tokens, then = self._buckets.get(name, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[name] = (tokens - 1.0, now)
            return 0.0
        self._buckets[name] = (tokens, now)
        return (1.0 - tokens) / self.rate
