// The clients against a real server: errors, retries, If-Match, the waits,
// the event stream and webhooks.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import net from "node:net";
import { after, before, test } from "node:test";

import {
  AgentClient,
  AuthenticationError,
  ConflictError,
  DashboardClient,
  NotFoundError,
  PermissionDeniedError,
  RateLimitedError,
  TransportError,
  UnavailableError,
  ValidationError,
  WaitTimeoutError,
  WebhookVerificationError,
  WorkflowClosedError,
  verifyWebhook,
} from "../dist/index.js";
import { startServer } from "./server.mjs";

const CUSTOMER = "160c0c4b-9966-4dc1-a916-8407eb10d74e";
let server, agent, admin;

before(async () => {
  server = await startServer();
  agent = new AgentClient({ baseUrl: server.url, proxyKey: server.demo.proxy_key, instanceId: server.demo.instance_id });
  admin = new DashboardClient({ baseUrl: server.url, token: server.demo.admin_jwt });
});
after(() => server.stop());

const newWorkflow = (fields = {}) =>
  agent.createWorkflow({ customer_id: CUSTOMER, workflow_type: "rent_arrears", reference: `ref-${randomUUID()}`, ...fields });
const rejection = (promise) => promise.then(() => assert.fail("expected a rejection"), (error) => error);
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * A fetch in front of the real server that answers the next requests as
 * scripted (busy: 503 without passing it on; lost: passes it on, then answers
 * 503; limited: 429), then passes them on.
 */
function faults(script, retryAfter = "0") {
  const sent = [];
  const steps = [...script];
  const fetcher = async (url, init) => {
    sent.push({ at: Date.now(), headers: new Headers(init.headers) });
    const step = steps.shift() ?? "pass";
    const headers = { "Retry-After": retryAfter, "Content-Type": "application/json" };
    if (step === "busy") return new Response(JSON.stringify({ detail: "The server is busy; retry shortly" }), { status: 503, headers });
    if (step === "limited") return new Response(JSON.stringify({ detail: "Too many requests" }), { status: 429, headers });
    const response = await fetch(url, init);
    if (step === "lost") {
      await response.arrayBuffer();
      return new Response(JSON.stringify({ detail: "The request took too long; retry shortly" }), { status: 503, headers });
    }
    return response;
  };
  const client = new AgentClient({
    baseUrl: server.url,
    proxyKey: server.demo.proxy_key,
    instanceId: server.demo.instance_id,
    fetch: fetcher,
    retry: { backoffMs: 10 },
  });
  return { client, sent };
}

// Errors.

test("a validation error carries the status and every item as a list", async () => {
  const error = await rejection(agent.createWorkflow({ customer_id: "not-a-uuid", workflow_type: "no_such_type" }));
  assert.ok(error instanceof ValidationError);
  assert.equal(error.status, 422);
  assert.ok(Array.isArray(error.detail));
  assert.deepEqual(new Set(error.errors.map((e) => e.loc.join("."))), new Set(["body.customer_id", "body.workflow_type"]));
});

test("an unknown workflow is not found with the server's sentence", async () => {
  const error = await rejection(agent.getWorkflow(randomUUID()));
  assert.ok(error instanceof NotFoundError);
  assert.deepEqual([error.status, error.detail], [404, "Workflow not found"]);
});

test("a wrong key is refused and another instance's path is forbidden", async () => {
  const stranger = new AgentClient({ baseUrl: server.url, proxyKey: "hcp_wrong", instanceId: server.demo.instance_id });
  assert.ok((await rejection(stranger.listWorkflows())) instanceof AuthenticationError);
  const elsewhere = new AgentClient({ baseUrl: server.url, proxyKey: server.demo.proxy_key, instanceId: randomUUID() });
  assert.ok((await rejection(elsewhere.listWorkflows())) instanceof PermissionDeniedError);
});

// Retries and idempotency.

test("a create whose answer was lost is sent again with the same key and makes one workflow", async () => {
  const { client, sent } = faults(["lost", "busy"]);
  const reference = `lost-${randomUUID()}`;
  const created = await client.createWorkflow({ customer_id: CUSTOMER, workflow_type: "lead", reference });
  assert.equal(sent.length, 3);
  assert.equal(new Set(sent.map((s) => s.headers.get("idempotency-key"))).size, 1);
  const listed = await agent.listWorkflows({ reference });
  assert.equal(listed.total, 1);
  assert.equal(listed.workflows[0].id, created.id);
});

