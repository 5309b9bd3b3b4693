// AgentClient (the internal API, a proxy key) and DashboardClient (the
// dashboard API, an admin JWT or a tenant API key), over fetch.

import {
  ApiError,
  errorFor,
  NotSuspendedError,
  retryAfterSeconds,
  TransportError,
  WaitTimeoutError,
  WorkflowClosedError,
} from "./errors.js";
import type {
  ActionResult,
  AdvanceWorkflow,
  ApprovalLinkAnswer,
  CreateWebhookBody,
  CreateWorkflow,
  Delivery,
  DeliveryList,
  Event,
  EventPage,
  EventType,
  HistoryEntry,
  HistoryPage,
  InboxPage,
  InboxSummary,
  NewApprovalLink,
  Status,
  SuspendedWorkflow,
  SuspendWorkflow,
  UpdateWebhookBody,
  Webhook,
  WebhookList,
  WebhookWithSecret,
  Workflow,
  WorkflowList,
  WorkflowType,
} from "./models.js";
import { webCrypto } from "./crypto.js";
import { lines, SseParser } from "./sse.js";

export const VERSION = "0.1.0";

/** The statuses after which a workflow never changes again. */
export const TERMINAL: ReadonlySet<Status> = new Set<Status>(["completed", "expired", "cancelled", "failed"]);

/** The longest `Prefer: wait` the server honours (HYDRACORE_MAX_WAIT's default). */
const MAX_WAIT_SECONDS = 60;
/** How long a stream may stay silent before it counts as dropped (the server sends a comment every 15 s). */
const STREAM_IDLE_MS = 45_000;

/**
 * When a failed call is made again. A 429 is always retried (the server
 * refused it before running it); a 503 or no answer only when repeating the
 * call cannot do the work twice: reads, and writes that carry an
 * `Idempotency-Key` or an `If-Match`. Never on another 4xx. The wait is the
 * server's `Retry-After` when it gives one, else `backoffMs` doubled at each
 * attempt (at most `maxBackoffMs`), shortened by up to half at random.
 */
export interface RetryOptions {
  attempts?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  maxRetryAfterMs?: number;
}

export interface ClientOptions {
  baseUrl: string;
  /** Per request, in milliseconds (a long-poll adds its wait). Default 30 s. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Another fetch (a proxy's, a test's); default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

export interface AgentClientOptions extends ClientOptions {
  /** The instance's proxy key, `hcp_...`. */
  proxyKey: string;
  instanceId: string;
}

export type DashboardClientOptions = ClientOptions &
  ({ token: string; apiKey?: undefined } | { apiKey: string; token?: undefined });

/** A workflow: its id, or anything with an `id` (and a `version`: a record, an action's answer). */
export type WorkflowRef = string | { id: string; version?: number | null };

/** Options of a change. `ifMatch`: the version to require; default the record's; `false`: none. */
export interface ChangeOptions {
  ifMatch?: number | "*" | false;
}

/** Options of a change that takes an `Idempotency-Key` (generated per call unless given). */
export interface KeyedChangeOptions extends ChangeOptions {
  idempotencyKey?: string;
}

export interface WorkflowQuery {
  status?: Status;
  workflow_type?: WorkflowType;
  customer_id?: string;
  reference?: string;
  page?: number;
  per_page?: number;
  cursor?: string;
}

export interface EventQuery {
  after?: string;
  limit?: number;
  workflow_id?: string;
  type?: EventType[];
}

export interface DecisionQuery {
  assigned_to?: string;
  overdue?: boolean;
  workflow_type?: WorkflowType;
  instance_id?: string;
  step?: string;
  limit?: number;
  cursor?: string;
}

export interface StreamOptions {
  after?: string;
  workflow_id?: string;
  type?: EventType[];
  /** Ends the stream. */
  signal?: AbortSignal;
}

export interface WaitForResumeOptions {
  /** Give up after this long (milliseconds): `WaitTimeoutError`. Default: no limit. */
  timeoutMs?: number;
  /** The longest one long-poll waits, in seconds (1–60). Default 25. */
  pollSeconds?: number;
  signal?: AbortSignal;
}

