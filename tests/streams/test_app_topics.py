"""The worker creates its tables' changelog topics before Faust starts, under the names Faust uses, and
keeps the standby copies of them the settings ask for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from engine.ops.settings import Settings
from streams import trending
from streams.app import changelog_configs, create_app
from streams.rewards import PENDING_TABLE


async def test_the_changelogs_made_before_start_are_those_of_every_table_faust_keeps(tmp_path: Path) -> None:
    settings = Settings(namespace="test-app-topics", stack_dir=tmp_path)
    app, pipeline = create_app(settings, CollectorRegistry())
    faust_made = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    assert set(changelog_configs(settings)) == faust_made
    assert all(config == {"cleanup.policy": "compact"} for config in changelog_configs(settings).values())
    await pipeline.store.close()


@pytest.mark.parametrize("standbys", [0, 2])
async def test_the_tables_standby_copies_follow_the_settings(tmp_path: Path, standbys: int) -> None:
    settings = Settings(namespace="test-app-standbys", stack_dir=tmp_path, table_standbys=standbys)
    app, pipeline = create_app(settings, CollectorRegistry())
    assert app.conf.table_standby_replicas == standbys
    await pipeline.store.close()


async def test_a_recovery_of_the_pending_windows_makes_the_join_rebuild_its_index(tmp_path: Path) -> None:
    settings = Settings(namespace="test-app-recover", stack_dir=tmp_path)
    app, pipeline = create_app(settings, CollectorRegistry())
    [pending] = [table for name, table in app.tables.items() if name.endswith(PENDING_TABLE)]
    [reindex] = pending._recover_callbacks  # what Faust awaits after every recovery of the table
    join = reindex.__self__
    join.expire(0, 0)  # builds the index
    assert join._built_ms is not None
    await pending.call_recover_callbacks()
    assert join._built_ms is None  # the next tick rebuilds it from the restored table
    await pipeline.store.close()


async def test_trending_starts_counting_when_the_group_assigns_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    activated: list[trending.Trending] = []
    monkeypatch.setattr(trending.Trending, "activate", lambda self: activated.append(self))
    settings = Settings(namespace="test-app-trending", stack_dir=tmp_path)
    app, pipeline = create_app(settings, CollectorRegistry())
    receivers: list[Any] = list(app.on_partitions_assigned.iter_receivers(app))
    [on_assigned] = [r for r in receivers if "_trending" in r.__qualname__]
    await on_assigned(app, set())
    assert len(activated) == 1 and activated[0].feed == pipeline.trend
    await pipeline.store.close()
