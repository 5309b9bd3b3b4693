"""HydraCore's Python client: durable workflow records for AI agents.

`AgentClient` / `AsyncAgentClient` speak the internal API (a proxy key, one
instance); `DashboardClient` / `AsyncDashboardClient` the dashboard API (an
admin JWT or a tenant API key). `verify_webhook` checks a webhook delivery."""

from . import models
from ._async_client import AsyncAgentClient, AsyncDashboardClient
from ._common import UNSET, Retry, __version__
from ._sync_client import AgentClient, DashboardClient
from .errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    GoneError,
    HydraCoreError,
    NotFoundError,
    NotSuspendedError,
    PermissionDeniedError,
    RateLimitedError,
    TransportError,
    UnavailableError,
    ValidationError,
    WaitTimeout,
    WorkflowClosedError,
)
from .models import ActionResult, Decision, Delivery, Event, HistoryEntry, Webhook, Workflow
from .webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "APIError",
    "ActionResult",
    "AgentClient",
    "AsyncAgentClient",
    "AsyncDashboardClient",
    "AuthenticationError",
    "ConflictError",
    "DashboardClient",
    "Decision",
    "Delivery",
    "Event",
    "GoneError",
    "HistoryEntry",
    "HydraCoreError",
    "NotFoundError",
    "NotSuspendedError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Retry",
    "TransportError",
    "UNSET",
    "UnavailableError",
    "ValidationError",
    "WaitTimeout",
    "Webhook",
    "WebhookVerificationError",
    "Workflow",
    "WorkflowClosedError",
    "models",
    "verify_webhook",
    "__version__",
]
