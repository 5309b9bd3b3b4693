"""Which method calls each operation of the server's OpenAPI document
(clients/openapi.json), by `operationId`. The tests check that every
operation is here and every method exists, in the sync and the async client;
crates/hydracore/tests/api/openapi.rs checks that the server has no
operation this map lacks."""

OPERATIONS: dict[str, tuple[str, str]] = {
    # Operations.
    "healthz": ("AgentClient", "healthz"),
    "readyz": ("AgentClient", "readyz"),
    # The internal API.
    "query_workflows_internal": ("AgentClient", "list_workflows"),
    "create_workflow": ("AgentClient", "create_workflow"),
    "get_workflow_internal": ("AgentClient", "get_workflow"),
    "advance_workflow": ("AgentClient", "advance_workflow"),
    "get_workflow_history_internal": ("AgentClient", "workflow_history"),
    "suspend_workflow_internal": ("AgentClient", "suspend_workflow"),
    "resume_workflow_internal": ("AgentClient", "resume_workflow"),
    "list_events_internal": ("AgentClient", "list_events"),
    # The dashboard API.
    "list_workflows_dashboard": ("DashboardClient", "list_workflows"),
    "list_suspended_workflows": ("DashboardClient", "list_suspended"),
    "get_workflow_dashboard": ("DashboardClient", "get_workflow"),
    "get_workflow_history_dashboard": ("DashboardClient", "workflow_history"),
    "abort_workflow": ("DashboardClient", "abort_workflow"),
    "create_approval_link": ("DashboardClient", "create_approval_link"),
    "suspend_workflow": ("DashboardClient", "suspend_workflow"),
    "resume_workflow": ("DashboardClient", "resume_workflow"),
    "list_decisions": ("DashboardClient", "list_decisions"),
    "decisions_summary": ("DashboardClient", "decisions_summary"),
    "list_events": ("DashboardClient", "list_events"),
    "create_webhook": ("DashboardClient", "create_webhook"),
    "list_webhooks": ("DashboardClient", "list_webhooks"),
    "read_webhook": ("DashboardClient", "get_webhook"),
    "update_webhook": ("DashboardClient", "update_webhook"),
    "delete_webhook": ("DashboardClient", "delete_webhook"),
    "rotate_webhook_secret": ("DashboardClient", "rotate_webhook_secret"),
    "list_webhook_deliveries": ("DashboardClient", "list_webhook_deliveries"),
    "retry_webhook_delivery": ("DashboardClient", "retry_webhook_delivery"),
}

#: Operations the clients leave out on purpose, and why.
NOT_COVERED: dict[str, str] = {
    "prometheus": "the operator's metrics scrape, not an agent's or an admin's call",
}
