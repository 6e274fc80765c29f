"""The ``personalize`` console script: the engine's commands (`engine.cli.main`) plus ``worker``.

The worker command lives here because it starts the Faust app, and only this top layer may import
both `engine` and `streams`; every other command is defined in `engine.cli`.
"""

from __future__ import annotations

__all__ = ["app", "main"]

import asyncio
import faulthandler
import logging

from engine.cli.main import app
from engine.cli.support import err, settings_or_exit
from engine.ingest import produce
from engine.ops import workers
from schemas.errors import PersonalizeError


@app.command()
def worker() -> None:
    """Run the Faust worker: consume events, learn, publish recommendations to Redis."""
    settings = settings_or_exit()
    faulthandler.enable()  # a crash in native code (numba kernels, librdkafka) leaves its stack in the log
    from faust.worker import Worker
    from prometheus_client import CollectorRegistry

    from engine.ingest.kafka import ensure_topics
    from engine.ops import gc_tuning, log_throttle, scrape
    from streams.app import changelog_configs, create_app
    from streams.checkpointer import restore

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(produce.ensure_engine_topics(settings))
    tables = changelog_configs(settings)
    loop.run_until_complete(ensure_topics(settings.bootstrap, tables, settings.partitions, tables))
    refusals: list[str] = []
    restored = loop.run_until_complete(
        restore(settings, say=lambda m: err.print(f"[dim]{m}[/]"), refused=refusals.append)
    )
    registry = CollectorRegistry()
    metrics_at = scrape.serve_metrics(settings, registry)
    if metrics_at is not None:
        err.print(f"metrics on http://{metrics_at}/metrics")
    faust_app, pipeline = create_app(settings, registry, restored, metrics_at=metrics_at)
    for reason in refusals:
        pipeline.metrics.checkpoint_refused.labels(reason=reason).inc()
    workers.register(settings, metrics_at, on_exit=lambda: scrape.write_targets(settings))
    scrape.write_targets(settings)

    async def refresh_targets() -> None:
        scrape.write_targets(settings)  # drops workers that died without a goodbye (kill -9)

    faust_app.timer(interval=scrape.TARGETS_REFRESH_S)(refresh_targets)
    log_throttle.install()  # a broker away: aiokafka's retry lines once per 10 s, not thousands a second
    gc_tuning.tune(settings.gc_threshold)  # after start-up, which made most of the objects it keeps
    Worker(faust_app, loop=loop, loglevel=settings.log_level, quiet=True).execute_from_commandline()


def main() -> None:
    """Entry point of ``personalize`` and ``python -m streams``."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app()
    except PersonalizeError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
