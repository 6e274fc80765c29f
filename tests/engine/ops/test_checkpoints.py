"""`engine.ops.checkpoints`: round trip of a real model, atomic writes, refused versions, retention."""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path

import pytest

from engine.ops.checkpoints import FORMAT_VERSION, MAGIC, CheckpointStore
from models.profile import UserProfile
from models.recommender import MODEL_VERSION, HybridRecommender
from schemas.errors import CheckpointError, CheckpointVersionError
from schemas.events import Event, ItemRecord

TS = 1_700_000_000_000


def trained() -> tuple[HybridRecommender, dict[str, UserProfile]]:
    model = HybridRecommender(seed=3)
    for n in range(40):
        model.learn_item(ItemRecord(item_id=f"i{n}", categories=(f"c{n % 4}",)))
    profiles = {f"u{u}": UserProfile(f"u{u}") for u in range(12)}
    for n in range(400):
        user = f"u{(n * 7) % 12}"
        event = Event(event_id=f"e{n}", user_id=user, item_id=f"i{(n * 13) % 40}", type="click", ts=TS + n)
        model.learn_one(event, profiles[user])
        profiles[user].observe(event, model.signal(event))
    return model, profiles


def test_a_model_survives_the_round_trip_and_goes_on_learning_the_same(tmp_path: Path) -> None:
    model, profiles = trained()
    store = CheckpointStore(tmp_path, "shop")
    offsets = {"p13n.shop.events": {0: 120, 3: 7}, "p13n.shop.items": {1: 40}}
    written = store.write({"model": model}, model_version=MODEL_VERSION, offsets=offsets)
    loaded = store.newest(MODEL_VERSION)
    assert loaded is not None
    assert loaded.info == written
    assert loaded.info.offsets == offsets and loaded.info.namespace == "shop"
    copy = loaded.state["model"]
    assert isinstance(copy, HybridRecommender) and copy is not model
    for user, profile in profiles.items():
        assert copy.recommend(profile, 10) == model.recommend(profile, 10), user
    # Both go on identically (random state, popularity decay, co-occurrence included).
    for m, p in ((model, UserProfile.from_dict(profiles["u1"].to_dict())), (copy, profiles["u1"])):
        m.learn_one(Event(event_id="x", user_id="u1", item_id="i5", type="purchase", ts=TS + 999), p)
    assert copy.recommend(profiles["u2"], 10) == model.recommend(profiles["u2"], 10)


def test_a_write_that_dies_before_the_rename_leaves_nothing_a_reader_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path, "shop")
    store.write({"n": 1}, model_version="m1", offsets={})

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(CheckpointError, match="disk gone"):
        store.write({"n": 2}, model_version="m1", offsets={})
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # temp file removed
    loaded = store.newest("m1")
    assert loaded is not None and loaded.state == {"n": 1}


def test_a_temp_file_of_a_dead_writer_is_never_read_and_is_pruned_when_stale(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "shop")
    store.write({"n": 1}, model_version="m1", offsets={})
    temp = tmp_path / ".9999999999999-1-000001.ckpt.tmp"
    temp.write_bytes(MAGIC + b"half a hea")
    assert len(store.infos()) == 1
    store.prune()
    assert temp.exists()  # may belong to a writer in flight
    os.utime(temp, (0, 0))
    store.prune()
    assert not temp.exists()


