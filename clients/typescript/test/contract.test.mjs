// The client keeps up with the server: every operation of the OpenAPI
// document has a method, and the version is the workspace's.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import * as client from "../dist/index.js";
import { REPO } from "./server.mjs";

const document = JSON.parse(readFileSync(join(REPO, "clients/openapi.json"), "utf8"));
const operationIds = Object.values(document.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));

test("every operation of the OpenAPI document has a method or a reason", () => {
  const missing = operationIds.filter((id) => !(id in client.OPERATIONS) && !(id in client.NOT_COVERED));
  assert.deepEqual(missing, [], "operations without a client method");
  const stale = Object.keys(client.OPERATIONS).filter((id) => !operationIds.includes(id));
  assert.deepEqual(stale, [], "methods for operations the server no longer has");
});

test("every mapped method exists", () => {
  for (const [operation, [cls, method]] of Object.entries(client.OPERATIONS)) {
    assert.equal(typeof client[cls].prototype[method], "function", `${operation}: ${cls}.${method}`);
  }
});

test("the version is the workspace version", () => {
  const pkg = JSON.parse(readFileSync(join(REPO, "clients/typescript/package.json"), "utf8"));
  assert.equal(pkg.version, client.VERSION);
  assert.match(readFileSync(join(REPO, "Cargo.toml"), "utf8"), new RegExp(`version = "${pkg.version}"`));
});
