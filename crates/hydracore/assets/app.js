// Enhances the server-rendered pages; every page works without it.
// - Lists marked data-live refresh when the tenant's events say something
//   changed; a workflow page says when its workflow changed.
// - Forms are sent in the background and the answer replaces the page's
//   main part, without a full reload.
"use strict";

const EVENT_TYPES = ["created", "advanced", "suspended", "resumed", "aborted",
  "expired", "escalated", "completed"].map((t) => "workflow." + t);

function live() {
  return document.querySelector("[data-live]");
}

async function refreshLive() {
  const current = live();
  if (!current || document.activeElement && current.contains(document.activeElement)
      && current.querySelector("form")) {
    return;
  }
  const response = await fetch(location.href, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.querySelector("[data-live]");
  if (fresh && fresh.dataset.live === current.dataset.live) {
    current.replaceWith(document.importNode(fresh, true));
  }
}

function listen() {
  if (!window.EventSource) return;
  const source = new EventSource("/ui/events");
  let timer = null;
  const since = Date.parse(document.body.dataset.since || "");
  const onEvent = (message) => {
    const current = live();
    if (!current) return;
    let event = null;
    try { event = JSON.parse(message.data); } catch (_) { return; }
    // What happened before the page was rendered is on it already.
    if (Date.parse(event.occurred_at) < since) return;
    if (current.dataset.live === "workflow") {
      const stale = document.getElementById("stale");
      if (event.workflow_id === current.dataset.workflow && stale
          && Number(event.version) > Number(current.dataset.version)) {
        stale.hidden = false;
      }
      return;
    }
    clearTimeout(timer);
    timer = setTimeout(refreshLive, 150);
  };
  EVENT_TYPES.forEach((type) => source.addEventListener(type, onEvent));
}

async function submitInBackground(event) {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { Accept: "text/html" },
    });
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const main = page.getElementById("main");
    if (!main) { location.assign(response.url); return; }
    document.getElementById("main").replaceWith(document.importNode(main, true));
    document.title = page.title;
    if (response.redirected) history.pushState(null, "", response.url);
    const focus = document.querySelector("[aria-invalid=true], .banner, h1");
    if (focus) { focus.setAttribute("tabindex", "-1"); focus.focus(); }
  } catch (_) {
    form.submit();
  } finally {
    if (button) button.disabled = false;
  }
}

document.addEventListener("submit", (event) => {
  // Signing in and out changes the whole page: let the browser do it.
  const action = event.target.getAttribute && event.target.getAttribute("action") || "";
  if (action.startsWith("/ui/sign-")) return;
  submitInBackground(event);
});
window.addEventListener("popstate", () => location.reload());
if (document.querySelector("[data-live]")) listen();
