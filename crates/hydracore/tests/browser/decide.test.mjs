// An approver's day: signing in with a one-time link, a question arriving
// live, a wrong answer and a right one, checked through the API; and the
// same by keyboard alone.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  BASE, launch, newTenant, planSuspension, signIn, liveStream, assertStayedHome, assertQuiet,
} from "./helpers.mjs";

let chrome;
before(async () => { chrome = await launch(); });
after(async () => { await chrome.close(); });

test("the link serve --demo prints signs a newcomer in to the inbox, once", async () => {
  const { page, seen } = await chrome.open();
  await signIn(page, process.env.HC_UI_LINK);
  await page.getByRole("heading", { name: "Decisions waiting" }).waitFor();

  const { page: again } = await chrome.open();
  await again.goto(process.env.HC_UI_LINK);
  await again.getByRole("button", { name: "Continue" }).click();
  await again.getByRole("heading", { name: "This link no longer works" }).waitFor();
  assertStayedHome(seen);
  assertQuiet(seen);
});

test("a suspension made while the inbox is open appears live, and a wrong then a right answer resume it", async () => {
  const tenant = newTenant();
  const approver = randomUUID();
  const w = await tenant.api.create({ title: "Arrears, flat 3", workflow_state: { amount_due: 1200 } });
  const { page, seen } = await chrome.open();
  await signIn(page, tenant.signInLink(approver));
  await page.getByText("Nothing is waiting for a decision.").waitFor();
  await page.evaluate(() => { window.stillTheSamePage = true; });

  await tenant.api.suspend(w.id, planSuspension());
  const row = page.locator(".decision", { hasText: "Arrears, flat 3" });
  await row.waitFor();
  assert.ok(await page.evaluate(() => window.stillTheSamePage), "it came in live, without a reload");
  assert.match(await row.innerText(), /Approve a 3-month payment plan\?/);
  assert.match(await row.innerText(), /Assigned to ann/);

  await row.getByRole("link", { name: "Arrears, flat 3" }).click();
  await page.getByRole("heading", { name: "Arrears, flat 3", level: 1 }).waitFor();
  await page.getByRole("heading", { name: /Waiting at manager_approval/ }).waitFor();

  // Wrong: an amount under the minimum, and no channel.
  await page.getByLabel("Monthly amount").fill("0");
  await page.getByRole("button", { name: "Resume with this answer" }).click();
  const amount = page.locator(".field", { has: page.locator("#f-amount") });
  await amount.locator(".error").waitFor();
  assert.match(await amount.locator(".error").innerText(), /minimum/);
  assert.equal(await page.locator("#f-amount").getAttribute("aria-invalid"), "true");
  assert.equal(await page.locator("#f-amount").getAttribute("aria-describedby"), "e-amount");
  assert.equal(await page.locator("#f-amount").inputValue(), "0", "what was typed is kept");
  await page.locator(".field", { has: page.locator("#f-channel") }).locator(".error").waitFor();
  assert.equal((await tenant.api.get(w.id)).status, "suspended", "a wrong answer changes nothing");

  // Right.
  await page.getByLabel(/Approve the plan/).check();
  await page.getByLabel("Monthly amount").fill("400");
  await page.getByLabel(/Tell the tenant by/).selectOption("sms");
  await page.getByRole("button", { name: "Resume with this answer" }).click();
  await page.getByText("Answered: Arrears, flat 3").waitFor();
  assert.equal(new URL(page.url()).pathname, "/ui/");
  assert.equal(await page.locator(".decision", { hasText: "Arrears, flat 3" }).count(), 0, "it left the inbox");

  const record = await tenant.api.get(w.id);
  assert.equal(record.status, "active");
  assert.equal(record.approver_id, approver);
  assert.equal(record.workflow_state.amount, 400);
  assert.equal(record.workflow_state.channel, "sms");
  const last = record.history.at(-1);
  assert.equal(last.action, "resumed");
  assert.equal(last.actor, approver);
  assertStayedHome(seen);
  assertQuiet(seen);
});

test("an approver answers by keyboard alone: Tab to each control, Enter to send", async () => {
  const tenant = newTenant();
  const w = await tenant.api.create({ title: "Keyboard plan" });
  await tenant.api.suspend(w.id, planSuspension());
  const { page, seen } = await chrome.open();
  await signIn(page, tenant.signInLink("kim"));

  const tabTo = async (matches, what) => {
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        const e = document.activeElement;
        const style = getComputedStyle(e);
        return { id: e.id, text: e.textContent.trim(), outline: style.outlineStyle };
      });
      if (matches(focused)) {
        assert.notEqual(focused.outline, "none", `${what} shows that it has focus`);
        return;
      }
    }
    assert.fail(`Tab never reached ${what}`);
  };
  await tabTo((f) => f.text === "Keyboard plan", "the decision's link");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Keyboard plan", level: 1 }).waitFor();

  await tabTo((f) => f.id === "f-approved", "the approve box");
  await page.keyboard.press("Space");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "f-amount");
  await page.keyboard.type("250");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "f-channel");
  await page.keyboard.press("ArrowDown");
  assert.equal(await page.locator("#f-channel").inputValue(), "email");
  await page.keyboard.press("Shift+Tab");
  await page.keyboard.press("Enter");
  await page.getByText("Answered: Keyboard plan").waitFor();

  const record = await tenant.api.get(w.id);
  assert.equal(record.status, "active");
  assert.deepEqual(
    [record.workflow_state.approved, record.workflow_state.amount, record.workflow_state.channel],
    [true, 250, "email"],
  );
  assertStayedHome(seen);
  assertQuiet(seen);
});

test("an open page reacts to new changes only, not to the past events its stream begins with", async () => {
  const tenant = newTenant();
  const w = await tenant.api.create({ title: "Long story" });
  for (const stage of ["contacted", "replied"]) {
    await tenant.api.call("PATCH", `${tenant.api.path}/${w.id}`, { action: "noted", stage });
  }
  await tenant.api.suspend(w.id, planSuspension());
  // Past: older than the second's leeway a page gives changes made while
  // it was being read.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const { page, seen } = await chrome.open();
  await signIn(page, tenant.signInLink("ann"));
  const inboxFetches = () => seen.requests.filter((u) => new URL(u).pathname === "/ui/").length;
  const before = inboxFetches();
  await page.waitForTimeout(1000);
  assert.equal(inboxFetches(), before, "the inbox did not refetch itself for past events");

  const live = liveStream(page);
  await page.goto(`${BASE}/ui/workflows/${w.id}`);
  await live;
  await page.waitForTimeout(1000);
  assert.ok(await page.locator("#stale").isHidden(), "nothing changed since the page was read");

  await tenant.api.call("PATCH", `${tenant.api.path}/${w.id}`, { action: "noted", assigned_to: "bob" });
  await page.locator("#stale").waitFor();
  assert.match(await page.locator("#stale").innerText(), /This workflow changed/);
  assertStayedHome(seen);
  assertQuiet(seen);
});
