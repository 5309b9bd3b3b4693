// Which method calls each operation of the server's OpenAPI document
// (clients/openapi.json), by operationId. The tests check that every
// operation is here and every method exists; crates/hydracore/tests/api/openapi.rs
// checks that the server has no operation this map lacks.

export const OPERATIONS: Record<string, readonly ["AgentClient" | "DashboardClient", string]> = {
  // Operations.
  healthz: ["AgentClient", "healthz"],
  readyz: ["AgentClient", "readyz"],
  // The internal API.
  query_workflows_internal: ["AgentClient", "listWorkflows"],
  create_workflow: ["AgentClient", "createWorkflow"],
  get_workflow_internal: ["AgentClient", "getWorkflow"],
  advance_workflow: ["AgentClient", "advanceWorkflow"],
  get_workflow_history_internal: ["AgentClient", "workflowHistory"],
  suspend_workflow_internal: ["AgentClient", "suspendWorkflow"],
  resume_workflow_internal: ["AgentClient", "resumeWorkflow"],
  list_events_internal: ["AgentClient", "listEvents"],
  // The dashboard API.
  list_workflows_dashboard: ["DashboardClient", "listWorkflows"],
  list_suspended_workflows: ["DashboardClient", "listSuspended"],
  get_workflow_dashboard: ["DashboardClient", "getWorkflow"],
  get_workflow_history_dashboard: ["DashboardClient", "workflowHistory"],
  abort_workflow: ["DashboardClient", "abortWorkflow"],
  create_approval_link: ["DashboardClient", "createApprovalLink"],
  suspend_workflow: ["DashboardClient", "suspendWorkflow"],
  resume_workflow: ["DashboardClient", "resumeWorkflow"],
  list_decisions: ["DashboardClient", "listDecisions"],
  decisions_summary: ["DashboardClient", "decisionsSummary"],
  list_events: ["DashboardClient", "listEvents"],
  create_webhook: ["DashboardClient", "createWebhook"],
  list_webhooks: ["DashboardClient", "listWebhooks"],
  read_webhook: ["DashboardClient", "getWebhook"],
  update_webhook: ["DashboardClient", "updateWebhook"],
  delete_webhook: ["DashboardClient", "deleteWebhook"],
  rotate_webhook_secret: ["DashboardClient", "rotateWebhookSecret"],
  list_webhook_deliveries: ["DashboardClient", "listWebhookDeliveries"],
  retry_webhook_delivery: ["DashboardClient", "retryWebhookDelivery"],
};

/** Operations the client leaves out on purpose, and why. */
export const NOT_COVERED: Record<string, string> = {
  prometheus: "the operator's metrics scrape, not an agent's or an admin's call",
};
