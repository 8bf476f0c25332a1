// views.js: what each page of the dashboard shows, drawn from the shared state (main.js)
// with dom.js. Each view is {title, mount(el, ctx), update(ctx)}: mount builds the parts
// that stay (filters, forms), update redraws the live parts from ctx.state.
import { h, table, badge, fmtTime, fmtAgo, fmtDuration, fmtNumber } from "./dom.js";

export const STATUS_KIND = {
  Ready: "good",
  "Not Responsive": "bad",
  Errors: "bad",
  Restoring: "warn",
  "Waiting for Service Engines": "warn",
  "Cluster copying DB from leader": "warn",
};

const HEALTH_KIND = { UP: "good", DEGRADED: "warn", DOWN: "bad", DISABLED: "idle" };

export function nodeName(snap, id) {
  if (!snap || id === null || id === undefined) return "—";
  const n = (snap.runtime.node_states || []).find((x) => x.id === id) ||
    (snap.nodes || []).find((x) => x.id === id);
  return n && n.name ? n.name : `node ${id}`;
}

// The status history as a strip of segments, oldest first, each as wide as it lasted
// (the current one up to now), labelled with its status and duration.
export function statusStrip(history, now) {
  if (!history || history.length === 0) return h("div", { class: "strip empty" }, "no history yet");
  const start = new Date(history[0].time).getTime();
  const total = Math.max(1, now - start);
  const segments = history.map((item, i) => {
    const from = new Date(item.time).getTime();
    const to = i + 1 < history.length ? new Date(history[i + 1].time).getTime() : now;
    return { item, from, to };
  });
  return h("div", { class: "strip-wrap" },
    h("div", { class: "strip", role: "list", "aria-label": "cluster status history" },
      segments.map(({ item, from, to }) => h("div", {
        class: `seg ${STATUS_KIND[item.status] || "idle"}`,
        role: "listitem",
        "data-width": ((to - from) / total * 100).toFixed(3),
        title: `${item.status} for ${fmtDuration(to - from)} from ${fmtTime(item.time)}: ${item.reason || ""}`,
      }, h("span", {}, item.status)))),
    h("ol", { class: "strip-list" },
      segments.slice(-8).map(({ item, from, to }) => h("li", {},
        badge(item.status, STATUS_KIND[item.status] || "idle"), " ",
        fmtDuration(to - from), " · ", h("span", { class: "muted" }, fmtTime(item.time)),
        item.reason ? h("span", { class: "muted" }, ` · ${item.reason}`) : null))));
}

// Sets each strip segment's width from its data-width (style attributes are not allowed
// by the page's CSP; CSSOM is).
export function sizeStrips(root) {
  for (const seg of root.querySelectorAll(".seg[data-width]")) seg.style.width = `${seg.dataset.width}%`;
}

export function nodesTable(snap) {
  const rt = snap.runtime;
  const doc = new Map((snap.nodes || []).map((n) => [n.id, n]));
  return table([
    { title: "Node", cell: (n) => h("span", {}, h("strong", {}, n.name || `node ${n.id}`), h("span", { class: "muted" }, ` #${n.id}`), n.id === rt.node_id ? h("span", { class: "tag" }, "this page's node") : null) },
    { title: "Role", cell: (n) => n.role === "CLUSTER_LEADER" ? badge("Leader", "good") : "Follower" },
    { title: "State", cell: (n) => badge(n.state, n.state === "CLUSTER_ACTIVE" ? "good" : n.state === "CLUSTER_STARTING" ? "warn" : "bad") },
    { title: "Last contact", cell: (n) => fmtAgo(n.last_contact) },
    { title: "Up since", cell: (n) => fmtTime(n.up_since) },
    { title: "Applied index", cell: (n) => fmtNumber(n.applied_index), class: "num" },
    { title: "Cluster IP", cell: (n) => n.holds_cluster_ip ? badge(snap.cluster && snap.cluster.virtual_ip || "held", "good") : "" },
    { title: "API address", cell: (n) => (doc.get(n.id) || {}).api_address || "—" },
  ], rt.node_states || [], "no members known", (n) => ({ "data-node": n.name, class: n.role === "CLUSTER_LEADER" ? "leader-row" : null }));
}

export function seTable(snap, now) {
  const ses = snap.serviceengines || [];
  return table([
    { title: "Service Engine", cell: (s) => h("strong", {}, s.name) },
    { title: "State", cell: (s) => badge(s.se_state || (s.oper_status && s.oper_status.state) || "—", s.oper_status && s.oper_status.state === "OPER_UP" ? "good" : "bad") },
    { title: "Controller node", cell: (s) => nodeName(snap, s.controller_node) },
    { title: "Heartbeat", cell: (s) => fmtAgo(s.last_heartbeat, now) },
    { title: "Config version", cell: (s) => fmtNumber(s.config_version), class: "num" },
    { title: "Spooled logs", cell: (s) => fmtNumber(s.logs && s.logs.spooled), class: "num" },
    { title: "Dropped logs", cell: (s) => fmtNumber(s.logs && s.logs.dropped), class: "num" },
  ], ses, "no Service Engines are registered");
}

