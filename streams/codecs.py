"""The orjson codec, registered with Faust as ``"orjson"`` for table values and dead-letter records.

Event topics stay ``raw``: the agent decodes and validates itself so that a bad payload reaches the
dead-letter topic with its original bytes instead of being dropped by Faust's decoder.
"""

from __future__ import annotations

__all__ = ["ORJSON", "OrjsonCodec", "register"]

from typing import Any

import orjson
from faust.serializers import codecs

ORJSON = "orjson"


class OrjsonCodec(codecs.Codec):
    """JSON via orjson (bytes in, bytes out).

    >>> codec = OrjsonCodec()
    >>> codec.loads(codec.dumps({"a": [1, 2]}))
    {'a': [1, 2]}
    """

    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


def register() -> None:
    """Make ``value_serializer="orjson"`` available to Faust (idempotent)."""
    codecs.register(ORJSON, OrjsonCodec())
