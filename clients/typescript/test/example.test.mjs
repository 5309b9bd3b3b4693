// The README's agent example, type-checked and run as written: it waits
// until a manager answers with the README's dashboard snippet, then completes.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";

import { DashboardClient, ValidationError } from "../dist/index.js";
import { REPO, startServer } from "./server.mjs";

const PACKAGE = join(REPO, "clients/typescript");
const BUILD = join(PACKAGE, "build-test");

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

function compileExamples() {
  const readme = readFileSync(join(PACKAGE, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  mkdirSync(BUILD, { recursive: true });
  writeFileSync(join(BUILD, "agent.ts"), blocks[0]);
  writeFileSync(join(BUILD, "manager.ts"), blocks[1]);
  writeFileSync(
    join(BUILD, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        types: ["node"],
        outDir: "out",
        rootDir: ".",
        skipLibCheck: true,
      },
      files: ["agent.ts", "manager.ts"],
    }),
  );
  execFileSync(process.execPath, [join(PACKAGE, "node_modules/typescript/bin/tsc"), "-p", BUILD], { stdio: "inherit" });
}

function run(file) {
  return spawn(process.execPath, [join(BUILD, "out", file)], {
    env: {
      ...process.env,
      HYDRACORE_URL: server.url,
      HYDRACORE_PROXY_KEY: server.demo.proxy_key,
      HYDRACORE_INSTANCE_ID: server.demo.instance_id,
      HYDRACORE_ADMIN_JWT: server.demo.admin_jwt,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
}

const exited = (child) => new Promise((ok) => (child.exitCode !== null ? ok(child.exitCode) : child.once("exit", ok)));

test("the README agent waits for the manager and completes with the approved plan", async () => {
  compileExamples();
  const agent = run("agent.js");
  const output = [];
  const lines = createInterface({ input: agent.stdout });
  const waiting = await new Promise((ok) => lines.once("line", ok));
  lines.on("line", (line) => output.push(line));
  const workflowId = /workflow ([0-9a-f-]{36})/.exec(waiting)[1];

  const admin = new DashboardClient({ baseUrl: server.url, token: server.demo.admin_jwt });
  const inbox = await admin.listDecisions({ assigned_to: "arrears-managers" });
  const decision = inbox.decisions.find((d) => d.id === workflowId);
  assert.equal(decision.suspended_step, "approve_payment_plan");
  const refused = await admin.resumeWorkflow(workflowId, { approved: "yes" }).catch((e) => e);
  assert.ok(refused instanceof ValidationError);
  assert.deepEqual(
    refused.errors.map((e) => e.loc),
    [["body", "resume_data", "approved"]],
  );
  assert.equal(agent.exitCode, null, "the agent still waits after a refused answer");

  assert.equal(await exited(run("manager.js")), 0);
  assert.equal(await exited(agent), 0);
  assert.ok(output.includes(`workflow ${workflowId} is completed`), output.join("\n"));

  const record = await admin.getWorkflow(workflowId);
  assert.deepEqual(record.workflow_state, { amount_due: 1200, contacted_via: "sms", approved: true, plan: [400, 400, 400] });
  assert.deepEqual(
    record.history.map((e) => e.action),
    ["created", "contacted", "suspended", "resumed", "plan_agreed"],
  );
});
