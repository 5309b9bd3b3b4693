"""Sync clients: `AgentClient` (the internal API, a proxy key) and
`DashboardClient` (the dashboard API, an admin JWT or a tenant API key).

clients/generate.py makes the async clients from this file: keep every
method of a class a call to the server (module functions for the rest)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx

from ._common import (
    TERMINAL,
    UNSET,
    Params,
    USER_AGENT,
    Retry,
    SSEParser,
    action,
    body_of,
    duration,
    encode,
    if_match,
    new_idempotency_key,
    params_of,
    present,
    resume_data,
    resume_entry,
    should_retry,
    wait_seconds,
    workflow,
    workflow_id,
)
from .errors import NotSuspendedError, TransportError, WaitTimeout, WorkflowClosedError, error_for
from .models import (
    ActionResult,
    ApprovalLinkAnswer,
    Delivery,
    DeliveryList,
    Event,
    EventPage,
    HistoryPage,
    InboxPage,
    InboxSummary,
    SuspendedWorkflow,
    Webhook,
    WebhookList,
    WebhookWithSecret,
    Workflow,
    WorkflowList,
    WorkflowType,
)

#: How long a stream may stay silent before it counts as dropped (the server
#: sends a comment every 15 s).
STREAM_READ_TIMEOUT = 45.0

Timestamp = datetime | str

_Client = TypeVar("_Client", bound="_BaseClient")


class _BaseClient:
    """What both APIs share: reads, suspend and resume, events, the waits."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        workflows_path: str,
        events_path: str,
        *,
        timeout: float = 30.0,
        retry: Retry | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._timeout = timeout
        self._retry = retry or Retry()
        self._workflows_path = workflows_path
        self._events_path = events_path
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)
        self._base_url = base_url.rstrip("/")
        self._headers = {"User-Agent": USER_AGENT, **headers}

    def __enter__(self: _Client) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connections (not those of a client passed in as `http_client`)."""
        if self._owns_http:
            self._http.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = UNSET,
        headers: dict[str, str] | None = None,
        safe: bool = False,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One logical call, retried as `Retry` says; an error answer raises."""
        content = None if body is UNSET else encode(body)
        sent = {**self._headers, **(headers or {})}
        if content is not None:
            sent["Content-Type"] = "application/json"
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    self._base_url + path,
                    params=params,
                    content=content,
                    headers=sent,
                    timeout=timeout if timeout is not None else self._timeout,
                )
            except httpx.TransportError as error:
                if not should_retry(self._retry, attempt, None, safe):
                    raise TransportError(f"{method} {path}: {error!r}") from error
                time.sleep(self._retry.delay(attempt, None))
                attempt += 1
                continue
            if response.status_code < 400:
                return response
            if not should_retry(self._retry, attempt, response.status_code, safe):
                raise error_for(response.status_code, response.content, response.headers)
            time.sleep(self._retry.delay(attempt, response))
            attempt += 1

    # Operations.

    def healthz(self) -> dict[str, Any]:
        """`GET /healthz`: the process answers."""
        response = self._send("GET", "/healthz", safe=True)
        answer: dict[str, Any] = response.json()
        return answer

    def readyz(self) -> dict[str, Any]:
        """`GET /readyz`: the process and its database answer (503 raises)."""
        response = self._send("GET", "/readyz", safe=True)
        answer: dict[str, Any] = response.json()
        return answer

    # Workflows.

    def get_workflow(self, workflow_ref: Any) -> Workflow:
        """Reads a workflow (by id, or a record to read again)."""
        path = f"{self._workflows_path}/{workflow_id(workflow_ref)}"
        response = self._send("GET", path, safe=True)
        return workflow(response)

    def wait_for_change(
        self, workflow_ref: Any, version: int | None = None, *, wait: int = 25
    ) -> Workflow | None:
        """The record once it moves past `version` (default: the given record's),
        waiting up to `wait` seconds (`Prefer: wait`); None if it did not move."""
        known = version if version is not None else getattr(workflow_ref, "version", None)
        if known is None:
            raise ValueError("wait_for_change needs a version: pass a record or version=")
        wait = max(1, int(wait))
        response = self._send(
            "GET",
            f"{self._workflows_path}/{workflow_id(workflow_ref)}",
            headers={"If-None-Match": f'"{known}"', "Prefer": f"wait={wait}"},
            safe=True,
            timeout=wait + self._timeout,
        )
        return None if response.status_code == 304 else workflow(response)

    def workflow_history(
        self, workflow_ref: Any, *, after: int | None = None, limit: int | None = None
    ) -> HistoryPage:
        """A page of the whole history, oldest first; pass `next_after` as `after`."""
        response = self._send(
            "GET",
            f"{self._workflows_path}/{workflow_id(workflow_ref)}/history",
            params=params_of(after=after, limit=limit),
            safe=True,
        )
        return HistoryPage.from_json(response.json())

    def suspend_workflow(
        self,
        workflow_ref: Any,
        step: str,
        *,
        payload: Any = UNSET,
        resume_schema: dict[str, Any] | None = None,
        assigned_to: str | None = None,
        due_at: Timestamp | None = None,
        escalate_every: str | int | timedelta | None = None,
        max_escalation_level: int | None = None,
        if_match_version: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        """Suspends the workflow at `step` for a person to decide.

        Given a record, sends `If-Match` with its version (a `ConflictError`
        with `current_version` if it moved on); `if_match_version` overrides."""
        body = body_of(step=step, payload=payload) | present(
            resume_schema=resume_schema,
            assigned_to=assigned_to,
            due_at=due_at,
            escalate_every=duration(escalate_every),
            max_escalation_level=max_escalation_level,
        )
        headers = if_match(workflow_ref, if_match_version)
        headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        response = self._send(
            "POST",
            f"{self._workflows_path}/{workflow_id(workflow_ref)}/suspend",
            body=body,
            headers=headers,
            safe=True,
        )
        return action(response)

    def resume_workflow(
        self,
        workflow_ref: Any,
        resume_data: dict[str, Any] | None = None,
        *,
        if_match_version: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        """Resumes a suspended workflow; `resume_data` is merged into its state
        (and must fit the suspension's `resume_schema`, else `ValidationError`)."""
        headers = if_match(workflow_ref, if_match_version)
        headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        response = self._send(
            "POST",
            f"{self._workflows_path}/{workflow_id(workflow_ref)}/resume",
            body=present(resume_data=resume_data),
            headers=headers,
            safe=True,
        )
        return action(response)

    def wait_for_resume(
        self, workflow_ref: Any, timeout: float | None = None, *, poll: float = 25
    ) -> dict[str, Any]:
        """Waits until the workflow is resumed and returns the `resume_data`.

        `workflow_ref` is what the suspend answered (an `ActionResult`: its
        version is the suspension's), a record, or an id (then the workflow
        must be suspended now). Long-polls with `Prefer: wait`, `poll` seconds
        at a time. Raises `WaitTimeout` after `timeout` seconds (None: no
        limit), `WorkflowClosedError` when the workflow ends unanswered."""
        target = workflow_id(workflow_ref)
        version = getattr(workflow_ref, "version", None)
        deadline = None if timeout is None else time.monotonic() + timeout
        if version is None:
            current = self.get_workflow(target)
            if current.status != "suspended":
                raise NotSuspendedError(f"workflow {target} is {current.status}, not suspended")
            version = current.version
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(f"workflow {target} was not resumed within {timeout} s")
            wait = wait_seconds(remaining, poll)
            asked = time.monotonic()
            record = self.wait_for_change(target, version, wait=wait)
            if record is None:
                # A server at its HYDRACORE_MAX_WAITING answers at once: pause
                # rather than ask again in a tight loop.
                if wait > 1 and time.monotonic() - asked < 0.5:
                    time.sleep(1.0)
                continue
            entry = resume_entry(record.history, version)
            if entry is None and record.history and record.history[0].seq > version + 1:
                page = self.workflow_history(target, after=version)
                entry = resume_entry(page.entries, version)
            if entry is not None:
                return resume_data(entry)
            if record.status in TERMINAL:
                raise WorkflowClosedError(record)
            version = record.version

    # Events.

    def list_events(
        self,
        *,
        after: str | None = None,
        limit: int | None = None,
        workflow_id: str | None = None,
        types: list[str] | None = None,
    ) -> EventPage:
        """A page of events, oldest first; pass `next_after` as `after`."""
        response = self._send(
            "GET",
            self._events_path,
            params=params_of(after=after, limit=limit, workflow_id=workflow_id, type=types),
            safe=True,
        )
        return EventPage.from_json(response.json())

    def events(
        self,
        *,
        after: str | None = None,
        workflow_id: str | None = None,
        types: list[str] | None = None,
    ) -> Iterator[Event]:
        """Every event after `after` (None: from the oldest kept), as they happen.

        Reads the Server-Sent Events stream; when the connection drops, it
        connects again with `Last-Event-ID`, so no event is missed or
        repeated. Gives up after `Retry.attempts` failed connections in a row."""
        last_id = after
        failures = 0
        params = params_of(workflow_id=workflow_id, type=types)
        while True:
            headers = {**self._headers, "Accept": "text/event-stream"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            timeout = httpx.Timeout(self._timeout, read=STREAM_READ_TIMEOUT)
            try:
                with self._http.stream(
                    "GET", self._base_url + self._events_path, params=params, headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        if not should_retry(self._retry, failures, response.status_code, True):
                            raise error_for(response.status_code, response.content, response.headers)
                        time.sleep(self._retry.delay(failures, response))
                        failures += 1
                        continue
                    failures = 0
                    parser = SSEParser()
                    for line in response.iter_lines():
                        message = parser.feed(line)
                        if message is None:
                            continue
                        event = Event.from_json(json.loads(message.data))
                        last_id = message.id or event.id
                        yield event
            except httpx.TransportError as error:
                if not should_retry(self._retry, failures, None, True):
                    raise TransportError(f"event stream: {error!r}") from error
                time.sleep(self._retry.delay(failures, None))
                failures += 1


class AgentClient(_BaseClient):
    """The internal API, as an agent runtime calls it: one instance, its
    proxy key (`hcp_...`)."""

    def __init__(
        self,
        base_url: str,
        proxy_key: str,
        instance_id: str,
        *,
        timeout: float = 30.0,
        retry: Retry | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        instance = f"/internal/v1/instances/{instance_id}"
        super().__init__(
            base_url,
            {"Authorization": f"Bearer {proxy_key}"},
            f"{instance}/workflows",
            f"{instance}/events",
            timeout=timeout,
            retry=retry,
            http_client=http_client,
        )
        self.instance_id = str(instance_id)

    def list_workflows(
        self,
        *,
        status: str | None = None,
        workflow_type: str | None = None,
        customer_id: str | None = None,
        reference: str | None = None,
        page: int | None = None,
        per_page: int | None = None,
        cursor: str | None = None,
    ) -> WorkflowList:
        """A page of the instance's workflows, newest first."""
        response = self._send(
            "GET",
            self._workflows_path,
            params=params_of(
                status=status,
                workflow_type=workflow_type,
                customer_id=customer_id,
                reference=reference,
                page=page,
                per_page=per_page,
                cursor=cursor,
            ),
            safe=True,
        )
        return WorkflowList.from_json(response.json())

    def create_workflow(
        self,
        customer_id: str,
        workflow_type: WorkflowType,
        *,
        stage: str | None = None,
        title: str | None = None,
        reference: str | None = None,
        assigned_to: str | None = None,
        workflow_state: dict[str, Any] | None = None,
        next_action_at: Timestamp | None = None,
        expires_at: Timestamp | None = None,
        idempotency_key: str | None = None,
    ) -> Workflow:
        """Creates a workflow (`active`, version 1). Safe to retry: one
        `Idempotency-Key` (generated unless given) covers every attempt."""
        body = {"customer_id": str(customer_id), "workflow_type": workflow_type} | present(
            stage=stage,
            title=title,
            reference=reference,
            assigned_to=assigned_to,
            workflow_state=workflow_state,
            next_action_at=next_action_at,
            expires_at=expires_at,
        )
        response = self._send(
            "POST",
            self._workflows_path,
            body=body,
            headers={"Idempotency-Key": idempotency_key or new_idempotency_key()},
            safe=True,
        )
        return workflow(response)

    def advance_workflow(
        self,
        workflow_ref: Any,
        action: str,
        *,
        stage: str | None = UNSET,
        status: str | None = UNSET,
        workflow_state: dict[str, Any] | None = UNSET,
        assigned_to: str | None = UNSET,
        approver_id: str | None = UNSET,
        escalation_level: int | None = UNSET,
        next_action_at: Timestamp | None = UNSET,
        expires_at: Timestamp | None = UNSET,
        action_detail: Any = UNSET,
        actor: str | None = UNSET,
        if_match_version: int | str | None = None,
    ) -> Workflow:
        """Advances the workflow: one history entry named `action`; the fields
        given replace the stored ones (None clears), `workflow_state` is merged.

        Given a record, sends `If-Match` with its version, so a change made
        meanwhile raises `ConflictError` (with `current_version`) instead of
        being overwritten; `if_match_version` overrides. Retried on 503 only
        with an `If-Match` (without one a retry could apply it twice)."""
        body = body_of(
            action=action,
            stage=stage,
            status=status,
            workflow_state=workflow_state,
            assigned_to=assigned_to,
            approver_id=approver_id,
            escalation_level=escalation_level,
            next_action_at=next_action_at,
            expires_at=expires_at,
            action_detail=action_detail,
            actor=actor,
        )
        headers = if_match(workflow_ref, if_match_version)
        response = self._send(
            "PATCH",
            f"{self._workflows_path}/{workflow_id(workflow_ref)}",
            body=body,
            headers=headers,
            safe=bool(headers),
        )
        return workflow(response)


class DashboardClient(_BaseClient):
    """The dashboard API, as a tenant's admin tools call it: the whole tenant,
    with an admin JWT (`token`) or a tenant API key (`api_key`, `hck_...`)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        retry: Retry | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        if (token is None) == (api_key is None):
            raise ValueError("DashboardClient takes one of token= (a JWT) or api_key=")
        headers = {"Authorization": f"Bearer {token}"} if token else {"X-Api-Key": str(api_key)}
        super().__init__(
            base_url,
            headers,
            "/v1/workflows",
            "/v1/events",
            timeout=timeout,
            retry=retry,
            http_client=http_client,
        )

    def list_workflows(
        self,
        *,
        status: str | None = None,
        workflow_type: str | None = None,
        customer_id: str | None = None,
        reference: str | None = None,
        instance_id: str | None = None,
        page: int | None = None,
        per_page: int | None = None,
        cursor: str | None = None,
    ) -> WorkflowList:
        """A page of the tenant's workflows, newest first."""
        response = self._send(
            "GET",
            self._workflows_path,
            params=params_of(
                status=status,
                workflow_type=workflow_type,
                customer_id=customer_id,
                reference=reference,
                instance_id=instance_id,
                page=page,
                per_page=per_page,
                cursor=cursor,
            ),
            safe=True,
        )
        return WorkflowList.from_json(response.json())

    def list_suspended(self) -> list[SuspendedWorkflow]:
        """The approval queue: suspended workflows, newest suspension first."""
        response = self._send("GET", f"{self._workflows_path}/suspended", safe=True)
        return [SuspendedWorkflow.from_json(item) for item in response.json()]

    def abort_workflow(
        self,
        workflow_ref: Any,
        *,
        if_match_version: int | str | None = None,
        idempotency_key: str | None = None,
    ) -> ActionResult:
        """Aborts the workflow (`cancelled`)."""
        headers = if_match(workflow_ref, if_match_version)
        headers["Idempotency-Key"] = idempotency_key or new_idempotency_key()
        response = self._send(
            "POST",
            f"{self._workflows_path}/{workflow_id(workflow_ref)}/abort",
            headers=headers,
            safe=True,
        )
        return action(response)

    def create_approval_link(
        self,
        workflow_ref: Any,
        *,
        expires_in: int | None = None,
        note: str | None = None,
    ) -> ApprovalLinkAnswer:
        """A single-use URL that answers the workflow's current suspension
        without signing in (`expires_in` seconds, default one day). A retry
        after a lost answer makes a second link; both answer the same
        suspension, once."""
        response = self._send(
            "POST",
            f"{self._workflows_path}/{workflow_id(workflow_ref)}/approval-links",
            body=present(expires_in=expires_in, note=note),
            safe=True,
        )
        return ApprovalLinkAnswer.from_json(response.json())

    # Decisions.

    def list_decisions(
        self,
        *,
        assigned_to: str | None = None,
        overdue: bool | None = None,
        workflow_type: str | None = None,
        instance_id: str | None = None,
        step: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> InboxPage:
        """The inbox: suspended workflows as decisions, due first."""
        response = self._send(
            "GET",
            "/v1/decisions",
            params=params_of(
                assigned_to=assigned_to,
                overdue=overdue,
                workflow_type=workflow_type,
                instance_id=instance_id,
                step=step,
                limit=limit,
                cursor=cursor,
            ),
            safe=True,
        )
        return InboxPage.from_json(response.json())

    def decisions_summary(self) -> InboxSummary:
        """How many decisions wait, how many are overdue, per assignee."""
        response = self._send("GET", "/v1/decisions/summary", safe=True)
        return InboxSummary.from_json(response.json())

    # Webhooks.

    def create_webhook(
        self, url: str, event_types: list[str], *, description: str | None = None
    ) -> WebhookWithSecret:
        """Registers an endpoint; the answer's `secret` is shown this once."""
        response = self._send(
            "POST",
            "/v1/webhooks",
            body={"url": url, "event_types": event_types} | present(description=description),
        )
        return WebhookWithSecret.from_json(response.json())

    def list_webhooks(self) -> list[Webhook]:
        """The tenant's endpoints, oldest first."""
        response = self._send("GET", "/v1/webhooks", safe=True)
        return WebhookList.from_json(response.json()).webhooks

    def get_webhook(self, webhook_id: str) -> Webhook:
        """One endpoint (never its secret)."""
        response = self._send("GET", f"/v1/webhooks/{webhook_id}", safe=True)
        return Webhook.from_json(response.json())

    def update_webhook(
        self,
        webhook_id: str,
        *,
        url: str = UNSET,
        event_types: list[str] = UNSET,
        description: str | None = UNSET,
        enabled: bool = UNSET,
    ) -> Webhook:
        """Changes the fields given (`description=None` clears it)."""
        body = body_of(url=url, event_types=event_types, description=description, enabled=enabled)
        response = self._send("PATCH", f"/v1/webhooks/{webhook_id}", body=body, safe=True)
        return Webhook.from_json(response.json())

    def delete_webhook(self, webhook_id: str) -> None:
        """Deletes the endpoint and its deliveries."""
        self._send("DELETE", f"/v1/webhooks/{webhook_id}", safe=True)

    def rotate_webhook_secret(self, webhook_id: str) -> WebhookWithSecret:
        """A new signing secret, in force at once; shown this once."""
        response = self._send("POST", f"/v1/webhooks/{webhook_id}/rotate-secret")
        return WebhookWithSecret.from_json(response.json())

    def list_webhook_deliveries(self, webhook_id: str, *, limit: int | None = None) -> list[Delivery]:
        """The endpoint's deliveries, newest first."""
        response = self._send(
            "GET", f"/v1/webhooks/{webhook_id}/deliveries", params=params_of(limit=limit), safe=True
        )
        return DeliveryList.from_json(response.json()).deliveries

    def retry_webhook_delivery(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Sends a delivery again now."""
        response = self._send("POST", f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry")
        return Delivery.from_json(response.json())
