"""Every worker scrapeable: the metrics port scheme and the Prometheus file_sd targets file of this machine.

A worker serves its registry on the first free port of ``PERSONALIZE_METRICS_PORT`` ..
``PERSONALIZE_METRICS_PORT + PERSONALIZE_METRICS_PORT_SPAN - 1`` (0: no endpoint) and records the address
in its registry entry (`engine.ops.workers`); `write_targets` turns the live entries into the JSON file
that ``deploy/prometheus/prometheus.yml`` reads through ``file_sd_configs``. Never starts or stops a worker.
"""

from __future__ import annotations

__all__ = ["TARGETS_REFRESH_S", "serve_metrics", "targets", "targets_path", "write_targets"]

import os
import socket
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, start_http_server

from engine.ops import workers
from engine.ops.settings import Settings
from schemas.errors import StackError

#: Seconds between a worker's refreshes of the targets file (which drops workers killed without a goodbye).
TARGETS_REFRESH_S = 5.0


def serve_metrics(settings: Settings, registry: CollectorRegistry) -> str | None:
    """Serve ``registry`` on the first free port of the scheme; ``host:port`` as Prometheus should
    scrape it, or None when ``metrics_port`` is 0. Raises `StackError` when every port of the span is
    taken."""
    if not settings.metrics_port:
        return None
    last = min(65535, settings.metrics_port + settings.metrics_port_span - 1)
    for port in range(settings.metrics_port, last + 1):
        try:
            start_http_server(port, addr=settings.metrics_host, registry=registry)
        except OSError:
            continue
        wildcard = settings.metrics_host in ("", "0.0.0.0", "::")
        return f"{socket.gethostname() if wildcard else settings.metrics_host}:{port}"
    raise StackError(
        f"no free metrics port in {settings.metrics_port}-{last}: every one is taken (widen "
        "PERSONALIZE_METRICS_PORT_SPAN or move PERSONALIZE_METRICS_PORT)"
    )


def targets_path(settings: Settings) -> Path:
    """The file_sd JSON of this machine's workers (every namespace that shares the stack folder)."""
    return settings.stack_dir.resolve() / "prometheus" / "workers.json"


def targets(settings: Settings) -> list[dict[str, Any]]:
    """One file_sd target group per live worker that serves metrics, labelled with its namespace and id.

    The worker id is the heartbeat's (``<host>-<pid>``, `schemas.keys.worker`), so a scraped series and
    `personalize stack status` name the same worker.
    """
    host = socket.gethostname()
    return [
        {
            "targets": [entry.metrics],
            "labels": {"namespace": entry.namespace, "worker": f"{host}-{entry.pid}"},
        }
        for entry in workers.entries(settings)
        if entry.metrics
    ]


def write_targets(settings: Settings) -> bool:
    """Rewrite the targets file if the live workers changed (atomically: Prometheus never reads half a
    file); True if it was written."""
    path = targets_path(settings)
    body = orjson.dumps(targets(settings), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    try:
        if path.read_bytes() == body:
            return False
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.write_bytes(body)
    os.replace(scratch, path)
    return True
