// dom.js: building elements and formatting what they show. No state.

// h("td", {class: "x", onclick: f}, child, ...): an element; children are nodes, strings,
// numbers, arrays of them, or null/false (skipped). Text is always set as text, never HTML.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = !!value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replaces EL's children with CHILDREN.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const zone = (() => {
  const part = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
    .formatToParts(new Date())
    .find((p) => p.type === "timeZoneName");
  return part ? part.value : "local";
})();

// An RFC 3339 time (or ms since the epoch) as local date and time with its zone; "—" for none.
export function fmtTime(t) {
  if (t === null || t === undefined || t === "") return "—";
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)} ${zone}`;
}

// A duration in ms as "850 ms", "12.3 s", "4 min 5 s", "2 h 3 min".
export function fmtDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// How long ago T (RFC 3339) was, from NOW (ms); "—" for none.
export function fmtAgo(t, now = Date.now()) {
  if (!t) return "—";
  const ms = now - new Date(t).getTime();
  return Number.isFinite(ms) ? `${fmtDuration(ms)} ago` : "—";
}

export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return "—";
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(Number(n))) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n), i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

// A table: COLUMNS [{title, cell(row) -> node|string, class?}], ROWS; EMPTY shown when none.
export function table(columns, rows, empty, rowAttrs) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.title)))),
      h("tbody", {},
        rows.length === 0
          ? h("tr", {}, h("td", { class: "empty", colspan: columns.length }, empty))
          : rows.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {},
            columns.map((c) => h("td", { class: c.class || null, "data-label": c.title }, c.cell(r))))))));
}

// A coloured label: KIND is one of "good", "warn", "bad", "idle".
export function badge(text, kind) {
  return h("span", { class: `badge ${kind}` }, text);
}