def test_a_truncated_or_foreign_file_is_skipped_for_the_next_older(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = CheckpointStore(tmp_path, "shop")
    store.write({"n": 1}, model_version="m1", offsets={}, created_ms=1000)
    newest = store.write({"n": 2}, model_version="m1", offsets={}, created_ms=2000)
    newest.path.write_bytes(newest.path.read_bytes()[:-3])  # lost its tail
    (tmp_path / "0000000003000-1-000001.ckpt").write_bytes(b"something else\n")
    with caplog.at_level(logging.WARNING):
        loaded = store.newest("m1")
    assert loaded is not None and loaded.state == {"n": 1}
    assert "checksum mismatch" in caplog.text and "no magic line" in caplog.text


def test_another_model_version_is_refused_with_a_log_line_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = CheckpointStore(tmp_path, "shop")
    store.write({"n": 1}, model_version="hybrid-0.4", offsets={}, created_ms=1000)
    info = store.write({"n": 2}, model_version="hybrid-9", offsets={}, created_ms=2000)
    with pytest.raises(CheckpointVersionError, match="model version hybrid-9, this worker runs hybrid-0.4"):
        store.load(info, "hybrid-0.4")
    with caplog.at_level(logging.WARNING):
        loaded = store.newest("hybrid-0.4")
    assert loaded is not None and loaded.state == {"n": 1}
    assert "refusing checkpoint" in caplog.text and "hybrid-9" in caplog.text
    with caplog.at_level(logging.WARNING):
        assert store.newest("hybrid-0.5") is None


def test_another_format_version_is_refused(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "shop")
    info = store.write({"n": 1}, model_version="m1", offsets={})
    raw = info.path.read_bytes().replace(
        f'"format":{FORMAT_VERSION}'.encode(), f'"format":{FORMAT_VERSION + 1}'.encode(), 1
    )
    info.path.write_bytes(raw)
    with pytest.raises(CheckpointVersionError, match="checkpoint format"):
        store.load(store.infos()[0], "m1")


def test_only_the_newest_few_are_kept(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "shop", keep=3)
    for n in range(6):
        store.write({"n": n}, model_version="m1", offsets={"t": {0: n}}, created_ms=1000 + n)
        store.prune()
    infos = store.infos()
    assert [i.offsets["t"][0] for i in infos] == [5, 4, 3]
    assert len(list(tmp_path.iterdir())) == 3


def test_the_payload_is_a_plain_pickle_after_a_readable_header(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "shop")
    info = store.write([1, 2, 3], model_version="m1", offsets={"t": {2: 9}})
    with info.path.open("rb") as f:
        assert f.readline() == MAGIC
        assert b'"offsets":{"t":{"2":9}}' in f.readline()
        assert pickle.loads(f.read()) == [1, 2, 3]


async def test_the_async_entry_points_write_and_read_in_a_thread(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "shop", keep=1)
    await store.awrite_payload(pickle.dumps("a"), model_version="m1", offsets={})
    await store.awrite_payload(pickle.dumps("b"), model_version="m1", offsets={})
    assert len(await store.aprune()) == 1
    loaded = await store.anewest("m1")
    assert loaded is not None and loaded.state == "b"
    assert len(await store.ainfos()) == 1


def test_each_worker_prunes_only_its_own_files_and_reads_everyones(tmp_path: Path) -> None:
    one = CheckpointStore(tmp_path, "shop", keep=2, identity="worker-0")
    two = CheckpointStore(tmp_path, "shop", keep=2, identity="worker-1")
    now = time.time_ns() // 1_000_000
    for n in range(4):
        one.write({"n": f"one{n}"}, model_version="m1", offsets={}, created_ms=now + 2 * n)
        two.write({"n": f"two{n}"}, model_version="m1", offsets={}, created_ms=now + 1 + 2 * n)
    one.prune()
    assert [p.parent.name for p in one.all_paths()].count("worker-0") == 2
    assert [p.parent.name for p in one.all_paths()].count("worker-1") == 4  # another's: not pruned
    assert [i.worker for i in one.infos()][:3] == ["worker-1", "worker-0", "worker-1"]
    loaded = one.newest("m1")
    assert loaded is not None and loaded.state == {"n": "two3"}  # whoever wrote the newest


def test_files_of_a_worker_gone_for_a_day_are_pruned_by_any(tmp_path: Path) -> None:
    gone = CheckpointStore(tmp_path, "shop", keep=2, identity="host-123")
    old = gone.write({"n": 0}, model_version="m1", offsets={}, created_ms=1_000)
    here = CheckpointStore(tmp_path, "shop", keep=2, identity="host-456")
    here.write({"n": 1}, model_version="m1", offsets={})
    here.prune()
    assert old.path.exists()  # the only newer file is one: fewer than `keep`
    here.write({"n": 2}, model_version="m1", offsets={})
    assert old.path in here.prune()
    assert not old.path.parent.exists()


def test_the_newest_checkpoint_covering_every_partition_is_preferred(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "shop", identity="w")
    store.write({"n": "all"}, model_version="m1", offsets={"ev": {0: 4, 1: 2}}, created_ms=1_000)
    store.write({"n": "part"}, model_version="m1", offsets={"ev": {0: 9}}, created_ms=2_000)
    assert store.newest("m1").state == {"n": "part"}  # type: ignore[union-attr]
    assert store.newest("m1", covering={"ev": range(2)}).state == {"n": "all"}  # type: ignore[union-attr]
    assert store.newest("m1", covering={"ev": range(3)}).state == {"n": "part"}  # type: ignore[union-attr]
