"""``personalize forget USER``: erase a user as ``DELETE /v1/users/{id}`` does, then wait for the workers.

Talks to Kafka and Redis directly (`engine.ingest.erase`), so it needs the namespace's settings, not an
API key; the audit names it ``cli:<login>`` unless ``--by`` says otherwise. With ``--wait`` (the default)
it polls the erasure's status until it is done, then prints how long each step took.
"""

from __future__ import annotations

__all__ = ["app"]

import asyncio
import getpass
import time
from typing import Annotated, Any

import orjson
import typer

from engine.cli.support import err, settings_or_exit
from engine.ingest.erase import erase
from engine.ingest.kafka import AsyncProducer
from engine.ops.settings import Settings
from engine.serving.experiment_stats import user_sets
from engine.serving.experiments import load_experiments
from engine.store import erasures
from engine.store.redis_store import RedisStore

app = typer.Typer()

#: Seconds between two reads of the status while waiting.
POLL_S = 0.05


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name for this uid (a container)
        return "unknown"


async def _status(store: RedisStore, settings: Settings, stored: str) -> erasures.ErasureStatus | None:
    live = await store.workers_by_id()
    return await erasures.status(store.client, settings.namespace, stored, live.keys())


async def forget_user(settings: Settings, user: str, *, by: str, wait_s: float) -> dict[str, Any]:
    """Erase ``user`` (the app's id: pseudonymized here when the settings say so) and, for up to
    ``wait_s`` seconds, wait until the erasure is done; returns what happened, as printed by ``--json``."""
    stored = settings.pseudonyms.of(user)
    sets = user_sets(load_experiments(settings), settings.namespace)
    store = RedisStore.from_url(settings.redis, settings.namespace)
    try:
        async with AsyncProducer(settings.bootstrap) as producer:
            done = await erase(producer, store, settings, stored, by=by, experiment_sets=sets)
        status = await _status(store, settings, stored)
        deadline = time.monotonic() + wait_s
        while wait_s > 0 and time.monotonic() < deadline and (status is None or status.state != "done"):
            await asyncio.sleep(POLL_S)
            status = await _status(store, settings, stored)
    finally:
        await store.close()
    answer: dict[str, Any] = {
        "user_id": user,
        "event_id": done.event_id,
        "requested_ms": done.requested_ms,
        "deleted_keys": done.deleted_keys,
        "removed": list(done.removed),
        "by": by,
        "status": "pending" if status is None else status.state,
    }
    if status is not None:
        answer.update(
            done_ms=status.done_ms, forgotten_ms=status.forgotten_ms, workers=status.workers,
            waiting=list(status.waiting), gone=list(status.gone),
        )  # fmt: skip
    return answer


@app.command()
def forget(
    user: Annotated[str, typer.Argument(help="The user's id, as the app knows it.")],
    wait: Annotated[
        float, typer.Option(min=0.0, help="Seconds to wait for the workers to finish (0: do not wait).")
    ] = 30.0,
    by: Annotated[str | None, typer.Option(help="Who asks, for the audit (default: cli:<login>).")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Erase a user everywhere the engine keeps them (Redis, the workers' tables, models and checkpoints);
    exit status 3 if it is still pending after --wait seconds."""
    settings = settings_or_exit()
    answer = asyncio.run(forget_user(settings, user, by=by or f"cli:{_login()}", wait_s=wait))
    if json:
        typer.echo(orjson.dumps(answer).decode())
    else:
        err.print(f"erasure {answer['event_id']} of {user}: {answer['deleted_keys']} Redis key(s) deleted")
        if answer["status"] == "done":
            took = answer["done_ms"] - answer["requested_ms"]
            err.print(f"done in {took} ms: forgotten by {len(answer['workers'])} worker(s)")
        else:
            waiting = ", ".join(answer.get("waiting", [])) or "the owner of the user's partition"
            err.print(f"pending: waiting for {waiting}")
    if wait and answer["status"] != "done":
        raise typer.Exit(3)
