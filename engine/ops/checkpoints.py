"""Model checkpoints on disk: one file each, written atomically (temp file, fsync, rename), the last few kept.

A file is a magic line, a JSON header line (format and model version, worker, Kafka offsets, checksum, and
with a checkpoint key its HMAC: `engine.ops.sealing`) and the pickled state; the header is read and checked
(with a key: its signature too) before anything is unpickled. Each worker identity writes into a folder of
its own and prunes only that folder (and files of identities gone for a day); any worker reads every
identity's files, so a replacement restores whichever is newest and covers the partitions it needs. No
Kafka, no Redis.
"""

from __future__ import annotations

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "ORPHAN_S",
    "READS",
    "Checkpoint",
    "CheckpointInfo",
    "CheckpointStore",
    "Offsets",
]

import asyncio
import contextlib
import hashlib
import logging
import os
import pickle
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.ops.sealing import FIELD, Seal, sign, verdict
from schemas.errors import CheckpointError, CheckpointSignatureError, CheckpointVersionError

log = logging.getLogger(__name__)

#: First line of every checkpoint file.
MAGIC = b"p13n-checkpoint\n"
#: Layout of the file (magic, header, payload) and of the state it holds; bump when either changes.
#: 2: the state holds the drift detectors beside the model (1: the model only).
FORMAT_VERSION = 2
#: Formats this engine loads; a format 1 file restores the model, and the drift detectors start afresh.
READS = frozenset({1, 2})
#: topic -> partition -> the next offset whose effect the state does not hold yet.
Offsets = dict[str, dict[int, int]]

_SUFFIX = ".ckpt"
#: A temp file untouched this long belongs to a writer that died.
_STALE_TEMP_S = 3600.0
#: Another identity's checkpoint this old, with `keep` newer ones in the namespace, belongs to a worker
#: that is gone (a pid-named identity never comes back): any worker's prune removes it.
ORPHAN_S = 86_400.0


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """What the header of one checkpoint file says (read without unpickling the state)."""

    path: Path
    format: int
    model_version: str
    namespace: str
    #: Identity of the worker that wrote it ("" for files written before identities).
    worker: str
    created_ms: int
    offsets: Offsets
    size_bytes: int
    payload_sha256: str
    #: The header's signature as judged with the store's key (`engine.ops.sealing.Seal`).
    seal: str = Seal.UNSIGNED.value

    def covers(self, wanted: Mapping[str, Iterable[int]]) -> bool:
        """Whether it holds an offset for every partition of ``wanted`` (topic -> partitions)."""
        return _covers(self.offsets, wanted)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "model_version": self.model_version,
            "namespace": self.namespace,
            "worker": self.worker,
            "created_ms": self.created_ms,
            "offsets": {t: {str(p): o for p, o in parts.items()} for t, parts in self.offsets.items()},
            "size_bytes": self.size_bytes,
            "payload_sha256": self.payload_sha256,
            "seal": self.seal,
        }


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A loaded checkpoint: its header and the unpickled state."""

    info: CheckpointInfo
    state: Any


def _created_ms(path: Path) -> int:
    """Creation time from a checkpoint's name (its first 13 digits); 0 for a name not made here."""
    head = path.name[:13]
    return int(head) if head.isdigit() else 0


def _covers(offsets: Offsets, wanted: Mapping[str, Iterable[int]]) -> bool:
    return all(p in offsets.get(topic, {}) for topic, parts in wanted.items() for p in parts)


def _folder_name(identity: str) -> str:
    """A worker identity as a folder name (anything but letters, digits, dot, dash and underscore is _).

    >>> _folder_name("host-1.local-4242"), _folder_name("a/b")
    ('host-1.local-4242', 'a_b')
    """
    return re.sub(r"[^A-Za-z0-9._-]", "_", identity) or "_"


