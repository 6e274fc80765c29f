"""deploy/healthcheck.py, the image's HEALTHCHECK: the role from PID 1's command line, and the API's and
dashboard's checks against a local HTTP server answering 200, 503 or nothing."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import ModuleType

import pytest

from tests.deploy.support import DEPLOY


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", DEPLOY / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load()


@pytest.fixture
def server() -> Iterator[tuple[int, list[int], list[str]]]:
    """A loopback server answering each GET with the next status of the list, recording the paths."""
    statuses: list[int] = []
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            paths.append(self.path)
            self.send_response(statuses.pop(0))
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], statuses, paths
    httpd.shutdown()
    httpd.server_close()


def test_roles_from_pid_1() -> None:
    assert (
        healthcheck.role_of(["tini", "--", "personalize", "dashboard", "--metrics-url", "x"]) == "dashboard"
    )
    assert healthcheck.role_of(["tini", "--", "personalize", "--help"]) is None
    assert healthcheck.check(None, [], {}) == 0  # a one-off command has nothing to check


def test_api_healthy_only_on_200(server: tuple[int, list[int], list[str]]) -> None:
    port, statuses, paths = server
    env = {"PERSONALIZE_API_PORT": str(port)}
    statuses += [200, 503]
    assert healthcheck.check("api", ["personalize", "api"], env) == 0
    assert healthcheck.check("api", ["personalize", "api"], env) == 1
    assert paths == ["/v1/health", "/v1/health"]


def test_the_port_on_the_command_line_wins(server: tuple[int, list[int], list[str]]) -> None:
    port, statuses, paths = server
    statuses += [200, 200]
    argv = ["personalize", "api", "--port", str(port)]
    assert healthcheck.check("api", argv, {"PERSONALIZE_API_PORT": "1"}) == 0
    dashboard = {"PERSONALIZE_DASHBOARD_PORT": str(port)}
    assert healthcheck.check("dashboard", ["personalize", "dashboard"], dashboard) == 0
    assert paths == ["/v1/health", "/"]


def test_nothing_listening_is_unhealthy() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert healthcheck.check("api", ["personalize", "api"], {"PERSONALIZE_API_PORT": str(port)}, 1.0) == 1
