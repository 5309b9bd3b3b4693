// An agent's whole loop through `hydracore mcp` (stdio), with the
// TypeScript MCP SDK: the host starts the command, which relays to a
// running server. Tools listed, a workflow created, a person asked with a
// schema, a wrong answer refused by the dashboard route, the right one
// answered, wait_for_human returning it, the workflow completed; another
// instance's key seeing none of it.
//
// Environment: HC_BIN (the hydracore binary), HC_URL, HC_PROXY_KEY,
// HC_OTHER_PROXY_KEY, HC_ADMIN_JWT. Exits non-zero at the first thing that
// is not as it should be.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const { HC_BIN, HC_URL, HC_PROXY_KEY, HC_OTHER_PROXY_KEY, HC_ADMIN_JWT } = process.env;
const ANSWER_SCHEMA = {
  type: "object",
  required: ["approved"],
  properties: { approved: { type: "boolean" } },
};

async function connect(key) {
  const transport = new StdioClientTransport({
    command: HC_BIN,
    args: ["mcp", "--server", HC_URL],
    env: { HYDRACORE_PROXY_KEY: key, PATH: process.env.PATH ?? "" },
    stderr: "inherit",
  });
  const client = new Client({ name: "hydracore-stdio-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

async function call(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  assert.ok(!result.isError, `${name} failed: ${JSON.stringify(result.structuredContent)}`);
  return result.structuredContent;
}

async function refused(client, name, args, status) {
  const result = await client.callTool({ name, arguments: args });
  assert.ok(result.isError, `${name} should have been refused`);
  assert.equal(result.structuredContent.status, status, JSON.stringify(result.structuredContent));
  return result.structuredContent;
}

function admin(path, body) {
  return fetch(`${HC_URL}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${HC_ADMIN_JWT}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

const agent = await connect(HC_PROXY_KEY);
const { tools } = await agent.listTools();
assert.deepEqual(
  tools.map((t) => t.name).sort(),
  ["advance_workflow", "ask_human", "complete_workflow", "create_workflow", "get_workflow",
    "list_workflows", "wait_for_human"],
);
console.log(`tools listed: ${tools.length}`);

const created = await call(agent, "create_workflow", {
  customer_id: "160c0c4b-9966-4dc1-a916-8407eb10d74e",
  workflow_type: "maintenance",
  reference: `boiler-${randomUUID()}`,
});
const id = created.id;
console.log(`created ${id} at version ${created.version}`);

const asked = await call(agent, "ask_human", {
  workflow_id: id,
  expected_version: created.version,
  step: "approve_callout",
  question: "Send an engineer for 180 GBP?",
  resume_schema: ANSWER_SCHEMA,
  assigned_to: "maintenance-managers",
  due_at: "2099-01-01T00:00:00Z",
});
assert.equal(asked.decision_id, id);
assert.equal(asked.status, "suspended");
console.log(`asked: ${asked.message}`);

const wrong = await admin(`/v1/workflows/${id}/resume`, { resume_data: { approved: "yes" } });
assert.equal(wrong.status, 422);
console.log("a wrong answer was refused by the dashboard route: 422");

const waiting = call(agent, "wait_for_human", { workflow_id: id, timeout_seconds: 20 });
await new Promise((resolve) => setTimeout(resolve, 1000));
const right = await admin(`/v1/workflows/${id}/resume`, { resume_data: { approved: true } });
assert.equal(right.status, 200, await right.text());
const answered = await waiting;
assert.equal(answered.status, "answered", JSON.stringify(answered));
assert.deepEqual(answered.resume_data, { approved: true });
console.log(`wait_for_human: ${JSON.stringify(answered.resume_data)}`);

const record = await call(agent, "get_workflow", { workflow_id: id });
const done = await call(agent, "complete_workflow", {
  workflow_id: id,
  expected_version: record.version,
});
assert.equal(done.status, "completed");
const resource = await agent.readResource({ uri: `hydracore://workflows/${id}` });
assert.equal(JSON.parse(resource.contents[0].text).status, "completed");
console.log(`completed at version ${done.version}`);
await agent.close();

const other = await connect(HC_OTHER_PROXY_KEY);
await refused(other, "get_workflow", { workflow_id: id }, 404);
assert.equal((await call(other, "list_workflows", {})).total, 0);
await assert.rejects(other.readResource({ uri: `hydracore://workflows/${id}` }), /not found/i);
await other.close();
console.log("another instance's key sees none of it");

await assert.rejects(connect("hcp_wrong"), "a wrong key must not connect");
console.log("TypeScript MCP SDK over stdio: the whole loop passed");