export function vsTable(snap, onOpen) {
  return table([
    { title: "Virtual service", cell: (v) => h("a", { href: `#/vs/${v.uuid}`, onclick: onOpen ? () => onOpen(v) : null }, v.name) },
    { title: "Health", cell: (v) => v.enabled === false ? badge("DISABLED", "idle") : v.runtime ? badge(v.runtime.health, HEALTH_KIND[v.runtime.health] || "idle") : badge("no SE reports", "idle") },
    { title: "Address", cell: (v) => `${v.vip}:${(v.services || []).map((s) => s.port).join(",")}` },
    { title: "Application", cell: (v) => v.application || "http" },
    { title: "Servers up", cell: (v) => v.runtime ? `${v.runtime.servers_up}/${v.runtime.servers}` : "—", class: "num" },
    { title: "Requests/s", cell: (v) => v.runtime ? fmtNumber(v.runtime.requests_per_s, 1) : "—", class: "num" },
    { title: "Errors/s", cell: (v) => v.runtime ? fmtNumber(v.runtime.errors_per_s, 1) : "—", class: "num" },
  ], snap.virtualservices || [], "no virtual services");
}

// The banner's parts from the state: cluster status, leader, quorum, data age, connection.
export function banner(state, now) {
  const snap = state.snapshot;
  const conn = state.conn;
  const age = state.snapshotAt ? now - state.snapshotAt : null;
  const stale = age === null || age > 3500;
  const connKind = conn.state === "live" ? "good" : conn.state === "connecting" ? "warn" : "bad";
  if (!snap) {
    return h("div", { class: "banner-row" },
      h("span", { class: "item", "data-testid": "connection" }, "Connection: ", badge(conn.state, connKind)),
      h("span", { class: "item muted" }, "waiting for the first snapshot"));
  }
  const rt = snap.runtime;
  const cs = rt.cluster_state;
  const members = rt.node_states || [];
  const active = members.filter((n) => n.state === "CLUSTER_ACTIVE").length;
  const quorum = Math.floor(members.length / 2) + 1;
  return h("div", { class: `banner-row${stale ? " stale" : ""}` },
    h("span", { class: "item", "data-testid": "cluster-status" }, "Status: ", badge(cs.status, STATUS_KIND[cs.status] || "idle")),
    h("span", { class: "item", "data-testid": "cluster-state" }, cs.state),
    h("span", { class: "item", "data-testid": "leader" }, "Leader: ", h("strong", {}, rt.leader_id ? nodeName(snap, rt.leader_id) : "none")),
    h("span", { class: "item", "data-testid": "quorum" }, "Quorum: ", badge(`${active}/${members.length}`, active >= quorum ? (active === members.length ? "good" : "warn") : "bad")),
    h("span", { class: "item", "data-testid": "data-age" }, stale
      ? badge(`stale: last update ${age === null ? "never" : fmtDuration(age) + " ago"}`, "bad")
      : `Data: ${fmtDuration(age)} old`),
    h("span", { class: "item", "data-testid": "connection" }, "Connection: ", badge(conn.state + (conn.detail && conn.state !== "live" ? ` (${conn.detail})` : ""), connKind)),
    h("span", { class: "item muted" }, `via ${nodeName(snap, rt.node_id)}`));
}

// When the node this page talks to does not answer: where to go. Through the cluster IP
// the page carries on by itself; otherwise it names the other nodes as last seen.
export function failoverHelp(state, now) {
  const snap = state.snapshot;
  if (!snap || state.conn.state === "live" || !state.brokenSince || now - state.brokenSince < 2000) return null;
  const vip = snap.cluster && snap.cluster.virtual_ip ? snap.cluster.virtual_ip.split("/")[0] : null;
  if (vip && location.hostname === vip) {
    return h("div", { class: "notice warn", role: "status" },
      `The node behind the cluster IP ${vip} stopped answering. The cluster IP moves to the new leader; this page reconnects by itself (same address, certificate and session).`);
  }
  const self = snap.runtime.node_id;
  const others = (snap.nodes || []).filter((n) => n.id !== self);
  const states = new Map((snap.runtime.node_states || []).map((n) => [n.id, n]));
  return h("div", { class: "notice bad", role: "alert", "data-testid": "failover-help" },
    h("p", {}, `${nodeName(snap, self)}, the node this page talks to, is not answering. The data below is from ${fmtTime(state.snapshotAt)} and is not current.`),
    h("p", {}, "Other nodes, as last seen:"),
    h("ul", {}, others.map((n) => {
      const st = states.get(n.id);
      const alive = st && st.state === "CLUSTER_ACTIVE";
      return h("li", {}, h("a", { href: `${location.protocol}//${n.api_address}/ui/` }, `${n.name} (${n.api_address})`), " ",
        badge(alive ? "was active" : "was down", alive ? "good" : "bad"), st && st.role === "CLUSTER_LEADER" ? " · was leader" : "");
    })),
    vip ? h("p", {}, "Or use the cluster IP, which always reaches the leader: ", h("a", { href: `${location.protocol}//${vip}:${location.port || (location.protocol === "https:" ? 443 : 80)}/ui/` }, vip)) : null);
}

// The event timeline: newest first, filtered by type and free text.
export function eventList(events, filter) {
  const text = (filter.text || "").toLowerCase();
  const shown = events.filter((e) => (!filter.type || e.event_id === filter.type) &&
    (!text || JSON.stringify(e).toLowerCase().includes(text))).slice(0, filter.limit || 200);
  if (shown.length === 0) return h("p", { class: "muted" }, "no events match");
  return h("ol", { class: "timeline" }, shown.map((e) => h("li", { "data-event": e.event_id },
    h("time", { datetime: e.report_timestamp }, fmtTime(e.report_timestamp)),
    h("span", { class: "event-id" }, e.event_id),
    h("span", { class: "muted" }, `${e.module || ""} ${e.obj_name || ""}`),
    h("div", { class: "event-desc" }, e.event_description || ""),
    e.event_details ? h("code", { class: "details" }, detailsText(e.event_details)) : null)));
}

function detailsText(details) {
  return Object.entries(details).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join("  ");
}