interface Call {
  method: string;
  path: string;
  query?: Record<string, unknown>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Sends an `Idempotency-Key`: this one, or one made for this call; the same on every retry. */
  idempotencyKey?: string | undefined;
  keyed?: boolean;
  /** Repeating it cannot do the work twice. */
  safe: boolean;
  extraTimeoutMs?: number;
  signal?: AbortSignal | undefined;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });

function idOf(ref: WorkflowRef): string {
  return typeof ref === "string" ? ref : ref.id;
}

function versionOf(ref: WorkflowRef): number | null {
  return typeof ref === "string" ? null : (ref.version ?? null);
}

function ifMatch(ref: WorkflowRef, options: ChangeOptions | undefined): Record<string, string> {
  const chosen = options?.ifMatch;
  if (chosen === false) return {};
  if (chosen === "*") return { "If-Match": "*" };
  const version = chosen ?? versionOf(ref);
  return version === null ? {} : { "If-Match": `"${version}"` };
}

function etagVersion(headers: Headers): number | null {
  const tag = headers.get("etag");
  if (!tag) return null;
  const n = Number(tag.replace(/^W\//, "").replaceAll('"', ""));
  return Number.isInteger(n) ? n : null;
}

function resumeEntry(entries: HistoryEntry[], afterVersion: number): HistoryEntry | undefined {
  return entries.find((e) => e.seq > afterVersion && e.action === "resumed");
}

function resumeData(entry: HistoryEntry): Record<string, unknown> {
  const detail = entry.action_detail as { resume_data?: unknown } | null;
  const data = detail?.resume_data;
  return data !== null && typeof data === "object" && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
}

/** Linked to `outer`, and aborted after `ms` without `touch()`. */
function watchdog(
  ms: number,
  outer?: AbortSignal,
): { signal: AbortSignal; touch: () => void; stop: () => void; abort: () => void } {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => controller.abort(outer?.reason);
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new DOMException("no answer in time", "TimeoutError")), ms);
  };
  outer?.addEventListener("abort", onAbort, { once: true });
  if (outer?.aborted) controller.abort(outer.reason);
  touch();
  return {
    signal: controller.signal,
    touch,
    stop: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
    abort: () => controller.abort(new DOMException("the stream was left", "AbortError")),
  };
}

abstract class BaseClient {
  protected readonly baseUrl: string;
  protected readonly timeoutMs: number;
  protected readonly retry: Required<RetryOptions>;
  protected readonly fetch: typeof fetch;
  protected abstract readonly headers: Record<string, string>;
  protected abstract readonly workflowsPath: string;
  protected abstract readonly eventsPath: string;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retry = {
      attempts: options.retry?.attempts ?? 4,
      backoffMs: options.retry?.backoffMs ?? 250,
      maxBackoffMs: options.retry?.maxBackoffMs ?? 8_000,
      maxRetryAfterMs: options.retry?.maxRetryAfterMs ?? 60_000,
    };
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private delayMs(attempt: number, response: Response | null): number {
    const after = response ? retryAfterSeconds(response.headers) : null;
    if (after !== null) return Math.min(after * 1000, this.retry.maxRetryAfterMs);
    const base = Math.min(this.retry.backoffMs * 2 ** attempt, this.retry.maxBackoffMs);
    return base * (0.5 + Math.random() / 2);
  }

  private shouldRetry(attempt: number, status: number | null, safe: boolean): boolean {
    if (attempt + 1 >= this.retry.attempts) return false;
    if (status === 429) return true;
    if (status === 503 || status === null) return safe;
    return false;
  }

