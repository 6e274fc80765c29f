"""The event and key contract: what apps send and what readers find in Redis. No I/O."""

from schemas import keys
from schemas.errors import (
    ConfigError,
    DeliveryError,
    InvalidEventError,
    PersonalizeError,
    Problem,
    ServiceUnavailableError,
    StackError,
)
from schemas.events import (
    SCHEMA_VERSION,
    Context,
    Event,
    EventType,
    ItemRecord,
    encode,
    parse_event,
    parse_item,
)

__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "Context",
    "DeliveryError",
    "Event",
    "EventType",
    "InvalidEventError",
    "ItemRecord",
    "PersonalizeError",
    "Problem",
    "ServiceUnavailableError",
    "StackError",
    "encode",
    "keys",
    "parse_event",
    "parse_item",
]
