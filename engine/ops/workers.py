"""Registry of the worker processes started on this machine, so `personalize stack down` stops them and
`engine.ops.scrape` lists them for Prometheus.

A worker registers its pid with the kernel's start time of the process, which together name one
process for good: a pid reused later by something else is never mistaken for a worker. Beside the entry,
``<pid>.json`` in the info folder holds the worker's namespace and metrics address.
"""

from __future__ import annotations

__all__ = ["WorkerEntry", "entries", "forget_all", "log_path", "register", "running", "spawn"]

import atexit
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from engine.ops.settings import Settings


@dataclass(frozen=True, slots=True)
class WorkerEntry:
    """A live registered worker: its pid, namespace and ``host:port`` of its metrics ('' if none)."""

    pid: int
    namespace: str
    metrics: str


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


def _info_folder(settings: Settings) -> Path:
    return settings.stack_dir.resolve() / "workers-info"


def register(
    settings: Settings, metrics: str | None = None, on_exit: Callable[[], object] | None = None
) -> None:
    """Record this process as a worker of ``settings.namespace`` serving metrics at ``metrics``; the
    entry is removed again when the process exits, then ``on_exit`` runs."""
    folder, info = _folder(settings), _info_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    info.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    entry, details = folder / str(pid), info / f"{pid}.json"
    details.write_bytes(orjson.dumps({"namespace": settings.namespace, "metrics": metrics or ""}))
    entry.write_text(f"{_start_time(pid)}\n")
    if on_exit is not None:
        atexit.register(on_exit)  # atexit runs last in, first out: after the entry is gone
    atexit.register(details.unlink, missing_ok=True)
    atexit.register(entry.unlink, missing_ok=True)


def _details(settings: Settings, pid: int) -> tuple[str, str]:
    """(namespace, metrics) a worker registered; ('', '') if it wrote none (an older version)."""
    try:
        fields = orjson.loads((_info_folder(settings) / f"{pid}.json").read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return "", ""
    return str(fields.get("namespace", "")), str(fields.get("metrics", ""))


def entries(settings: Settings) -> list[WorkerEntry]:
    """Registered workers that still run, by pid (stale entries are dropped)."""
    folder = _folder(settings)
    alive = []
    for entry in sorted(folder.glob("*"), key=lambda p: int(p.name)) if folder.exists() else []:
        pid = int(entry.name)
        try:
            start = entry.read_text().strip()
        except FileNotFoundError:
            continue  # removed just now
        if _start_time(pid) == start:
            alive.append(WorkerEntry(pid, *_details(settings, pid)))
        else:
            entry.unlink(missing_ok=True)
            (_info_folder(settings) / f"{pid}.json").unlink(missing_ok=True)
    return alive


def running(settings: Settings) -> list[int]:
    """Pids of registered workers that still run (stale entries are dropped)."""
    return [entry.pid for entry in entries(settings)]


def forget_all(settings: Settings) -> None:
    shutil.rmtree(_folder(settings), ignore_errors=True)
    shutil.rmtree(_info_folder(settings), ignore_errors=True)


def spawn(settings: Settings, env: dict[str, str] | None = None) -> int:
    """Start `personalize worker` in the background (it registers itself); its output goes to `log_path`."""
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
