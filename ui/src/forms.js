// forms.js: create, edit and delete of the config objects. A form is built from a field
// list per type; what the API refuses is shown next to the field its message names (or
// above the form when it names none). Write controls exist only for roles that may write.
import { api, ApiError, listAll } from "./api.js";
import { h, fill, table, badge } from "./dom.js";

const SPLIT = /[\s,]+/;

// Each field: key, label, kind (text, number, select, check, lines, list, refs), and for
// select its options, for refs the type it refers to.
export const OBJECT_FORMS = {
  healthmonitor: {
    title: "Health monitors",
    fields: [
      { key: "name", label: "Name", kind: "text" },
      { key: "type", label: "Type", kind: "select", options: ["HEALTH_MONITOR_TCP", "HEALTH_MONITOR_HTTP"] },
      { key: "send_interval", label: "Send interval (s)", kind: "number", initial: 5 },
      { key: "receive_timeout", label: "Receive timeout (s)", kind: "number", initial: 4 },
      { key: "successful_checks", label: "Successful checks", kind: "number", initial: 2 },
      { key: "failed_checks", label: "Failed checks", kind: "number", initial: 2 },
      { key: "http_request", label: "HTTP request", kind: "text", optional: true, initial: "GET / HTTP/1.0" },
      { key: "http_response_codes", label: "HTTP response codes", kind: "list", optional: true, initial: ["HTTP_2XX"] },
    ],
    columns: [["Type", (o) => o.type], ["Interval", (o) => `${o.send_interval} s`], ["Checks", (o) => `${o.successful_checks} up / ${o.failed_checks} down`]],
  },
  pool: {
    title: "Pools",
    fields: [
      { key: "name", label: "Name", kind: "text" },
      { key: "lb_algorithm", label: "Algorithm", kind: "select", options: ["LB_ALGORITHM_ROUND_ROBIN", "LB_ALGORITHM_LEAST_CONNECTIONS", "LB_ALGORITHM_CONSISTENT_HASH"] },
      { key: "servers", label: "Servers (one ip:port per line; add \"disabled\" to disable)", kind: "servers" },
      { key: "health_monitor_refs", label: "Health monitors", kind: "refs", type: "healthmonitor" },
    ],
    columns: [["Algorithm", (o) => (o.lb_algorithm || "").replace("LB_ALGORITHM_", "")],
      ["Servers", (o, names, live) => (o.servers || []).map((s) => h("div", { class: "server", "data-server": `${s.ip}:${s.port}` }, `${s.ip}:${s.port} `,
        serverBadge(s, live && live.serverState ? live.serverState(o.uuid, s.ip, s.port) : null)))],
      ["Monitors", (o, names) => (o.health_monitor_refs || []).map((u) => names.get(u) || u).join(", ") || "—"]],
  },
  virtualservice: {
    title: "Virtual services",
    fields: [
      { key: "name", label: "Name", kind: "text" },
      { key: "enabled", label: "Enabled", kind: "check", initial: true },
      { key: "vip", label: "Address", kind: "text", initial: "127.0.0.1" },
      { key: "services", label: "Ports (comma separated)", kind: "ports" },
      { key: "application", label: "Application", kind: "select", options: ["http", "tcp"] },
      { key: "x_forwarded_for", label: "X-Forwarded-For (replace: the client's own is dropped; append: behind a trusted proxy)", kind: "select", options: ["replace", "append"] },
      { key: "pool_ref", label: "Pool", kind: "ref", type: "pool" },
      { key: "se_refs", label: "Service Engines (none: every SE)", kind: "refs", type: "serviceengine", optional: true },
    ],
    columns: [["Address", (o) => `${o.vip}:${(o.services || []).map((s) => s.port).join(",")}`],
      ["Pool", (o, names) => names.get(o.pool_ref) || o.pool_ref || "—"], ["Enabled", (o) => o.enabled === false ? "no" : "yes"]],
  },
  serviceengine: {
    title: "Service Engines (config)",
    fields: [
      { key: "name", label: "Name", kind: "text" },
      { key: "public_key", label: "Public key (ssh-ed25519 ...)", kind: "textarea" },
    ],
    columns: [["Key", (o) => (o.public_key || "").slice(0, 40) + "…"]],
  },
};

