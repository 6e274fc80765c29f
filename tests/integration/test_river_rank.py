"""A River bandit policy on the rank/reward path: a real API ranks with it and logs its decisions, a
real worker learns the rewards through Kafka and publishes signed River snapshots to Redis, and the
API's probabilities move toward the rewarded action.

Own namespace, worker and API (``river-ts`` as the default policy, a policy key, a short reward window).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from engine.api import hash_key
from engine.ops.settings import Settings
from engine.sdk.client import Client
from models.bandit_snapshot import header_of
from schemas import keys
from schemas.keys import PolicyField
from tests.integration.conftest import Worker, api_server, hget, make_settings, read_until

pytestmark = pytest.mark.integration

KEY = f"p13n_it-{uuid.uuid4().hex}"
CONTEXT = {"device": "mobile", "hour": 7}
ACTIONS: list[dict[str, Any]] = [{"id": f"a{i}", "features": {"price": float(i)}} for i in range(4)]
FAVOURITE = "a2"
RIVER = {
    "PERSONALIZE_BANDIT_POLICY": "river-ts",
    "PERSONALIZE_POLICY_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
    "PERSONALIZE_REWARD_WAIT_S": "3",
    "PERSONALIZE_POLICY_PUBLISH_S": "0.5",
    "PERSONALIZE_POLICY_PUBLISH_EVERY": "25",
}


class _RiverWorker(Worker):
    def env(self) -> dict[str, str]:
        return {**super().env(), **RIVER}


@pytest.fixture(scope="module")
def river_settings(live_stack: None) -> Settings:
    return make_settings(f"rv{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def river_worker(river_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    worker = _RiverWorker(river_settings, tmp_path_factory.mktemp("rv-worker") / "worker.log")
    worker.start()
    worker.wait_beating()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def river_api(
    river_settings: Settings, river_worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("rv-api") / "api.log"
    with api_server(river_settings, log, PERSONALIZE_API_KEY_HASHES=hash_key(KEY), **RIVER) as url:
        yield url


def _logged(settings: Settings, wanted: set[bytes], timeout_s: float) -> dict[bytes, dict[str, Any]]:
    def found(records: list[tuple[bytes | None, bytes]]) -> dict[bytes, bytes]:
        return {key: value for key, value in records if key is not None and key in wanted}

    records = read_until(settings, settings.decisions_topic, lambda rs: wanted <= found(rs).keys(), timeout_s)
    return {key: orjson.loads(value) for key, value in found(records).items()}


def test_a_river_policy_ranks_logs_learns_and_moves_toward_the_rewarded_action(
    river_api: str, river_settings: Settings, river_worker: Worker
) -> None:
    rounds, rewarded, ids = 0, 0, set()
    started = time.monotonic()
    with Client(river_api, api_key=KEY) as client:
        before = [client.rank(CONTEXT, ACTIONS) for _ in range(20)]
        ids |= {r.decision_id.encode() for r in before}
        while (rounds < 160 or rewarded < 10) and time.monotonic() - started < 180:
            ranked = client.rank(CONTEXT, ACTIONS)
            rounds += 1
            if ranked.chosen == FAVOURITE:
                client.reward(ranked.decision_id, 1.0)
                rewarded += 1
            time.sleep(0.05)  # paced, so that snapshots are published while ranking goes on
        policy_key = keys.policy(river_settings.namespace, "default")
        deadline = time.monotonic() + 90
        learned = 0
        while learned < rounds + 20 and time.monotonic() < deadline:
            learned = int(hget(river_settings, policy_key, "rewards") or 0)
            time.sleep(0.5)
        log = river_worker.log_path.read_text()[-4000:]
        assert learned >= rounds + 20, f"the worker learned {learned} of {rounds + 20}; log:\n{log}"
        after = [client.rank(CONTEXT, ACTIONS) for _ in range(20)]
    # Logged with every probability, under the River policy's name and the snapshot version used.
    logged = _logged(river_settings, ids, 60)
    assert set(logged) == ids
    by_id = {r.decision_id: r for r in before}
    for key, record in logged.items():
        ranked = by_id[key.decode()]
        assert record["policy"]["name"] == "river-ts" and record["chosen"] == ranked.chosen
        assert record["probabilities"] == [ranked.probabilities[a["id"]] for a in ACTIONS]
    # The snapshot in Redis is River's pickled state, signed.
    stored = hget(river_settings, keys.policy(river_settings.namespace, "default"), PolicyField.SNAPSHOT)
    assert stored is not None
    header, _ = header_of(base64.b64decode(stored))
    assert header["state"] == "river-pickle" and header["name"] == "river-ts" and "hmac_sha256" in header
    mean_before = sum(r.probabilities[FAVOURITE] for r in before) / len(before)
    mean_after = sum(r.probabilities[FAVOURITE] for r in after) / len(after)
    print(
        f"\n{rounds} ranks ({rewarded} rewarded); mean p({FAVOURITE}) {mean_before:.3f} -> {mean_after:.3f} "
        f"at policy version {after[-1].policy_version}"
    )
    assert after[-1].policy_version > 0 and all(r.policy_version == 0 for r in before[:1])
    assert mean_after > 0.8 > 0.6 > mean_before
