"""The event and key contract: what apps send and what readers find in Redis. No I/O."""

from schemas import keys
from schemas.errors import (
    CheckpointError,
    CheckpointVersionError,
    ConfigError,
    DataFormatError,
    DeliveryError,
    InvalidEventError,
    PersonalizeError,
    Problem,
    RequestRejectedError,
    ServiceUnavailableError,
    StackError,
)
from schemas.events import (
    SCHEMA_VERSION,
    Context,
    Event,
    EventType,
    ItemRecord,
    decode_object,
    encode,
    parse_event,
    parse_events,
    parse_item,
)

__all__ = [
    "SCHEMA_VERSION",
    "CheckpointError",
    "CheckpointVersionError",
    "ConfigError",
    "Context",
    "DataFormatError",
    "DeliveryError",
    "Event",
    "EventType",
    "InvalidEventError",
    "ItemRecord",
    "PersonalizeError",
    "Problem",
    "RequestRejectedError",
    "ServiceUnavailableError",
    "StackError",
    "decode_object",
    "encode",
    "keys",
    "parse_event",
    "parse_events",
    "parse_item",
]
