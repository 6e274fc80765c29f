"""The metrics port scheme and the Prometheus file_sd targets file (`engine.ops.scrape`), on loopback."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from engine.ops import scrape, workers
from engine.ops.settings import Settings
from schemas.errors import StackError


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port held by a listening socket for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_worker_serves_on_the_first_free_port_of_its_span(taken: int) -> None:
    registry = CollectorRegistry()
    Counter("scheme_probe", "A sample to find.", registry=registry).inc()
    at = scrape.serve_metrics(Settings(metrics_port=taken, metrics_port_span=8), registry)
    assert at is not None
    host, port = at.rsplit(":", 1)
    assert host == "127.0.0.1" and taken < int(port) < taken + 8
    with urllib.request.urlopen(f"http://{at}/metrics", timeout=5) as answer:
        assert b"scheme_probe_total 1.0" in answer.read()


def test_no_endpoint_for_port_0_and_an_error_when_the_span_is_full(taken: int) -> None:
    assert scrape.serve_metrics(Settings(metrics_port=0), CollectorRegistry()) is None
    with pytest.raises(StackError, match="PERSONALIZE_METRICS_PORT_SPAN"):
        scrape.serve_metrics(Settings(metrics_port=taken, metrics_port_span=1), CollectorRegistry())


def test_the_targets_file_lists_live_workers_with_metrics_and_is_rewritten_only_on_change(
    tmp_path: Path,
) -> None:
    settings = Settings(namespace="shop", stack_dir=tmp_path)
    workers.register(settings, "127.0.0.1:9470")
    # A worker of an older version (no info) and an entry whose process is gone (pid reused or dead).
    (tmp_path / "workers" / "1").write_text("0\n")
    assert scrape.write_targets(settings)
    expected = [
        {
            "labels": {"namespace": "shop", "worker": f"{socket.gethostname()}-{os.getpid()}"},
            "targets": ["127.0.0.1:9470"],
        }
    ]
    assert orjson.loads(scrape.targets_path(settings).read_bytes()) == expected
    assert not (tmp_path / "workers" / "1").exists()
    assert not scrape.write_targets(settings)  # unchanged
    (tmp_path / "workers" / str(os.getpid())).unlink()  # as at the worker's exit
    assert scrape.write_targets(settings)
    assert orjson.loads(scrape.targets_path(settings).read_bytes()) == []
    assert [p.name for p in scrape.targets_path(settings).parent.iterdir()] == ["workers.json"]
