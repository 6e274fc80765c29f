"""Signed checkpoints: with ``PERSONALIZE_CHECKPOINT_KEY`` a file is refused before unpickling unless its
header carries a valid HMAC; the header binds the payload through its SHA-256."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import orjson
import pytest

from engine.ops.checkpoints import MAGIC, CheckpointStore
from engine.ops.sealing import FIELD
from schemas.errors import CheckpointSignatureError

KEY = b"k" * 32
OTHER = b"o" * 32


class _Trap:
    """Unpickling this runs code: it creates the file ``path`` (what an attacker's payload would do)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))


def _rewrite(path: Path, payload: bytes, *, resign: bytes | None = None, keep_sig: bool = True) -> None:
    """Replace a checkpoint's payload, fixing its checksum (what someone who can write the folder can do)."""
    with path.open("rb") as f:
        f.readline()
        header = orjson.loads(f.readline())
    header["payload_bytes"], header["payload_sha256"] = len(payload), hashlib.sha256(payload).hexdigest()
    if not keep_sig:
        header.pop(FIELD, None)
    if resign is not None:
        from engine.ops.sealing import sign

        header.pop(FIELD, None)
        header[FIELD] = sign(header, resign)
    path.write_bytes(MAGIC + orjson.dumps(header) + b"\n" + payload)


def test_a_signed_checkpoint_loads_with_its_key_and_says_so(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "shop", key=KEY)
    store.write({"w": 1}, model_version="m1", offsets={"e": {0: 3}})
    loaded = store.newest("m1")
    assert loaded is not None and loaded.state == {"w": 1} and loaded.info.seal == "valid"
    assert CheckpointStore(tmp_path, "shop").infos()[0].seal == "unchecked"  # no key to judge with


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"keep_sig": True}, "signature"),  # the payload swapped, checksum fixed, old signature kept
        ({"keep_sig": False}, "unsigned"),  # the signature removed
        ({"resign": OTHER}, "signature"),  # signed with another key
    ],
)
def test_a_tampered_checkpoint_is_refused_before_anything_is_unpickled(
    tmp_path: Path, tamper: dict[str, object], reason: str
) -> None:
    store = CheckpointStore(tmp_path / "c", "shop", key=KEY)
    info = store.write({"w": 1}, model_version="m1", offsets={})
    trap = tmp_path / "ran"
    _rewrite(info.path, pickle.dumps({"w": _Trap(trap)}), **tamper)  # type: ignore[arg-type]
    with pytest.raises(CheckpointSignatureError) as caught:
        store.load(store.infos()[0], "m1")
    assert caught.value.reason == reason and "PERSONALIZE_CHECKPOINT_KEY" in str(caught.value)
    refused: list[str] = []
    assert store.newest("m1", refused.append) is None and refused == [reason]
    assert not trap.exists(), "the payload was unpickled"
    # Without a key the same file would run its code: what the key protects against.
    CheckpointStore(tmp_path / "c", "shop").newest("m1")
    assert trap.exists()


def test_an_unsigned_file_from_before_the_key_is_refused_and_an_older_signed_one_used(tmp_path: Path) -> None:
    signed = CheckpointStore(tmp_path, "shop", key=KEY)
    signed.write({"w": "signed"}, model_version="m1", offsets={}, created_ms=1)
    CheckpointStore(tmp_path, "shop").write({"w": "unsigned"}, model_version="m1", offsets={}, created_ms=2)
    refused: list[str] = []
    loaded = signed.newest("m1", refused.append)
    assert loaded is not None and loaded.state == {"w": "signed"} and refused == ["unsigned"]


def test_the_key_is_in_no_header(tmp_path: Path) -> None:
    info = CheckpointStore(tmp_path, "shop", key=KEY).write({"w": 1}, model_version="m1", offsets={})
    assert KEY not in info.path.read_bytes()


def test_drop_older_deletes_only_what_came_before(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "shop", keep=5)
    first = store.write({"n": 1}, model_version="m1", offsets={}, created_ms=1)
    second = store.write({"n": 2}, model_version="m1", offsets={}, created_ms=2)
    third = store.write({"n": 3}, model_version="m1", offsets={}, created_ms=3)
    assert store.drop_older(second) == [first.path]
    assert store.paths() == [second.path, third.path]
