// An approval link, as someone who only has the e-mail opens it: no
// sign-in, that one decision, once.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newTenant, planSuspension, assertStayedHome, assertQuiet } from "./helpers.mjs";

let chrome;
before(async () => { chrome = await launch(); });
after(async () => { await chrome.close(); });

test("an approval link shows its one decision without signing in, refuses a wrong answer and takes a right one once", async () => {
  const tenant = newTenant();
  const w = await tenant.api.create({ title: "Plan for flat 9", reference: "ARR-0009" });
  await tenant.api.suspend(w.id, planSuspension());
  const url = await tenant.admin.approvalLink(w.id, { expires_in: 3600, note: "From Bob: please decide today" });

  const { page, seen } = await chrome.open();
  await page.goto(url);
  await page.getByRole("heading", { name: "Plan for flat 9", level: 1 }).waitFor();
  await page.getByText("From Bob: please decide today").waitFor();
  await page.getByText("Approve a 3-month payment plan?").waitFor();
  assert.equal(await page.getByRole("button", { name: /Abort/ }).count(), 0, "only the decision");
  assert.equal(await page.getByRole("link", { name: "Inbox" }).count(), 0, "no way into the tenant");

  await page.getByLabel("Monthly amount").fill("-5");
  await page.getByRole("button", { name: "Resume with this answer" }).click();
  const amount = page.locator(".field", { has: page.locator("#f-amount") });
  await amount.locator(".error").waitFor();
  assert.match(await amount.locator(".error").innerText(), /minimum/);
  assert.equal((await tenant.api.get(w.id)).status, "suspended");

  await page.getByLabel(/Approve the plan/).check();
  await page.getByLabel("Monthly amount").fill("300");
  await page.getByLabel(/Tell the tenant by/).selectOption("email");
  await page.getByRole("button", { name: "Resume with this answer" }).click();
  await page.getByRole("heading", { name: "Thank you" }).waitFor();

  const record = await tenant.api.get(w.id);
  assert.equal(record.status, "active");
  assert.equal(record.approver_id, tenant.adminSub, "the link's creator decided");
  assert.equal(record.workflow_state.amount, 300);
  const last = record.history.at(-1);
  assert.equal(last.action, "resumed");
  assert.equal(last.actor, `${tenant.adminSub} via approval link`);

  await page.goto(url);
  await page.getByRole("heading", { name: "This link no longer works" }).waitFor();
  assertStayedHome(seen);
  assertQuiet(seen);
});
