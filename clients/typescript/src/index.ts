// HydraCore's TypeScript client: durable workflow records for AI agents.
// AgentClient speaks the internal API (a proxy key, one instance);
// DashboardClient the dashboard API (an admin JWT or a tenant API key);
// verifyWebhook checks a webhook delivery. Every schema of the API is a type
// of `models`; the common ones are exported by name too.

export * from "./client.js";
export * from "./errors.js";
export type * as models from "./models.js";
export type {
  ActionResult,
  AdvanceWorkflow,
  CreateWebhookBody,
  CreateWorkflow,
  Decision,
  Delivery,
  Event,
  EventPage,
  EventType,
  HistoryEntry,
  HistoryPage,
  InboxPage,
  InboxSummary,
  Status,
  SuspendedWorkflow,
  SuspendWorkflow,
  UpdateWebhookBody,
  ValidationError as ValidationItem,
  Webhook,
  WebhookWithSecret,
  Workflow,
  WorkflowList,
  WorkflowType,
} from "./models.js";
export { NOT_COVERED, OPERATIONS } from "./operations.js";
export { TOLERANCE_SECONDS, verifyWebhook, WebhookVerificationError, type WebhookHeaders } from "./webhooks.js";
