"""Property-based fuzzing of the HTTP API's bodies, paths and parameters (ASGI app, Redis and Kafka faked).

Whatever comes in, the answer is never a 5xx: good events are produced and answered 202, a body with any
bad event is a 422 listing a problem that names the event's index and field (and nothing is produced),
other bad bodies are 4xx JSON error answers with a message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast
from urllib.parse import quote

import httpx
import orjson
import pytest_asyncio
from hypothesis import example, given, note
from hypothesis import strategies as st

from tests.contract_strategies import (
    TS_MIN,
    Broken,
    broken_bytes,
    broken_events,
    broken_preferences,
    events,
    json_values,
    preferences,
)
from tests.engine.api.fakes import KEY, FakeProducer, FakeStore, make_app, running
from tests.engine.fake_redis import FakeRedis

AUTH = {"X-API-Key": KEY}
MAX_BATCH = 5


class _Api:
    """One running app for a module's examples; the fakes are emptied before each example."""

    def __init__(self, client: httpx.AsyncClient, store: FakeStore, producer: FakeProducer) -> None:
        self.client = client
        self.store = store
        self.producer = producer

    def reset(self) -> None:
        self.producer.sent.clear()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api() -> AsyncIterator[_Api]:
    store = FakeStore(client=cast(Any, FakeRedis()))
    producer = FakeProducer()
    app = make_app(store, producer, api_max_batch=MAX_BATCH, api_max_body_bytes=65_536)
    async with running(app) as client:
        yield _Api(client, store, producer)


def _error_answer(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["error"] and body["message"]
    return body


@given(st.lists(events(), min_size=1, max_size=MAX_BATCH), st.booleans())
async def test_good_events_are_produced_and_answered_202(api: _Api, batch: list[Any], single: bool) -> None:
    api.reset()
    body = batch[0] if single else batch
    response = await api.client.post("/v1/events", content=orjson.dumps(body), headers=AUTH)
    assert response.status_code == 202, response.text
    sent = batch[:1] if single else batch
    assert response.json()["event_ids"] == [e["event_id"] for e in sent]
    assert [orjson.loads(value)["event_id"] for _t, value, _k in api.producer.sent] == response.json()[
        "event_ids"
    ]


@given(st.lists(events(), max_size=MAX_BATCH - 1), broken_events(), st.data())
@example(
    [],
    Broken(
        {"event_id": "e", "user_id": "u", "item_id": "i", "type": "view", "ts": TS_MIN, ".": 0}, ".", "extra"
    ),
    None,
)
async def test_a_batch_with_a_broken_event_is_422_naming_its_index_and_field(
    api: _Api, good: list[Any], broken: Broken, data: st.DataObject | None
) -> None:
    api.reset()
    at = data.draw(st.integers(0, len(good))) if data is not None else 0
    batch = [*good[:at], broken.record, *good[at:]]
    note(f"{broken.how}: {broken.field} at {at}")
    response = await api.client.post("/v1/events", content=orjson.dumps(batch), headers=AUTH)
    assert response.status_code == 422, response.text
    fields = [p["field"] for p in _error_answer(response)["problems"]]
    assert any(f == f"{at}.{broken.field}" or f.startswith(f"{at}.{broken.field}.") for f in fields), fields
    assert api.producer.sent == []


@given(broken_bytes() | st.binary(max_size=200).map(lambda b: Broken(b, "", "noise")))
async def test_bodies_that_are_no_events_are_4xx_and_write_nothing(api: _Api, broken: Broken) -> None:
    api.reset()
    response = await api.client.post("/v1/events", content=broken.raw(), headers=AUTH)
    _error_answer(response)
    assert api.producer.sent == []


@given(
    preferences() | broken_preferences().map(lambda b: b.record) | json_values, st.sampled_from(["u1", "a/b"])
)
async def test_preferences_bodies_are_applied_or_rejected_never_a_server_error(
    api: _Api, body: Any, user: str
) -> None:
    if isinstance(body, dict):  # the path names the user: the record's envelope is no part of the body
        body = {k: v for k, v in body.items() if k not in ("type", "event_id", "user_id", "ts")}
    response = await api.client.put(
        f"/v1/users/{quote(user, safe='/')}/preferences", content=orjson.dumps(body), headers=AUTH
    )
    if response.status_code != 200:
        _error_answer(response)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "context": st.dictionaries(st.text(max_size=10), json_values, max_size=4),
            "actions": st.lists(
                st.fixed_dictionaries(
                    {"id": st.text(max_size=8)},
                    optional={"features": st.dictionaries(st.text(max_size=5), json_values)},
                ),
                max_size=4,
            )
            | json_values,
            "user_id": json_values,
            "surface": json_values,
            "exclude": json_values,
        },
    )
    | json_values
)
async def test_rank_bodies_are_ranked_or_rejected_never_a_server_error(api: _Api, body: Any) -> None:
    response = await api.client.post("/v1/rank", content=orjson.dumps(body), headers=AUTH)
    if response.status_code != 200:
        _error_answer(response)


@given(st.dictionaries(st.sampled_from(["decision_id", "reward", "extra"]), json_values) | json_values)
async def test_reward_bodies_are_accepted_or_rejected_never_a_server_error(api: _Api, body: Any) -> None:
    response = await api.client.post("/v1/reward", content=orjson.dumps(body), headers=AUTH)
    if response.status_code != 202:
        _error_answer(response)


@given(
    st.text(max_size=300),
    st.dictionaries(
        st.sampled_from(["n", "surface", "locale", "region", "x"]), st.text(max_size=140), max_size=4
    ),
)
async def test_any_user_id_and_query_is_answered_or_rejected_never_a_server_error(
    api: _Api, user: str, query: dict[str, str]
) -> None:
    response = await api.client.get(f"/v1/recommendations/{quote(user, safe='')}", params=query)
    if response.status_code != 200:
        _error_answer(response)
    for path in (f"/v1/users/{quote(user, safe='')}/preferences", f"/v1/users/{quote(user, safe='')}"):
        method = "GET" if path.endswith("preferences") else "DELETE"
        answer = await api.client.request(method, path, headers=AUTH)
        if answer.status_code not in (200, 202):
            _error_answer(answer)
