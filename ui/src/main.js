// main.js: the dashboard's shell. It logs in (or finds the session), keeps the shared state
// (the newest snapshot and when it came, the events, the connection), and draws the banner
// and the page the address's #fragment names. Pages: overview, events, Service Engines,
// virtual services (and one's charts and logs), pools, health monitors.
import { api, ApiError, setCsrfToken } from "./api.js";
import { h, fill } from "./dom.js";
import { LiveStream } from "./stream.js";
import { banner, failoverHelp, nodesTable, seTable, vsTable, statusStrip, sizeStrips, eventList } from "./views.js";
import { objectPage } from "./forms.js";
import { vsPage } from "./charts.js";

const MAX_EVENTS = 2000;

const state = {
  session: null,
  snapshot: null,
  snapshotAt: 0,
  events: [],           // newest first
  eventIds: new Set(),  // uuids, so an event is shown once
  conn: { state: "connecting", detail: "" },
  brokenSince: 0,
  filter: { type: "", text: "" },
};

const app = document.getElementById("app");
let stream = null;
let page = null;         // {name, el, update?, stop?}
let bannerEl, helpEl, mainEl, navEl;

function addEvents(list, fromStream) {
  let added = false;
  for (const e of list) {
    if (!e || !e.uuid || state.eventIds.has(e.uuid)) continue;
    state.eventIds.add(e.uuid);
    state.events.push(e);
    added = true;
  }
  if (!added) return;
  state.events.sort((a, b) => (b.report_timestamp || "").localeCompare(a.report_timestamp || ""));
  if (state.events.length > MAX_EVENTS) {
    for (const e of state.events.splice(MAX_EVENTS)) state.eventIds.delete(e.uuid);
  }
  if (fromStream || page) redraw();
}

// The newest events at start (the stream then sends each new one; both are merged by uuid).
async function loadRecentEvents() {
  try {
    const first = await api("GET", "/api/event?page_size=1");
    const pageSize = 500;
    const last = Math.max(1, Math.ceil(first.count / pageSize));
    const body = await api("GET", `/api/event?page_size=${pageSize}&page=${last}`);
    const prev = last > 1 ? await api("GET", `/api/event?page_size=${pageSize}&page=${last - 1}`) : { results: [] };
    addEvents([...prev.results, ...body.results], false);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showLogin();
  }
}

function redraw() {
  if (!bannerEl) return;
  const now = Date.now();
  fill(bannerEl, banner(state, now));
  fill(helpEl, failoverHelp(state, now));
  if (page && page.update) page.update(now);
}

// --- pages -------------------------------------------------------------------------------

function overviewPage() {
  const strip = h("div", {}), nodes = h("div", {}), ses = h("div", {}), vss = h("div", {});
  const el = h("section", {},
    h("h2", {}, "Cluster status history"), strip,
    h("h2", {}, "Controller nodes"), nodes,
    h("h2", {}, "Service Engines"), ses,
    h("h2", {}, "Virtual services"), vss);
  return {
    el,
    update(now) {
      const snap = state.snapshot;
      if (!snap) return;
      fill(strip, statusStrip(snap.runtime.status_history, now));
      sizeStrips(strip);
      fill(nodes, nodesTable(snap));
      fill(ses, seTable(snap, now));
      fill(vss, vsTable(snap));
    },
  };
}

function eventsPage() {
  const types = h("select", { id: "event-type", "aria-label": "event type" });
  const search = h("input", { id: "event-search", type: "search", placeholder: "search events", "aria-label": "search events" });
  const list = h("div", { "data-testid": "event-list" });
  const strip = h("div", {});
  let knownTypes = "";
  types.addEventListener("change", () => { state.filter.type = types.value; draw(); });
  search.addEventListener("input", () => { state.filter.text = search.value; draw(); });
  function draw() { fill(list, eventList(state.events, state.filter)); }
  return {
    el: h("section", {}, h("h2", {}, "Cluster status history"), strip,
      h("div", { class: "section-head" }, h("h2", {}, "Events"), h("div", { class: "filters" }, types, search)), list),
    update(now) {
      const names = [...new Set(state.events.map((e) => e.event_id))].sort();
      if (names.join() !== knownTypes) {
        knownTypes = names.join();
        fill(types, h("option", { value: "" }, "all types"),
          names.map((n) => h("option", { value: n, selected: n === state.filter.type }, n)));
      }
      if (state.snapshot) { fill(strip, statusStrip(state.snapshot.runtime.status_history, now)); sizeStrips(strip); }
      draw();
    },
  };
}

function livePage(title, tableOf, configType) {
  const live = h("div", {});
  return {
    el: h("section", {}, h("h2", {}, title), live, objectPage(configType, state.session)),
    update(now) { if (state.snapshot) fill(live, tableOf(state.snapshot, now)); },
  };
}