  private url(path: string, query?: Record<string, unknown>): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      for (const item of Array.isArray(value) ? value : [value]) params.append(name, String(item));
    }
    const search = params.toString();
    return `${this.baseUrl}${path}${search ? `?${search}` : ""}`;
  }

  /** One logical call, retried as `RetryOptions` says; an error answer throws. */
  protected async send(call: Call): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, ...call.headers };
    if (call.keyed) headers["Idempotency-Key"] = call.idempotencyKey ?? (await webCrypto()).randomUUID();
    let body: string | undefined;
    if (call.body !== undefined) {
      body = JSON.stringify(call.body);
      headers["Content-Type"] = "application/json";
    }
    const url = this.url(call.path, call.query);
    for (let attempt = 0; ; attempt++) {
      const timer = watchdog(this.timeoutMs + (call.extraTimeoutMs ?? 0), call.signal);
      let response: Response;
      try {
        response = await this.fetch(url, { method: call.method, headers, body, signal: timer.signal });
        if (response.status < 400) {
          // The body is read within the same deadline.
          const text = await response.text();
          timer.stop();
          return new Response(response.status === 204 || response.status === 304 ? null : text, {
            status: response.status,
            headers: response.headers,
          });
        }
      } catch (error) {
        timer.stop();
        if (call.signal?.aborted) throw call.signal.reason;
        if (!this.shouldRetry(attempt, null, call.safe)) {
          throw new TransportError(`${call.method} ${call.path}: ${String(error)}`, { cause: error });
        }
        await sleep(this.delayMs(attempt, null), call.signal);
        continue;
      }
      timer.stop();
      if (!this.shouldRetry(attempt, response.status, call.safe)) throw await errorFor(response);
      await response.body?.cancel();
      await sleep(this.delayMs(attempt, response), call.signal);
    }
  }

  protected async json<T>(call: Call): Promise<T> {
    return (await (await this.send(call)).json()) as T;
  }

  protected async action(call: Call): Promise<ActionResult> {
    const response = await this.send(call);
    const result = (await response.json()) as ActionResult;
    result.version = etagVersion(response.headers);
    return result;
  }

  // Operations.

  /** `GET /healthz`: the process answers. */
  healthz(): Promise<{ status: string }> {
    return this.json({ method: "GET", path: "/healthz", safe: true });
  }

  /** `GET /readyz`: the process and its database answer (503 throws). */
  readyz(): Promise<{ status: string }> {
    return this.json({ method: "GET", path: "/readyz", safe: true });
  }

  // Workflows.

  /** Reads a workflow (by id, or a record to read again). */
  getWorkflow(ref: WorkflowRef): Promise<Workflow> {
    return this.json({ method: "GET", path: `${this.workflowsPath}/${idOf(ref)}`, safe: true });
  }

  /**
   * The record once it moves past `version` (default: the given record's),
   * waiting up to `waitSeconds` (`Prefer: wait`); null if it did not move.
   */
  async waitForChange(
    ref: WorkflowRef,
    options: { version?: number; waitSeconds?: number; signal?: AbortSignal } = {},
  ): Promise<Workflow | null> {
    const known = options.version ?? versionOf(ref);
    if (known === null) throw new TypeError("waitForChange needs a version: pass a record or { version }");
    const wait = Math.max(1, Math.floor(options.waitSeconds ?? 25));
    const response = await this.send({
      method: "GET",
      path: `${this.workflowsPath}/${idOf(ref)}`,
      headers: { "If-None-Match": `"${known}"`, Prefer: `wait=${wait}` },
      safe: true,
      extraTimeoutMs: wait * 1000,
      signal: options.signal,
    });
    return response.status === 304 ? null : ((await response.json()) as Workflow);
  }

  /** A page of the whole history, oldest first; pass `next_after` as `after`. */
  workflowHistory(ref: WorkflowRef, query: { after?: number; limit?: number } = {}): Promise<HistoryPage> {
    return this.json({ method: "GET", path: `${this.workflowsPath}/${idOf(ref)}/history`, query, safe: true });
  }

  /**
   * Suspends the workflow at `body.step` for a person to decide. Given a
   * record, sends `If-Match` with its version (`ConflictError` with
   * `currentVersion` if it moved on).
   */
  suspendWorkflow(ref: WorkflowRef, body: SuspendWorkflow, options: KeyedChangeOptions = {}): Promise<ActionResult> {
    return this.action({
      method: "POST",
      path: `${this.workflowsPath}/${idOf(ref)}/suspend`,
      body,
      headers: ifMatch(ref, options),
      keyed: true,
      idempotencyKey: options.idempotencyKey,
      safe: true,
    });
  }

  /**
   * Resumes a suspended workflow; `resumeData` is merged into its state (and
   * must fit the suspension's `resume_schema`, else `ValidationError`).
   */
  resumeWorkflow(
    ref: WorkflowRef,
    resumeData?: Record<string, unknown>,
    options: KeyedChangeOptions = {},
  ): Promise<ActionResult> {
    return this.action({
      method: "POST",
      path: `${this.workflowsPath}/${idOf(ref)}/resume`,
      body: resumeData === undefined ? {} : { resume_data: resumeData },
      headers: ifMatch(ref, options),
      keyed: true,
      idempotencyKey: options.idempotencyKey,
      safe: true,
    });
  }

  /**
   * Waits until the workflow is resumed and returns the `resume_data`.
   * `ref` is what the suspend answered (its version is the suspension's), a
   * record, or an id (then the workflow must be suspended now). Long-polls
   * with `Prefer: wait`. Throws `WaitTimeoutError` after `timeoutMs`,
   * `WorkflowClosedError` when the workflow ends unanswered.
   */
  async waitForResume(ref: WorkflowRef, options: WaitForResumeOptions = {}): Promise<Record<string, unknown>> {
    const id = idOf(ref);
    const deadline = options.timeoutMs === undefined ? null : Date.now() + options.timeoutMs;
    let version = versionOf(ref);
    if (version === null) {
      const record = await this.getWorkflow(id);
      if (record.status !== "suspended") throw new NotSuspendedError(`workflow ${id} is ${record.status}, not suspended`);
      version = record.version;
    }
    const poll = options.pollSeconds ?? 25;
    for (;;) {
      const remaining = deadline === null ? null : (deadline - Date.now()) / 1000;
      if (remaining !== null && remaining <= 0) {
        throw new WaitTimeoutError(`workflow ${id} was not resumed within ${options.timeoutMs} ms`);
      }
      const wait = Math.max(1, Math.min(MAX_WAIT_SECONDS, Math.floor(remaining === null ? poll : Math.min(poll, remaining))));
      const asked = Date.now();
      const record = await this.waitForChange(id, { version, waitSeconds: wait, ...(options.signal ? { signal: options.signal } : {}) });
      if (record === null) {
        // A server at its HYDRACORE_MAX_WAITING answers at once: pause rather
        // than ask again in a tight loop.
        if (wait > 1 && Date.now() - asked < 500) await sleep(1000, options.signal);
        continue;
      }
      let entry = resumeEntry(record.history, version);
      if (entry === undefined && (record.history[0]?.seq ?? 0) > version + 1) {
        entry = resumeEntry((await this.workflowHistory(id, { after: version })).entries, version);
      }
      if (entry !== undefined) return resumeData(entry);
      if (TERMINAL.has(record.status)) throw new WorkflowClosedError(record);
      version = record.version;
    }
  }

  // Events.

  /** A page of events, oldest first; pass `next_after` as `after`. */
  listEvents(query: EventQuery = {}): Promise<EventPage> {
    return this.json({ method: "GET", path: this.eventsPath, query: { ...query }, safe: true });
  }

  /**
   * Every event after `after` (none: from the oldest kept), as they happen.
   * Reads the Server-Sent Events stream; when the connection drops it
   * connects again with `Last-Event-ID`, so no event is missed or repeated.
   * Gives up after `retry.attempts` failed connections in a row; `signal` or
   * leaving the `for await` loop ends it.
   */
  async *events(options: StreamOptions = {}): AsyncGenerator<Event> {
    let lastId = options.after ?? null;
    let failures = 0;
    const url = this.url(this.eventsPath, { workflow_id: options.workflow_id, type: options.type });
    for (;;) {
      const headers: Record<string, string> = { ...this.headers, Accept: "text/event-stream" };
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const timer = watchdog(STREAM_IDLE_MS, options.signal);
      let dropped: unknown = null;
      try {
        let response: Response | null = null;
        try {
          response = await this.fetch(url, { headers, signal: timer.signal });
        } catch (error) {
          dropped = error;
        }
        if (response === null) {
          // No connection: retried below.
        } else if (response.status >= 400) {
          timer.stop();
          if (!this.shouldRetry(failures, response.status, true)) throw await errorFor(response);
          await response.body?.cancel();
          await sleep(this.delayMs(failures, response), options.signal);
          failures++;
        } else if (response.body !== null) {
          failures = 0;
          const parser = new SseParser();
          const stream = lines(response.body, timer.touch);
          try {
            for (;;) {
              // Only reading may fail as a dropped connection: the yield stays
              // outside, so that leaving the loop is never taken for one.
              let next: IteratorResult<string>;
              try {
                next = await stream.next();
              } catch (error) {
                dropped = error;
                break;
              }
              if (next.done) break;
              const message = parser.feed(next.value);
              if (message === null) continue;
              const event = JSON.parse(message.data) as Event;
              lastId = message.id ?? event.id;
              yield event;
            }
          } finally {
            await stream.return(undefined).catch(() => undefined);
          }
        }
      } finally {
        timer.stop();
        // Leaving the loop, or a dropped stream, closes the connection.
        timer.abort();
      }
      if (options.signal?.aborted) return;
      if (dropped !== null) {
        if (!this.shouldRetry(failures, null, true)) {
          throw new TransportError(`event stream: ${String(dropped)}`, { cause: dropped });
        }
        await sleep(this.delayMs(failures, null), options.signal).catch(() => undefined);
        if (options.signal?.aborted) return;
        failures++;
      }
    }
  }
}

