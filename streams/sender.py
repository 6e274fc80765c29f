"""How the stream's pure parts hand a record to Kafka: ``send(topic, key, value)``, awaited.

The agents pass their producer's send; tests pass a list's append. Nothing else lives here.
"""

from __future__ import annotations

__all__ = ["Sender"]

from collections.abc import Awaitable, Callable
from typing import Any

#: ``await send(topic, key, value)`` produces one record.
Sender = Callable[[str, bytes | None, bytes], Awaitable[Any]]
