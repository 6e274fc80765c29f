"""Registry of the worker processes started on this machine, so `personalize stack down` stops them.

A worker registers its pid with the kernel's start time of the process, which together name one
process for good: a pid reused later by something else is never mistaken for a worker.
"""

from __future__ import annotations

__all__ = ["forget_all", "log_path", "register", "running", "spawn"]

import atexit
import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.ops.settings import Settings


def _folder(settings: Settings) -> Path:
    return settings.stack_dir.resolve() / "workers"


def log_path(settings: Settings) -> Path:
    """Where `spawn` sends a background worker's output."""
    return settings.stack_dir.resolve() / "worker.log"


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def register(settings: Settings) -> None:
    """Record this process as a worker; the entry is removed again when the process exits."""
    folder = _folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    entry = folder / str(pid)
    entry.write_text(f"{_start_time(pid)}\n")
    atexit.register(entry.unlink, missing_ok=True)


def running(settings: Settings) -> list[int]:
    """Pids of registered workers that still run (stale entries are dropped)."""
    folder = _folder(settings)
    alive = []
    for entry in sorted(folder.glob("*")) if folder.exists() else []:
        pid = int(entry.name)
        if _start_time(pid) == entry.read_text().strip():
            alive.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return alive


def forget_all(settings: Settings) -> None:
    shutil.rmtree(_folder(settings), ignore_errors=True)


def spawn(settings: Settings, env: dict[str, str] | None = None) -> int:
    """Start `personalize worker` in the background (it registers itself)."""
    log_file = log_path(settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    return proc.pid