/** The internal API, as an agent runtime calls it: one instance, its proxy key (`hcp_...`). */
export class AgentClient extends BaseClient {
  readonly instanceId: string;
  protected readonly headers: Record<string, string>;
  protected readonly workflowsPath: string;
  protected readonly eventsPath: string;

  constructor(options: AgentClientOptions) {
    super(options);
    this.instanceId = options.instanceId;
    this.headers = { Authorization: `Bearer ${options.proxyKey}` };
    const instance = `/internal/v1/instances/${encodeURIComponent(options.instanceId)}`;
    this.workflowsPath = `${instance}/workflows`;
    this.eventsPath = `${instance}/events`;
  }

  /** A page of the instance's workflows, newest first. */
  listWorkflows(query: WorkflowQuery = {}): Promise<WorkflowList> {
    return this.json({ method: "GET", path: this.workflowsPath, query: { ...query }, safe: true });
  }

  /**
   * Creates a workflow (`active`, version 1). Safe to retry: one
   * `Idempotency-Key` (generated unless given) covers every attempt.
   */
  createWorkflow(body: CreateWorkflow, options: { idempotencyKey?: string } = {}): Promise<Workflow> {
    return this.json({
      method: "POST",
      path: this.workflowsPath,
      body,
      keyed: true,
      idempotencyKey: options.idempotencyKey,
      safe: true,
    });
  }

