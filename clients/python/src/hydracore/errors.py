"""What a call raises. Every answer of 400 or more is an `APIError` carrying
the status and FastAPI's `detail`; the subclasses name the cases an agent
handles differently."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from .models import ValidationError as ValidationItem
    from .models import Workflow

_VERSION = re.compile(r"at version (\d+)")


class HydraCoreError(Exception):
    """Anything this client raises."""


class TransportError(HydraCoreError):
    """No answer: the connection failed or timed out (after the retries that
    were safe)."""


class APIError(HydraCoreError):
    """The server answered an error.

    `detail` is FastAPI's `detail`: a sentence, or for a 422 the list of
    validation items (each `{"type", "loc", "msg", "input"}`)."""

    def __init__(self, status: int, detail: Any, headers: httpx.Headers | None = None):
        self.status = status
        self.detail = detail
        self.headers = headers
        self.request_id = headers.get("x-request-id") if headers is not None else None
        super().__init__(f"{status}: {detail}")


class AuthenticationError(APIError):
    """401: no, unknown or revoked credential, or an invalid JWT."""


class PermissionDeniedError(APIError):
    """403: the credential may not do this (another instance, a missing scope)."""


class NotFoundError(APIError):
    """404: no such workflow (or webhook) in the caller's scope."""


class ConflictError(APIError):
    """409 (a terminal workflow, a suspend while suspended, a resume while not,
    an Idempotency-Key in flight) or 412 (`If-Match` named another version).

    `current_version` is the workflow's version when the server says it (412)."""

    def __init__(self, status: int, detail: Any, headers: httpx.Headers | None = None):
        super().__init__(status, detail, headers)
        match = _VERSION.search(detail) if isinstance(detail, str) else None
        self.current_version: int | None = int(match.group(1)) if match else None


class GoneError(APIError):
    """410: events asked for after a point older than the retention."""


class ValidationError(APIError):
    """422: `detail` is the list of problems; `errors` the same as models."""

    @property
    def errors(self) -> list[ValidationItem]:
        from .models import ValidationError as ValidationItem

        items = self.detail if isinstance(self.detail, list) else []
        return [ValidationItem.from_json(item) for item in items]


class RateLimitedError(APIError):
    """429, after the retries: `retry_after` is the server's `Retry-After`, in seconds."""

    @property
    def retry_after(self) -> float | None:
        return _retry_after(self.headers)


class UnavailableError(APIError):
    """503, after the retries: the database is away, the server busy, or the
    request ran too long (a write may have landed)."""


class WaitTimeout(HydraCoreError, TimeoutError):
    """`wait_for_resume` ran out of time before the workflow was resumed."""


class WorkflowClosedError(HydraCoreError):
    """`wait_for_resume`: the workflow ended (aborted, expired, ...) instead of
    being resumed. `workflow` is the record as it ended."""

    def __init__(self, workflow: Workflow):
        self.workflow = workflow
        super().__init__(f"workflow {workflow.id} is {workflow.status}, not resumed")


class NotSuspendedError(HydraCoreError):
    """`wait_for_resume` was given a workflow id that is not suspended now and
    no version to wait from."""


_BY_STATUS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    412: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
    503: UnavailableError,
}


def error_for(status: int, body: bytes, headers: httpx.Headers | None) -> APIError:
    """The exception for an error answer."""
    import json

    try:
        detail = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        detail = body.decode("utf-8", "replace")
    return _BY_STATUS.get(status, APIError)(status, detail, headers)


def _retry_after(headers: httpx.Headers | None) -> float | None:
    if headers is None:
        return None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import datetime, timezone
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
