"""``personalize checkpoint list|show``: every worker's model checkpoints of the namespace (headers only).

Read only: never unpickles a model and never writes; the worker alone writes checkpoints.
"""

from __future__ import annotations

__all__ = ["app"]

import time
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from engine.cli.support import table_console
from engine.ops.checkpoints import READS, CheckpointInfo, CheckpointStore
from engine.ops.settings import load
from models.recommender import MODEL_VERSION

app = typer.Typer(no_args_is_help=True, help="Model checkpoints of the worker (newest first).")
_JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store() -> CheckpointStore:
    settings = load()
    return CheckpointStore(
        settings.checkpoint_folder,
        settings.namespace,
        settings.checkpoint_keep,
        key=settings.checkpoint_signing_key,
    )


def _usable(info: CheckpointInfo) -> bool:
    return info.format in READS and info.model_version == MODEL_VERSION


@app.command("list")
def list_checkpoints(as_json: _JSON = False) -> None:
    """Every checkpoint of the namespace: time, model version, size, whether this engine would load it."""
    store = _store()
    infos = store.infos()
    if as_json:
        typer.echo(orjson.dumps([{**i.to_json(), "usable": _usable(i)} for i in infos]).decode())
        return
    table = Table(
        "created", "age", "worker", "model", "format", "bytes", "usable", "file", title=str(store.folder)
    )
    now = time.time()
    for info in infos:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.created_ms / 1000))
        table.add_row(
            created, f"{now - info.created_ms / 1000:.0f} s", info.worker or "-", info.model_version,
            str(info.format),
            str(info.size_bytes), "yes" if _usable(info) else "no", info.path.name,
        )  # fmt: skip
    table_console().print(table)


@app.command("show")
def show_newest(as_json: _JSON = False) -> None:
    """The newest checkpoint's header, with the Kafka offsets it reflects (exit 1 if there is none)."""
    infos = _store().infos()
    if not infos:
        Console(stderr=True).print("no checkpoint")
        raise typer.Exit(1)
    info = {**infos[0].to_json(), "usable": _usable(infos[0])}
    if as_json:
        typer.echo(orjson.dumps(info).decode())
        return
    for key, value in info.items():
        shown = orjson.dumps(value).decode() if isinstance(value, dict) else str(value)
        typer.echo(f"{key:15} {shown}")
