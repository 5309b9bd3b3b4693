// What a call throws. Every answer of 400 or more is an ApiError carrying the
// status and FastAPI's `detail`; the subclasses name the cases an agent
// handles differently.

import type { ValidationError as ValidationItem, Workflow } from "./models.js";

/** Anything this client throws. */
export class HydraCoreError extends Error {
  override name = "HydraCoreError";
}

/** No answer: the connection failed or timed out (after the retries that were safe). */
export class TransportError extends HydraCoreError {
  override name = "TransportError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The server answered an error. `detail` is FastAPI's `detail`: a sentence,
 * or for a 422 the list of validation items (`{type, loc, msg, input}`).
 */
export class ApiError extends HydraCoreError {
  override name = "ApiError";
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Headers;
  readonly requestId: string | null;

  constructor(status: number, detail: unknown, headers: Headers) {
    super(`${status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    this.status = status;
    this.detail = detail;
    this.headers = headers;
    this.requestId = headers.get("x-request-id");
  }
}

/** 401: no, unknown or revoked credential, or an invalid JWT. */
export class AuthenticationError extends ApiError {
  override name = "AuthenticationError";
}

/** 403: the credential may not do this (another instance, a missing scope). */
export class PermissionDeniedError extends ApiError {
  override name = "PermissionDeniedError";
}

/** 404: no such workflow (or webhook) in the caller's scope. */
export class NotFoundError extends ApiError {
  override name = "NotFoundError";
}

/**
 * 409 (a terminal workflow, a suspend while suspended, a resume while not, an
 * Idempotency-Key in flight) or 412 (`If-Match` named another version).
 * `currentVersion` is the workflow's version when the server says it (412).
 */
export class ConflictError extends ApiError {
  override name = "ConflictError";
  readonly currentVersion: number | null;

  constructor(status: number, detail: unknown, headers: Headers) {
    super(status, detail, headers);
    const match = typeof detail === "string" ? /at version (\d+)/.exec(detail) : null;
    this.currentVersion = match?.[1] !== undefined ? Number(match[1]) : null;
  }
}

/** 410: events asked for after a point older than the retention. */
export class GoneError extends ApiError {
  override name = "GoneError";
}

/** 422: `detail` is the list of problems, `errors` the same, typed. */
export class ValidationError extends ApiError {
  override name = "ValidationError";
  get errors(): ValidationItem[] {
    return Array.isArray(this.detail) ? (this.detail as ValidationItem[]) : [];
  }
}

/** 429, after the retries: `retryAfter` is the server's `Retry-After`, in seconds. */
export class RateLimitedError extends ApiError {
  override name = "RateLimitedError";
  get retryAfter(): number | null {
    return retryAfterSeconds(this.headers);
  }
}

/** 503, after the retries: the database is away, the server busy, or the request ran too long. */
export class UnavailableError extends ApiError {
  override name = "UnavailableError";
}

/** `waitForResume` ran out of time before the workflow was resumed. */
export class WaitTimeoutError extends HydraCoreError {
  override name = "WaitTimeoutError";
}

/** `waitForResume`: the workflow ended (aborted, expired, ...) instead of being resumed. */
export class WorkflowClosedError extends HydraCoreError {
  override name = "WorkflowClosedError";
  readonly workflow: Workflow;
  constructor(workflow: Workflow) {
    super(`workflow ${workflow.id} is ${workflow.status}, not resumed`);
    this.workflow = workflow;
  }
}

/** `waitForResume` was given the id of a workflow that is not suspended, and no version. */
export class NotSuspendedError extends HydraCoreError {
  override name = "NotSuspendedError";
}

const BY_STATUS: Record<number, typeof ApiError> = {
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  410: GoneError,
  412: ConflictError,
  422: ValidationError,
  429: RateLimitedError,
  503: UnavailableError,
};

/** The error for an answer of 400 or more (its body is read). */
export async function errorFor(response: Response): Promise<ApiError> {
  const text = await response.text();
  let detail: unknown = text;
  try {
    const body: unknown = JSON.parse(text);
    if (body !== null && typeof body === "object" && "detail" in body) {
      detail = (body as { detail: unknown }).detail;
    }
  } catch {
    // Not JSON: the text is the detail.
  }
  const Kind = BY_STATUS[response.status] ?? ApiError;
  return new Kind(response.status, detail, response.headers);
}

export function retryAfterSeconds(headers: Headers): number | null {
  const value = headers.get("retry-after");
  if (value === null) return null;
  const seconds = Number(value);
  if (value.trim() !== "" && Number.isFinite(seconds)) return Math.max(0, seconds);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}