test("each logical call gets its own key", async () => {
  const { client, sent } = faults([]);
  await client.createWorkflow({ customer_id: CUSTOMER, workflow_type: "lead" });
  await client.createWorkflow({ customer_id: CUSTOMER, workflow_type: "lead" });
  assert.equal(new Set(sent.map((s) => s.headers.get("idempotency-key"))).size, 2);
});

test("a 429 waits for Retry-After before it is sent again", async () => {
  const { client, sent } = faults(["limited"], "1");
  await client.listWorkflows();
  assert.equal(sent.length, 2);
  assert.ok(sent[1].at - sent[0].at >= 900);
});

test("a 4xx is never retried", async () => {
  const { client, sent } = faults([]);
  assert.ok((await rejection(client.createWorkflow({ customer_id: "nope", workflow_type: "lead" }))) instanceof ValidationError);
  assert.equal(sent.length, 1);
});

test("an advance without If-Match is not repeated after a 503, but one with it is", async () => {
  const workflow = await newWorkflow();
  const { client, sent } = faults(["busy", "busy"]);
  assert.ok((await rejection(client.advanceWorkflow(workflow.id, { action: "noted" }))) instanceof UnavailableError);
  assert.equal(sent.length, 1);
  const advanced = await client.advanceWorkflow(workflow, { action: "noted" });
  assert.equal(advanced.version, 2);
  assert.equal(sent.length, 3);
});

test("retries stop after the attempts and throw the last answer", async () => {
  const { client, sent } = faults(["limited", "limited", "limited", "limited"]);
  const error = await rejection(client.listWorkflows());
  assert.ok(error instanceof RateLimitedError);
  assert.equal(error.retryAfter, 0);
  assert.equal(sent.length, 4);
});

// If-Match.

test("a change from a stale record is a conflict that names the current version", async () => {
  const workflow = await newWorkflow();
  await agent.advanceWorkflow(workflow, { action: "contacted" });
  const conflict = await rejection(agent.advanceWorkflow(workflow, { action: "contacted_again" }));
  assert.ok(conflict instanceof ConflictError);
  assert.deepEqual([conflict.status, conflict.currentVersion], [412, 2]);
  const fresh = await agent.getWorkflow(workflow);
  assert.equal((await agent.advanceWorkflow(fresh, { action: "contacted_again" })).version, 3);
});

test("a closed workflow is a conflict", async () => {
  const workflow = await newWorkflow();
  const aborted = await admin.abortWorkflow(workflow);
  assert.deepEqual([aborted.status, aborted.version], ["cancelled", 2]);
  const closed = await rejection(agent.advanceWorkflow(workflow.id, { action: "noted" }));
  assert.ok(closed instanceof ConflictError);
  assert.deepEqual([closed.status, closed.currentVersion], [409, null]);
});

// Waiting for the human.

test("waitForResume resolves to the resume_data once an admin answers", async () => {
  const workflow = await newWorkflow();
  const suspended = await agent.suspendWorkflow(workflow, { step: "approve", assigned_to: "ts-tests" });
  assert.deepEqual([suspended.status, suspended.version], ["suspended", 2]);
  const [answer] = await Promise.all([
    agent.waitForResume(suspended, { timeoutMs: 20_000 }),
    sleep(500).then(() => admin.resumeWorkflow(workflow.id, { approved: true })),
  ]);
  assert.deepEqual(answer, { approved: true });
});

test("waitForResume by id polls again until the answer", async () => {
  const workflow = await newWorkflow();
  await agent.suspendWorkflow(workflow, { step: "approve", assigned_to: "ts-tests" });
  const [answer] = await Promise.all([
    agent.waitForResume(workflow.id, { timeoutMs: 20_000, pollSeconds: 1 }),
    sleep(1200).then(() => admin.resumeWorkflow(workflow.id, { n: 1 })),
  ]);
  assert.deepEqual(answer, { n: 1 });
});

test("waitForResume times out", async () => {
  const suspended = await agent.suspendWorkflow(await newWorkflow(), { step: "approve", assigned_to: "ts-tests" });
  const started = Date.now();
  assert.ok((await rejection(agent.waitForResume(suspended, { timeoutMs: 1000 }))) instanceof WaitTimeoutError);
  assert.ok(Date.now() - started >= 1000);
});

