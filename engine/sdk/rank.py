"""The SDK's rank/reward calls, mixed into `engine.sdk.client.AsyncClient` and `engine.sdk.client.Client`.

Requests are validated here first against `schemas.decisions`, so a bad one fails without a round trip
and with the same problems the API would list. No I/O of its own: it uses the client's HTTP request.
"""

from __future__ import annotations

__all__ = ["ActionLike", "AsyncRankCalls", "Ranked", "SyncRankCalls"]

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson
import pydantic

from schemas.decisions import Action, RankRequest, RewardRequest
from schemas.errors import InvalidEventError
from schemas.events import problems_of

#: A candidate as an `Action` or as ``{"id": ..., "features": {...}}``.
ActionLike = Action | Mapping[str, Any]
_JSON = {"content-type": "application/json"}


@dataclass(frozen=True, slots=True)
class Ranked:
    """The answer of ``rank``: the order (chosen first), each action's probability, and the id to reward.

    >>> r = Ranked.from_json({"decision_id": "d1", "chosen": "b", "ranking": [{"id": "b", "probability": 0.9},
    ...     {"id": "a", "probability": 0.1}], "experiment": None, "variant": None, "policy": "default",
    ...     "policy_version": 3})
    >>> r.ranking, r.probabilities["b"]
    (['b', 'a'], 0.9)
    """

    decision_id: str
    chosen: str
    ranking: list[str]
    probabilities: dict[str, float]
    experiment: str | None
    variant: str | None
    policy: str
    policy_version: int

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Ranked:
        return cls(
            decision_id=body["decision_id"],
            chosen=body["chosen"],
            ranking=[r["id"] for r in body["ranking"]],
            probabilities={r["id"]: float(r["probability"]) for r in body["ranking"]},
            experiment=body.get("experiment"),
            variant=body.get("variant"),
            policy=body["policy"],
            policy_version=int(body["policy_version"]),
        )


def _checked(model: type[RankRequest] | type[RewardRequest], raw: dict[str, Any]) -> bytes:
    try:
        request = model.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise InvalidEventError(problems_of(exc.errors(include_url=False))) from None
    return orjson.dumps(request.model_dump(mode="json", exclude_none=True))


class AsyncRankCalls:
    """``rank``, ``reward`` and ``experiments`` over the HTTP API."""

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError  # the client's own HTTP call replaces this

    async def rank(
        self,
        context: Mapping[str, Any],
        actions: Sequence[ActionLike],
        *,
        user_id: str | None = None,
        surface: str | None = None,
        experiment: str | None = None,
        exclude: Iterable[str] = (),
    ) -> Ranked:
        """Rank ``actions`` for ``context`` (Personalizer-style); reward the result by its ``decision_id``."""
        raw: dict[str, Any] = {
            "context": dict(context),
            "actions": [a.model_dump() if isinstance(a, Action) else dict(a) for a in actions],
            "user_id": user_id,
            "surface": surface,
            "experiment": experiment,
            "exclude": list(exclude),
        }
        body = _checked(RankRequest, raw)
        response = await self._request("POST", "/v1/rank", content=body, headers=_JSON)
        return Ranked.from_json(response.json())

    async def reward(self, decision_id: str, reward: float) -> None:
        """Report the reward of a decision; returns once Kafka has it."""
        body = _checked(RewardRequest, {"decision_id": decision_id, "reward": reward})
        await self._request("POST", "/v1/reward", content=body, headers=_JSON)

    async def experiments(self) -> list[dict[str, Any]]:
        """Per experiment: users, decisions, rewards and mean reward per variant, and the SRM check."""
        response = await self._request("GET", "/v1/experiments")
        report: list[dict[str, Any]] = response.json()
        return report


class _SyncHost(Protocol):
    @property
    def _runner(self) -> asyncio.Runner: ...

    @property
    def _client(self) -> AsyncRankCalls: ...


class SyncRankCalls:
    """The same calls without ``await``, for `engine.sdk.client.Client`."""

    def rank(
        self: _SyncHost, context: Mapping[str, Any], actions: Sequence[ActionLike], **options: Any
    ) -> Ranked:
        return self._runner.run(self._client.rank(context, actions, **options))

    def reward(self: _SyncHost, decision_id: str, reward: float) -> None:
        self._runner.run(self._client.reward(decision_id, reward))

    def experiments(self: _SyncHost) -> list[dict[str, Any]]:
        return self._runner.run(self._client.experiments())