  /**
   * Advances the workflow: one history entry named `body.action`; the fields
   * given replace the stored ones (null clears), `workflow_state` is merged.
   * Given a record, sends `If-Match` with its version, so a change made
   * meanwhile throws `ConflictError` (with `currentVersion`) instead of being
   * overwritten. Retried on 503 only with an `If-Match`.
   */
  advanceWorkflow(ref: WorkflowRef, body: AdvanceWorkflow, options: ChangeOptions = {}): Promise<Workflow> {
    const headers = ifMatch(ref, options);
    return this.json({
      method: "PATCH",
      path: `${this.workflowsPath}/${idOf(ref)}`,
      body,
      headers,
      safe: "If-Match" in headers,
    });
  }
}

/**
 * The dashboard API, as a tenant's admin tools call it: the whole tenant,
 * with an admin JWT (`token`) or a tenant API key (`apiKey`, `hck_...`).
 */
export class DashboardClient extends BaseClient {
  protected readonly headers: Record<string, string>;
  protected readonly workflowsPath = "/v1/workflows";
  protected readonly eventsPath = "/v1/events";

  constructor(options: DashboardClientOptions) {
    super(options);
    if ((options.token === undefined) === (options.apiKey === undefined)) {
      throw new TypeError("DashboardClient takes one of token (a JWT) or apiKey");
    }
    this.headers =
      options.token !== undefined ? { Authorization: `Bearer ${options.token}` } : { "X-Api-Key": options.apiKey ?? "" };
  }