const SERVER_KIND = { UP: "good", DEGRADED: "warn", DOWN: "bad", DISABLED: "idle", UNKNOWN: "idle" };

// A server's monitor status as its SEs report it (STATE: {state, up_on, reported_by}, or
// null when no SE serves a virtual service of its pool).
function serverBadge(server, state) {
  if (server.enabled === false) return badge("disabled", "idle");
  if (!state) return h("span", { class: "muted" }, "no SE reports");
  const detail = state.reported_by > 1 ? ` (up on ${state.up_on} of ${state.reported_by} SEs)` : "";
  return badge(state.state + detail, SERVER_KIND[state.state] || "idle");
}

const RUNTIME_FIELDS = ["uuid", "runtime", "oper_status", "controller_node", "connected_since",
  "last_heartbeat", "se_state", "config_version", "logs"];

export function canWrite(session) {
  return session && (session.role === "admin" || session.role === "operator");
}

function fieldInput(f, value, choices) {
  const id = `f-${f.key}`;
  const common = { id, name: f.key, "aria-describedby": `${id}-error` };
  switch (f.kind) {
    case "select":
      return h("select", common, f.options.map((o) => h("option", { value: o, selected: value === o }, o)));
    case "check":
      return h("input", { ...common, type: "checkbox", checked: value !== false });
    case "textarea":
      return h("textarea", { ...common, rows: 3 }, value || "");
    case "servers":
      return h("textarea", { ...common, rows: 4, placeholder: "127.0.0.1:9001" },
        (value || []).map((s) => `${s.ip}:${s.port}${s.enabled === false ? " disabled" : ""}`).join("\n"));
    case "ports":
      return h("input", { ...common, type: "text", value: (value || []).map((s) => s.port).join(", "), placeholder: "10080" });
    case "list":
      return h("input", { ...common, type: "text", value: (value || []).join(", ") });
    case "ref":
      return h("select", common, h("option", { value: "" }, "(none)"),
        choices.map((o) => h("option", { value: o.uuid, selected: value === o.uuid }, o.name)));
    case "refs":
      return h("select", { ...common, multiple: true, size: Math.min(5, Math.max(2, choices.length)) },
        choices.map((o) => h("option", { value: o.uuid, selected: (value || []).includes(o.uuid) }, o.name)));
    default:
      return h("input", { ...common, type: f.kind === "number" ? "text" : "text", inputmode: f.kind === "number" ? "decimal" : null,
        value: value === undefined || value === null ? "" : String(value) });
  }
}

// The form's values as the API's object (what cannot be read as asked is sent as typed,
// so that the API names what is wrong with it).
function readField(f, el) {
  const text = (el.value || "").trim();
  switch (f.kind) {
    case "check": return el.checked;
    case "number": return text !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
    case "servers":
      return text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
        const [hostport, flag] = line.split(/\s+/);
        const at = hostport.lastIndexOf(":");
        const port = hostport.slice(at + 1);
        return { ip: at < 0 ? hostport : hostport.slice(0, at), port: at < 0 ? null : (/^\d+$/.test(port) ? Number(port) : port), enabled: flag !== "disabled" };
      });
    case "ports": return text.split(SPLIT).filter(Boolean).map((p) => ({ port: /^\d+$/.test(p) ? Number(p) : p }));
    case "list": return text.split(SPLIT).filter(Boolean);
    case "refs": return Array.from(el.selectedOptions).map((o) => o.value);
    case "ref": return text || null;
    default: return el.value;
  }
}

