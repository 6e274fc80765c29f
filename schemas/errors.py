"""The one error tree of the engine; every error we raise on purpose lives here.

Errors carry the context needed to act on them (which event, which key, which service). This module
imports nothing from the rest of the project so that every layer can raise these.

    PersonalizeError
    ├── InvalidEventError        an event or catalog record breaks the contract (has .problems)
    ├── ConfigError              settings or files that cannot be used
    │   └── DataFormatError      a data file (e.g. a bandit log) is malformed (has .path, .line)
    ├── StackError               the local Kafka/Redis stack cannot be installed or started
    │   └── ServiceUnavailableError  a service did not answer in time
    ├── DeliveryError            a record could not be written to Kafka or Redis
    ├── CheckpointError          a model checkpoint cannot be written or read (has .path)
    │   ├── CheckpointVersionError   written by another format or model version: refused
    │   └── CheckpointSignatureError unsigned or tampered with while a checkpoint key is set: refused
    ├── PolicySnapshotError      a bandit policy snapshot refused: unsigned, tampered, other version (.reason)
    └── RequestRejectedError     the HTTP API refused a request (no, unknown or limited key, too large)
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointSignatureError",
    "CheckpointVersionError",
    "ConfigError",
    "DataFormatError",
    "DeliveryError",
    "InvalidEventError",
    "PersonalizeError",
    "PolicySnapshotError",
    "Problem",
    "RecoveryStalledError",
    "RequestRejectedError",
    "ServiceUnavailableError",
    "StackError",
]

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class PersonalizeError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (a dotted field path), what, and what kind of problem.

    ``code`` is one of a few words, so dead letters can be counted by it: ``missing``, ``extra`` (a field
    the contract does not have), ``type`` (wrong JSON type), ``value`` (right type, wrong value),
    ``json`` (not JSON) and ``object`` (JSON, but not an object).

    >>> Problem.from_pydantic({"loc": ("ts",), "msg": "Field required", "type": "missing"})
    Problem(field='ts', message='Field required', code='missing')
    >>> Problem.from_pydantic({"loc": ("context", "page"), "msg": "Input should be a valid string",
    ...                        "type": "string_type"}).code
    'type'
    """

    field: str
    message: str
    code: str = "value"

    @classmethod
    def from_pydantic(cls, error: Mapping[str, Any]) -> Problem:
        """One of pydantic's ``ValidationError.errors()`` as a problem."""
        kind = str(error["type"])
        if kind in ("missing", "extra_forbidden"):
            code = "missing" if kind == "missing" else "extra"
        elif kind.endswith(("_type", "_parsing")):
            code = "type"
        else:
            code = "value"
        field = ".".join(str(part) for part in error["loc"])
        return cls(field, str(error["msg"]).removeprefix("Value error, "), code)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidEventError(PersonalizeError):
    """An event or catalog record that breaks the contract; ``problems`` lists every issue found.

    >>> err = InvalidEventError([Problem("ts", "must be milliseconds")], event_id="e1")
    >>> str(err)
    'invalid event e1: ts: must be milliseconds'
    """

    def __init__(self, problems: list[Problem], *, event_id: str | None = None) -> None:
        self.problems = problems
        self.event_id = event_id
        where = f"invalid event {event_id}" if event_id else "invalid event"
        super().__init__(f"{where}: " + "; ".join(str(p) for p in problems))

    @property
    def reason(self) -> str:
        """All problems on one line, as written to the dead-letter topic."""
        return "; ".join(str(p) for p in self.problems)


class ConfigError(PersonalizeError):
    """Settings or configuration files that cannot be used."""


class DataFormatError(ConfigError):
    """A data file that cannot be read as the format it claims; says which file and line.

    >>> str(DataFormatError("log.csv", 12, "propensity_score 1.5 is outside (0, 1]"))
    'log.csv:12: propensity_score 1.5 is outside (0, 1]'
    """

    def __init__(self, path: str, line: int | None, detail: str) -> None:
        self.path = path
        self.line = line
        self.detail = detail
        super().__init__(f"{path}:{line}: {detail}" if line is not None else f"{path}: {detail}")


class StackError(PersonalizeError):
    """The local Kafka/Redis stack cannot be installed, started or stopped."""


class ServiceUnavailableError(StackError):
    """A service did not answer within its deadline."""

    def __init__(self, service: str, address: str, waited_s: float) -> None:
        self.service = service
        self.address = address
        super().__init__(f"{service} at {address} did not answer within {waited_s:.0f}s")


class RecoveryStalledError(PersonalizeError):
    """The worker's table recovery stopped making progress (`streams.recovery_watch`)."""


class DeliveryError(PersonalizeError):
    """A record could not be delivered to Kafka or Redis."""

    def __init__(self, target: str, detail: str) -> None:
        self.target = target
        super().__init__(f"could not deliver to {target}: {detail}")


class CheckpointError(PersonalizeError):
    """A model checkpoint that cannot be written or read (truncated, corrupt, not a checkpoint).

    >>> str(CheckpointError("ckpt/1.ckpt", "checksum mismatch"))
    'checkpoint ckpt/1.ckpt: checksum mismatch'
    """

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"checkpoint {path}: {detail}")


class CheckpointVersionError(CheckpointError):
    """A checkpoint written by another checkpoint format or model version; it is refused, not loaded."""


class CheckpointSignatureError(CheckpointError):
    """A checkpoint without a valid signature while a checkpoint key is set; refused before unpickling.

    ``reason``: ``unsigned`` (no signature) or ``signature`` (tampered with, or signed with another key).
    """

    def __init__(self, path: str, detail: str, reason: str) -> None:
        self.reason = reason
        super().__init__(path, detail)


class PolicySnapshotError(PersonalizeError):
    """A bandit policy snapshot that is refused before its state is restored (never unpickled).

    ``reason``: ``unsigned`` (no valid-looking signature where one is required), ``signature`` (tampered
    with, or signed with another key), ``version`` (another state format or River version) or ``corrupt``.

    >>> str(PolicySnapshotError("unsigned", "River state needs PERSONALIZE_POLICY_KEY"))
    'policy snapshot refused (unsigned): River state needs PERSONALIZE_POLICY_KEY'
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"policy snapshot refused ({reason}): {detail}")


class RequestRejectedError(PersonalizeError):
    """The HTTP API refused a request for a reason other than its content: ``status`` says which, and
    ``retry_after_s`` when to try again (a rate limit).

    >>> str(RequestRejectedError(401, "an API key is required for writes"))
    'request rejected (401): an API key is required for writes'
    """

    def __init__(self, status: int, detail: str, *, retry_after_s: float | None = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s
        super().__init__(f"request rejected ({status}): {detail}")
