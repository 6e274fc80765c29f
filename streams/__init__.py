"""Faust wiring: the app, topics, tables, codecs and agents that move events from Kafka into models.

`create_app` is imported on first use, so importing this package does not import Faust.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from streams.app import create_app

        return create_app
    raise AttributeError(f"module 'streams' has no attribute {name!r}")
