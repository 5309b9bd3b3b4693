// What the browser suites share: the server that tests/browser.rs started
// (its address and binary in HC_* variables), a fresh tenant per test made
// with the `hydracore` command line, the agent's API calls, and a headless
// Chromium that records every request it makes.

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these suites with cargo test -p hydracore --test browser`);
  return value;
};

export const BASE = need("HC_BASE_URL");
export const ORIGIN = new URL(BASE).origin;
/** Where screenshots go (HYDRACORE_UI_SCREENSHOTS), or undefined. */
export const SCREENSHOTS = process.env.HC_SCREENSHOTS;

/** Runs the `hydracore` command line on the server's database; its JSON. */
export function hydracore(...args) {
  const out = execFileSync(need("HC_BIN"), ["--json", ...args], {
    env: { ...process.env, HYDRACORE_DATABASE_URL: need("HC_DATABASE_URL") },
    encoding: "utf8",
  });
  return JSON.parse(out);
}

/**
 * A tenant of its own, so that what one test puts in the inbox is not in
 * another's: an agent instance with its proxy key (`api`), an admin JWT
 * (`admin`, whose `sub` is `adminSub`) and `signInLink(sub)`.
 */
export function newTenant() {
  const tenant = randomUUID();
  const instance = hydracore("instances", "create", "--tenant", tenant, "--name", "browser-tests");
  const instanceId = instance.id ?? instance.instance_id;
  const proxy = hydracore("keys", "create-proxy", "--instance", instanceId);
  const adminSub = randomUUID();
  const admin = hydracore("token", "--tenant", tenant, "--sub", adminSub).token;
  return {
    tenant,
    adminSub,
    api: new Api(`/internal/v1/instances/${instanceId}/workflows`, proxy.key),
    admin: new Api("/v1/workflows", admin),
    signInLink: (sub) =>
      hydracore("ui-link", "--tenant", tenant, "--sub", sub, "--public-url", BASE).url,
  };
}

/** The JSON API, as the agent runtime (proxy key) or an admin (JWT) calls it. */
export class Api {
  constructor(path, bearer) {
    this.path = path;
    this.bearer = bearer;
  }

  async call(method, path, body) {
    const response = await fetch(`${BASE}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.bearer}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  async create(fields = {}) {
    const made = await this.call("POST", this.path, {
      customer_id: randomUUID(),
      workflow_type: "rent_arrears",
      ...fields,
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return made.body;
  }

  async get(id) {
    const got = await this.call("GET", `${this.path}/${id}`);
    assert.equal(got.status, 200, JSON.stringify(got.body));
    return got.body;
  }

  async suspend(id, suspension) {
    const done = await this.call("POST", `${this.path}/${id}/suspend`, suspension);
    assert.equal(done.status, 200, JSON.stringify(done.body));
    return done.body;
  }

  /** An approval link to `id`'s current suspension (admins only). */
  async approvalLink(id, body = {}) {
    const made = await this.call("POST", `${this.path}/${id}/approval-links`, body);
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return made.body.url;
  }
}

/** The payment-plan question the suites answer. */
export const PLAN_SCHEMA = {
  type: "object",
  required: ["approved", "channel"],
  properties: {
    approved: { type: "boolean", title: "Approve the plan" },
    amount: { type: "number", minimum: 1, title: "Monthly amount" },
    channel: { enum: ["email", "sms"], title: "Tell the tenant by" },
  },
};

export function planSuspension(extra = {}) {
  return {
    step: "manager_approval",
    payload: { question: "Approve a 3-month payment plan?", amount_due: 1200, months: 3 },
    resume_schema: PLAN_SCHEMA,
    assigned_to: "ann",
    ...extra,
  };
}

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
  "--hide-scrollbars",
  // Anything not on this machine goes to a closed port and fails at once:
  // the browser cannot reach (or download from) anywhere else even if it
  // tried. Loopback bypasses proxies, so the server is reached directly.
  "--proxy-server=http://127.0.0.1:9",
];

/**
 * Headless Chromium (Playwright gives each launch a fresh, temporary
 * profile). `open()` gives a page in a new context (no cookies, no cache)
 * whose every request URL, dialog, console error and page error is
 * recorded.
 */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.HC_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
  });
  return {
    async open({ width = 1280, height = 800 } = {}) {
      const context = await browser.newContext({ viewport: { width, height }, reducedMotion: "reduce" });
      const page = await context.newPage();
      const seen = { requests: [], dialogs: [], errors: [] };
      context.on("request", (r) => seen.requests.push(r.url()));
      page.on("dialog", (d) => {
        seen.dialogs.push(`${d.type()}: ${d.message()}`);
        d.dismiss().catch(() => {});
      });
      // 422 (a refused answer), 409 (a stale page) and 410 (a used link)
      // are pages that say so; any other failed load is a fault, whether
      // the page or the browser itself (an icon) asked for it.
      const answer = /status of 4(09|10|22) /;
      page.on("console", (m) => {
        if (m.type() !== "error") return;
        if (m.text().startsWith("Failed to load resource:")) {
          if (!answer.test(m.text())) seen.errors.push(`${m.text()}: ${m.location().url}`);
        } else {
          seen.errors.push(`console: ${m.text()}`);
        }
      });
      page.on("pageerror", (e) => seen.errors.push(`page error: ${e.message}`));
      page.setDefaultTimeout(10_000);
      return { context, page, seen };
    },
    close: () => browser.close(),
  };
}

/** Every request went to the server: none left the origin. */
export function assertStayedHome(seen) {
  const away = seen.requests.filter((url) => new URL(url).origin !== ORIGIN);
  assert.deepEqual(away, [], "requests that left the origin");
  assert.ok(seen.requests.length > 0, "the page made requests");
}

/** No dialog opened, no script errored, no CSP violation was reported. */
export function assertQuiet(seen) {
  assert.deepEqual(seen.dialogs, [], "dialogs");
  assert.deepEqual(seen.errors, [], "console errors and page errors");
}

/**
 * Signs `page` in with a one-time link (its landing page, then Continue)
 * and waits for the inbox's live stream to be open, so that what happens
 * next reaches the page.
 */
export async function signIn(page, link) {
  await page.goto(link);
  const live = liveStream(page);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForURL(`${BASE}/ui/`);
  await live;
}

/** Resolves when `page` has opened the events stream. */
export function liveStream(page) {
  return page.waitForResponse((r) => new URL(r.url()).pathname === "/ui/events" && r.status() === 200);
}

/** The bytes a page's load moved: its document and what it loaded. */
export async function transferred(page, path) {
  const responses = [];
  const onResponse = (r) => responses.push(r);
  page.on("response", onResponse);
  await page.goto(`${BASE}${path}`, { waitUntil: "load" });
  page.off("response", onResponse);
  let bytes = 0;
  for (const r of responses) {
    // The live stream stays open; it is not part of the page.
    if (new URL(r.url()).pathname === "/ui/events") continue;
    const sizes = await r.request().sizes();
    bytes += sizes.responseHeadersSize + sizes.responseBodySize;
  }
  return bytes;
}

/** Saves a screenshot as docs/ui/NAME.png when screenshots are asked for. */
export async function screenshot(target, name, options = {}) {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await target.screenshot({ path: join(SCREENSHOTS, `${name}.png`), animations: "disabled", ...options });
}
