// verifyWebhook against signatures made with node:crypto, also where Web
// Crypto is not a global (Node 18).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { test } from "node:test";

import { verifyWebhook, WebhookVerificationError } from "../dist/index.js";

const key = Buffer.alloc(32, 7);
const secret = `whsec_${key.toString("base64")}`;

function signed(body, id = "msg_1", at = Math.floor(Date.now() / 1000)) {
  const mac = createHmac("sha256", key).update(`${id}.${at}.${body}`).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": String(at), "webhook-signature": `v1,${mac}` };
}

test("a signature of the secret verifies, also as one of several", async () => {
  await verifyWebhook(secret, signed('{"a":1}'), '{"a":1}');
  const headers = signed('{"a":1}');
  headers["webhook-signature"] = `v1,${Buffer.alloc(32).toString("base64")} ${headers["webhook-signature"]}`;
  await verifyWebhook(secret, new Headers(headers), new TextEncoder().encode('{"a":1}'));
});

test("another body, secret, time or missing header does not verify", async () => {
  const cases = [
    () => verifyWebhook(secret, signed('{"a":1}'), '{"a":2}'),
    () => verifyWebhook(`whsec_${Buffer.alloc(32, 8).toString("base64")}`, signed("x"), "x"),
    () => verifyWebhook(secret, signed("x", "msg_1", Math.floor(Date.now() / 1000) - 600), "x"),
    () => verifyWebhook(secret, { "webhook-id": "msg_1" }, "x"),
  ];
  for (const attempt of cases) {
    await assert.rejects(attempt(), WebhookVerificationError);
  }
});

test("it verifies where Web Crypto is not a global, as on Node 18", () => {
  const headers = signed("x");
  const script = `
    Object.defineProperty(globalThis, "crypto", { value: undefined, configurable: true });
    const { verifyWebhook } = await import(${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)});
    await verifyWebhook(${JSON.stringify(secret)}, ${JSON.stringify(headers)}, "x");
    console.log("verified");`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script]).toString();
  assert.equal(out.trim(), "verified");
});