test("waitForResume says when the workflow ends unanswered", async () => {
  const workflow = await newWorkflow();
  const suspended = await agent.suspendWorkflow(workflow, { step: "approve", assigned_to: "ts-tests" });
  const [closed] = await Promise.all([
    rejection(agent.waitForResume(suspended, { timeoutMs: 20_000 })),
    sleep(500).then(() => admin.abortWorkflow(workflow.id)),
  ]);
  assert.ok(closed instanceof WorkflowClosedError);
  assert.equal(closed.workflow.status, "cancelled");
});

test("waitForChange resolves to null when nothing changed", async () => {
  const workflow = await newWorkflow();
  assert.equal(await agent.waitForChange(workflow, { waitSeconds: 1 }), null);
  await agent.advanceWorkflow(workflow, { action: "noted" });
  assert.equal((await agent.waitForChange(workflow, { waitSeconds: 1 })).version, 2);
});

// Events.

/** A TCP relay to the server that can cut every connection it carries, and keeps each connection's first bytes. */
async function cutter(target) {
  const { hostname, port } = new URL(target);
  const heads = [];
  const open = new Set();
  // The client connections that sent a request (fetch may also open an idle one).
  const carrying = new Set();
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    open.add(client).add(upstream);
    client.once("data", (data) => {
      heads.push(data.toString());
      carrying.add(client);
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
      carrying.delete(client);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise((ok) => relay.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${relay.address().port}`,
    heads,
    cut: () => {
      for (const socket of open) socket.destroy();
      open.clear();
    },
    carryingCount: () => carrying.size,
    close: () => relay.close(),
  };
}

async function nextWithin(iterator, ms) {
  let timer;
  const timeout = new Promise((_, fail) => (timer = setTimeout(() => fail(new Error(`no event within ${ms} ms`)), ms)));
  try {
    return (await Promise.race([iterator.next(), timeout])).value;
  } finally {
    clearTimeout(timer);
  }
}

test("the event stream resumes after a dropped connection with Last-Event-ID", async () => {
  let page = await admin.listEvents({ limit: 500 });
  let cursor = page.next_after;
  while (page.events.length > 0) {
    page = await admin.listEvents({ after: cursor, limit: 500 });
    cursor = page.next_after ?? cursor;
  }
  const relay = await cutter(server.url);
  const viaRelay = new DashboardClient({ baseUrl: relay.url, token: server.demo.admin_jwt, retry: { backoffMs: 50 } });
  const controller = new AbortController();
  const events = viaRelay.events({ after: cursor, type: ["workflow.created"], signal: controller.signal });
  try {
    const first = await newWorkflow();
    const seen = await nextWithin(events, 10_000);
    assert.deepEqual([seen.type, seen.workflow_id], ["workflow.created", first.id]);
    relay.cut();
    const second = await newWorkflow();
    const next = await nextWithin(events, 10_000);
    assert.deepEqual([next.type, next.workflow_id], ["workflow.created", second.id]);
    assert.match(relay.heads.at(-1).toLowerCase(), new RegExp(`last-event-id: ${seen.id.toLowerCase()}`));
  } finally {
    controller.abort();
    await events.return();
    relay.close();
  }
});

test("the event pages of both APIs", async () => {
  const workflow = await newWorkflow();
  await agent.advanceWorkflow(workflow, { action: "noted" });
  const mine = await agent.listEvents({ workflow_id: workflow.id });
  assert.deepEqual(mine.events.map((e) => e.type), ["workflow.created", "workflow.advanced"]);
  const all = await admin.listEvents({ workflow_id: workflow.id });
  assert.deepEqual(all.events.map((e) => e.version), [1, 2]);
});

// Every other route.

test("the reads of both APIs", async () => {
  const workflow = await newWorkflow({ workflow_state: { a: 1 } });
  assert.deepEqual(await agent.healthz(), { status: "ok" });
  assert.deepEqual(await admin.readyz(), { status: "ready" });
  const page = await agent.listWorkflows({ reference: workflow.reference });
  assert.equal(page.total, 1);
  assert.deepEqual(page.workflows[0].workflow_state, { a: 1 });
  assert.equal((await admin.listWorkflows({ instance_id: workflow.instance_id, reference: workflow.reference })).total, 1);
  assert.equal((await admin.getWorkflow(workflow.id)).id, workflow.id);
  assert.deepEqual((await agent.workflowHistory(workflow)).entries.map((e) => e.action), ["created"]);
  assert.deepEqual((await admin.workflowHistory(workflow.id, { after: 0, limit: 10 })).entries.map((e) => e.seq), [1]);
});

test("the decisions of the dashboard", async () => {
  const workflow = await newWorkflow();
  await admin.suspendWorkflow(workflow.id, { step: "check", assigned_to: "ts-inbox", due_at: "2000-01-01T00:00:00Z" });
  assert.ok((await admin.listSuspended()).some((s) => s.id === workflow.id));
  const inbox = await admin.listDecisions({ assigned_to: "ts-inbox", overdue: true, limit: 5 });
  assert.deepEqual(inbox.decisions.map((d) => d.id), [workflow.id]);
  assert.ok(inbox.decisions[0].overdue);
  const summary = await admin.decisionsSummary();
  assert.ok(summary.by_assignee.some((line) => line.assigned_to === "ts-inbox" && line.overdue === 1));
  const link = await admin.createApprovalLink(workflow.id, { expires_in: 600, note: "for the manager" });
  assert.equal(link.workflow_id, workflow.id);
  assert.ok(link.url.includes("/ui/approve/"));
  assert.equal((await admin.resumeWorkflow(workflow.id)).status, "active");
});

test("a delivery verifies with its secret and nothing else does", async () => {
  const got = [];
  const receiver = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
  const waitFor = async (count) => {
    for (let i = 0; i < 300 && got.length < count; i++) await sleep(50);
    assert.ok(got.length >= count, `${got.length} deliveries, wanted ${count}`);
  };
  const hook = await admin.createWebhook({
    url: `http://127.0.0.1:${receiver.address().port}/hook`,
    event_types: ["workflow.advanced"],
    description: "ts tests",
  });
  try {
    const workflow = await newWorkflow();
    await agent.advanceWorkflow(workflow, { action: "contacted" });
    await waitFor(1);
    const { headers, body } = got[0];
    await verifyWebhook(hook.secret, headers, body);
    await verifyWebhook(hook.secret, new Headers(headers), new Uint8Array(body));
    assert.equal(JSON.parse(body.toString()).data.workflow_id, workflow.id);

    for (const attempt of [
      () => verifyWebhook(hook.secret, headers, Buffer.concat([body, Buffer.from(" ")])),
      () => verifyWebhook(`whsec_${"A".repeat(44)}`, headers, body),
      () => verifyWebhook(hook.secret, headers, body, { now: Date.now() / 1000 + 3600 }),
    ]) {
      assert.ok((await rejection(attempt())) instanceof WebhookVerificationError);
    }

    const deliveries = await admin.listWebhookDeliveries(hook.id, { limit: 10 });
    assert.equal(deliveries[0].webhook_id, hook.id);
    assert.equal((await admin.retryWebhookDelivery(hook.id, deliveries[0].id)).id, deliveries[0].id);
    await waitFor(2);
    assert.equal(got[1].headers["webhook-id"], headers["webhook-id"]);

    const rotated = await admin.rotateWebhookSecret(hook.id);
    assert.notEqual(rotated.secret, hook.secret);
    assert.equal((await admin.updateWebhook(hook.id, { enabled: false, description: null })).enabled, false);
    assert.equal((await admin.getWebhook(hook.id)).description, null);
    assert.ok((await admin.listWebhooks()).some((w) => w.id === hook.id));
  } finally {
    await admin.deleteWebhook(hook.id);
    receiver.close();
  }
  assert.ok((await rejection(admin.getWebhook(hook.id))) instanceof NotFoundError);
});

test("an API key works as the dashboard credential", async () => {
  const keyed = new DashboardClient({ baseUrl: server.url, apiKey: server.demo.api_key });
  assert.equal((await keyed.listWorkflows({ per_page: 1 })).per_page, 1);
});

test("leaving the event loop closes the stream's connection", async () => {
  const relay = await cutter(server.url);
  const viaRelay = new DashboardClient({ baseUrl: relay.url, token: server.demo.admin_jwt });
  try {
    const workflow = await newWorkflow();
    for await (const event of viaRelay.events({ workflow_id: workflow.id })) {
      assert.equal(event.type, "workflow.created");
      break;
    }
    for (let i = 0; i < 100 && relay.carryingCount() > 0; i++) await sleep(20);
    assert.equal(relay.carryingCount(), 0);
  } finally {
    relay.cut();
    relay.close();
  }
});

test("a stream that cannot connect gives up after the attempts", async () => {
  const relay = await cutter(server.url);
  const url = relay.url;
  relay.close();
  const nowhere = new DashboardClient({ baseUrl: url, token: server.demo.admin_jwt, retry: { attempts: 3, backoffMs: 10 } });
  const error = await rejection(nowhere.events().next());
  assert.ok(error instanceof TransportError, String(error));
});
