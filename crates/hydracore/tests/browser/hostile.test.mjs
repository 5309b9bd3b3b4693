// Whatever an agent writes into a workflow is shown as text: markup,
// event handlers and javascript: URLs in every field never run, whether
// the page is loaded or the inbox refreshes live.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { ORIGIN, launch, newTenant, signIn, assertStayedHome, assertQuiet } from "./helpers.mjs";

const SCRIPT = `<script>alert("script")</script>`;
const IMG = `"><img src=x onerror=alert("img")>`;
const URL_ = `javascript:alert("url")`;
const HOSTILE = `${SCRIPT}${IMG}`;

let chrome;
before(async () => { chrome = await launch(); });
after(async () => { await chrome.close(); });

/** Nothing on the page is markup that came from the workflow. */
async function assertInert(page, where) {
  const found = await page.evaluate(() => ({
    scripts: [...document.scripts].map((s) => s.src || "inline"),
    images: document.images.length,
    svgs: document.querySelectorAll("svg").length,
    handlers: [...document.querySelectorAll("*")].flatMap((e) =>
      [...e.attributes].filter((a) => a.name.startsWith("on")).map((a) => `${e.tagName} ${a.name}`)),
    jsLinks: [...document.querySelectorAll("[href], [src], [action], [formaction]")]
      .map((e) => e.getAttribute("href") ?? e.getAttribute("src") ?? e.getAttribute("action") ?? e.getAttribute("formaction"))
      .filter((v) => /^\s*javascript:/i.test(v)),
    ran: window.hostileRan ?? [],
  }));
  assert.deepEqual(found, {
    scripts: [`${ORIGIN}/ui/static/app.js`], images: 0, svgs: 0, handlers: [], jsLinks: [], ran: [],
  }, where);
}

test("a workflow whose title, state, payload, step names and history hold markup and javascript: URLs renders them as text", async () => {
  const tenant = newTenant();
  const w = await tenant.api.create({
    title: HOSTILE,
    stage: IMG,
    reference: URL_,
    workflow_state: { note: HOSTILE, link: URL_, [IMG]: { [SCRIPT]: URL_ } },
  });
  const advanced = await tenant.api.call("PATCH", `${tenant.api.path}/${w.id}`, {
    action: `${IMG}advanced`, actor: HOSTILE, stage: SCRIPT, action_detail: { why: HOSTILE, see: URL_ },
  });
  assert.equal(advanced.status, 200, JSON.stringify(advanced.body));

  const { context, page, seen } = await chrome.open();
  // A script that ran would leave its mark here, as well as open a dialog.
  await context.addInitScript(() => {
    window.hostileRan = [];
    for (const name of ["alert", "confirm", "prompt"]) {
      const real = window[name];
      window[name] = (...args) => { window.hostileRan.push(`${name}(${args.join()})`); return real.apply(window, args); };
    }
  });
  await signIn(page, tenant.signInLink("ann"));

  // Suspended while the inbox is open: the live refresh inserts it.
  await tenant.api.suspend(w.id, {
    step: HOSTILE,
    payload: { question: HOSTILE, link: URL_, [IMG]: SCRIPT },
    assigned_to: IMG,
    resume_schema: {
      type: "object",
      required: [`a${IMG}`],
      properties: {
        [`a${IMG}`]: { type: "string", title: HOSTILE, description: URL_, minLength: 3 },
        pick: { enum: [SCRIPT, URL_], title: IMG },
      },
    },
  });
  const row = page.locator(".decision").first();
  await row.waitFor();
  assert.equal(await row.locator("a.title").innerText(), HOSTILE, "the title, as text");
  await assertInert(page, "the inbox, refreshed live");

  await page.reload();
  await row.waitFor();
  await assertInert(page, "the inbox");

  await row.locator("a.title").click();
  await page.getByRole("heading", { level: 1 }).filter({ hasText: HOSTILE }).waitFor();
  for (const text of [`Waiting at ${HOSTILE}`, URL_]) {
    assert.ok(await page.getByText(text, { exact: false }).first().isVisible(), `${text} shown as text`);
  }
  await assertInert(page, "the workflow");

  // The form refused, with the hostile field named beside its error.
  await page.getByRole("button", { name: "Resume with this answer" }).click();
  await page.locator(".field.invalid").first().waitFor();
  await assertInert(page, "the decide form with its violations");

  await page.goto(`${new URL(page.url()).origin}/ui/workflows`);
  await page.getByRole("link", { name: HOSTILE }).waitFor();
  await assertInert(page, "the list");

  const link = await tenant.admin.approvalLink(w.id, { note: HOSTILE });
  await page.goto(link);
  await page.getByText(HOSTILE).first().waitFor();
  await assertInert(page, "the approval link's page");

  assertStayedHome(seen);
  assertQuiet(seen);
});
