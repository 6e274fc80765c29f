"""The worker's model checkpoints: restore the newest on start, write one regularly and on a clean shutdown.

The agents and the replica reader hold `Checkpointer.lock` around what they learn, so a snapshot (the
pickled model plus the offsets it reflects, for every partition the model follows) is taken between
records, never halfway through one. Each worker writes under its own identity; any restores any. After
an erasure (`forget`), the next tick writes a checkpoint without the user, deletes the older files (of
every identity: they hold the user) and then confirms the erasure (`confirm`). Files:
`engine.ops.checkpoints`.
"""

from __future__ import annotations

__all__ = [
    "LEARNED_IDS",
    "Checkpointer",
    "configured_version",
    "learned_key",
    "model_from",
    "needed",
    "restore",
    "store_of",
]

import asyncio
import collections
import copy
import logging
import pickle
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from engine.ops.checkpoints import Checkpoint, CheckpointInfo, CheckpointStore, Offsets
from engine.ops.metrics import Metrics
from engine.ops.settings import Settings
from models.recommender import HybridRecommender, warm_up
from models.river_recommender import new_model, version_for
from schemas.errors import CheckpointError, ConfigError
from streams.quality import Quality

log = logging.getLogger(__name__)

#: Events (user, event id) the model learned most recently, kept in the checkpoint: after a restore, a
#: record replayed from Kafka that is among them was a duplicate the first time too: not learned again.
LEARNED_IDS = 50_000


def learned_key(user_id: str, event_id: str) -> str:
    """How a learned event is remembered: per user, as the profiles deduplicate (NUL is in neither id)."""
    return f"{user_id}\x00{event_id}"


def configured_version(settings: Settings) -> str:
    """The model version the settings ask for: the built-in model's, or with the River reranker's spec."""
    try:
        return version_for(settings.river_spec)
    except Exception as exc:  # noqa: BLE001 - a YAML or JSON error of the user's spec, said as such
        raise ConfigError(f"PERSONALIZE_RIVER_RERANKER: not a River spec: {exc}") from None


def _state(checkpoint: Checkpoint, version: str) -> tuple[HybridRecommender, list[str]] | None:
    state = checkpoint.state
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, HybridRecommender) or model.version != version:
        return None
    return model, [str(i) for i in state.get("learned_ids", [])]


def model_from(restored: Checkpoint | None, settings: Settings | None = None) -> HybridRecommender:
    """The restored model (kernels warmed, as a new model's are), or a new one as ``settings`` configure
    it (the built-in model alone when None)."""
    spec = settings.river_spec if settings is not None else None
    state = _state(restored, version_for(spec)) if restored is not None else None
    if state is not None:
        warm_up()
        return state[0]
    try:
        return new_model(spec, top=settings.river_top if settings is not None else 50)
    except Exception as exc:  # noqa: BLE001 - any error building the user's spec (YAML, River's own)
        raise ConfigError(f"PERSONALIZE_RIVER_RERANKER: {exc}") from None


def store_of(settings: Settings) -> CheckpointStore:
    """This worker's checkpoint store: its own folder for writing, every worker's for reading; signed
    with ``PERSONALIZE_CHECKPOINT_KEY`` when set."""
    return CheckpointStore(
        settings.checkpoint_folder,
        settings.namespace,
        settings.checkpoint_keep,
        key=settings.checkpoint_signing_key,
        identity=settings.worker_name,
    )


def needed(settings: Settings) -> dict[str, range]:
    """The partitions a worker's model follows, whichever it owns: every events and catalog partition."""
    every = range(settings.partitions)
    return {settings.events_topic: every, settings.items_topic: every}


async def restore(
    settings: Settings,
    say: Callable[[str], None] = log.info,
    refused: Callable[[str], None] | None = None,
) -> Checkpoint | None:
    """The newest usable checkpoint of the namespace for this model version, whichever worker wrote it,
    preferring one with offsets for every events and catalog partition; None: a fresh model.

    Every worker's model follows every partition (streams/replica.py), so any worker's checkpoint holds
    the whole namespace's model. Checkpoints of another format or model version, or without a valid
    signature while ``PERSONALIZE_CHECKPOINT_KEY`` is set, are refused with a log line each (and their
    reason given to ``refused``), never raised, never unpickled when the signature is what fails.
    """
    if not settings.checkpoint_enabled:
        return None
    version = configured_version(settings)
    store = store_of(settings)
    found = await store.anewest(version, refused, needed(settings))
    if found is not None and _state(found, version) is None:
        log.warning("refusing checkpoint %s: it holds no %s model", found.info.path, version)
        found = None
    if found is None:
        say(f"no usable {version} checkpoint in {store.folder}: starting with an empty model")
        return None
    age_s = time.time() - found.info.created_ms / 1000
    say(
        f"restored model state from {found.info.path} ({found.info.size_bytes} bytes, {age_s:.0f} s old, "
        f"written by {found.info.worker or 'a worker before identities'})"
    )
    if not found.info.covers(needed(settings)):
        log.warning(
            "%s lacks offsets of some partitions: the model learns those from the log start", found.info.path
        )
    return found


