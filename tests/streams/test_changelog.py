"""Tests for `streams.changelog.BatchWrites`: one changelog record per key per batch, to its partition."""

from __future__ import annotations

from streams.changelog import BatchWrites, FakeTable


def test_each_key_is_sent_once_with_its_final_value_to_the_partition_that_wrote_it() -> None:
    table = FakeTable()
    writes = BatchWrites(table)
    writes.partition = 0
    writes["a"] = 1
    writes.partition = 3
    writes["b"] = 2
    writes["b"] = 5
    assert writes["b"] == 5 and table.data == {"a": 1, "b": 5}  # reads see the writes at once
    assert writes.flush() == 2
    assert table.sent == [(0, "a", 1), (3, "b", 5)]
    assert writes.flush() == 0  # nothing pending after a flush


def test_deleted_keys_send_a_tombstone_and_offsets_go_last() -> None:
    table = FakeTable()
    table.data["gone"] = {"x": 1}
    writes = BatchWrites(table)
    writes.partition = 2
    writes["\x00next-offset:2"] = 41
    writes.pop("gone")
    writes["u"] = {"n": 1}
    assert "gone" not in writes and len(writes) == 2
    writes.flush()
    assert table.sent == [(2, "gone", None), (2, "u", {"n": 1}), (2, "\x00next-offset:2", 41)]


def test_a_key_deleted_then_written_again_sends_the_new_value() -> None:
    table = FakeTable()
    writes = BatchWrites(table)
    writes["u"] = 1
    del writes["u"]
    writes["u"] = 2
    writes.flush()
    assert table.sent == [(0, "u", 2)]
