"""The image's HEALTHCHECK: find the container's role from PID 1's command line and check that role.

worker: ``personalize worker-health``, run as ``python -m engine.cli.health`` (its heartbeat in Redis);
api: ``GET /v1/health``; dashboard: its page. Anything else (a one-off command) is healthy. Standard
library only, so the API's and the dashboard's checks cost a few milliseconds; it never changes anything.
"""

from __future__ import annotations

__all__ = ["ROLES", "check", "main", "port_of", "role_of"]

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

#: Roles with a check, and the environment variable and default of the port each serves.
ROLES = {"api": ("PERSONALIZE_API_PORT", 8080), "dashboard": ("PERSONALIZE_DASHBOARD_PORT", 8090)}
_PATHS = {"api": "/v1/health", "dashboard": "/"}


def role_of(argv: Sequence[str]) -> str | None:
    """The ``personalize`` command PID 1 runs (tini's arguments and options skipped).

    >>> role_of(["tini", "--", "personalize", "worker"]), role_of(["/opt/p/bin/personalize", "api"])
    ('worker', 'api')
    >>> role_of(["personalize", "stack", "status"]) is None, role_of(["redis-server"]) is None
    (True, True)
    """
    for index, arg in enumerate(argv):
        if os.path.basename(arg) == "personalize":
            rest = [a for a in argv[index + 1 :] if not a.startswith("-")]
            if rest and rest[0] in ("worker", *ROLES):
                return rest[0]
            return None
    return None


def port_of(role: str, argv: Sequence[str], environ: dict[str, str]) -> int:
    """The port ``role`` serves: ``--port`` on its command line, else its setting, else the default.

    >>> port_of("api", ["personalize", "api", "--port", "9000"], {})
    9000
    >>> port_of("api", ["personalize", "api"], {"PERSONALIZE_API_PORT": "8081"}), port_of("dashboard", [], {})
    (8081, 8090)
    """
    for index, arg in enumerate(argv):
        if arg == "--port" and index + 1 < len(argv):
            return int(argv[index + 1])
        if arg.startswith("--port="):
            return int(arg.split("=", 1)[1])
    variable, default = ROLES[role]
    return int(environ.get(variable, default))


def check(role: str | None, argv: Sequence[str], environ: dict[str, str], timeout_s: float = 5.0) -> int:
    """0 when ``role`` is healthy, 1 when not (and why on stderr)."""
    if role is None:
        return 0
    if role == "worker":
        command = [sys.executable, "-m", "engine.cli.health"]
        done = subprocess.run(command, timeout=timeout_s * 2, check=False)
        return 0 if done.returncode == 0 else 1
    url = f"http://127.0.0.1:{port_of(role, argv, environ)}{_PATHS[role]}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback only
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"{role}: {url} unreachable: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"{role}: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    with open("/proc/1/cmdline", "rb") as f:
        argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    return check(role_of(argv), argv, dict(os.environ))


if __name__ == "__main__":
    raise SystemExit(main())