class Checkpointer:
    """Tracks which input offsets the model holds, and checkpoints model and offsets together."""

    def __init__(
        self,
        *,
        model: HybridRecommender,
        store: CheckpointStore,
        metrics: Metrics,
        settings: Settings,
        flush: Callable[[], Awaitable[None]],
        restored: Checkpoint | None = None,
        quality: Quality | None = None,
        confirm: Callable[[Sequence[tuple[str, str]], str], Awaitable[None]] | None = None,
    ) -> None:
        self.model = model
        #: The drift detectors and what else streams.quality keeps; checkpointed with the model.
        self.quality = quality
        self.store = store
        self.metrics = metrics
        self.enabled = settings.checkpoint_enabled
        self.every_events = settings.checkpoint_every_events
        self.every_s = settings.checkpoint_every_s
        #: Flushes the Kafka producer: the profile table's changelog must hold what a checkpoint relies on.
        self.flush = flush
        #: Held by the agents around each record and by `checkpoint` while it pickles.
        self.lock = asyncio.Lock()
        self._writing = asyncio.Lock()
        #: Whether the model came from a checkpoint (decides where an unknown partition starts).
        self.restored = restored is not None
        self.offsets: Offsets = copy.deepcopy(restored.info.offsets) if restored else {}
        state = _state(restored, model.version) if restored else None
        #: Oldest first (an OrderedDict: a plain dict's `next(iter(...))` walks over every key deleted
        #: from its front since it was last resized, which cost ~15 us per event at 50,000 ids).
        self._learned_ids: collections.OrderedDict[str, None] = collections.OrderedDict.fromkeys(
            state[1] if state else []
        )
        if restored is not None and quality is not None:
            quality_state = restored.state.get("quality")
            if quality_state is None:  # format 1 held the model only
                log.warning("%s holds no drift detectors: they start afresh", restored.info.path)
            else:
                quality.restore(quality_state)
        #: Records whose effect the model took since the last checkpoint.
        self.pending = 0
        #: Of those, the ones that count toward the count trigger (not other workers' events).
        self.counted = 0
        #: Marks erasures (user, event id) done by this worker in Redis, with what it removed.
        self.confirm = confirm
        self.erasure_gap_s = settings.erasure_checkpoint_gap_s
        #: Users forgotten since the last checkpoint: their learned ids leave the ring before the next.
        self._forgotten: set[str] = set()
        #: Erasures waiting for a checkpoint without the user, then those waiting for `confirm` to succeed.
        self._unwritten: list[tuple[str, str]] = []
        self._unconfirmed: list[tuple[str, str]] = []
        self._removed = ""
        #: When the state of the model was last checkpointed or restored (epoch ms), None before either.
        self.last_ms: int | None = restored.info.created_ms if restored else None
        self._last_at = time.monotonic()
        metrics.checkpoint_age.set(-1)
        if restored:
            metrics.checkpoint_bytes.set(restored.info.size_bytes)

    # -- what the model holds -------------------------------------------------------------------

    def position(self, topic: str, partition: int) -> int | None:
        """The next offset of the partition whose effect the model does not hold (None: unknown)."""
        return self.offsets.get(topic, {}).get(partition)

    def advance(
        self, topic: str, partition: int, next_offset: int, records: int = 1, *, counted: bool = True
    ) -> None:
        """The model holds the partition up to ``next_offset`` (exclusive), having taken ``records`` more;
        ``counted``: whether they count toward `Settings.checkpoint_every_events` (other workers' events
        do not: with N workers every worker would checkpoint N times as often for the same traffic)."""
        parts = self.offsets.setdefault(topic, {})
        parts[partition] = max(parts.get(partition, next_offset), next_offset)
        self.pending += records
        if counted:
            self.counted += records

    def learned(self, user_id: str, event_id: str) -> None:
        """Remember an event the model learned (`Pipeline.learned`)."""
        ids, key = self._learned_ids, learned_key(user_id, event_id)
        ids[key] = None
        ids.move_to_end(key)
        if len(ids) > LEARNED_IDS:
            ids.popitem(last=False)

    def forget(self, user_id: str, event_id: str | None) -> None:
        """The model forgot the user (an erasure with its event id, or a withdrawal): the next tick writes
        a checkpoint without them and deletes the older files (`Pipeline.forgotten`)."""
        self._forgotten.add(user_id)
        if event_id is not None:
            self._unwritten.append((user_id, event_id))

    def _scrub(self) -> None:
        """Forget the forgotten users' learned ids (under the lock, before a snapshot)."""
        if self._forgotten:
            gone = self._forgotten
            ids = self._learned_ids
            self._learned_ids = collections.OrderedDict(
                (k, None) for k in ids if k.split("\x00", 1)[0] not in gone
            )

    def known(self, user_id: str, event_id: str) -> bool:
        """Whether the model learned this event of the user recently (so a replayed copy is a duplicate)."""
        return learned_key(user_id, event_id) in self._learned_ids

    # -- writing --------------------------------------------------------------------------------

    def due(self) -> bool:
        if self.enabled and self._forgotten:
            return time.monotonic() - self._last_at >= self.erasure_gap_s
        if not self.enabled or not self.pending:
            return False
        if self.every_events and self.counted >= self.every_events:
            return True
        return bool(self.every_s) and time.monotonic() - self._last_at >= self.every_s

    async def tick(self) -> None:
        """Every second: refresh the age metric, checkpoint when due, confirm erasures."""
        if self.last_ms is not None:
            self.metrics.checkpoint_age.set(max(0.0, time.time() - self.last_ms / 1000))
        if not self.enabled and self._forgotten:  # no files: memory is all there is to scrub
            async with self.lock:
                self._scrub()
                self._forgotten.clear()
                self._unconfirmed += self._unwritten
                self._unwritten, self._removed = [], "model,quality,learned-ids"
        if self.due():
            await self.checkpoint()
        await self._confirm()

    async def _confirm(self) -> None:
        """Mark this worker's finished erasures done in Redis; kept for the next tick if Redis fails."""
        if not self._unconfirmed or self.confirm is None:
            return
        erased, self._unconfirmed = self._unconfirmed, []
        try:
            await self.confirm(erased, self._removed)
        except Exception:  # noqa: BLE001 - Redis away: the user is forgotten all the same, confirmed later
            log.warning("could not confirm %d erasure(s); retrying", len(erased), exc_info=True)
            self._unconfirmed = erased + self._unconfirmed

    async def checkpoint(self) -> CheckpointInfo | None:
        """Snapshot model and offsets between two records, flush the changelog, write the file, prune.

        A failure is logged and counted, never raised: the worker goes on and tries again when due.
        """
        async with self._writing:
            async with self.lock:
                self._scrub()
                forgotten, self._forgotten = self._forgotten, set()
                erased, self._unwritten = self._unwritten, []
                state: dict[str, Any] = {"model": self.model, "learned_ids": list(self._learned_ids)}
                if self.quality is not None:
                    state["quality"] = self.quality.state()
                payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
                offsets = copy.deepcopy(self.offsets)
                taken, self.pending = self.pending, 0
                counted, self.counted = self.counted, 0
                self._last_at = time.monotonic()
            try:
                await self.flush()
                info = await self.store.awrite_payload(
                    payload, model_version=self.model.version, offsets=offsets
                )
                dropped = await self.store.adrop_older(info) if forgotten else []
                await self.store.aprune()
                kept = len(await asyncio.to_thread(self.store.paths))
            except (CheckpointError, OSError, RuntimeError) as exc:
                log.error("model checkpoint failed: %s", exc)
                self.metrics.checkpoint_writes.labels(outcome="failed").inc()
                self.pending += taken
                self.counted += counted
                self._forgotten |= forgotten
                self._unwritten = erased + self._unwritten
                return None
        if erased:
            self._unconfirmed += erased
            self._removed = f"model,quality,learned-ids,checkpoints:{len(dropped)}"
        self.last_ms = info.created_ms
        self.metrics.checkpoint_writes.labels(outcome="written").inc()
        self.metrics.checkpoint_bytes.set(info.size_bytes)
        self.metrics.checkpoints.set(kept)
        self.metrics.checkpoint_age.set(0)
        log.info(
            "model checkpoint %s: %d bytes, %d records since the last", info.path, info.size_bytes, taken
        )
        return info

    async def close(self, *_args: Any, **_kwargs: Any) -> None:
        """On a clean shutdown: checkpoint whatever the model took since the last checkpoint."""
        if self.enabled and (self.pending or self._forgotten):
            await self.checkpoint()
        await self._confirm()