// A form for TYPE: ORIGINAL (an object, or null for a new one). DONE() after a success.
export async function objectForm(type, original, done) {
  const spec = OBJECT_FORMS[type];
  const choices = {};
  for (const f of spec.fields) if (f.type && !choices[f.type]) choices[f.type] = await listAll(f.type);
  const general = h("p", { class: "form-error", role: "alert", "data-testid": "form-error" });
  const rows = spec.fields.map((f) => {
    const value = original ? original[f.key] : f.initial;
    return h("div", { class: "field", "data-field": f.key },
      h("label", { for: `f-${f.key}` }, f.label),
      fieldInput(f, value, choices[f.type] || []),
      h("p", { class: "field-error", id: `f-${f.key}-error`, "data-error-for": f.key, role: "alert" }));
  });
  const form = h("form", { class: "object-form", novalidate: true, "aria-label": `${original ? "edit" : "new"} ${type}` },
    h("h3", {}, original ? `Edit ${original.name}` : `New ${type}`), general, rows,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, original ? "Save" : "Create"),
      h("button", { type: "button", onclick: () => done(false) }, "Cancel")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const el of form.querySelectorAll(".field-error, .form-error")) el.textContent = "";
    for (const el of form.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
    const body = {};
    if (original) for (const [k, v] of Object.entries(original)) if (!RUNTIME_FIELDS.includes(k)) body[k] = v;
    for (const f of spec.fields) {
      const value = readField(f, form.querySelector(`#f-${f.key}`));
      const empty = value === "" || value === null || (Array.isArray(value) && value.length === 0);
      if (empty && f.optional) delete body[f.key];
      else if (!(empty && f.kind === "ref")) body[f.key] = value;
      else delete body[f.key];
    }
    try {
      if (original) await api("PUT", `/api/${type}/${original.uuid}`, body);
      else await api("POST", `/api/${type}`, body);
      done(true);
    } catch (err) {
      showError(form, general, err);
    }
  });
  return form;
}

function showError(form, general, err) {
  const field = err instanceof ApiError ? err.field : null;
  const slot = field ? form.querySelector(`[data-error-for="${field}"]`) : null;
  if (slot) {
    slot.textContent = err.message;
    slot.closest(".field").classList.add("invalid");
    const input = slot.closest(".field").querySelector("input, select, textarea");
    if (input) input.focus();
  } else {
    general.textContent = err.message;
  }
}

// The page of one type: the list, and for a role that may write, New / Edit / Delete.
// LIVE (optional): {serverState(poolUuid, ip, port)} for what the SEs report; the page's
// refresh() redraws the list with it (no new request).
export function objectPage(type, session, live) {
  const spec = OBJECT_FORMS[type];
  const root = h("section", { class: "objects", "data-type": type });
  const formSlot = h("div", { class: "form-slot" });
  const listSlot = h("div", {});
  const message = h("p", { class: "form-error", role: "alert" });
  const writable = canWrite(session);

  let objects = null, names = new Map(), columns = null;

  function draw() {
    if (objects !== null) fill(listSlot, table(columns, objects, `no ${spec.title.toLowerCase()} yet`));
  }

  async function reload() {
    try {
      const list = await listAll(type);
      const found = new Map();
      for (const other of ["pool", "healthmonitor"]) if (other !== type) for (const o of await listAll(other)) found.set(o.uuid, o.name);
      objects = list;
      names = found;
    } catch (err) {
      fill(listSlot, h("p", { class: "form-error" }, err.message));
      return;
    }
    columns = [{ title: "Name", cell: (o) => h("strong", {}, o.name) },
      ...spec.columns.map(([title, cell]) => ({ title, cell: (o) => cell(o, names, live) }))];
    if (writable) {
      columns.push({ title: "Actions", cell: (o) => h("span", { class: "row-actions" },
        h("button", { type: "button", onclick: () => open(o), "aria-label": `edit ${o.name}` }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => remove(o), "aria-label": `delete ${o.name}` }, "Delete")) });
    }
    draw();
  }

  async function open(original) {
    message.textContent = "";
    try {
      fill(formSlot, await objectForm(type, original, (changed) => {
        fill(formSlot);
        if (changed) reload();
      }));
      const first = formSlot.querySelector("input, select, textarea");
      if (first) first.focus();
    } catch (err) {
      message.textContent = err.message;
    }
  }

  async function remove(o) {
    if (!window.confirm(`Delete ${type} ${o.name}?`)) return;
    message.textContent = "";
    try {
      await api("DELETE", `/api/${type}/${o.uuid}`);
      reload();
    } catch (err) {
      message.textContent = `${o.name}: ${err.message}`;
    }
  }

  fill(root, h("div", { class: "section-head" }, h("h2", {}, spec.title),
    writable ? h("button", { type: "button", class: "primary", onclick: () => open(null), "data-testid": `new-${type}` }, `New ${type}`) : null),
  message, formSlot, listSlot);
  reload();
  root.refresh = draw;
  return root;
}
