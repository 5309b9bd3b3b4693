"""What the sync and the async clients share: retries, bodies, answers, SSE."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx

from .errors import _retry_after
from .models import ActionResult, HistoryEntry, Workflow

__version__ = "0.1.0"
USER_AGENT = f"hydracore-python/{__version__}"

#: The statuses after which a workflow never changes again.
TERMINAL = frozenset({"completed", "expired", "cancelled", "failed"})

#: The longest `Prefer: wait` the server honours (HYDRACORE_MAX_WAIT's default).
MAX_WAIT = 60


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: "Not given": a field left out of the body, as opposed to `None`, sent as `null`
#: (which clears it on an advance).
UNSET: Any = _Unset()


@dataclass(frozen=True)
class Retry:
    """When a failed call is made again.

    A 429 is always retried (the server refused it before running it); a 503
    or no answer only when repeating the call cannot do the work twice:
    reads, and writes that carry an `Idempotency-Key` or an `If-Match`.
    Never on another 4xx. The wait is the server's `Retry-After` when it
    gives one, else `backoff` doubled at each attempt (at most
    `max_backoff`), shortened by up to half at random."""

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        after = _retry_after(response.headers) if response is not None else None
        if after is not None:
            return min(after, self.max_retry_after)
        base: float = min(self.backoff * 2.0**attempt, self.max_backoff)
        return base * (0.5 + random.random() / 2)


def should_retry(retry: Retry, attempt: int, status: int | None, safe: bool) -> bool:
    """Whether to try again after `attempt` attempts; `status` None: no answer."""
    if attempt + 1 >= retry.attempts:
        return False
    if status == 429:
        return True
    if status == 503 or status is None:
        return safe
    return False


def new_idempotency_key() -> str:
    return str(uuid.uuid4())


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return {k: v for k, v in vars(value).items() if v is not None}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(body: Any) -> bytes:
    return json.dumps(body, default=_default, separators=(",", ":")).encode()


def body_of(**fields: Any) -> dict[str, Any]:
    """The fields that were given (UNSET ones are left out; None is null)."""
    return {k: v for k, v in fields.items() if v is not UNSET}


def present(**fields: Any) -> dict[str, Any]:
    """The fields that are not None."""
    return {k: v for k, v in fields.items() if v is not None and v is not UNSET}


def duration(value: str | int | float | timedelta | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return str(int(value))


def version_of(response: httpx.Response) -> int | None:
    tag = response.headers.get("etag")
    if not tag:
        return None
    try:
        return int(tag.removeprefix("W/").strip('"'))
    except ValueError:
        return None


def workflow(response: httpx.Response) -> Workflow:
    return Workflow.from_json(response.json())


def action(response: httpx.Response) -> ActionResult:
    if response.status_code == 204:
        raise ValueError("the answer has no body")
    result = ActionResult.from_json(response.json())
    result.version = version_of(response)
    return result


def if_match(record: Any, explicit: int | str | None) -> dict[str, str]:
    """`If-Match` for a change: the explicit version, else the record's."""
    if explicit == "*":
        return {"If-Match": "*"}
    version = explicit if explicit is not None else getattr(record, "version", None)
    return {"If-Match": f'"{version}"'} if version is not None else {}


def workflow_id(record: Any) -> str:
    """The id of a workflow given as an id, a `Workflow`, an `ActionResult`, ..."""
    if isinstance(record, (str, uuid.UUID)):
        return str(record)
    return str(record.id)


Params = list[tuple[str, str | int | float | bool | None]]


def params_of(**values: Any) -> Params:
    """Query parameters; lists repeat the name, None is left out."""
    out: Params = []
    for name, value in values.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, bool):
                item = "true" if item else "false"
            out.append((name, str(item)))
    return out


def resume_entry(entries: list[HistoryEntry], after_version: int) -> HistoryEntry | None:
    """The first `resumed` entry after the given version."""
    for entry in entries:
        if entry.seq > after_version and entry.action == "resumed":
            return entry
    return None


def resume_data(entry: HistoryEntry) -> dict[str, Any]:
    detail = entry.action_detail if isinstance(entry.action_detail, dict) else {}
    data = detail.get("resume_data")
    return data if isinstance(data, dict) else {}


def wait_seconds(remaining: float | None, poll: float) -> int:
    wait = poll if remaining is None else min(poll, remaining)
    return max(1, min(MAX_WAIT, int(wait)))


@dataclass
class SSEMessage:
    id: str | None
    event: str | None
    data: str


class SSEParser:
    """Server-Sent Events, line by line (the WHATWG rules this server needs)."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> SSEMessage | None:
        if line == "":
            if not self._data:
                self._event = None
                return None
            message = SSEMessage(self._id, self._event, "\n".join(self._data))
            self._event, self._data = None, []
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None
