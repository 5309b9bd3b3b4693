// How the pages look and read: axe-core's accessibility rules, the bytes
// each page moves, and (with HYDRACORE_UI_SCREENSHOTS=docs/ui) the
// screenshots of docs/ui at a laptop's and a phone's width.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import {
  BASE, launch, newTenant, planSuspension, signIn, transferred, screenshot, assertStayedHome, assertQuiet,
} from "./helpers.mjs";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const PAGE_BUDGET = 100 * 1024;
const hours = (h) => new Date(Date.now() + h * 3600_000).toISOString();

let chrome;
let tenant;
let plan;
before(async () => {
  chrome = await launch();
  tenant = newTenant();
  // An inbox as a property manager sees it: one overdue and escalated,
  // one due soon, one with no deadline.
  plan = await tenant.api.create({
    title: "Payment plan — 14 Elm Court, flat 3",
    reference: "ARR-2024-0193",
    stage: "contact_tenant",
    escalation_level: 1,
    workflow_state: { arrears: 1200, tenant: { name: "J. Smith", phone: "07700 900123" }, reminders_sent: 2 },
  });
  await tenant.api.call("PATCH", `${tenant.api.path}/${plan.id}`, {
    action: "reminder_sent", stage: "awaiting_reply", workflow_state: { reminders_sent: 3 }, actor: "arrears-agent",
  });
  await tenant.api.call("PATCH", `${tenant.api.path}/${plan.id}`, {
    action: "tenant_replied", stage: "plan_offered",
    workflow_state: { offer: { months: 3, monthly: 400 } }, actor: "arrears-agent",
  });
  await tenant.api.suspend(plan.id, planSuspension({
    payload: { question: "Approve a 3-month payment plan of £400 a month?", arrears: 1200, months: 3, tenant: "J. Smith" },
    due_at: hours(-3),
  }));
  const quote = await tenant.api.create({
    title: "Boiler repair quote — 2 Mill Lane", workflow_type: "maintenance", reference: "JOB-5521",
  });
  await tenant.api.suspend(quote.id, {
    step: "approve_quote",
    payload: { question: "Accept the £640 quote from Heatwise?", quote: 640 },
    resume_schema: { type: "object", required: ["accept"], properties: { accept: { type: "boolean" }, note: { type: "string" } } },
    assigned_to: "ann",
    due_at: hours(0.7),
  });
  const renewal = await tenant.api.create({
    title: "Gas safety renewal — 7 Park Row", workflow_type: "compliance_renewal", reference: "GSR-77",
  });
  await tenant.api.suspend(renewal.id, {
    step: "choose_slot",
    payload: { question: "Which inspection slot suits the tenant?" },
    resume_schema: { type: "object", properties: { slot: { enum: ["Mon 9:00", "Tue 14:00", "Fri 11:00"] } } },
  });
});
after(async () => { await chrome.close(); });

/** axe-core's violations on `page` as it is now, as lines; fails on serious ones. */
async function accessible(t, page, what) {
  // Evaluated through the DevTools protocol: the page's CSP forbids inline
  // script, and rightly so.
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")),
    }));
  });
  t.diagnostic(`axe on ${what}: ${violations.length === 0 ? "no violations" : ""}`);
  for (const v of violations) t.diagnostic(`  ${v.impact} ${v.id}: ${v.nodes.join(", ")}`);
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious, [], `serious accessibility violations on ${what}`);
}

async function wrongAnswer(page) {
  await page.getByLabel("Monthly amount").fill("0");
  await page.getByRole("button", { name: "Resume with this answer" }).click();
  await page.locator(".field.invalid").first().waitFor();
}

test("the inbox, a workflow and its decide form have no serious accessibility violations", async (t) => {
  const { page, seen } = await chrome.open();
  await signIn(page, tenant.signInLink("ann"));
  await page.locator(".decision").nth(2).waitFor();
  await accessible(t, page, "the inbox");
  await page.goto(`${BASE}/ui/workflows/${plan.id}`);
  await accessible(t, page, "a workflow");
  await wrongAnswer(page);
  await accessible(t, page, "the decide form showing violations");
  await page.goto(`${BASE}/ui/workflows`);
  await accessible(t, page, "the workflows list");
  const link = await tenant.admin.approvalLink(plan.id, { note: "From Bob" });
  await page.goto(link);
  await accessible(t, page, "an approval link's page");
  assertStayedHome(seen);
  assertQuiet(seen);
});

test("each page moves less than 100 KB, styles and script included", async (t) => {
  const { page, seen } = await chrome.open();
  await signIn(page, tenant.signInLink("ann"));
  const pages = ["/ui/", `/ui/workflows/${plan.id}`, "/ui/workflows", "/ui/sign-in"];
  for (const path of pages) {
    // A fresh context each time: nothing cached.
    const fresh = await chrome.open();
    await fresh.context.addCookies(await page.context().cookies());
    const bytes = await transferred(fresh.page, path);
    t.diagnostic(`${path}: ${bytes} bytes`);
    assert.ok(bytes < PAGE_BUDGET, `${path}: ${bytes} bytes`);
    assertStayedHome(fresh.seen);
    await fresh.context.close();
  }
  assertStayedHome(seen);
});

for (const [width, height] of [[1280, 800], [390, 844]]) {
  test(`screenshots at ${width} px`, { skip: !process.env.HC_SCREENSHOTS && "HYDRACORE_UI_SCREENSHOTS is not set" }, async () => {
    const { page, seen } = await chrome.open({ width, height });
    await signIn(page, tenant.signInLink("ann"));
    await page.locator(".decision").nth(2).waitFor();
    await screenshot(page, `inbox-${width}`);
    await page.goto(`${BASE}/ui/workflows/${plan.id}`);
    await screenshot(page, `workflow-${width}`, { fullPage: true });
    await wrongAnswer(page);
    await page.locator("form.decide").scrollIntoViewIfNeeded();
    await screenshot(page.locator("form.decide"), `decide-${width}`);
    assertStayedHome(seen);
    assertQuiet(seen);
  });
}
