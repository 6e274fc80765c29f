"""API keys with names and scopes, reads behind a key, the per-key rate limit, and no key in any log."""

from __future__ import annotations

import logging

import pytest

from engine.api.auth import Keyring, Scope, hash_key, key_entry, parse_entry
from engine.ops.settings import Settings
from schemas.errors import RequestRejectedError
from tests.engine.api.fakes import FakeProducer, FakeStore, make_app, running

EVENT = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "type": "click", "ts": 1_700_000_000_000}
WRITER, READER, ADMIN, LEGACY = "p13n_writer-key", "p13n_reader-key", "p13n_admin-key", "p13n_legacy-key"
ENTRIES = (
    key_entry("shop", [Scope.EVENTS], WRITER),
    key_entry("board", [Scope.READ], READER),
    key_entry("ops", [Scope.ADMIN], ADMIN),
    hash_key(LEGACY),
)


def _as(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _store() -> FakeStore:
    return FakeStore(recs={"u1": [("i9", 0.9)]}, prefs={"u1": {"muted_category:horror": "1"}})


async def test_each_route_needs_its_scope_and_admin_or_an_unnamed_key_may_do_everything() -> None:
    producer = FakeProducer()
    async with running(make_app(_store(), producer, api_key_hashes=ENTRIES)) as api:
        assert (await api.post("/v1/events", json=EVENT, headers=_as(WRITER))).status_code == 202
        refused = await api.post("/v1/events", json=EVENT, headers=_as(READER))
        assert refused.status_code == 403
        assert refused.json()["message"] == "key board lacks the events scope (has read)"
        assert (await api.delete("/v1/users/u1", headers=_as(WRITER))).status_code == 403
        for key in (ADMIN, LEGACY):
            assert (await api.post("/v1/events", json=EVENT, headers=_as(key))).status_code == 202
            assert (await api.delete("/v1/users/u1", headers=_as(key))).status_code == 202
        body = {"actions": [{"id": "a"}]}
        assert (
            await api.post("/v1/reward", json={"decision_id": "d", "reward": 1}, headers=_as(WRITER))
        ).status_code == 202
        assert (await api.post("/v1/rank", json=body, headers=_as(READER))).status_code == 403
    assert len(producer.sent) == 6  # 3 events, 2 erasures, 1 reward


@pytest.mark.parametrize("path", ["/v1/recommendations/u1", "/v1/users/u1/preferences", "/v1/experiments"])
async def test_with_read_auth_every_read_needs_a_read_key(path: str) -> None:
    async with running(make_app(_store(), FakeProducer(), api_key_hashes=ENTRIES, api_read_auth=True)) as api:
        assert (await api.get(path)).status_code == 401
        assert (await api.get(path, headers=_as(WRITER))).status_code == 403
        for key in (READER, ADMIN, LEGACY):
            assert (await api.get(path, headers=_as(key))).status_code == 200


async def test_open_reads_stay_open_without_read_auth() -> None:
    async with running(make_app(_store(), FakeProducer(), api_key_hashes=ENTRIES)) as api:
        assert (await api.get("/v1/recommendations/u1")).status_code == 200
        assert (await api.get("/metrics")).status_code == 200
        assert (await api.get("/openapi.json")).status_code == 200


async def test_with_read_auth_metrics_need_admin_the_document_read_and_health_nothing() -> None:
    async with running(make_app(_store(), FakeProducer(), api_key_hashes=ENTRIES, api_read_auth=True)) as api:
        assert (await api.get("/v1/health")).status_code == 200
        assert (await api.get("/metrics", headers=_as(READER))).status_code == 403
        metrics = await api.get("/metrics", headers=_as(ADMIN))
        assert metrics.status_code == 200
        assert 'personalize_api_auth_rejected_total{key="board",reason="forbidden"} 1.0' in metrics.text
        assert (await api.get("/openapi.json")).status_code == 401
        document = await api.get("/openapi.json", headers=_as(READER))
        assert document.status_code == 200 and "/v1/events" in document.json()["paths"]
        assert (await api.get("/docs", headers=_as(READER))).status_code == 404


async def test_a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not() -> None:
    # 1 request per 1,000 s, bursts of 2: the third request of a key is refused however slow the machine.
    app = make_app(
        _store(),
        FakeProducer(),
        api_key_hashes=ENTRIES,
        api_read_auth=True,
        api_rate_limit=0.001,
        api_rate_burst=2,
    )
    async with running(app) as api:
        statuses = [
            (await api.get("/v1/recommendations/u1", headers=_as(READER))).status_code for _ in range(2)
        ]
        limited = await api.get("/v1/recommendations/u1", headers=_as(READER))
        also = await api.post("/v1/events", json=EVENT, headers=_as(READER))  # the same key's bucket
        other = await api.get("/v1/recommendations/u1", headers=_as(ADMIN))
        text = (await api.get("/metrics", headers=_as(ADMIN))).text
    assert statuses == [200, 200] and limited.status_code == 429 and other.status_code == 200
    assert also.status_code == 403  # the scope is checked before the rate
    assert int(limited.headers["retry-after"]) >= 999
    assert limited.json()["error"] == "too_many_requests"
    assert 'personalize_api_auth_rejected_total{key="board",reason="rate_limited"} 1.0' in text


async def test_no_key_and_no_pseudonym_secret_reaches_a_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "p13n_not-configured-secret"
    pseudonym_key = "a-pseudonym-key-that-must-never-be-logged"
    app = make_app(_store(), FakeProducer(fail=True), api_key_hashes=ENTRIES, pseudonym_key=pseudonym_key)
    async with running(app) as api:
        await api.post("/v1/events", json=EVENT, headers=_as(WRITER))  # 503: Kafka down, logged
        await api.post("/v1/events", json=EVENT, headers=_as(wrong))
        await api.delete("/v1/users/u1", headers=_as(WRITER))
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert "answering 503" in logged  # something was logged
    for secret in (WRITER, wrong, ADMIN, pseudonym_key):
        assert secret not in logged


def test_settings_take_named_scoped_entries_and_refuse_unknown_scopes() -> None:
    digest = hash_key(WRITER)
    settings = Settings(api_key_hashes=f"shop:events+read:{digest.upper()}, {digest}")
    assert settings.api_key_hashes == (f"shop:events+read:{digest}", digest)
    for bad in (f"shop:write:{digest}", f"sh op:events:{digest}", f"shop::{digest}", f"events:{digest}"):
        with pytest.raises(ValueError):
            Settings(api_key_hashes=(bad,))


def test_keyring_compares_every_digest_and_names_refusals() -> None:
    refusals: list[tuple[str, str]] = []
    ring = Keyring(ENTRIES, on_reject=lambda reason, name: refusals.append((reason, name)))
    assert ring.check(WRITER, Scope.EVENTS) == parse_entry(ENTRIES[0])
    assert ring.admit(READER, Scope.EVENTS) is None and refusals == []  # admit counts nothing
    for key, status in ((None, 401), ("", 401), ("p13n_nope", 403), (READER, 403)):
        with pytest.raises(RequestRejectedError) as info:
            ring.check(key, Scope.EVENTS)
        assert info.value.status == status
    assert refusals == [
        ("unauthenticated", "none"),
        ("unauthenticated", "none"),
        ("forbidden", "unknown"),
        ("forbidden", "board"),
    ]
