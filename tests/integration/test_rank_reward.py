"""Rank, reward, learn, rank again: through a real API process, Kafka, a real worker and Redis.

Own namespace, worker and API (short reward window, fast snapshot publishing, one experiment), so the
figures here do not depend on what other tests sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import httpx
import orjson
import pytest

from engine.api import hash_key
from engine.ops.settings import Settings
from engine.sdk.client import AsyncClient, Client
from schemas import keys
from tests.integration.conftest import (
    EXPERIMENTS,
    Worker,
    api_server,
    hget,
    make_settings,
    read_until,
    topic_size,
)

pytestmark = pytest.mark.integration

KEY = f"p13n_it-{uuid.uuid4().hex}"
AUTH = {"X-API-Key": KEY}
CONTEXT = {"device": "mobile", "hour": 7}
ACTIONS: list[dict[str, Any]] = [{"id": f"a{i}", "features": {"price": float(i)}} for i in range(4)]
TUNING = {
    "PERSONALIZE_REWARD_WAIT_S": "3",
    "PERSONALIZE_POLICY_PUBLISH_S": "0.5",
    "PERSONALIZE_POLICY_PUBLISH_EVERY": "25",
}


class _TunedWorker(Worker):
    def env(self) -> dict[str, str]:
        return {**super().env(), **TUNING}


@pytest.fixture(scope="module")
def rr_settings(live_stack: None) -> Settings:
    return make_settings(f"rr{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def rr_worker(rr_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    worker = _TunedWorker(rr_settings, tmp_path_factory.mktemp("rr-worker") / "worker.log")
    worker.start()
    # Ranks sent before the worker follows the decisions and rewards topics only wait in Kafka, but under a
    # loaded machine its start can take most of a test's patience: wait for its first heartbeat here.
    worker.wait_beating()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def rr_api(
    rr_settings: Settings, rr_worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    log = tmp_path_factory.mktemp("rr-api") / "api.log"
    with api_server(
        rr_settings, log, PERSONALIZE_API_KEY_HASHES=hash_key(KEY), PERSONALIZE_EXPERIMENTS=EXPERIMENTS
    ) as url:
        yield url


def _tail(worker: Worker) -> str:
    return worker.log_path.read_text()[-4000:]


def _outcomes(settings: Settings) -> str:
    """What the worker learned, read from the examples topic: how many examples per chosen action,
    outcome and reward, in the order they were learned, for a failure message."""
    records = read_until(settings, settings.bandit_examples_topic, lambda rs: False, 5)
    runs: list[list[Any]] = []
    for example in map(orjson.loads, (value for _, value in records)):
        kind = (example["decision"]["chosen"], example["outcome"], example["reward"])
        if runs and runs[-1][0] == kind:
            runs[-1][1] += 1
        else:
            runs.append([kind, 1])
    return ", ".join(f"{chosen} {outcome} {reward} x{n}" for (chosen, outcome, reward), n in runs)


def _warnings(worker: Worker) -> str:
    lines = worker.log_path.read_text().splitlines()
    return "\n".join(line for line in lines if "[WARNING]" in line or "[ERROR]" in line)[-4000:]


def _decisions_so_far(settings: Settings) -> int:
    """Decisions logged so far (the topic's records but the worker's ticks, which have no key)."""
    size = topic_size(settings, settings.decisions_topic)
    records = read_until(settings, settings.decisions_topic, lambda rs: len(rs) >= size, 60)
    return sum(key is not None for key, _ in records)


def _learned(settings: Settings, wanted: int, timeout_s: float = 90) -> int:
    """The decisions the default policy's published snapshot has learned, once ``wanted`` or at the
    timeout."""
    policy_key = keys.policy(settings.namespace, "default")
    deadline = time.monotonic() + timeout_s
    while True:
        learned = int(hget(settings, policy_key, "rewards") or 0)
        if learned >= wanted or time.monotonic() > deadline:
            return learned
        time.sleep(0.5)


def _probability(body: dict[str, Any], action_id: str) -> float:
    return float(next(r["probability"] for r in body["ranking"] if r["id"] == action_id))


def test_decisions_are_logged_keyed_by_id_with_every_propensity(rr_api: str, rr_settings: Settings) -> None:
    with httpx.Client(base_url=rr_api) as http:
        body = http.post("/v1/rank", json={"context": CONTEXT, "actions": ACTIONS}, headers=AUTH).json()
    wanted = body["decision_id"].encode()
    records = read_until(
        rr_settings, rr_settings.decisions_topic, lambda rs: any(k == wanted for k, _ in rs), 60
    )
    [logged] = [orjson.loads(v) for k, v in records if k == wanted]
    assert logged["chosen"] == body["chosen"]
    assert logged["probabilities"] == [_probability(body, a["id"]) for a in ACTIONS]
    assert logged["context"] == CONTEXT and logged["policy"]["id"] == "default"


def test_rewards_favouring_one_action_raise_its_probability(
    rr_api: str, rr_settings: Settings, rr_worker: Worker
) -> None:
    rounds, rewarded, favourite, settles = 0, 0, "a2", 0
    earlier = _decisions_so_far(rr_settings)  # the module's other tests'
    started = time.monotonic()
    with Client(rr_api, api_key=KEY) as client:
        before = ranked = client.rank(CONTEXT, ACTIONS)
        while True:
            # At least 160 ranks, and on until the favourite was chosen (and rewarded) 10 times and the
            # policy ranking prefers it. How soon LinUCB tries each action depends on how fast the worker
            # closes windows and publishes, which varies with the machine's load (in one CI run 160 ranks
            # never reached the favourite). An action never tried keeps a confidence bonus above the
            # favourite's learned value (score ~4.2 against ~1.2 here): once, 160 ranks had tried a3, a0
            # and a2 but never a1, so the policy was right to try a1.
            while (
                rounds < 160 or rewarded < 10 or ranked.probabilities[favourite] < 0.9
            ) and time.monotonic() - started < 180:
                ranked = client.rank(CONTEXT, ACTIONS)
                rounds += 1
                if ranked.chosen == favourite:
                    client.reward(ranked.decision_id, 1.0)
                    rewarded += 1
                # Other decisions get no reward: their windows close with the default reward 0.
                # Paced so that expired windows are learned and published while ranking goes on: sent
                # all at once, every rank used the first snapshot and the favourite was never tried.
                time.sleep(0.05)
            sent_s = time.monotonic() - started
            learned = _learned(rr_settings, earlier + rounds + 1)
            assert learned >= earlier + rounds + 1, (
                f"the worker learned {learned} of {earlier + rounds + 1} decisions; log:\n{_tail(rr_worker)}"
            )
            settles += 1
            # The windows still open when the favourite came first closed since, with the default reward:
            # they can leave an action tried once ahead again (one CI run: a1 tried once, last). Then
            # rank on: a policy that learns from the rewards comes back to the favourite.
            after = ranked = client.rank(CONTEXT, ACTIONS)
            rounds += 1
            if after.probabilities[favourite] > 0.9 or time.monotonic() - started > 180:
                break
            if after.chosen == favourite:
                client.reward(after.decision_id, 1.0)
                rewarded += 1
    print(
        f"\n{rounds} ranks ({rewarded} rewarded, {settles} settle(s)) in {sent_s:.1f}s; p({favourite}) "
        f"{before.probabilities[favourite]:.3f} -> {after.probabilities[favourite]:.3f} "
        f"at policy version {after.policy_version}"
    )
    assert after.policy_version > before.policy_version
    assert after.probabilities[favourite] > 0.9 > before.probabilities[favourite], (
        f"examples learned: {_outcomes(rr_settings)}; the worker's warnings:\n{_warnings(rr_worker)}"
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_experiment_variants_are_sticky_and_rewards_reach_the_report(
    rr_api: str, rr_settings: Settings, rr_worker: Worker
) -> None:
    async with AsyncClient(rr_api, api_key=KEY) as client:
        seen: dict[str, str] = {}
        for n in range(30):
            ranked = await client.rank(CONTEXT, ACTIONS, user_id=f"user-{n}", surface="home")
            again = await client.rank(CONTEXT, ACTIONS, user_id=f"user-{n}", surface="home")
            assert ranked.variant == again.variant and ranked.experiment == "home"
            seen[f"user-{n}"] = ranked.variant or ""
            await client.reward(ranked.decision_id, 1.0)
        deadline = time.monotonic() + 60
        while True:
            [report] = await client.experiments()
            rewarded = sum(v["rewards"] for v in report["variants"])
            if rewarded >= 30 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    by_variant = {v["variant"]: v for v in report["variants"]}
    for name in ("control", "explore"):
        users = sum(variant == name for variant in seen.values())
        assert by_variant[name]["users"] == users and by_variant[name]["decisions"] == 2 * users
    assert rewarded >= 30, f"rewards in the report: {rewarded} of 30; worker log:\n{_tail(rr_worker)}"
    assert all(v["mean_reward"] is None or 0.0 <= v["mean_reward"] <= 1.0 for v in report["variants"])
    assert 0.0 <= report["srm"]["p_value"] <= 1.0


def test_unreadable_rewards_go_to_the_dead_letter_topic(rr_worker: Worker, rr_settings: Settings) -> None:
    marker = f"garbage-{uuid.uuid4().hex}".encode()
    producer = confluent_kafka.Producer({"bootstrap.servers": rr_settings.bootstrap})
    producer.produce(rr_settings.rewards_topic, value=b"{" + marker, key=marker)
    producer.flush(30)

    def found(records: list[tuple[bytes | None, bytes]]) -> bool:
        return any(k == marker for k, _ in records)

    records = read_until(rr_settings, rr_settings.dead_letter_topic, found, 90)
    [letter] = [orjson.loads(v) for k, v in records if k == marker]
    assert letter["kind"] == "invalid" and "not valid JSON" in letter["reason"]
    assert letter["source"]["topic"] == rr_settings.rewards_topic


def test_the_api_documents_rank_and_reward(rr_api: str, tmp_path: Path) -> None:
    doc = httpx.get(f"{rr_api}/openapi.json").json()
    assert {"/v1/rank", "/v1/reward", "/v1/experiments"} <= set(doc["paths"])
