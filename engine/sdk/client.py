"""The Python SDK: send events and read recommendations without speaking Kafka.

`AsyncClient` for async code; `Client` for everything else (it drives an `AsyncClient` on a private
event loop). Events go over the HTTP API; recommendations come straight from Redis when a ``redis_url``
is given (same key contract and fallback as the API, no HTTP hop), else over HTTP.
"""

from __future__ import annotations

__all__ = ["AsyncClient", "Client", "EventLike", "Ranked"]

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pydantic
from redis.exceptions import RedisError

from engine.sdk.rank import AsyncRankCalls, Ranked, SyncRankCalls
from engine.serving.recommend import Served, recommend
from engine.store.preferences import Preferences
from engine.store.redis_store import RedisStore
from schemas.errors import (
    ConfigError,
    InvalidEventError,
    Problem,
    RequestRejectedError,
    ServiceUnavailableError,
)
from schemas.events import Event, parse_events, problems_of
from schemas.pseudonyms import Pseudonyms
from schemas.users import PreferencesRequest

#: An event as a validated `Event` or as the plain dict of the event contract.
EventLike = Event | Mapping[str, Any]

_API_KEY_HEADER = "X-API-Key"


def _validated(events: Iterable[EventLike]) -> list[Event]:
    """Check events here first, so a bad one fails without a round trip and with the API's problems."""
    raws = [e.model_dump(mode="json", exclude_none=True) if isinstance(e, Event) else dict(e) for e in events]
    return parse_events(raws)


def _raise_for(response: httpx.Response, base_url: str, timeout_s: float) -> None:
    if response.is_success:
        return
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"message": response.text}
    message = str(body.get("message", response.reason_phrase))
    if response.status_code == 422:
        problems = [Problem(p["field"], p["message"]) for p in body.get("problems", [])]
        raise InvalidEventError(problems or [Problem("", message)])
    if response.status_code == 503:
        raise ServiceUnavailableError("personalize api (Redis or Kafka behind it)", base_url, timeout_s)
    raise RequestRejectedError(response.status_code, message)


class AsyncClient(AsyncRankCalls):
    """Async SDK client; give ``base_url`` (the API) and/or ``redis_url`` (direct reads).

    ``transport`` replaces httpx's network transport (tests pass an ``httpx.ASGITransport``).
    ``pseudonym_key``: the API's PERSONALIZE_PSEUDONYM_KEY, so direct reads find a user's list under
    its pseudonym (reads over HTTP need nothing: the API hashes).

    >>> AsyncClient()
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: give base_url (the HTTP API), redis_url (direct reads), or both
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        redis_url: str | None = None,
        namespace: str = "default",
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        pseudonym_key: str | None = None,
    ) -> None:
        if base_url is None and redis_url is None:
            raise ConfigError("give base_url (the HTTP API), redis_url (direct reads), or both")
        self.base_url = base_url
        self.timeout_s = timeout_s
        headers = {_API_KEY_HEADER: api_key} if api_key else {}
        self._http = (
            httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout_s, transport=transport)
            if base_url is not None
            else None
        )
        self._store = RedisStore.from_url(redis_url, namespace) if redis_url is not None else None
        self._pseudonyms = Pseudonyms(pseudonym_key.encode() if pseudonym_key is not None else None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._store is not None:
            await self._store.close()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._http is None or self.base_url is None:
            raise ConfigError(f"{method} {path} needs the HTTP API: give the client a base_url")
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError:
            raise ServiceUnavailableError("personalize api", self.base_url, self.timeout_s) from None
        _raise_for(response, self.base_url, self.timeout_s)
        return response

    async def track(self, event: EventLike) -> None:
        """Send one event; returns once Kafka has it. Invalid events raise `InvalidEventError`."""
        await self.track_many([event])

    async def track_many(self, events: Iterable[EventLike]) -> int:
        """Send a batch (all or nothing); returns how many were accepted."""
        batch = _validated(events)
        if not batch:
            return 0
        body = orjson.dumps([e.model_dump(mode="json", exclude_none=True) for e in batch])
        headers = {"content-type": "application/json"}
        response = await self._request("POST", "/v1/events", content=body, headers=headers)
        return int(response.json()["accepted"])

    async def preferences(self, user_id: str, **choices: Any) -> Preferences:
        """Change the user's preferences (the fields of ``PUT /v1/users/{id}/preferences``, e.g.
        ``muted_categories=["horror"]``, ``hidden_items=["i9"]``, ``reset=True``); returns them after."""
        try:
            request = PreferencesRequest.model_validate(choices)
        except pydantic.ValidationError as exc:
            raise InvalidEventError(problems_of(exc.errors(include_url=False))) from None
        body = orjson.dumps(request.model_dump(mode="json"))
        path = f"/v1/users/{quote(user_id, safe='')}/preferences"
        headers = {"content-type": "application/json"}
        response = await self._request("PUT", path, content=body, headers=headers)
        return Preferences(**{k: frozenset(v) for k, v in response.json()["preferences"].items()})

    async def erase(self, user_id: str) -> int:
        """Erase the user (``DELETE /v1/users/{id}``); returns how many of their Redis keys existed."""
        response = await self._request("DELETE", f"/v1/users/{quote(user_id, safe='')}")
        return int(response.json()["deleted_keys"])

    async def consent(self, user_id: str, granted: bool) -> bool:
        """Grant or withdraw the user's consent (``PUT /v1/users/{id}/consent``); returns whether the
        user's events are learned from now on."""
        path = f"/v1/users/{quote(user_id, safe='')}/consent"
        response = await self._request("PUT", path, json={"granted": granted})
        return bool(response.json()["admitted"])

    async def recommend(
        self, user_id: str, n: int = 10, surface: str | None = None, locale: str | None = None
    ) -> Served:
        """The user's top-n (or trending for an unknown user; ``source`` says which)."""
        if self._store is not None:
            try:
                served = await recommend(
                    self._store, self._pseudonyms.of(user_id), n, locale, surface=surface
                )
                return dataclasses.replace(served, user_id=user_id)
            except RedisError:
                raise ServiceUnavailableError("redis", self._store.address, self.timeout_s) from None
        params: dict[str, str | int] = {"n": n}
        if surface is not None:
            params["surface"] = surface
        if locale is not None:
            params["locale"] = locale
        path = f"/v1/recommendations/{quote(user_id, safe='')}"
        response = await self._request("GET", path, params=params)
        return Served.from_json(response.json())


class Client(SyncRankCalls):
    """The synchronous SDK client: same arguments and methods as `AsyncClient`, without ``await``.

    Not for use inside a running event loop (use `AsyncClient` there).
    """

    def __init__(self, base_url: str | None = None, **options: Any) -> None:
        self._runner = asyncio.Runner()
        self._client = AsyncClient(base_url, **options)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()

    def track(self, event: EventLike) -> None:
        self._runner.run(self._client.track(event))

    def track_many(self, events: Iterable[EventLike]) -> int:
        return self._runner.run(self._client.track_many(events))

    def preferences(self, user_id: str, **choices: Any) -> Preferences:
        return self._runner.run(self._client.preferences(user_id, **choices))

    def erase(self, user_id: str) -> int:
        return self._runner.run(self._client.erase(user_id))

    def consent(self, user_id: str, granted: bool) -> bool:
        return self._runner.run(self._client.consent(user_id, granted))

    def recommend(
        self, user_id: str, n: int = 10, surface: str | None = None, locale: str | None = None
    ) -> Served:
        return self._runner.run(self._client.recommend(user_id, n, surface, locale))
