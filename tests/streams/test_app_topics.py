"""The worker creates its tables' changelog topics before Faust starts, under the names Faust uses."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from engine.ops.settings import Settings
from streams.app import changelog_configs, create_app


async def test_the_changelogs_made_before_start_are_those_of_every_table_faust_keeps(tmp_path: Path) -> None:
    settings = Settings(namespace="test-app-topics", stack_dir=tmp_path)
    app, pipeline = create_app(settings, CollectorRegistry())
    faust_made = {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    assert set(changelog_configs(settings)) == faust_made
    assert all(config == {"cleanup.policy": "compact"} for config in changelog_configs(settings).values())
    await pipeline.store.close()