class CheckpointStore:
    """Checkpoint files of one namespace, newest last by name (creation time first): this worker's in
    ``<folder>/<identity>/`` (in ``folder`` itself without an identity), every worker's readable.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> store = CheckpointStore(folder, namespace="shop", keep=2, identity="w1")
    >>> info = store.write({"w": [1, 2]}, model_version="m1", offsets={"events": {0: 5}})
    >>> loaded = CheckpointStore(folder, namespace="shop", identity="w2").newest("m1")
    >>> loaded.state, loaded.info.offsets, loaded.info.worker
    ({'w': [1, 2]}, {'events': {0: 5}}, 'w1')
    >>> store.newest("m2") is None  # another model version is refused (and logged)
    True
    >>> signed = CheckpointStore(store.folder, namespace="shop", key=b"k" * 32)
    >>> signed.newest("m1") is None  # with a key, an unsigned file is refused before it is unpickled
    True
    >>> _ = signed.write({"w": [3]}, model_version="m1", offsets={})
    >>> signed.newest("m1").state, signed.newest("m1").info.seal
    ({'w': [3]}, 'valid')
    """

    def __init__(
        self,
        folder: Path,
        namespace: str,
        keep: int = 3,
        key: bytes | None = None,
        identity: str | None = None,
    ) -> None:
        self.folder = folder
        self.namespace = namespace
        self.keep = keep
        #: Signs what is written and is required of what is read (`PERSONALIZE_CHECKPOINT_KEY`).
        self.key = key
        self.identity = identity or ""
        #: Where this worker writes (and what `prune` keeps to ``keep`` files).
        self.own = folder / _folder_name(identity) if identity else folder
        self._seq = 0

    # -- writing --------------------------------------------------------------------------------

    def write(
        self, state: Any, *, model_version: str, offsets: Offsets, created_ms: int | None = None
    ) -> CheckpointInfo:
        """Pickle ``state`` and write it with its header; visible under its final name only once complete."""
        return self.write_payload(
            pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL),
            model_version=model_version,
            offsets=offsets,
            created_ms=created_ms,
        )

    def write_payload(
        self, payload: bytes, *, model_version: str, offsets: Offsets, created_ms: int | None = None
    ) -> CheckpointInfo:
        """Write already pickled state (the worker pickles while nothing else runs, then writes here)."""
        created = created_ms if created_ms is not None else time.time_ns() // 1_000_000
        self._seq += 1
        name = f"{created:013d}-{os.getpid()}-{self._seq:06d}{_SUFFIX}"
        header = {
            "format": FORMAT_VERSION,
            "model_version": model_version,
            "namespace": self.namespace,
            "worker": self.identity,
            "created_ms": created,
            "offsets": {t: {str(p): o for p, o in parts.items()} for t, parts in offsets.items()},
            "payload_bytes": len(payload),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
        }
        if self.key is not None:
            header[FIELD] = sign(header, self.key)
        self.own.mkdir(parents=True, exist_ok=True)
        final = self.own / name
        tmp = self.own / f".{name}.tmp"
        try:
            with tmp.open("wb") as out:
                out.write(MAGIC)
                out.write(orjson.dumps(header) + b"\n")
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
            self._fsync_folder()
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CheckpointError(str(final), f"cannot write: {exc}") from exc
        return self._info(final)

    def _fsync_folder(self) -> None:
        fd = os.open(self.own, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a power cut only once the folder is synced
        finally:
            os.close(fd)

    def prune(self) -> list[Path]:
        """Delete all but this worker's ``keep`` newest checkpoints, temp files of its dead writes, and
        other identities' files older than `ORPHAN_S` with ``keep`` newer ones in the namespace (their
        worker is gone); returns the deleted files."""
        files = self.paths()
        doomed = files[: max(0, len(files) - self.keep)]
        if self.own.exists():
            # Another process may be writing one right now: only temp files a crash left long ago.
            stale = time.time() - _STALE_TEMP_S
            doomed += [p for p in self.own.glob(f".*{_SUFFIX}.tmp") if p.stat().st_mtime < stale]
        everyone = self.all_paths()
        orphan_before = time.time_ns() // 1_000_000 - int(ORPHAN_S * 1000)
        for path in everyone[: max(0, len(everyone) - self.keep)]:
            if path.parent != self.own and _created_ms(path) < orphan_before:
                doomed.append(path)
        for path in doomed:
            path.unlink(missing_ok=True)
            if path.parent != self.folder and path.parent != self.own:
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # the identity's last file: the folder goes too
        return doomed

    def drop_older(self, info: CheckpointInfo) -> list[Path]:
        """Delete every identity's checkpoints older than ``info`` (after an erasure: they may hold the
        user). Every checkpoint covers every partition (each worker's model follows them all), so any
        worker can restore from ``info`` or a newer file."""
        doomed = [p for p in self.all_paths() if p.name < info.path.name]
        for path in doomed:
            path.unlink(missing_ok=True)
        if doomed:
            self._fsync_folder()
        return doomed

    # -- reading --------------------------------------------------------------------------------

    def paths(self) -> list[Path]:
        """This worker's checkpoint files, oldest first."""
        return sorted(self.own.glob(f"*{_SUFFIX}")) if self.own.exists() else []

    def all_paths(self) -> list[Path]:
        """Every identity's checkpoint files (and those written before identities), oldest first."""
        if not self.folder.exists():
            return []
        found = [*self.folder.glob(f"*{_SUFFIX}"), *self.folder.glob(f"*/*{_SUFFIX}")]
        return sorted(found, key=lambda p: (p.name, str(p)))

    def infos(self) -> list[CheckpointInfo]:
        """Headers of every identity's readable checkpoints, newest first (unreadable files are logged and
        skipped)."""
        found = []
        for path in reversed(self.all_paths()):
            try:
                found.append(self._info(path))
            except CheckpointError as exc:
                log.warning("%s", exc)
        return found

    def _info(self, path: Path) -> CheckpointInfo:
        try:
            with path.open("rb") as f:
                magic, line = f.readline(), f.readline()
            size = path.stat().st_size
        except OSError as exc:
            raise CheckpointError(str(path), f"cannot read: {exc}") from exc
        if magic != MAGIC:
            raise CheckpointError(str(path), "not a checkpoint file (no magic line)")
        try:
            header = orjson.loads(line)
            return CheckpointInfo(
                path=path,
                format=int(header["format"]),
                model_version=str(header["model_version"]),
                namespace=str(header.get("namespace", "")),
                worker=str(header.get("worker", "")),
                created_ms=int(header["created_ms"]),
                offsets={
                    str(t): {int(p): int(o) for p, o in parts.items()}
                    for t, parts in header.get("offsets", {}).items()
                },
                size_bytes=size,
                payload_sha256=str(header["payload_sha256"]),
                seal=verdict(header, self.key).value,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(str(path), f"unreadable header: {exc}") from exc

    def load(self, info: CheckpointInfo, model_version: str) -> Checkpoint:
        """Check versions, signature (with a key) and checksum, then unpickle (raises
        `CheckpointVersionError`, `CheckpointSignatureError`, `CheckpointError`)."""
        if info.format not in READS:
            known = ", ".join(str(f) for f in sorted(READS))
            raise CheckpointVersionError(
                str(info.path), f"checkpoint format {info.format}, this engine reads {known}"
            )
        if info.model_version != model_version:
            raise CheckpointVersionError(
                str(info.path), f"model version {info.model_version}, this worker runs {model_version}"
            )
        if self.key is not None and info.seal != Seal.VALID:
            unsigned = info.seal == Seal.UNSIGNED
            raise CheckpointSignatureError(
                str(info.path),
                "unsigned while PERSONALIZE_CHECKPOINT_KEY is set"
                if unsigned
                else "signature does not match PERSONALIZE_CHECKPOINT_KEY (tampered with, or another key)",
                "unsigned" if unsigned else "signature",
            )
        try:
            with info.path.open("rb") as f:
                f.readline()
                f.readline()
                payload = f.read()
        except OSError as exc:
            raise CheckpointError(str(info.path), f"cannot read: {exc}") from exc
        if hashlib.sha256(payload).hexdigest() != info.payload_sha256:
            raise CheckpointError(str(info.path), "checksum mismatch (truncated or corrupt)")
        try:
            state = pickle.loads(payload)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means this file is unusable
            raise CheckpointError(str(info.path), f"cannot unpickle: {exc!r}") from exc
        return Checkpoint(info, state)

    def newest(
        self,
        model_version: str,
        refused: Callable[[str], None] | None = None,
        covering: Mapping[str, Iterable[int]] | None = None,
    ) -> Checkpoint | None:
        """The newest checkpoint that loads for ``model_version``, preferring those with an offset for
        every partition in ``covering`` (topic -> partitions); each refused one is logged, not raised, and
        its reason (``version``, ``unsigned``, ``signature``, ``unreadable``) given to ``refused``."""
        infos = self.infos()
        if covering is not None:
            infos = [i for i in infos if i.covers(covering)] + [i for i in infos if not i.covers(covering)]
        for info in infos:
            try:
                return self.load(info, model_version)
            except CheckpointVersionError as exc:
                log.warning("refusing %s; trying an older checkpoint", exc)
                reason = "version"
            except CheckpointSignatureError as exc:
                log.error("refusing %s; trying an older checkpoint", exc)
                reason = exc.reason
            except CheckpointError as exc:
                log.warning("skipping %s; trying an older checkpoint", exc)
                reason = "unreadable"
            if refused is not None:
                refused(reason)
        return None

    # -- the worker's async entry points (file I/O in a thread, never on the event loop) ----------

    async def awrite_payload(self, payload: bytes, *, model_version: str, offsets: Offsets) -> CheckpointInfo:
        return await asyncio.to_thread(
            self.write_payload, payload, model_version=model_version, offsets=offsets
        )

    async def aprune(self) -> list[Path]:
        return await asyncio.to_thread(self.prune)

    async def anewest(
        self,
        model_version: str,
        refused: Callable[[str], None] | None = None,
        covering: Mapping[str, Iterable[int]] | None = None,
    ) -> Checkpoint | None:
        return await asyncio.to_thread(self.newest, model_version, refused, covering)

    async def adrop_older(self, info: CheckpointInfo) -> list[Path]:
        return await asyncio.to_thread(self.drop_older, info)

    async def ainfos(self) -> list[CheckpointInfo]:
        return await asyncio.to_thread(self.infos)