// A pool's server as the SEs that serve its virtual services see it: the first virtual
// service of the pool that has a report (they share the pool's monitors), or null.
function serverState(poolUuid, ip, port) {
  for (const vs of (state.snapshot && state.snapshot.virtualservices) || []) {
    if (vs.pool_ref !== poolUuid || !vs.runtime || !vs.runtime.server_states) continue;
    const s = vs.runtime.server_states.find((x) => x.ip === ip && x.port === port);
    if (s) return s;
  }
  return null;
}

function poolsPage() {
  const el = objectPage("pool", state.session, { serverState });
  return { el, update() { el.refresh(); } };
}

const PAGES = {
  overview: { label: "Overview", make: overviewPage },
  events: { label: "Events", make: eventsPage },
  se: { label: "Service Engines", make: () => livePage("Service Engines", seTable, "serviceengine") },
  vs: { label: "Virtual services", make: () => livePage("Virtual services", (s) => vsTable(s), "virtualservice") },
  pools: { label: "Pools", make: poolsPage },
  monitors: { label: "Health monitors", make: () => ({ el: objectPage("healthmonitor", state.session) }) },
};

function route() {
  const parts = (location.hash.replace(/^#\/?/, "") || "overview").split("/");
  if (page && page.stop) page.stop();
  if (parts[0] === "vs" && parts[1]) {
    page = vsPage(parts[1], state);
  } else {
    const which = PAGES[parts[0]] ? parts[0] : "overview";
    page = PAGES[which].make();
  }
  for (const a of navEl.querySelectorAll("a")) a.setAttribute("aria-current", a.dataset.page === parts[0] ? "page" : "false");
  fill(mainEl, page.el);
  redraw();
}

// --- the shell -------------------------------------------------------------------------

function showApp() {
  bannerEl = h("div", { class: "banner", role: "status", "aria-live": "polite", "data-testid": "banner" });
  helpEl = h("div", {});
  navEl = h("nav", { "aria-label": "pages" }, Object.entries(PAGES).map(([key, p]) =>
    h("a", { href: `#/${key}`, "data-page": key }, p.label)));
  mainEl = h("main", { id: "main" });
  const who = h("span", { class: "who" }, `${state.session.username} (${state.session.role})`,
    h("button", { type: "button", onclick: logout }, "Log out"));
  fill(app, h("header", {}, h("h1", {}, "Vigil"), navEl, who), bannerEl, helpEl, mainEl);
  stream = new LiveStream({
    onSnapshot(snap, at) { state.snapshot = snap; state.snapshotAt = at; redraw(); },
    onEvent(event) { addEvents([event], true); },
    onGap(info) { console.info(`events ${info.after + 1}..${info.next - 1} were pruned before this page saw them`); },
    onState(s, detail) {
      if (s === "live") state.brokenSince = 0;
      else if (!state.brokenSince && s !== "connecting") state.brokenSince = Date.now();
      state.conn = { state: s, detail };
      redraw();
    },
    onAuthLost() { checkSession(); },
  });
  stream.open();
  setInterval(redraw, 1000);
  window.addEventListener("hashchange", route);
  route();
  loadRecentEvents();
}

async function checkSession() {
  try {
    await api("GET", "/api/session");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showLogin("Your session ended; log in again.");
  }
}

async function logout() {
  try { await api("POST", "/api/logout"); } catch { /* the cookie goes either way */ }
  document.cookie = "csrftoken=; Path=/; Max-Age=0; SameSite=Strict";
  location.reload();
}

function showLogin(why) {
  if (stream) { stream.stop(); stream = null; }
  bannerEl = null;
  const error = h("p", { class: "form-error", role: "alert", "data-testid": "login-error" }, why || "");
  const user = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "login", "aria-label": "log in" },
    h("h1", {}, "Vigil"), h("p", { class: "muted" }, "Log in to the controller cluster."), error,
    h("label", { for: "username" }, "User name"), user,
    h("label", { for: "password" }, "Password"), pass,
    h("button", { type: "submit", class: "primary" }, "Log in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      const body = await api("POST", "/api/login", { username: user.value, password: pass.value });
      start(body);
    } catch (err) {
      error.textContent = err.message;
      pass.select();
    }
  });
  fill(app, h("main", { class: "login-page" }, form));
  user.focus();
}

function start(session) {
  state.session = session;
  setCsrfToken(session.csrftoken);
  showApp();
}

// A session leaves its (readable) csrftoken cookie; without one there is none to resume,
// and the login page comes at once, without a 401 in the browser's console.
function hasSessionCookie() {
  return document.cookie.split(";").some((c) => c.trim().startsWith("csrftoken="));
}

(async () => {
  if (!hasSessionCookie()) {
    showLogin("");
    return;
  }
  try {
    start(await api("GET", "/api/session"));
  } catch (err) {
    showLogin(err instanceof ApiError && err.status !== 401 ? err.message : "");
  }
})();