  /** A page of the tenant's workflows, newest first. */
  listWorkflows(query: WorkflowQuery & { instance_id?: string } = {}): Promise<WorkflowList> {
    return this.json({ method: "GET", path: this.workflowsPath, query: { ...query }, safe: true });
  }

  /** The approval queue: suspended workflows, newest suspension first. */
  listSuspended(): Promise<SuspendedWorkflow[]> {
    return this.json({ method: "GET", path: `${this.workflowsPath}/suspended`, safe: true });
  }

  /** Aborts the workflow (`cancelled`). */
  abortWorkflow(ref: WorkflowRef, options: KeyedChangeOptions = {}): Promise<ActionResult> {
    return this.action({
      method: "POST",
      path: `${this.workflowsPath}/${idOf(ref)}/abort`,
      headers: ifMatch(ref, options),
      keyed: true,
      idempotencyKey: options.idempotencyKey,
      safe: true,
    });
  }

  /**
   * A single-use URL that answers the workflow's current suspension without
   * signing in (`expires_in` seconds, default one day). A retry after a lost
   * answer makes a second link; both answer the same suspension, once.
   */
  createApprovalLink(ref: WorkflowRef, body: NewApprovalLink = {}): Promise<ApprovalLinkAnswer> {
    return this.json({
      method: "POST",
      path: `${this.workflowsPath}/${idOf(ref)}/approval-links`,
      body,
      safe: true,
    });
  }

  // Decisions.

  /** The inbox: suspended workflows as decisions, due first. */
  listDecisions(query: DecisionQuery = {}): Promise<InboxPage> {
    return this.json({ method: "GET", path: "/v1/decisions", query: { ...query }, safe: true });
  }

  /** How many decisions wait, how many are overdue, per assignee. */
  decisionsSummary(): Promise<InboxSummary> {
    return this.json({ method: "GET", path: "/v1/decisions/summary", safe: true });
  }

  // Webhooks.

  /** Registers an endpoint; the answer's `secret` is shown this once. */
  createWebhook(body: CreateWebhookBody): Promise<WebhookWithSecret> {
    return this.json({ method: "POST", path: "/v1/webhooks", body, safe: false });
  }

  /** The tenant's endpoints, oldest first. */
  async listWebhooks(): Promise<Webhook[]> {
    return (await this.json<WebhookList>({ method: "GET", path: "/v1/webhooks", safe: true })).webhooks;
  }

  /** One endpoint (never its secret). */
  getWebhook(webhookId: string): Promise<Webhook> {
    return this.json({ method: "GET", path: `/v1/webhooks/${webhookId}`, safe: true });
  }

  /** Changes the fields given (`description: null` clears it). */
  updateWebhook(webhookId: string, body: UpdateWebhookBody): Promise<Webhook> {
    return this.json({ method: "PATCH", path: `/v1/webhooks/${webhookId}`, body, safe: true });
  }

  /** Deletes the endpoint and its deliveries. */
  async deleteWebhook(webhookId: string): Promise<void> {
    await this.send({ method: "DELETE", path: `/v1/webhooks/${webhookId}`, safe: true });
  }

  /** A new signing secret, in force at once; shown this once. */
  rotateWebhookSecret(webhookId: string): Promise<WebhookWithSecret> {
    return this.json({ method: "POST", path: `/v1/webhooks/${webhookId}/rotate-secret`, safe: false });
  }

  /** The endpoint's deliveries, newest first. */
  async listWebhookDeliveries(webhookId: string, query: { limit?: number } = {}): Promise<Delivery[]> {
    const list = await this.json<DeliveryList>({
      method: "GET",
      path: `/v1/webhooks/${webhookId}/deliveries`,
      query,
      safe: true,
    });
    return list.deliveries;
  }

  /** Sends a delivery again now. */
  retryWebhookDelivery(webhookId: string, deliveryId: string): Promise<Delivery> {
    return this.json({
      method: "POST",
      path: `/v1/webhooks/${webhookId}/deliveries/${deliveryId}/retry`,
      safe: false,
    });
  }
}
